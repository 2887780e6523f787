"""Gurobi backend for qpmopt, through gurobipy's matrix API.

Renders the core's :class:`~qpmopt.formulation.Formulation` arrays; everything else (warm
start, lazy uniqueness, bound bookkeeping) is the core's MIP driver.
"""

from __future__ import annotations

import numpy as np

from qpmopt import Formulation
from qpmopt.backends import (
    Capabilities,
    MipBackend,
    MipOptions,
    ModelResult,
    OptionsError,
    ProblemTooLargeError,
    SolverConfig,
)

__all__ = ["GurobiBackend"]


class GurobiBackend(MipBackend):
    name = "gurobi"
    required_modules = ("gurobipy",)
    capabilities = Capabilities(exact=True, proves_bound=True, deterministic=True)

    def solve_model(
        self, form: Formulation, time_limit: float | None, warm: np.ndarray | None, config: SolverConfig,
        options: MipOptions,
    ) -> ModelResult:
        import gurobipy as gp
        from gurobipy import GRB

        arr = form.arrays()
        env = gp.Env(empty=True)
        env.setParam("OutputFlag", int(bool(config.verbose)))
        env.start()
        m = gp.Model(env=env)
        vtype = np.where(arr["integer"], GRB.BINARY, GRB.CONTINUOUS)
        x = m.addMVar(form.n_vars, lb=arr["lower"], ub=arr["upper"], vtype=vtype)
        m.setObjective(arr["cost"] @ x + float(arr["constant"]), GRB.MAXIMIZE)
        mat, lo, hi = arr["matrix"], arr["row_lower"], arr["row_upper"]
        eq = lo == hi
        le = ~eq & np.isfinite(hi)
        ge = ~eq & np.isfinite(lo)
        for rows, sense, rhs in ((eq, "=", hi), (le, "<", hi), (ge, ">", lo)):
            if rows.any():
                m.addMConstr(mat[rows], x, sense, rhs[rows])
        m.Params.MIPGap = float(config.gap_limit)  # optimal must mean a zero gap (or the caller's limit)
        m.Params.MIPGapAbs = 1e-9
        m.Params.Seed = int(config.seed) % 2**31
        if time_limit is not None:
            m.Params.TimeLimit = max(0.01, float(time_limit))
        if config.threads is not None:
            m.Params.Threads = int(config.threads)
        for key, val in (options.solver_options or {}).items():
            try:
                m.setParam(key, val)
            except gp.GurobiError as exc:
                raise OptionsError(f"options: Gurobi rejected solver option {key}={val!r} ({exc})") from None
        if warm is not None:
            x.Start = warm
        stopped = {"flag": False}

        def callback(model, where):
            if config.should_stop is not None and config.stop_requested():
                stopped["flag"] = True
                model.terminate()

        try:
            m.optimize(callback)
        except gp.GurobiError as exc:
            if "size-limited" in str(exc):
                raise ProblemTooLargeError(
                    f"gurobi: the licence found is size-limited and this model has {form.n_vars} variables "
                    f"({exc})") from None
            raise
        status = m.Status
        sol = np.asarray(x.X) if m.SolCount > 0 else None
        try:
            bound = float(m.ObjBound)
        except (gp.GurobiError, AttributeError):
            bound = None
        return ModelResult(
            x=sol,
            bound=bound if bound is not None and np.isfinite(bound) else None,
            optimal=status == GRB.OPTIMAL,
            infeasible=status == GRB.INFEASIBLE,
            interrupted=stopped["flag"] or status == GRB.INTERRUPTED,
            info={"status": int(status)},
        )
