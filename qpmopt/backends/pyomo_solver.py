"""``backend="pyomo"``: the model of :mod:`qpmopt.pyomo_model` solved by any solver Pyomo
reaches (``options={"solver": NAME, "solver_options": {...}}``, default ``appsi_highs``).

It is a :class:`~qpmopt.backends.mip.MipBackend`: the warm start, the lazy uniqueness cut
loop (cuts go into ``m.uniqueness_cuts``), the bounds and the size limit are the core's
driver; this module builds the Pyomo model once per solve, passes the time limit and a
zero optimality gap (the caller's ``gap_limit`` where one is set) in each solver's own
option names, warm-starts solvers that take one, and maps Pyomo's termination to qpmopt's.

Optimal is claimed only when the solver reports an optimal termination on the model *and*
either qpmopt set that solver's zero-gap options (the families in :data:`SOLVER_FAMILIES`)
or the solver's reported bound meets the objective within
:data:`~qpmopt.solution.OPTIMALITY_TOL`; under a ``gap_limit`` the driver claims it only
in the second case and reports ``gap_limit`` otherwise.  Between solver calls the driver checks
``should_stop``; during one call only the solver's own time limit stops it.

Tested here with ``appsi_highs``, ``highs``, ``gurobi_direct`` (within gurobipy's size-limited
licence) and ``scip_direct``; the option names of the other families come from their
manuals.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from qpmopt.backends.base import BackendUnavailableError, Capabilities, OptionsError, SolverConfig
from qpmopt.backends.mip import MipBackend, MipOptions, ModelResult
from qpmopt.formulation import Formulation
from qpmopt.problem import Problem
from qpmopt.pyomo_model import add_uniqueness_cut, model_values, render
from qpmopt.solution import BackendResult, proves_optimal

__all__ = ["PyomoBackend", "PyomoOptions", "SOLVER_FAMILIES", "SolverFamily"]


@dataclass(frozen=True)
class SolverFamily:
    """How qpmopt talks to one family of Pyomo solvers.

    Attributes:
        prefix: the solver names it covers start with this.
        time_limit_option: the solver's option for seconds; ``None``: Pyomo's ``timelimit``
            argument of ``solve`` (the appsi and ``pyomo.contrib.solver`` interfaces).
        zero_gap: options that make "optimal" mean a zero gap.
    """

    prefix: str
    time_limit_option: str | None
    zero_gap: tuple[tuple[str, float], ...]


#: Families qpmopt knows, most specific prefix first.
SOLVER_FAMILIES: tuple[SolverFamily, ...] = (
    SolverFamily("appsi_highs", None, (("mip_rel_gap", 0.0), ("mip_abs_gap", 1e-9))),
    SolverFamily("highs", None, (("mip_rel_gap", 0.0), ("mip_abs_gap", 1e-9))),
    SolverFamily("scip_direct", None, (("limits/gap", 0.0), ("limits/absgap", 1e-9))),
    SolverFamily("scip_persistent", None, (("limits/gap", 0.0), ("limits/absgap", 1e-9))),
    SolverFamily("appsi_gurobi", None, (("MIPGap", 0.0), ("MIPGapAbs", 1e-9))),
    SolverFamily("gurobi", "TimeLimit", (("MIPGap", 0.0), ("MIPGapAbs", 1e-9))),
    SolverFamily("scip", "limits/time", (("limits/gap", 0.0), ("limits/absgap", 1e-9))),
    SolverFamily("cplex", "timelimit", (("mipgap", 0.0),)),
    SolverFamily("xpress", "maxtime", (("miprelstop", 0.0),)),
    SolverFamily("cbc", "seconds", (("ratioGap", 0.0),)),
    SolverFamily("glpk", "tmlim", (("mipgap", 0.0),)),
)


def solver_family(name: str) -> SolverFamily | None:
    """The :class:`SolverFamily` of a Pyomo solver name, or ``None`` when qpmopt does not
    know it."""
    return next((fam for fam in SOLVER_FAMILIES if name.startswith(fam.prefix)), None)


class PyomoOptions(MipOptions):
    """Options of ``pyomo``: the MIP options plus the solver to use."""

    solver: str = "appsi_highs"  # a name pyomo.environ.SolverFactory knows
    uniqueness: Literal["auto", "full", "lazy"] = "auto"  # see qpmopt.pyomo_model
    # The solver's own option for a time limit in seconds, for solvers SOLVER_FAMILIES lacks.
    time_limit_option: str | None = None


def open_solver(name: str) -> Any:
    """``SolverFactory(name)``, checked: raises :class:`BackendUnavailableError` naming
    ``name`` when Pyomo does not know it or it is not installed."""
    import pyomo.environ as pyo

    # An unknown name makes Pyomo log a traceback before it returns a placeholder.
    logger = logging.getLogger("pyomo")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        solver = pyo.SolverFactory(name)
        known = type(solver).__name__ != "UnknownSolver"
        available = known and bool(solver.available(exception_flag=False))
    finally:
        logger.setLevel(level)
    if not available:
        why = "Pyomo has no solver of that name" if not known else "Pyomo cannot run it here (not installed?)"
        raise BackendUnavailableError(
            f"options: solver {name!r} is not available: {why}; `qpmopt solvers --pyomo` lists the Pyomo solvers "
            "that are")
    return solver


def pyomo_solvers(names: tuple[str, ...] | None = None) -> dict[str, bool]:
    """Which Pyomo solvers can run here (``names`` default: one per family of
    :data:`SOLVER_FAMILIES`, plus ``gurobi_persistent``)."""
    names = names or ("appsi_highs", "highs", "gurobi_direct", "gurobi_persistent", "scip_direct", "scip",
                      "cplex_direct", "xpress_direct", "cbc", "glpk")
    out = {}
    for name in names:
        try:
            open_solver(name)
            out[name] = True
        except BackendUnavailableError:
            out[name] = False
    return out


class PyomoBackend(MipBackend):
    """The model of :func:`qpmopt.to_pyomo` through ``pyomo.environ.SolverFactory``."""

    name = "pyomo"
    required_modules = ("pyomo",)
    # Exact and deterministic as far as the chosen solver is (HiGHS, the default, is both).
    capabilities = Capabilities(exact=True, proves_bound=True, deterministic=True)
    Options = PyomoOptions

    def __init__(self) -> None:
        self._built: tuple[Formulation, Any, int] | None = None  # (form, model, cuts rendered)

    def solve(self, problem: Problem, config: SolverConfig, options: PyomoOptions) -> BackendResult:
        family = solver_family(options.solver)
        if config.time_limit is not None and options.time_limit_option is None and family is None:
            raise OptionsError(
                f"options: qpmopt does not know the time-limit option of solver {options.solver!r}; pass it as "
                "time_limit_option (the solver's name for seconds), or solve without a time limit")
        open_solver(options.solver)
        if family is not None and family.prefix in ("appsi_highs", "highs"):
            _check_highs_options(options.solver_options)
        try:
            raw = super().solve(problem, config, options)
        finally:
            self._built = None
        raw.info["pyomo_solver"] = options.solver
        return raw

    def _model(self, form: Formulation, options: PyomoOptions) -> Any:
        """The Pyomo model of ``form``, built once per solve; cuts added since are appended."""
        if self._built is None or self._built[0] is not form:
            model = render(form, uniqueness=options.uniqueness)
            self._built = (form, model, len(form.cuts))
            return model
        _, model, rendered = self._built
        if model.qpm_uniqueness == "lazy":
            for cut in form.cuts[rendered:]:
                add_uniqueness_cut(model, *cut)
        self._built = (form, model, len(form.cuts))
        return model

    def solve_model(
        self, form: Formulation, time_limit: float | None, warm: np.ndarray | None, config: SolverConfig,
        options: PyomoOptions,
    ) -> ModelResult:
        import pyomo.environ as pyo
        from pyomo.opt import TerminationCondition
        from pyomo.solvers.plugins.solvers.persistent_solver import PersistentSolver

        started = time.perf_counter()
        model = self._model(form, options)
        solver = open_solver(options.solver)
        family = solver_family(options.solver)
        if family is not None:
            for key, value in family.zero_gap:
                solver.options[key] = value
            if config.gap_limit > 0:  # the first of a family's options is its relative gap
                solver.options[family.zero_gap[0][0]] = float(config.gap_limit)
        for key, value in options.solver_options.items():
            solver.options[key] = value
        kwargs: dict[str, Any] = {"load_solutions": False, "tee": bool(config.verbose)}
        if time_limit is not None:
            seconds = max(0.01, time_limit - (time.perf_counter() - started))  # building counts
            key = options.time_limit_option or (family.time_limit_option if family else None)
            if key is None:
                kwargs["timelimit"] = seconds
            else:
                solver.options[key] = seconds
        if warm is not None and _warm_start_capable(solver):
            _set_values(model, form, warm)
            kwargs["warmstart"] = True
        if isinstance(solver, PersistentSolver):
            solver.set_instance(model)
        try:
            results = solver.solve(model, **kwargs)
        except (ValueError, TypeError, RuntimeError, KeyError) as exc:
            if options.solver_options:
                raise OptionsError(f"options: solver {options.solver!r} failed with solver_options "
                                   f"{options.solver_options!r}: {exc}") from exc
            raise
        condition = results.solver.termination_condition
        x = None
        if len(results.solution) > 0:
            model.solutions.load_from(results)
            selection, assignment = model_values(model)
            x = form.encode(selection, assignment)
        bound = _reported_bound(results)
        value = float(pyo.value(model.Z)) if x is not None else None
        closed = value is not None and proves_optimal(value, bound)
        optimal = x is not None and condition == TerminationCondition.optimal and (family is not None or closed)
        return ModelResult(
            x=x,
            bound=bound,
            optimal=optimal,
            infeasible=condition in (TerminationCondition.infeasible, TerminationCondition.infeasibleOrUnbounded)
            and x is None,
            interrupted=config.stop_requested(),
            info={"status": str(condition), "solver": options.solver, "objective": value},
        )


def _check_highs_options(solver_options: dict[str, Any]) -> None:
    """Pyomo's HiGHS interfaces ignore an option HiGHS rejects; qpmopt refuses it instead."""
    if not solver_options:
        return
    import highspy

    from qpmopt.backends.highs import quiet_stdout

    with quiet_stdout(True):
        h = highspy.Highs()  # prints a banner at construction
    h.setOptionValue("output_flag", False)
    for key, value in solver_options.items():
        if h.setOptionValue(key, value) != highspy.HighsStatus.kOk:
            raise OptionsError(f"options: HiGHS rejected solver_options entry {key}={value!r}")


