"""SCIP backend for qpmopt, through PySCIPOpt.

Two renderings of the core's :class:`~qpmopt.Formulation` (option ``formulation``):

- ``"linear"``: the formulation's arrays as they are (products ``s_i s_j`` linearised by
  the ``y`` columns and rows);
- ``"quadratic"``: the ``y`` columns and their rows dropped, the redundancy term written
  as SCIP's native quadratic ``t <= -sum R_ij s_i s_j`` with ``t`` in the objective, and
  SCIP left to handle the products of binaries itself.

The default is the one that did better in ``benchmarks/scip_formulation.py`` (results in
``benchmarks/results/scip_formulation.json``).  Everything else (warm start, lazy
uniqueness, bounds, the size limit) is the core's MIP driver.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import numpy as np

from qpmopt import Formulation
from qpmopt.backends import Capabilities, MipBackend, MipOptions, ModelResult, OptionsError, SolverConfig, watch_solver

__all__ = ["ScipBackend", "ScipOptions"]


class ScipOptions(MipOptions):
    """The MIP options plus how the redundancy term is written for SCIP."""

    formulation: Literal["linear", "quadratic"] = "linear"


class ScipBackend(MipBackend):
    name = "scip"
    required_modules = ("pyscipopt",)
    capabilities = Capabilities(exact=True, proves_bound=True, deterministic=True)
    Options = ScipOptions

    def solve_model(
        self, form: Formulation, time_limit: float | None, warm: np.ndarray | None, config: SolverConfig,
        options: ScipOptions,
    ) -> ModelResult:
        import pyscipopt

        m = pyscipopt.Model("qpmopt")
        if not config.verbose:
            m.hideOutput()
        columns, quad = _render(m, form, options.formulation)
        m.setParam("limits/gap", float(config.gap_limit))  # optimal must mean a zero gap (or the caller's limit)
        m.setParam("limits/absgap", 1e-9)
        m.setParam("randomization/randomseedshift", int(config.seed) % 2**31)
        if time_limit is not None:
            m.setParam("limits/time", max(0.01, float(time_limit)))
        for key, val in options.solver_options.items():
            try:
                m.setParam(key, val)
            except (KeyError, LookupError, TypeError, ValueError) as exc:
                raise OptionsError(f"options: SCIP rejected solver option {key}={val!r} ({exc})") from None
        if warm is not None:
            _add_warm_start(m, form, columns, quad, warm)
        thread = threading.Thread(target=m.optimizeNogil, daemon=True)
        thread.start()
        interrupted = watch_solver(thread, m.interruptSolve, time_limit, config)
        status = m.getStatus()
        x = None
        if m.getNSols() > 0:
            best = m.getBestSol()
            x = _full_vector(form, np.array([m.getSolVal(best, v) if v is not None else 0.0 for v in columns]))
        bound = float(m.getDualbound())
        return ModelResult(
            x=x,
            bound=bound if np.isfinite(bound) and abs(bound) < 1e19 else None,
            optimal=status == "optimal",
            infeasible=status == "infeasible",
            interrupted=interrupted or status == "userinterrupt" and config.stop_requested(),
            info={"status": status, "formulation": options.formulation, "nodes": int(m.getNNodes())},
        )


def _render(m: Any, form: Formulation, formulation: str) -> tuple[list[Any], Any]:
    """Add the model to SCIP; returns one SCIP variable per column of ``form`` (``None`` for
    the ``y`` columns the quadratic rendering drops) and its ``t`` (or ``None``)."""
    import pyscipopt

    arr = form.arrays()
    n = form.n_vars
    y_cols = np.zeros(n, dtype=bool)
    if formulation == "quadratic":
        y_cols[form.n_s + form.n_w : form.n_s + form.n_w + form.n_y] = True
    columns: list[Any] = []
    for j in range(n):
        if y_cols[j]:
            columns.append(None)
            continue
        vtype = "B" if arr["integer"][j] else "C"
        columns.append(m.addVar(vtype=vtype, lb=float(arr["lower"][j]), ub=float(arr["upper"][j]),
                                obj=float(arr["cost"][j])))
    mat = arr["matrix"]
    for r in range(mat.shape[0]):
        sl = slice(mat.indptr[r], mat.indptr[r + 1])
        cols, vals = mat.indices[sl], mat.data[sl]
        if y_cols[cols].any():  # a linearisation row: the quadratic term replaces it
            continue
        lo, hi = arr["row_lower"][r], arr["row_upper"][r]
        expr = pyscipopt.quicksum(float(v) * columns[j] for j, v in zip(cols, vals))
        if lo == hi:
            m.addCons(expr == float(lo))
        elif np.isfinite(lo) and np.isfinite(hi):
            m.addCons(pyscipopt.Expr() + float(lo) <= (expr <= float(hi)))
        elif np.isfinite(hi):
            m.addCons(expr <= float(hi))
        else:
            m.addCons(expr >= float(lo))
    quad = None
    if formulation == "quadratic" and form.n_y:
        problem, free = form.problem, form.free
        pi, pj = form.pairs[:, 0], form.pairs[:, 1]
        weights = problem.R[free[pi], free[pj]]
        quad = m.addVar(vtype="C", lb=None, ub=None, obj=1.0, name="redundancy")
        m.addCons(quad + pyscipopt.quicksum(float(w) * columns[i] * columns[j]
                                           for i, j, w in zip(pi, pj, weights) if w != 0.0) <= 0.0)
    m.addVar(vtype="C", lb=1.0, ub=1.0, obj=float(arr["constant"]), name="constant")
    m.setMaximize()
    return columns, quad


def _full_vector(form: Formulation, x: np.ndarray) -> np.ndarray:
    """The complete variable vector from SCIP's values (dropped ``y`` columns recomputed)."""
    selection, assignment = form.decode(x)
    return form.encode(selection, assignment)


def _add_warm_start(m: Any, form: Formulation, columns: list[Any], quad: Any, warm: np.ndarray) -> None:
    sol = m.createSol()
    for var, value in zip(columns, warm):
        if var is not None:
            m.setSolVal(sol, var, float(value))
    if quad is not None:
        pi, pj = form.pairs[:, 0], form.pairs[:, 1]
        free = form.free
        s = warm[: form.n_s]
        m.setSolVal(sol, quad, float(-(form.problem.R[free[pi], free[pj]] * s[pi] * s[pj]).sum()))
    for var in m.getVars():
        if var.name == "constant":
            m.setSolVal(sol, var, 1.0)
    m.addSol(sol, free=True)
