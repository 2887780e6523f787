"""The simple baseline: greedy construction, then best-improvement swaps until none
improves, then the exact assignment of classes.  It is what the annealer must beat, and a
cheap warm start for the exact backends."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from qpmopt.backends.base import Backend, Capabilities, SolverConfig
from qpmopt.problem import Problem
from qpmopt.search import best_assignment, greedy_selection, local_search, unique_polish
from qpmopt.solution import BackendResult, Termination


@dataclass(frozen=True)
class LocalSearchOptions:
    max_iterations: int = 100_000


class LocalSearchBackend(Backend):
    name = "localsearch"
    capabilities = Capabilities(deterministic=True)
    Options = LocalSearchOptions

    def solve(self, problem: Problem, config: SolverConfig, options: LocalSearchOptions) -> BackendResult:
        t0 = config.start_time
        start = config.warm_start if config.warm_start is not None else greedy_selection(problem)
        try:
            res = local_search(
                problem, start, deadline=config.deadline(), should_stop=config.should_stop,
                max_iterations=options.max_iterations,
            )
        except KeyboardInterrupt:
            # Nothing better than the start is known: return it, marked interrupted.
            W, _ = best_assignment(problem, start)
            return BackendResult(np.asarray(start, bool), W, Termination.INTERRUPTED)
        selection = res.selection
        if not res.interrupted:
            selection = unique_polish(problem, selection, deadline=config.deadline())
        W, _ = best_assignment(problem, selection)
        if res.interrupted:
            term = Termination.INTERRUPTED
        elif res.converged:
            term = Termination.CONVERGED
        elif res.iterations >= options.max_iterations:
            term = Termination.ITERATION_LIMIT
        else:
            term = Termination.TIME_LIMIT
        return BackendResult(
            selection, W, term,
            history=[(time.perf_counter() - t0, res.value)],
            info={"iterations": res.iterations, "relaxed_value": res.value},
        )
