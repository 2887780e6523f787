"""The public driver of MILP backends; built-in ``highs`` and ``cpsat`` and the plug-ins
under ``backends/`` build on it.

A concrete backend only renders a :class:`~qpmopt.formulation.Formulation` into its
solver and returns a :class:`ModelResult`; everything else is here, once:

- the warm start: the caller's, else greedy + iterated swap local search;
- models that fit ``max_full_vars``: the whole model, with uniqueness cuts added lazily for
  the class pairs that collide, re-solved until none do;
- larger models are not handed to the solver at all: there the backend returns the warm
  start (the iterated local search gets the time) with the Lagrangian bound, and
  ``info["path"] == "warm_start_only"`` says so.  Why: a large-neighbourhood search over
  restricted models was tried and never improved the warm start in any recorded run at
  that size (CUB and ImageNet scale, both solvers);
- honest bounds: a solver bound is used only when it comes from a model of the full
  problem (missing uniqueness cuts only relax it).  The Lagrangian bound of
  :func:`~qpmopt.bounds.lagrangian_upper_bound` always applies; on instances of up to
  :data:`~qpmopt.sdp_bound.SDP_MAX_FEATURES` candidates, when it is expected to converge in
  its share of the time limit and the solver has not closed the gap in the first share,
  the semidefinite bound of :mod:`qpmopt.sdp_bound` gets the rest (LP-based bounds barely
  see the redundancy term; benchmarks/results/bound_strength.json compares them).

Without a time limit every phase runs a fixed amount of work (rounds, iterations, the
solver to its proof), so the answer does not depend on the machine's speed.
"""

from __future__ import annotations

import dataclasses
import time
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field

from qpmopt.backends.base import Backend, BackendOptions, SolverConfig
from qpmopt.bounds import (
    lagrangian_bound_and_multipliers,
    lagrangian_iterations,
    lagrangian_multipliers,
    simple_upper_bound,
)
from qpmopt.budget import check_first_answer
from qpmopt.evaluate import objective_terms
from qpmopt.formulation import Formulation
from qpmopt.problem import Problem
from qpmopt.sdp_bound import PARTIAL_EIGEN_ABOVE, sdp_seconds, sdp_upper_bound
from qpmopt.search import evaluate_selection, greedy_selection, identical_rows, iterated_local_search, search_view
from qpmopt.solution import BackendResult, Termination, proves_optimal

__all__ = ["MipBackend", "MipOptions", "ModelResult", "Incumbent", "watch_solver", "tighten_with_sdp",
           "lagrangian_bound_for"]


@dataclass
class ModelResult:
    """What a MILP solver reports for one rendered model (what :meth:`MipBackend.solve_model`
    returns).

    Attributes:
        x: ``(form.n_vars,)`` variable values of the best solution found, or ``None``.
        bound: upper bound of *this model*'s objective (its constant included), or ``None``.
        optimal: the solver stopped on its optimality test for this model under the gap
            options this package set: with ``config.gap_limit`` 0, a proof to within
            :data:`qpmopt.solution.OPTIMALITY_TOL` of the true objective; with a gap
            limit, a proof to within that gap (the driver tells the two apart).
        infeasible: the solver proved the model infeasible.
        interrupted: the solve was cut short by ``should_stop`` or Ctrl-C.
        info: solver-specific details for ``Solution.info["last_model"]``.
    """

    x: np.ndarray | None
    bound: float | None
    optimal: bool
    infeasible: bool = False
    interrupted: bool = False
    info: dict[str, Any] | None = None


class MipOptions(BackendOptions):
    """Options of every MIP backend (``options=`` of :func:`qpmopt.solve_assignment`)."""

    strengthen: bool | None = None  # RLT equalities (None: when <= 100 free candidates)
    max_full_vars: int = 150_000  # larger models are not solved; see the module docstring
    sdp_bound: bool | None = None  # semidefinite bound under a time limit (None: up to SDP_MAX_FEATURES)
    # share of the time limit kept for it when the solver does not finish (the solver keeps
    # the rest: it may prove optimality; see sdp_bound.sdp_seconds)
    sdp_share: float = Field(0.5, ge=0.0, le=1.0)
    warm_share: float = Field(0.1, ge=0.0, le=1.0)  # share of the time limit for the iterated local search warm start
    warm_rounds: int = 200  # its rounds when there is no time limit
    solver_options: dict[str, Any] = {}  # passed to the solver verbatim


