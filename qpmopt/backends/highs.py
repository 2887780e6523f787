"""HiGHS (MIT-licensed MILP solver) through highspy, fed the formulation's arrays."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator

import numpy as np

from qpmopt.backends.base import Capabilities, OptionsError, SolverConfig
from qpmopt.backends.mip import MipBackend, MipOptions, ModelResult, watch_solver
from qpmopt.formulation import Formulation


@contextlib.contextmanager
def quiet_stdout(active: bool) -> Iterator[None]:
    """Silence the C-level stdout (file descriptor 1) while active."""
    if not active:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


class HighsBackend(MipBackend):
    name = "highs"
    required_modules = ("highspy",)
    capabilities = Capabilities(exact=True, proves_bound=True, deterministic=True)

    def solve_model(
        self, form: Formulation, time_limit: float | None, warm: np.ndarray | None, config: SolverConfig,
        options: MipOptions,
    ) -> ModelResult:
        started = time.perf_counter()
        result = self._solve_once(form, time_limit, warm, config, options, presolve=True)
        if result.optimal and result.x is not None and not self._solution_matches(result):
            # HiGHS 1.16 with presolve and a user-given solution was seen to report an optimal
            # objective while handing back the user's solution unchanged (a tiny model with
            # required pairs: optimum 5.440 reported, warm start 4.892 returned): without
            # presolve it returns its own; if that does not match either, no optimality claim.
            left = None if time_limit is None else time_limit - (time.perf_counter() - started)
            retry = None
            if left is None or left > 0.01:
                retry = self._solve_once(form, left, warm, config, options, presolve=False)
            if retry is not None and retry.x is not None and (not retry.optimal or self._solution_matches(retry)):
                retry.info["presolve_off_retry"] = True
                return retry
            result.optimal = False
        return result

    @staticmethod
    def _solution_matches(result: ModelResult) -> bool:
        """Whether the returned solution's objective is the one HiGHS reported."""
        value, reported = result.info["solution_objective"], result.info["objective"]
        return abs(value - reported) <= 1e-6 * max(1.0, abs(value))

    def _solve_once(
        self, form: Formulation, time_limit: float | None, warm: np.ndarray | None, config: SolverConfig,
        options: MipOptions, *, presolve: bool,
    ) -> ModelResult:
        import highspy

        arr = form.arrays()
        with quiet_stdout(not config.verbose):
            h = highspy.Highs()  # prints a banner at construction, before options can be set
        h.setOptionValue("output_flag", bool(config.verbose))
        lp = highspy.HighsLp()
        n = form.n_vars
        csc = arr["matrix"].tocsc()
        lp.num_col_ = n
        lp.num_row_ = csc.shape[0]
        lp.sense_ = highspy.ObjSense.kMaximize
        lp.offset_ = float(arr["constant"])
        lp.col_cost_ = arr["cost"]
        lp.col_lower_ = arr["lower"]
        lp.col_upper_ = arr["upper"]
        lp.row_lower_ = np.where(np.isinf(arr["row_lower"]), -highspy.kHighsInf, arr["row_lower"])
        lp.row_upper_ = np.where(np.isinf(arr["row_upper"]), highspy.kHighsInf, arr["row_upper"])
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csc.indices.astype(np.int32)
        lp.a_matrix_.value_ = csc.data
        lp.a_matrix_.num_col_ = n
        lp.a_matrix_.num_row_ = csc.shape[0]
        lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous for b in arr["integer"]]
        h.passModel(lp)
        # Optimality must mean a zero gap (or the caller's gap limit), not HiGHS's default
        # 1e-4 relative gap.
        h.setOptionValue("mip_rel_gap", float(config.gap_limit))
        h.setOptionValue("mip_abs_gap", 1e-9)
        h.setOptionValue("random_seed", int(config.seed) % 2**31)
        if not presolve:
            h.setOptionValue("presolve", "off")
        if time_limit is not None:
            h.setOptionValue("time_limit", max(0.01, float(time_limit)))
        if config.threads is not None:
            h.setOptionValue("threads", int(config.threads))
        for key, val in (options.solver_options or {}).items():
            status = h.setOptionValue(key, val)
            if status != highspy.HighsStatus.kOk:
                raise OptionsError(f"options: HiGHS rejected solver option {key}={val!r}")
        if warm is not None:
            sol = highspy.HighsSolution()
            sol.col_value = list(map(float, warm))
            sol.value_valid = True
            h.setSolution(sol)
        # HiGHS runs in its own thread so that we can cancel it (HandleUserInterrupt).
        h.HandleUserInterrupt = True
        interrupted = watch_solver(h.startSolve(), h.cancelSolve, time_limit, config)
        status = h.getModelStatus()
        info = h.getInfo()
        x = None
        if info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible:
            x = np.asarray(h.getSolution().col_value)
        bound = float(info.mip_dual_bound)
        bound = bound if np.isfinite(bound) and abs(bound) < 1e300 else None
        return ModelResult(
            x=x,
            bound=bound,
            optimal=status == highspy.HighsModelStatus.kOptimal,
            infeasible=status == highspy.HighsModelStatus.kInfeasible,
            interrupted=interrupted,
            info={"status": h.modelStatusToString(status), "objective": float(info.objective_function_value),
                  "solution_objective": None if x is None else float(arr["cost"] @ x + arr["constant"])},
        )
