"""OR-Tools CP-SAT, fed the formulation's arrays through its model proto.

CP-SAT needs integer objective coefficients.  We multiply by ``scale`` and round.  Each
coefficient is then off by at most ``0.5 / scale``, and a feasible solution has at most
``T = n_c*k + C(n_sel, 2) + n_sel`` non-zero terms (its W, y and s that are 1), so its
descaled CP-SAT objective differs from the true one by at most ``T * 0.5 / scale``.  We
choose ``scale = T * 0.5 / (1e-7 * max(1, |Z_warm|))`` (a power of two above that), which
keeps the difference under ``1e-7`` relative to the objective (the promise is 1e-6), and
add the same ``T * 0.5 / scale`` to CP-SAT's bound so that it stays a valid upper bound of
the true objective.  ``solver_objective`` in the result info is CP-SAT's own descaled value.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from qpmopt.backends._mip import MipBackend, MipOptions, ModelAnswer, watch_solver
from qpmopt.backends.base import Capabilities, OptionsError, SolverConfig
from qpmopt.formulation import Formulation

#: relative accuracy of the scaled objective (see the module docstring)
SCALE_ACCURACY = 1e-7


def objective_scale(form: Formulation, reference: float) -> tuple[float, float]:
    """``(scale, max_error)`` for integer objective coefficients (module docstring)."""
    pb = form.problem
    terms = pb.n_classes * pb.k + math.comb(pb.n_features, 2) + pb.n_features
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
    ) -> ModelAnswer:
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
        big = 2**62
        for r in range(mat.shape[0]):
            sl = slice(mat.indptr[r], mat.indptr[r + 1])
            lin = proto.constraints.add().linear
            lin.vars.extend(mat.indices[sl].tolist())
            lin.coeffs.extend(np.rint(mat.data[sl]).astype(np.int64).tolist())
            lo, hi = arr["row_lower"][r], arr["row_upper"][r]
            lin.domain.extend([-big if np.isinf(lo) else int(lo), big if np.isinf(hi) else int(hi)])
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
        return ModelAnswer(
            x=x,
            bound=bound,
            optimal=status == cp_model.OPTIMAL,
            infeasible=status == cp_model.INFEASIBLE,
            interrupted=interrupted,
            info=info,
        )