@dataclass
class Incumbent:
    """The best verified solution so far, and when each improvement came.

    ``offer`` scores a candidate exactly (uniqueness repaired by the exact assignment when
    needed) and keeps it when it is better.
    """

    problem: Problem
    start_time: float
    value: float = -np.inf
    selection: np.ndarray | None = None
    assignment: np.ndarray | None = None
    history: list[tuple[float, float]] = field(default_factory=list)
    clock: Callable[[], float] = time.perf_counter  # start_time's and a deadline's time source

    def offer(self, selection: np.ndarray, assignment: np.ndarray | None = None, deadline: float | None = None,
              ) -> bool:
        """Keep ``selection`` (``(n_f,)`` bool) with ``assignment`` (``(n_c, n_f)`` bool, or
        ``None`` for the exact one, within ``deadline`` as
        :func:`~qpmopt.search.best_assignment` says) when it beats the incumbent; return
        whether it did."""
        if assignment is None:
            assignment, value = evaluate_selection(self.problem, selection, deadline=deadline, clock=self.clock)
            if assignment is None:  # no assignment of this selection meets the rules
                return False
        else:
            value = objective_terms(self.problem, selection, assignment).total
        if value <= self.value + 1e-9 * max(1.0, abs(self.value)):
            return False
        self.value, self.selection, self.assignment = value, selection.copy(), assignment
        self.history.append((self.clock() - self.start_time, value))
        return True


def watch_solver(thread: Any, cancel: Any, time_limit: float | None, config: SolverConfig) -> bool:
    """Wait for a solver running in ``thread``; call ``cancel()`` at the hard limit
    (``time_limit`` + 0.25 s: solvers have been seen to overrun their own limit in long
    presolves and root LPs), when ``config.should_stop`` says so, or on Ctrl-C.

    Returns whether the solve was interrupted (not merely timed out).
    """
    hard = None if time_limit is None else time.perf_counter() + time_limit + 0.25
    interrupted = False
    try:
        while thread.is_alive():
            thread.join(0.05)
            if config.stop_requested():
                interrupted = True
                cancel()
                break
            if hard is not None and time.perf_counter() > hard:
                cancel()
                break
    except KeyboardInterrupt:
        interrupted = True
        cancel()
    thread.join()
    return interrupted


def lagrangian_bound_for(problem: Problem, incumbent: float, *, sdp_follows: bool, deadline: float | None,
                         clock: Callable[[], float], floor: float | None,
                         iteration_seconds: float | None = None) -> tuple[float, np.ndarray | None]:
    """``(bound, start_mu)`` from :func:`~qpmopt.bounds.lagrangian_bound_and_multipliers`:
    the multipliers ``(n_c, n_f)`` only where the semidefinite bound follows
    (``sdp_follows``) above :data:`~qpmopt.sdp_bound.PARTIAL_EIGEN_ABOVE` candidates, where
    :func:`tighten_with_sdp` starts from them (elsewhere ``None``: no such array is made)."""
    return lagrangian_bound_and_multipliers(
        problem, incumbent, iterations=lagrangian_iterations(problem), deadline=deadline, clock=clock, floor=floor,
        iteration_seconds=iteration_seconds, want_mu=sdp_follows and problem.n_candidates > PARTIAL_EIGEN_ABOVE)


def tighten_with_sdp(problem: Problem, config: SolverConfig, incumbent: float, raw: BackendResult, *,
                     start_mu: np.ndarray | None = None) -> None:
    """The semidefinite-bound phase shared by this driver and ``auto``: run
    :func:`~qpmopt.sdp_bound.sdp_upper_bound` until the config's deadline (or until it
    proves ``incumbent``, within the config's ``gap_limit`` where one is set), keep the
    smaller bound, and record it in ``raw.info``; ``raw.termination`` becomes
    ``gap_limit`` where the bound proves that gap, and ``time_limit`` where the deadline
    stopped the bound short of a proof.

    Above :data:`~qpmopt.sdp_bound.PARTIAL_EIGEN_ABOVE` candidates (only where the caller
    forces the bound with ``sdp_bound=True``) it starts from the Lagrangian multipliers
    (``start_mu``, ``(n_c, n_f)``, from :func:`lagrangian_bound_for`; computed here when not
    given): from zero its first smoothing level on cub-1 ended at 519 against 332
    (benchmarks/results/sdp_scale.json)."""
    if start_mu is None and problem.n_candidates > PARTIAL_EIGEN_ABOVE:
        _, start_mu = lagrangian_multipliers(problem, incumbent, iterations=lagrangian_iterations(problem),
                                             deadline=config.deadline(), clock=config.clock)
    sdp = sdp_upper_bound(problem, deadline=config.deadline(), target=config.stop_target(incumbent),
                          should_stop=config.should_stop, verbose=config.verbose, start_mu=start_mu,
                          clock=config.clock)
    raw.bound = sdp.value if raw.bound is None else min(raw.bound, sdp.value)
    if sdp.stopped == "interrupted":
        raw.termination = Termination.INTERRUPTED
    elif config.gap_reached(incumbent, raw.bound) and not proves_optimal(incumbent, raw.bound):
        raw.termination = Termination.GAP_LIMIT
    elif sdp.stopped == "deadline" and not proves_optimal(incumbent, raw.bound):
        # the time limit cut the proof short, whatever stopped the search before it (on
        # auto's path the annealer often says "converged")
        raw.termination = Termination.TIME_LIMIT
    raw.info["sdp_bound"] = {key: value for key, value in dataclasses.asdict(sdp).items() if key != "multipliers"}


