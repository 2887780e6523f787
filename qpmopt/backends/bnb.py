"""``bnb``: branch and bound over the selection with semidefinite bounds
(:mod:`qpmopt.branch_bound`); proves optimality on small instances without a MILP solver.

It starts from the iterated swap search's answer (or the caller's warm start), then
searches the tree until it is closed (``optimal``; ``gap_limit`` when the caller's gap
limit pruned nodes that might hold a little more), the time limit passes, or a node limit
is reached; the bound it reports is the largest over the nodes still open.
"""

from __future__ import annotations

import math
import os

from pydantic import Field

from qpmopt.backends.base import Backend, BackendOptions, Capabilities, ProblemTooLargeError, SolverConfig
from qpmopt.branch_bound import branch_and_bound
from qpmopt.budget import check_first_answer
from qpmopt.problem import Problem
from qpmopt.sdp_bound import SDP_MAX_FEATURES
from qpmopt.search import greedy_then_swaps
from qpmopt.solution import BackendResult, Termination, relative_gap

__all__ = ["BranchAndBoundBackend", "BranchAndBoundOptions", "BNB_MAX_CANDIDATES"]

#: Largest candidate count ``bnb`` accepts (that of the semidefinite bound): every node
#: costs eigendecompositions of size ``n_f + 1`` and the tree grows quickly with the
#: candidates (proofs measured at 60; at 256 a node takes about a second).
BNB_MAX_CANDIDATES = SDP_MAX_FEATURES


class BranchAndBoundOptions(BackendOptions):
    """Options of ``bnb`` (``options=`` of :func:`qpmopt.solve_assignment`)."""

    workers: int | None = Field(None, ge=1)  # processes (None: config.threads, else the CPU count up to 4)
    node_limit: int | None = Field(None, ge=1)  # nodes bounded at most (None: no limit; see branch_and_bound)
    warm_share: float = Field(0.1, ge=0.0, le=1.0)  # share of the time limit for the swap search start
    warm_rounds: int = Field(300, ge=0)  # its rounds at most


class BranchAndBoundBackend(Backend):
    name = "bnb"
    # One worker (threads=1) gives the same answer on every run; with several, the proven
    # optimum is the same but which of two equally good selections comes back can vary.
    capabilities = Capabilities(exact=True, proves_bound=True, deterministic=False)
    Options = BranchAndBoundOptions

    def solve(self, problem: Problem, config: SolverConfig, options: BranchAndBoundOptions) -> BackendResult:
        if problem.n_candidates > BNB_MAX_CANDIDATES:
            raise ProblemTooLargeError(
                f"bnb: {problem.n_candidates} candidate features exceeds {BNB_MAX_CANDIDATES}; use 'auto' or 'highs'")
        timed = config.time_limit is not None
        node_limit, asked_to_stop = options.node_limit, False
        if config.warm_start is not None:
            start = config.warm_start
        else:
            check_first_answer(problem, config.start_time, config.time_limit, config.clock)
            _, ils = greedy_then_swaps(
                problem, seed=config.seed, clock=config.clock, max_rounds=options.warm_rounds,
                max_stall=20 * problem.n_candidates, greedy_deadline=config.deadline(),
                deadline=config.start_time + options.warm_share * config.time_limit if timed else None,
                should_stop=config.should_stop)
            start = ils.selection
            if ils.interrupted:  # the caller asked to stop: the start and a bound, no search
                node_limit, asked_to_stop = 0, True
        workers = options.workers or config.threads or min(4, os.cpu_count() or 1)
        progress = config.progress(self.name)
        # the start's objective comes in the first progress line (scoring it here as well
        # would repeat the exact assignment, a HiGHS solve under shared pairs)
        progress.note(f"{workers} worker(s); start from {'the warm start' if config.warm_start is not None else 'the swap search'}")

        def report(nodes: int, open_nodes: int, value: float, bound: float) -> None:
            progress(lambda: f"nodes {nodes}, open {open_nodes}, incumbent {value:.8g}, bound {bound:.8g}, "
                             f"gap {_gap_text(value, bound)}")

        deadline = config.deadline() if timed else None
        began = config.clock() - config.start_time
        res = branch_and_bound(problem, start, deadline=deadline, node_limit=node_limit, workers=workers,
                               should_stop=None if asked_to_stop else config.should_stop, on_progress=report,
                               gap_limit=config.gap_limit, clock=config.clock)
        if res.proven:
            term = Termination.OPTIMAL
        elif res.infeasible:
            term = Termination.INFEASIBLE
        elif res.stopped == "done":  # closed under the caller's gap_limit
            term = Termination.GAP_LIMIT
        elif res.stopped == "interrupted" or asked_to_stop:
            term = Termination.INTERRUPTED
        elif res.stopped == "node_limit":
            term = Termination.ITERATION_LIMIT
        else:
            term = Termination.TIME_LIMIT
        progress.note(f"{term} after {res.nodes} nodes; incumbent {res.value:.8g}, bound {res.bound:.8g}, "
                      f"gap {_gap_text(res.value, res.bound)}")
        history = [(began + t, v) for t, v in res.history]
        return BackendResult(res.selection, res.assignment, term, bound=res.bound, proven_optimal=res.proven,
                             history=history,
                             info={"nodes": res.nodes, "enumerated": res.enumerated, "stopped": res.stopped,
                                   "workers": workers})


def _gap_text(value: float, bound: float) -> str:
    """The relative gap as the result will report it (:func:`qpmopt.solution.relative_gap`)."""
    return f"{relative_gap(value, bound):.3%}" if math.isfinite(value) and math.isfinite(bound) else "-"
