"""The simple baseline: greedy construction, then best-improvement swaps until none
improves, then the exact assignment of classes.  It is what the annealer must beat, and a
cheap warm start for the exact backends."""

from __future__ import annotations

import time

import numpy as np

from qpmopt.backends.base import Backend, BackendOptions, Capabilities, SolverConfig
from qpmopt.problem import Problem
from qpmopt.search import best_assignment, greedy_selection, local_search, search_view, unique_polish
from qpmopt.solution import BackendResult, Termination


class LocalSearchOptions(BackendOptions):
    max_iterations: int = 100_000


class LocalSearchBackend(Backend):
    name = "localsearch"
    capabilities = Capabilities(deterministic=True)
    Options = LocalSearchOptions

    def solve(self, problem: Problem, config: SolverConfig, options: LocalSearchOptions) -> BackendResult:
        t0 = config.start_time
        view = search_view(problem)  # searched; answers are scored on ``problem``
        start = config.warm_start if config.warm_start is not None else greedy_selection(view)
        try:
            res = local_search(
                view, start, deadline=config.deadline(), should_stop=config.should_stop,
                max_iterations=options.max_iterations,
            )
        except KeyboardInterrupt:
            # Nothing better than the start is known: return it, marked interrupted.
            return _answer(problem, np.asarray(start, bool), Termination.INTERRUPTED, {})
        selection = res.selection
        if not res.interrupted:
            selection = unique_polish(view, selection, deadline=config.deadline())
        if res.interrupted:
            term = Termination.INTERRUPTED
        elif res.converged:
            term = Termination.CONVERGED
        elif res.iterations >= options.max_iterations:
            term = Termination.ITERATION_LIMIT
        else:
            term = Termination.TIME_LIMIT
        return _answer(problem, selection, term, {"iterations": res.iterations},
                       history=[(time.perf_counter() - t0, res.value)])


def _answer(problem: Problem, selection: np.ndarray, term: Termination, info: dict,
            history: list | None = None) -> BackendResult:
    """The exact assignment of ``selection``, or no answer when none meets the rules."""
    W, _ = best_assignment(problem, selection)
    if W is None:
        return BackendResult(None, None, term, info={**info, "reason": "the selection found has no assignment that "
                                                      "meets every rule"})
    return BackendResult(selection, W, term, history=history or [], info=info)
