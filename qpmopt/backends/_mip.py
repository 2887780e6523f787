"""Shared driver of the exact (MILP) backends.

A concrete backend only renders a :class:`~qpmopt.formulation.Formulation` into its
solver and reports ``(x, bound, optimal)``; everything else is here, once:

- the warm start (the caller's, else greedy + iterated swap local search);
- *full* path (instances whose model fits ``max_full_vars``): the whole model, with
  uniqueness cuts added lazily for the class pairs that collide, re-solved until none do;
- *LNS* path (larger instances): large-neighbourhood search that frees a few selected
  features at a time and lets the solver pick their replacements among promising
  candidates, exactly, in a small restricted model;
- honest bounds: a solver bound is used only when it comes from a model of the full
  problem (missing uniqueness cuts only relax it); restricted models contribute none.
  The Lagrangian bound of :func:`~qpmopt.bounds.lagrangian_upper_bound` always applies;
  on instances of up to :data:`~qpmopt.sdp_bound.SDP_MAX_FEATURES` candidates, when it is
  expected to converge in half the time limit and the solver has not closed the gap in
  the first half, the semidefinite bound of :mod:`qpmopt.sdp_bound` gets the second half
  (the solver's own LP-based bound barely sees the redundancy term: 33% gap on the
  shared medium-1 after 60 s, 6% with it).
"""

from __future__ import annotations

import dataclasses
import time
from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from qpmopt.backends.base import Backend, SolverConfig
from qpmopt.bounds import lagrangian_upper_bound, simple_upper_bound
from qpmopt.evaluate import objective_terms
from qpmopt.formulation import Formulation
from qpmopt.problem import Problem
from qpmopt.sdp_bound import sdp_upper_bound, sdp_wanted
from qpmopt.search import complete, greedy_selection, iterated_local_search, swap_deltas
from qpmopt.solution import BackendResult, Termination


@dataclass
class ModelAnswer:
    """What a solver reports for one model."""

    x: np.ndarray | None  # variable values, or None
    bound: float | None  # upper bound of *this model* (constant included)
    optimal: bool  # proven optimal for this model
    infeasible: bool = False
    interrupted: bool = False
    info: dict[str, Any] | None = None


@dataclass(frozen=True)
class MipOptions:
    strengthen: bool | None = None  # RLT equalities (None: when <= 100 free candidates)
    max_full_vars: int = 150_000  # larger models go the LNS path
    lns_free: int | None = None  # selected features freed per LNS step (None: 6, 4 above 500 classes)
    lns_pool: int | None = None  # unselected candidates per LNS step (None: 24, 12 above 500 classes)
    lns_time: float = 5.0  # seconds per LNS sub-problem
    default_time_limit: float = 60.0  # used by the LNS path when no time_limit is given
    sdp_bound: bool | None = None  # semidefinite bound under a time limit (None: up to SDP_MAX_FEATURES)
    sdp_share: float = 0.5  # share of the time limit kept for it when the solver does not finish
    warm_share: float = 0.1  # share of the time limit for the iterated local search warm start
    warm_rounds: int = 200  # its rounds when there is no time limit
    solver_options: dict[str, Any] | None = None  # passed to the solver verbatim


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


def _use_sdp(problem: Problem, config: SolverConfig, options: MipOptions) -> bool:
    if config.time_limit is None:
        # Without a time limit the solver runs to a proof; the SDP bound would add nothing.
        return False
    return sdp_wanted(problem, options.sdp_bound, options.sdp_share * config.time_limit)


def tighten_with_sdp(problem: Problem, config: SolverConfig, incumbent: float, raw: BackendResult) -> None:
    """The semidefinite-bound phase shared by this driver and ``auto``: run
    :func:`~qpmopt.sdp_bound.sdp_upper_bound` until the config's deadline (or until it
    proves ``incumbent``), keep the smaller bound, and record it in ``raw.info``."""
    sdp = sdp_upper_bound(problem, deadline=config.deadline(), target=incumbent,
                          should_stop=config.should_stop, verbose=config.verbose)
    raw.bound = sdp.value if raw.bound is None else min(raw.bound, sdp.value)
    if sdp.stopped == "interrupted":
        raw.termination = Termination.INTERRUPTED
    raw.info["sdp_bound"] = dataclasses.asdict(sdp)


