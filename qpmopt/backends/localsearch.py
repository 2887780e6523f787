"""The simple baseline: greedy construction, then best-improvement swaps until none
improves, then the exact assignment of classes.  It is what the annealer must beat, and a
cheap warm start for the exact backends."""

from __future__ import annotations

import numpy as np

from qpmopt.backends.base import Backend, BackendOptions, Capabilities, SolverConfig
from qpmopt.budget import check_first_answer, fallback_deadline
from qpmopt.evaluate import objective_terms
from qpmopt.problem import Problem
from qpmopt.search import (
    best_assignment,
    evaluate_selection,
    greedy_selection,
    local_search,
    search_view,
    unique_polish,
)
from qpmopt.solution import BackendResult, Termination


class LocalSearchOptions(BackendOptions):
    max_iterations: int = 100_000


class LocalSearchBackend(Backend):
    name = "localsearch"
    capabilities = Capabilities(deterministic=True)
    Options = LocalSearchOptions

    def solve(self, problem: Problem, config: SolverConfig, options: LocalSearchOptions) -> BackendResult:
        clock = config.clock
        check_first_answer(problem, config.start_time, config.time_limit, clock)
        deadline = config.deadline()
        view = search_view(problem)  # searched; answers are scored on ``problem``
        start = config.warm_start if config.warm_start is not None else greedy_selection(
            view, deadline=deadline, clock=clock)
        # The start's exact answer first: it is the answer if time runs out, and its cost
        # is what the final assignment will need, so the search stops early enough for it.
        t0 = clock()
        W0, z0 = evaluate_selection(problem, start, deadline=fallback_deadline(config), clock=clock)
        assign_cost = clock() - t0
        history = [] if W0 is None else [(clock() - config.start_time, z0)]
        search_deadline = None if deadline is None else deadline - 1.5 * assign_cost
        try:
            res = local_search(
                view, start, deadline=search_deadline, should_stop=config.should_stop,
                max_iterations=options.max_iterations, clock=clock,
            )
        except KeyboardInterrupt:
            # Nothing better than the start is known: return it, marked interrupted.
            return _answer(problem, np.asarray(start, bool), Termination.INTERRUPTED, {}, history=history)
        selection = res.selection
        if not res.interrupted:
            selection = unique_polish(view, selection, deadline=search_deadline, clock=clock)
        if res.interrupted:
            term = Termination.INTERRUPTED
        elif res.converged:
            term = Termination.CONVERGED
        elif res.iterations >= options.max_iterations:
            term = Termination.ITERATION_LIMIT
        else:
            term = Termination.TIME_LIMIT
        info = {"iterations": res.iterations, "assignment_seconds": assign_cost}
        config.progress(self.name).note(f"{term} after {res.iterations} swaps; start {z0:.8g}")
        W, z = best_assignment(problem, selection, deadline=deadline, clock=clock)
        if W is not None:
            z = objective_terms(problem, selection, W).total
            if not history or z > history[-1][1]:
                history.append((clock() - config.start_time, z))
        if W0 is not None and (W is None or z0 > z):  # the search never ends below its start
            selection, W = np.asarray(start, bool), W0
        if W is None:
            return BackendResult(None, None, term, info={**info, "reason": "the selection found has no assignment "
                                                         "that meets every rule"})
        return BackendResult(selection, W, term, history=history, info=info)


def _answer(problem: Problem, selection: np.ndarray, term: Termination, info: dict,
            history: list | None = None) -> BackendResult:
    """The exact assignment of ``selection``, or no answer when none meets the rules."""
    W, _ = best_assignment(problem, selection)
    if W is None:
        return BackendResult(None, None, term, info={**info, "reason": "the selection found has no assignment that "
                                                      "meets every rule"})
    return BackendResult(selection, W, term, history=history or [], info=info)