def _warm_start_capable(solver: Any) -> bool:
    check = getattr(solver, "warm_start_capable", None)
    try:
        return bool(check()) if check is not None else False
    except Exception:  # some interfaces raise when they cannot tell
        return False


def _set_values(model: Any, form: Formulation, x: np.ndarray) -> None:
    """Load the variable vector ``x`` of ``form`` into the model's variables."""
    selection, assignment = form.decode(x)
    for f, v in enumerate(selection):
        model.s[f].value = int(v)
    n_c, n_f = assignment.shape
    for c in range(n_c):
        for f in range(n_f):
            model.W[c, f].value = int(assignment[c, f])
    for i, j in model.P:
        model.y[i, j].value = int(selection[i] and selection[j])
    if hasattr(model, "p"):
        for a, b, f in model.p:
            model.p[a, b, f].value = int(assignment[a, f] and assignment[b, f])
    if hasattr(model, "u"):
        for c, d, f in model.u:
            model.u[c, d, f].value = int(assignment[c, f] and not assignment[d, f])


def _reported_bound(results: Any) -> float | None:
    """The dual bound of a maximisation from Pyomo's results, if the solver gave one."""
    try:
        value = results.problem.upper_bound
    except (AttributeError, IndexError):
        return None
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) and abs(value) < 1e300 else None