def _collisions(W: np.ndarray) -> list[tuple[int, int, tuple[int, ...]]]:
    keys = np.packbits(W, axis=1)
    groups: dict[bytes, list[int]] = {}
    for c, key in enumerate(keys):
        groups.setdefault(key.tobytes(), []).append(c)
    out = []
    for members in groups.values():
        if len(members) > 1:
            feats = tuple(np.flatnonzero(W[members[0]]).tolist())
            out += [(a, b, feats) for i, a in enumerate(members) for b in members[i + 1 :]]
    return out


class MipBackend(Backend):
    """Base of the exact backends; subclasses implement :meth:`solve_model`."""

    Options = MipOptions

    @abstractmethod
    def solve_model(
        self, form: Formulation, time_limit: float | None, warm: np.ndarray | None, config: SolverConfig,
        options: MipOptions,
    ) -> ModelAnswer:
        """Solve the rendered model within ``time_limit`` seconds (``None``: no limit)."""

    def solve(self, problem: Problem, config: SolverConfig, options: MipOptions) -> BackendResult:
        t0 = config.start_time
        history: list[tuple[float, float]] = []

        interrupted = False
        if config.warm_start is not None:
            start = config.warm_start
        else:
            # Iterated swap search: under a time limit for its share of it, else for a fixed
            # number of rounds (deterministic).
            timed = config.time_limit is not None
            ils = iterated_local_search(
                problem, greedy_selection(problem), seed=config.seed,
                max_rounds=None if timed else options.warm_rounds,
                # Small instances settle long before the time share is used up; on medium-1
                # improvements came up to about 3 000 rounds apart (256 candidates).
                max_stall=20 * problem.n_candidates if timed else None,
                deadline=t0 + options.warm_share * config.time_limit if timed else None,
                should_stop=config.should_stop)
            start, interrupted = ils.selection, ils.interrupted
        W0, z0 = complete(problem, start)
        inc = [z0, start, W0]
        history.append((time.perf_counter() - t0, inc[0]))
        if interrupted:
            return BackendResult(start, W0, Termination.INTERRUPTED, bound=simple_upper_bound(problem),
                                 history=history, info={"path": "warm_start", "warm_start_objective": z0})

        def offer(sel: np.ndarray, W: np.ndarray | None = None) -> None:
            if problem.unique or W is None:
                W, v = complete(problem, sel)  # exact repair of any collision
            else:
                v = objective_terms(problem, sel, W).total
            if v > inc[0] + 1e-9 * max(1.0, abs(inc[0])):
                inc[:] = [v, sel.copy(), W]
                history.append((time.perf_counter() - t0, v))

        # Lagrangian bound (W <= s relaxed), a few seconds at most: valid for the full problem.
        budget = min(10.0, 0.1 * (config.time_limit if config.time_limit is not None else options.default_time_limit))
        bound = lagrangian_upper_bound(problem, inc[0], iterations=3000, deadline=time.perf_counter() + budget)
        use_sdp = _use_sdp(problem, config, options)
        search_config = config
        if use_sdp:
            # The solver first, on its share: easy instances end proven and skip the SDP.
            search_config = dataclasses.replace(config, time_limit=(1.0 - options.sdp_share) * config.time_limit)
        full = Formulation.build(problem, strengthen=options.strengthen)
        if full.n_w + full.n_y <= options.max_full_vars:
            path = "full"
            proven, term, bound, info = self._full(problem, full, search_config, options, inc, offer, bound)
        else:
            path = "lns"
            proven, term, info = self._lns(problem, search_config, options, inc, offer)
        info.update({"path": path, "warm_start_objective": history[0][1]})
        raw = BackendResult(inc[1], inc[2], term, bound=bound, proven_optimal=proven, history=history, info=info)
        if use_sdp and not proven and term != Termination.INTERRUPTED and not config.stop_requested():
            tighten_with_sdp(problem, config, inc[0], raw)
        return raw

    # ---- whole model, lazy uniqueness ----------------------------------------------------
    def _full(self, problem, form, config, options, inc, offer, bound):
        rounds = 0
        info: dict[str, Any] = {"variables": form.n_vars}
        while True:
            rounds += 1
            remaining = config.remaining()
            ans = self.solve_model(form, remaining, form.encode(inc[1], inc[2]), config, options)
            info["last_model"] = ans.info or {}
            if ans.bound is not None:
                bound = min(bound, ans.bound)  # cuts only tighten: every model relaxes the problem
            if ans.infeasible:
                return False, Termination.INFEASIBLE, bound, info
            if ans.x is None:
                if ans.interrupted:
                    return False, Termination.INTERRUPTED, bound, info
                break
            sel, W = form.decode(ans.x)
            # The solver's answer as the core evaluates it (before any uniqueness repair):
            # lets tests compare it with the solver's own objective.
            info["last_model"]["recomputed_objective"] = objective_terms(problem, sel, W).total
            hits = _collisions(W) if problem.unique else []
            offer(sel, None if hits else W)
            if ans.interrupted:
                info["rounds"] = rounds
                return False, Termination.INTERRUPTED, bound, info
            if ans.optimal and not hits:
                info["rounds"] = rounds
                return True, Termination.OPTIMAL, bound, info
            for c, d, feats in hits:
                form.add_uniqueness_cut(c, d, feats)
            if not hits or (config.remaining() is not None and config.remaining() <= 0):
                break
        info.update({"rounds": rounds, "uniqueness_cuts": len(form.cuts)})
        return False, Termination.TIME_LIMIT, bound, info

    # ---- large-neighbourhood search ---------------------------------------------------
    def _lns(self, problem, config, options, inc, offer):
        rng = np.random.default_rng(config.seed)
        deadline = config.deadline(options.default_time_limit)
        # With many classes the sub-problem's root LP is the bottleneck (and solvers do not
        # interrupt it promptly), so offer fewer features at a time there.
        many = problem.n_classes > 500
        lns_free = options.lns_free or (4 if many else 6)
        lns_pool = options.lns_pool or (12 if many else 24)
        steps = improved = 0
        term = Termination.TIME_LIMIT
        overhead = 0.0  # model building + decoding of the last step, outside the solver
        # Shortest solver call that ended before its limit: at ImageNet scale HiGHS needs
        # about 1.8 s per sub-problem however small its limit (presolve and root LP do not
        # stop on cancel), so a call started with 0.3 s left ended 1.1 s past the deadline.
        floor = 0.0
        while True:
            remaining = deadline - time.perf_counter()
            # Do not start a sub-problem that cannot be built and solved in time.
            if remaining < max(0.2, 2.0 * overhead, 0.8 * floor):
                break
            if config.stop_requested():
                term = Termination.INTERRUPTED
                break
            sel = inc[1]
            delta, si, ui = swap_deltas(problem, sel)
            on = np.flatnonzero(sel)
            # Free features whose removal costs least, with randomness for diversity.
            loss = delta.max(axis=1)
            n_free = min(lns_free, on.size)
            free = si[np.argsort(-(loss + rng.gumbel(size=loss.size) * loss.std()))[:n_free]]
            pool = ui[np.argsort(-delta.max(axis=0))[: lns_pool]]
            cand = np.concatenate([on, pool])
            form = Formulation.build(problem, candidates=cand, fixed=np.setdiff1d(on, free), prune_fixed=2,
                                     include=inc[2])
            before = inc[0]
            step_start = time.perf_counter()
            sub_limit = min(options.lns_time, deadline - step_start - overhead)
            if sub_limit <= 0.05:
                break
            ans = self.solve_model(form, sub_limit, form.encode(inc[1], inc[2]), config, options)
            call = time.perf_counter() - step_start
            if call < 0.9 * sub_limit:
                floor = call if floor == 0.0 else min(floor, call)
            steps += 1
            if ans.x is not None:
                new_sel, _ = form.decode(ans.x)
                offer(new_sel)
                improved += inc[0] > before
            overhead = max(0.0, time.perf_counter() - step_start - sub_limit) + (step_start - (deadline - remaining))
            if ans.interrupted:
                term = Termination.INTERRUPTED
                break
        return False, term, {"lns_steps": steps, "lns_improvements": improved}
