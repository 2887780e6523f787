"""OR-Tools CP-SAT, fed the formulation's arrays through its model proto.

CP-SAT needs integer objective coefficients.  We multiply by ``scale`` and round.  Each
coefficient is then off by at most ``0.5 / scale``, and a feasible solution has at most
``T = n_c*k + C(n_sel, 2) + n_sel`` non-zero terms (its W, y and s that are 1), so its
descaled CP-SAT objective differs from the true one by at most ``T * 0.5 / scale``.  We
choose ``scale = T * 0.5 / (4e-10 * max(1, |Z_warm|))`` (a power of two above that), and
add the same ``T * 0.5 / scale`` to CP-SAT's bound so that it stays a valid upper bound of
the true objective.  ``solver_objective`` in the result info is CP-SAT's own descaled value.

CP-SAT's ``OPTIMAL`` proves the *rounded* objective optimal.  For the true objective that
proves optimality only to within ``2 * T * 0.5 / scale`` (the rounding of the returned
solution and of any better one), so it is passed on as a proof only when that is within
:data:`qpmopt.solution.OPTIMALITY_TOL` of the objective; the scale above is chosen so that it
is, unless the objective moved far from the warm start's.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from qpmopt.backends.base import Capabilities, OptionsError, SolverConfig
from qpmopt.backends.mip import MipBackend, MipOptions, ModelResult, watch_solver
from qpmopt.formulation import Formulation
from qpmopt.solution import OPTIMALITY_TOL

#: relative accuracy of the scaled objective (see the module docstring): twice it must stay
#: under OPTIMALITY_TOL for CP-SAT's proof of the rounded objective to prove the true one.
SCALE_ACCURACY = 4e-10


def objective_scale(form: Formulation, reference: float) -> tuple[float, float]:
    """``(scale, max_error)`` for integer objective coefficients (module docstring)."""
    problem = form.problem
    terms = problem.n_classes * problem.k + math.comb(problem.n_features, 2) + problem.n_features
    target = terms * 0.5 / (SCALE_ACCURACY * max(1.0, abs(reference)))
    scale = 2.0 ** math.ceil(math.log2(target))
    return scale, terms * 0.5 / scale


class CpSatBackend(MipBackend):
    name = "cpsat"
    required_modules = ("ortools",)
    # With more than one worker (the default: 2) CP-SAT's parallel portfolio is not
    # reproducible; threads=1 is.
    capabilities = Capabilities(exact=True, proves_bound=True, deterministic=False)

    def solve_model(
        self, form: Formulation, time_limit: float | None, warm: np.ndarray | None, config: SolverConfig,
        options: MipOptions,
    ) -> ModelResult:
        from ortools.sat.python import cp_model

        arr = form.arrays()
        reference = float(arr["cost"] @ warm + arr["constant"]) if warm is not None else 1.0
        scale, max_err = objective_scale(form, reference)
        coefs = np.rint(arr["cost"] * scale).astype(np.int64)
        if np.abs(coefs).sum() >= 2**62:
            raise OverflowError("cpsat: scaled objective would overflow int64; report this instance")

        model = cp_model.CpModel()
        proto = model.proto
        for lo, hi in zip(arr["lower"].astype(np.int64), arr["upper"].astype(np.int64)):
            proto.variables.add().domain.extend([int(lo), int(hi)])
        mat = arr["matrix"]
        int64_edge = 2**62
        for r in range(mat.shape[0]):
            sl = slice(mat.indptr[r], mat.indptr[r + 1])
            lin = proto.constraints.add().linear
            lin.vars.extend(mat.indices[sl].tolist())
            lin.coeffs.extend(np.rint(mat.data[sl]).astype(np.int64).tolist())
            lo, hi = arr["row_lower"][r], arr["row_upper"][r]
            lin.domain.extend([-int64_edge if np.isinf(lo) else int(lo), int64_edge if np.isinf(hi) else int(hi)])
        nz = np.flatnonzero(coefs)
        proto.objective.vars.extend(nz.tolist())
        proto.objective.coeffs.extend((-coefs[nz]).tolist())  # CP-SAT minimises
        proto.objective.scaling_factor = -1.0
        if warm is not None:
            proto.solution_hint.vars.extend(range(form.n_vars))
            proto.solution_hint.values.extend(np.rint(warm).astype(np.int64).tolist())

        solver = cp_model.CpSolver()
        prm = solver.parameters
        if time_limit is not None:
            prm.max_time_in_seconds = max(0.01, float(time_limit))
        prm.random_seed = int(config.seed) % 2**31
        prm.num_workers = int(config.threads) if config.threads is not None else 2
        prm.log_search_progress = bool(config.verbose)
        if config.gap_limit > 0:  # CP-SAT then reports OPTIMAL once its gap is that small
            prm.relative_gap_limit = float(config.gap_limit)
        for key, val in (options.solver_options or {}).items():
            if not hasattr(prm, key):
                raise OptionsError(f"options: CP-SAT has no parameter {key!r}")
            setattr(prm, key, val)

        result: dict[str, int] = {}
        worker = threading.Thread(target=lambda: result.setdefault("status", solver.solve(model)), daemon=True)
        worker.start()
        interrupted = watch_solver(worker, solver.stop_search, time_limit, config)
        status = result.get("status", cp_model.UNKNOWN)
        x = None
        info: dict[str, object] = {"status": solver.status_name(status), "scale": scale, "max_scaling_error": max_err}
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            x = np.asarray(solver.response_proto.solution, dtype=np.float64)
            info["solver_objective"] = solver.objective_value / scale + arr["constant"]
        bound = None
        # Only a search that got somewhere reports a meaningful bound; a response stopped
        # before that (UNKNOWN) carries a placeholder value.
        if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            b = solver.best_objective_bound
            if math.isfinite(b) and abs(b) < 2**62:
                bound = b / scale + arr["constant"] + max_err
        # Optimal for the rounded objective proves the true one to within 2 * max_err.
        proven = status == cp_model.OPTIMAL and 2 * max_err <= OPTIMALITY_TOL * max(1.0, abs(info["solver_objective"]))
        info["rounded_objective_optimal"] = status == cp_model.OPTIMAL
        return ModelResult(
            x=x,
            bound=bound,
            optimal=proven,
            infeasible=status == cp_model.INFEASIBLE,
            interrupted=interrupted,
            info=info,
        )
