"""Exhaustive exact oracle for tiny instances: every selection, each with its exact
assignment (uniqueness included).  Used by tests as ground truth."""

from __future__ import annotations

import itertools
import math

import numpy as np

from qpmopt.backends.base import Backend, BackendOptions, Capabilities, ProblemTooLargeError, SolverConfig
from qpmopt.problem import Problem
from qpmopt.search import evaluate_selection
from qpmopt.solution import BackendResult, Termination


class BruteForceOptions(BackendOptions):
    max_selections: int = 200_000  # refuse instances with more selections than this


class BruteForceBackend(Backend):
    name = "bruteforce"
    capabilities = Capabilities(exact=True, proves_bound=True, deterministic=True)
    Options = BruteForceOptions

    def solve(self, problem: Problem, config: SolverConfig, options: BruteForceOptions) -> BackendResult:
        n_f, n_sel = problem.n_candidates, problem.n_features
        # Only selections that keep the rules' included features and avoid excluded ones.
        forced = np.zeros(n_f, dtype=bool) if problem.rules is None else problem.rules.select
        allowed = np.ones(n_f, dtype=bool) if problem.rules is None else ~problem.rules.forbid_select
        free = np.flatnonzero(allowed & ~forced)
        n_free = n_sel - int(forced.sum())
        count = math.comb(free.size, n_free)
        if count > options.max_selections:
            raise ProblemTooLargeError(
                f"bruteforce: binomial({free.size}, {n_free}) = {count} selections exceeds max_selections="
                f"{options.max_selections}; use an exact MILP backend ('highs', 'cpsat') instead"
            )
        deadline = config.deadline()
        best = (-np.inf, None, None)
        termination = Termination.OPTIMAL
        mask = np.zeros(n_f, dtype=bool)
        try:
            for i, combo in enumerate(itertools.combinations(free.tolist(), n_free)):
                if i % 16 == 0:
                    if config.stop_requested():
                        termination = Termination.INTERRUPTED
                        break
                    if deadline is not None and i and config.remaining() == 0:
                        termination = Termination.TIME_LIMIT
                        break
                mask[:] = forced
                mask[list(combo)] = True
                W, z = evaluate_selection(problem, mask, exact=True)
                if W is not None and z > best[0]:
                    best = (z, mask.copy(), W)
        except KeyboardInterrupt:
            if best[1] is None:
                raise  # nothing to return: Ctrl-C keeps its usual meaning
            termination = Termination.INTERRUPTED
        done = termination is Termination.OPTIMAL
        if done and best[1] is None:  # every selection was tried: the rules cannot all hold
            termination = Termination.INFEASIBLE
            done = False
        return BackendResult(
            selection=best[1],
            assignment=best[2],
            termination=termination,
            bound=float(best[0]) if done else None,
            proven_optimal=done,
            info={"selections": count},
        )