class MipBackend(Backend):
    """Base of the MILP backends: subclasses declare ``name``, ``required_modules`` and
    ``capabilities`` and implement :meth:`solve_model`."""

    Options = MipOptions

    @abstractmethod
    def solve_model(
        self, form: Formulation, time_limit: float | None, warm: np.ndarray | None, config: SolverConfig,
        options: MipOptions,
    ) -> ModelResult:
        """Solve the rendered model (``form.arrays()``, maximisation) within ``time_limit``
        seconds (``None``: no limit), starting from ``warm`` (``(form.n_vars,)``) if given."""

    def solve(self, problem: Problem, config: SolverConfig, options: MipOptions) -> BackendResult:
        n_vars = Formulation.count_variables(problem, strengthen=options.strengthen)
        solvable = n_vars - problem.n_candidates <= options.max_full_vars
        full = Formulation.build(problem, strengthen=options.strengthen) if solvable else None
        view = search_view(problem)  # the local search runs on it; answers are scored on problem
        timed = config.time_limit is not None
        bound_seconds = min(10.0, 0.1 * config.time_limit) if timed else None
        incumbent = Incumbent(problem, config.start_time, clock=config.clock)

        if config.warm_start is not None:
            start, interrupted = config.warm_start, False
        else:
            check_first_answer(problem, config.start_time, config.time_limit, config.clock)
            greedy = greedy_selection(view, deadline=config.deadline(), clock=config.clock)
            # The greedy start's exact answer: the answer if time runs out; its cost is
            # the room the search leaves for the final assignment.
            t0 = config.clock()
            incumbent.offer(greedy, deadline=config.deadline())
            assign_seconds = config.clock() - t0
            # Iterated swap search: its share of the time limit (all of it, less the bound's,
            # when the model is too large to solve), else a fixed number of rounds.
            if not timed:
                deadline = None
            elif solvable:
                deadline = config.start_time + options.warm_share * config.time_limit
            else:
                # room for the exact assignment of its answer (which may collide more than
                # the greedy start's) and the bound
                deadline = config.deadline() - bound_seconds - 2.5 * assign_seconds
            ils = iterated_local_search(
                view, greedy, seed=config.seed, clock=config.clock,
                max_rounds=None if timed else options.warm_rounds,
                # Small instances settle long before the time share is used up; on medium-1
                # improvements came up to about 3 000 rounds apart (256 candidates).
                max_stall=20 * problem.n_candidates if timed and solvable else None,
                deadline=deadline, should_stop=config.should_stop)
            start, interrupted = ils.selection, ils.interrupted
        # its matching rounds stop early enough for the bound and the verification after
        incumbent.offer(start, deadline=None if not timed else config.deadline() - bound_seconds)
        warm_value = incumbent.value
        if interrupted or (incumbent.selection is None and not solvable):
            term = Termination.INTERRUPTED if interrupted else Termination.TIME_LIMIT
            return BackendResult(incumbent.selection, incumbent.assignment, term,
                                 bound=simple_upper_bound(problem), history=incumbent.history,
                                 info={"path": "warm_start", "warm_start_objective": warm_value})

        # The semidefinite bound's share (it runs after the solver, on the full model's path
        # only): decided first, since above PARTIAL_EIGEN_ABOVE it starts from the
        # Lagrangian bound's multipliers.
        sdp_time = sdp_seconds(problem, options.sdp_bound, config.time_limit, options.sdp_share) \
            if timed and solvable else 0.0
        use_sdp = sdp_time > 0
        # Lagrangian bound (W <= s relaxed; the rules dropped): valid for the full problem.
        # It stops once it proves the incumbent.
        start_mu = None
        if incumbent.selection is None:
            bound = simple_upper_bound(problem)
        else:
            bound, start_mu = lagrangian_bound_for(
                problem, incumbent.value, sdp_follows=use_sdp,
                deadline=None if not timed else min(config.clock() + bound_seconds, config.deadline()),
                clock=config.clock, floor=simple_upper_bound(problem) if timed else None)
        if not solvable:
            term = Termination.TIME_LIMIT if timed else Termination.ITERATION_LIMIT
            return BackendResult(incumbent.selection, incumbent.assignment, term, bound=bound,
                                 history=incumbent.history,
                                 info={"path": "warm_start_only", "warm_start_objective": warm_value,
                                       "variables": n_vars, "max_full_vars": options.max_full_vars})

        solver_config = config
        if use_sdp:
            # The solver first, on its share: easy instances end proven and skip the SDP.
            solver_config = dataclasses.replace(config, time_limit=config.time_limit - sdp_time)
        proven, term, bound, info = self._solve_full(full, solver_config, options, incumbent, bound)
        info.update({"path": "full", "warm_start_objective": warm_value})
        if not proven and term not in (Termination.INTERRUPTED, Termination.INFEASIBLE) \
                and config.gap_reached(incumbent.value, bound):
            term = Termination.GAP_LIMIT  # (the solver's time ran out with the gap closed enough)
        raw = BackendResult(incumbent.selection, incumbent.assignment, term, bound=bound, proven_optimal=proven,
                            history=incumbent.history, info=info)
        if use_sdp and not proven and term not in (Termination.INTERRUPTED, Termination.GAP_LIMIT) \
                and not config.stop_requested():
            tighten_with_sdp(problem, config, incumbent.value, raw, start_mu=start_mu)
        return raw

    def _solve_full(
        self, form: Formulation, config: SolverConfig, options: MipOptions, incumbent: Incumbent, bound: float,
    ) -> tuple[bool, Termination, float, dict[str, Any]]:
        """The whole model, re-solved with uniqueness cuts until no two classes collide.

        Returns ``(proven_optimal, termination, bound, info)``."""
        problem = form.problem
        rounds = 0
        info: dict[str, Any] = {"variables": form.n_vars}
        solver_config = config  # its gap_limit may be lowered below the caller's (see below)
        while True:
            rounds += 1
            warm = None if incumbent.selection is None else form.encode(incumbent.selection, incumbent.assignment)
            answer = self.solve_model(form, config.remaining(), warm, solver_config, options)
            info["last_model"] = answer.info or {}
            info["rounds"] = rounds
            if answer.bound is not None:
                bound = min(bound, answer.bound)  # cuts only tighten: every model relaxes the problem
            if answer.infeasible:
                return False, Termination.INFEASIBLE, bound, info
            if answer.x is None:
                if answer.interrupted:
                    return False, Termination.INTERRUPTED, bound, info
                break
            sel, W = form.decode(answer.x)
            # The solver's answer as the core evaluates it (before any uniqueness repair):
            # lets tests compare it with the solver's own objective.
            info["last_model"]["recomputed_objective"] = objective_terms(problem, sel, W).total
            collides = problem.unique and bool(identical_rows(W))
            incumbent.offer(sel, None if problem.unique else W)
            if answer.interrupted:
                return False, Termination.INTERRUPTED, bound, info
            if answer.optimal and not collides:
                if solver_config.gap_limit == 0 or proves_optimal(incumbent.value, bound):
                    return True, Termination.OPTIMAL, bound, info
                if config.gap_reached(incumbent.value, bound):
                    return False, Termination.GAP_LIMIT, bound, info
                # The solver met the gap by its own measure, not by qpmopt's (CP-SAT, for
                # one, is given the objective without the constant of fixed features): ask
                # it again, from its answer, for half the gap, and after a few halvings for
                # a proof.
                tighter = solver_config.gap_limit / 2 if solver_config.gap_limit > config.gap_limit / 16 else 0.0
                solver_config = dataclasses.replace(solver_config, gap_limit=tighter)
                info["gap_limit_asked_of_solver"] = tighter
                if config.remaining() is not None and config.remaining() <= 0:
                    break
                continue
            if collides:
                form.cut_collisions(W)
            if not collides or (config.remaining() is not None and config.remaining() <= 0):
                break
        info["uniqueness_cuts"] = len(form.cuts)
        # Without a time limit only a work limit in solver_options can have stopped it.
        term = Termination.TIME_LIMIT if config.time_limit is not None else Termination.ITERATION_LIMIT
        return False, term, bound, info
