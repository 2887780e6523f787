"""``auto``: pick a strategy from the instance size and what is installed.

- tiny (at most ``bruteforce_limit`` selections): the exhaustive oracle, exact;
- small (the strengthened full MILP has at most ``exact_max_vars`` variables, HiGHS and
  the annealer installed) with at most ``bnb_max_candidates`` candidates: branch and bound
  over the selection with semidefinite bounds (the ``bnb`` backend,
  :mod:`qpmopt.branch_bound`), exact;
- small, more candidates: the iterated swap search and a short annealing run from its
  answer as warm start, then HiGHS on the full model for the rest of the time, so the
  answer is at least as good as the annealer's and comes with a proven bound (often
  optimality);
- everything else: the annealer (GPU when present; on a CPU from
  :data:`SWAP_FIRST_MIN_CELLS` on, started from localsearch's answer, the better kept), whose final step already assigns the
  classes exactly (uniqueness included) and polishes with best-improvement swaps; then
  Lagrangian bounding (:mod:`qpmopt.bounds`) gives a proven gap; up to
  :data:`~qpmopt.sdp_bound.SDP_MAX_FEATURES` candidates the semidefinite bound
  (:mod:`qpmopt.sdp_bound`, which sees the redundancy term) gets the last ``sdp_share``
  of the time, more when its predicted schedule needs it (up to
  :data:`~qpmopt.sdp_bound.SDP_MAX_SHARE`, :func:`~qpmopt.sdp_bound.sdp_seconds`), and
  the annealer the rest.

Only the first three paths can prove optimality: :meth:`AutoBackend.capabilities_for` says
which applies to a problem, and ``info["auto_path"]`` which was taken.

Without a time limit every path runs a fixed amount of work, so the answer is the same on
any machine: the annealer its step budget (:func:`qpmopt.backends.anneal.default_steps`),
HiGHS at most ``exact_node_limit`` branch-and-bound nodes, the bounds their iteration
schedules.
"""

from __future__ import annotations

import dataclasses
import math

from pydantic import Field

from qpmopt.backends.base import Backend, BackendOptions, Capabilities, SolverConfig
from qpmopt.backends.mip import lagrangian_bound_for, tighten_with_sdp
from qpmopt.backends.registry import backend_class, get_backend
from qpmopt.bounds import simple_upper_bound
from qpmopt.budget import check_first_answer
from qpmopt.evaluate import objective_terms
from qpmopt.formulation import Formulation
from qpmopt.problem import Problem
from qpmopt.sdp_bound import SDP_MAX_SHARE, sdp_seconds, sdp_wanted
from qpmopt.search import evaluate_selection, greedy_then_swaps
from qpmopt.solution import BackendResult, Termination


class AutoOptions(BackendOptions):
    """Options of ``auto`` (``options=`` of :func:`qpmopt.solve_assignment`)."""

    bruteforce_limit: int = 2_000
    exact_max_vars: int = 20_000
    exact_node_limit: int = 2_000  # HiGHS's node budget without a time limit
    warm_fraction: float = Field(0.2, ge=0.0, le=1.0)  # share of the time given to the annealer before HiGHS
    sdp_bound: bool | None = None  # semidefinite bound after annealing (None: up to SDP_MAX_FEATURES)
    sdp_share: float = Field(0.5, ge=0.0, le=1.0)  # share of the time limit it gets, at least (sdp_bound.sdp_seconds)
    # up to this many candidates, where the full model is small: branch and bound with
    # semidefinite bounds (the "bnb" backend); in benchmarks/results/bnb.json it proved
    # small-1 optimal in 7.5 s, where HiGHS stopped 1.9% from a proof, and the small
    # preset's seeds 0-5 in at most 9.2 s (HiGHS: up to 20.8 s)
    bnb_max_candidates: int = Field(100, ge=0)
    swap_search_first: bool | None = None  # localsearch before the annealer (None: SWAP_FIRST_MIN_CELLS on a CPU)


class AutoBackend(Backend):
    name = "auto"
    # The weakest guarantee over its paths; capabilities_for() gives the one for a problem.
    capabilities = Capabilities(exact=False, proves_bound=True, uses_gpu=True, deterministic=True)
    Options = AutoOptions

    def path(self, problem: Problem, options: AutoOptions | None = None) -> str:
        """Which strategy ``problem`` gets: ``"bruteforce"``, ``"bnb"``, ``"anneal+highs"`` or
        ``"anneal"`` (see the module docstring)."""
        options = options or AutoOptions()
        if math.comb(problem.n_candidates, problem.n_features) <= options.bruteforce_limit:
            return "bruteforce"
        if _available("highs") and _available("anneal") and _full_size(problem) <= options.exact_max_vars:
            # where the full model is small: with few candidates the tree search proves more
            return "bnb" if problem.n_candidates <= options.bnb_max_candidates else "anneal+highs"
        return "anneal"

    def capabilities_for(self, problem: Problem) -> Capabilities:
        path = self.path(problem)
        # bnb's workers may return another of two equally good selections (one thread: not)
        return dataclasses.replace(self.capabilities, exact=path != "anneal", deterministic=path != "bnb")

    def solve(self, problem: Problem, config: SolverConfig, options: AutoOptions) -> BackendResult:
        path = self.path(problem, options)
        progress = config.progress(self.name)
        progress.note(f"{problem.n_classes} classes, {problem.n_candidates} candidates: path {path}")
        if path == "bruteforce":
            oracle = get_backend("bruteforce")
            raw = oracle.solve(problem, config, oracle.Options())
        elif path == "bnb":
            bnb = get_backend("bnb")
            raw = bnb.solve(problem, config, bnb.Options())
        elif path == "anneal+highs":
            raw = self._anneal_then_highs(problem, config, options)
        else:
            raw = self._anneal_then_bound(problem, config, options)
        raw.info.setdefault("auto_path", path)
        return raw

    def _anneal_then_highs(self, problem: Problem, config: SolverConfig, options: AutoOptions) -> BackendResult:
        highs = get_backend("highs")
        timed = config.time_limit is not None
        # Without a time limit the annealer runs its step budget and HiGHS a node budget.
        warm_cfg = dataclasses.replace(config, time_limit=options.warm_fraction * config.time_limit) if timed else config
        # The iterated swap search first (half the warm share at most; it stops when it
        # stalls): it needs no torch.  The annealer alone, given 2 s of a 10 s limit in a fresh process, spent
        # them importing torch, made no step and handed HiGHS its greedy start (small-1:
        # 15.09 at 10 s against localsearch's 18.03 in 0.02 s).
        first = _swap_search(problem, warm_cfg)
        if first.selection is None or config.stop_requested():
            warm = first
        else:
            warm = _anneal_from(problem, warm_cfg, first)
        if config.stop_requested():
            warm.info["auto_path"] = "anneal"
            return warm
        # Without a feasible warm start (rules the annealer did not meet) HiGHS starts cold.
        exact_cfg = dataclasses.replace(config, warm_start=warm.selection)
        exact_opts = highs.Options() if timed else highs.Options(
            solver_options={"mip_max_nodes": options.exact_node_limit})
        raw = highs.solve(problem, exact_cfg, exact_opts)
        best_warm = warm.history[-1][1] if warm.history else -math.inf
        raw.history = warm.history + [h for h in raw.history if h[1] > best_warm]
        return raw

    def _anneal_then_bound(self, problem: Problem, config: SolverConfig, options: AutoOptions) -> BackendResult:
        timed = config.time_limit is not None
        if timed:
            # the annealer settles early at the sizes the bound applies to: the bound may
            # take more than its share when it needs it
            sdp_time = sdp_seconds(problem, options.sdp_bound, config.time_limit, options.sdp_share,
                                   max_share=SDP_MAX_SHARE)
            use_sdp = sdp_time > 0
        else:  # without a limit it runs its fixed schedule
            sdp_time = 0.0
            use_sdp = sdp_wanted(problem, options.sdp_bound, None)
        # The simple bound is one top-k pass over A and one over R.  Measured here, it
        # sizes the time kept for the bound and, six times over, says whether the Lagrangian
        # bound's first evaluation fits: that one comes with its set-up, a few such passes at
        # the largest sizes (at ImageNet-21k scale, seconds).
        t0 = config.clock()
        floor = simple_upper_bound(problem)
        iteration_seconds = config.clock() - t0
        swap_first = _swap_search_first(problem, options)
        bound_seconds = lagrangian_share(config.time_limit, iteration_seconds, large=_large(problem)) \
            if timed else None
        anneal_config = config
        if timed:
            # The bound comes after the annealer: its time is taken from the annealer's.
            share = config.time_limit - sdp_time if use_sdp else config.time_limit - bound_seconds
            anneal_config = dataclasses.replace(config, time_limit=share)
        anneal = get_backend("anneal")
        first = None
        if swap_first:
            # On a CPU at this size the annealer makes few steps, and localsearch's local
            # optimum is the mark: reach it first (it stops when converged), then anneal
            # from it with what is left, and keep the better.
            ls = get_backend("localsearch")
            first = ls.solve(problem, anneal_config, ls.Options())
            left = None if not timed else anneal_config.deadline() - config.clock()
            # the annealer's own start costs a greedy pass and an assignment or two: at
            # 20 000 classes, with 6 s left it overran the limit by 7 s
            need = max(0.1 * config.time_limit, 5.0 + 4.0 * first.info.get("assignment_seconds", 0.0)) if timed else 0
            if first.selection is None or config.stop_requested() or (left is not None and left < need):
                raw = first
            else:
                raw = _anneal_from(problem, anneal_config, first)
            raw.info["auto_path"] = "localsearch" if raw is first else "localsearch+anneal"
        else:
            raw = anneal.solve(problem, anneal_config, anneal.Options())
        if raw.selection is None or config.stop_requested():
            return raw
        # A proven bound so that the user sees how far from optimal the answer can be.
        value = objective_terms(problem, raw.selection, raw.assignment).total
        # With the SDP bound to follow: its own share, the rest is the SDP's.  Without: all
        # that is left, since the annealer often returns before its share ends (it keeps a
        # reserve for its last assignments: on cub-1 about 8 s of 60 unused); on the
        # imagenet preset the bound needs about ten times the share to converge, on cub-1
        # about twice (benchmarks/results/auto_bound.json).
        if not timed:
            deadline = None
        elif use_sdp:
            deadline = min(config.clock() + bound_seconds, config.deadline())
        else:
            deadline = config.deadline()
        raw.bound, start_mu = lagrangian_bound_for(problem, value, sdp_follows=use_sdp, deadline=deadline,
                                                   clock=config.clock, floor=floor,
                                                   iteration_seconds=6.0 * iteration_seconds if timed else None)
        progress = config.progress(self.name)
        progress.note(f"answer {value:.8g}; Lagrangian bound {raw.bound:.8g}"
                      + (f"; semidefinite bound next ({sdp_time:.0f} s)" if use_sdp and timed else ""))
        if use_sdp and config.gap_reached(value, raw.bound):
            # the caller's gap limit is proven already: the semidefinite bound's time is saved
            raw.termination = Termination.GAP_LIMIT
        elif use_sdp and not config.stop_requested():
            # Without a time limit it runs its fixed schedule.
            tighten_with_sdp(problem, config, value, raw, start_mu=start_mu)
            raw.info["auto_path"] = raw.info.get("auto_path", "anneal") + "+sdp"
        return raw


def lagrangian_share(time_limit: float, pass_seconds: float, *, large: bool = False) -> float:
    """Seconds of ``time_limit`` that ``auto`` keeps for its Lagrangian bound after the
    annealer, given the time of one simple-bound pass (``pass_seconds``, a top-k pass over
    ``A`` and one over ``R``): 5% of the limit, at most 3 s, but at least eight passes.
    Without the semidefinite bound to follow, the bound may also use what the annealer
    leaves unused (benchmarks/auto_bound.py measures both).

    ``large`` (at least :data:`SWAP_FIRST_MIN_CELLS` cells, on either of ``auto``'s paths):
    10% of the limit, at most 10 s, as the MILP backends keep for it, since the threshold
    dual needs seconds to converge at these sizes; the 3-s share left far weaker bounds
    there, once only the simple one (benchmarks/results/scale-rerun-e.json against
    scale-rerun-f.json, swap_first.json against swap_first-share.json)."""
    if large:
        return max(min(10.0, 0.1 * time_limit), 8.0 * pass_seconds)
    return max(min(3.0, 0.05 * time_limit), 8.0 * pass_seconds)


def _swap_search(problem: Problem, config: SolverConfig) -> BackendResult:
    """Greedy start and iterated swap search in the first half of ``config``'s limit (it
    stops earlier when it stalls; 200 rounds without a limit), exactly assigned."""
    timed = config.time_limit is not None
    check_first_answer(problem, config.start_time, config.time_limit, config.clock)
    greedy, ils = greedy_then_swaps(
        problem, seed=config.seed, clock=config.clock, max_rounds=None if timed else 200,
        max_stall=20 * problem.n_candidates if timed else None, greedy_deadline=config.deadline(),
        deadline=config.start_time + 0.5 * config.time_limit if timed else None, should_stop=config.should_stop)
    W, value = evaluate_selection(problem, ils.selection, deadline=config.deadline(), clock=config.clock)
    if W is None:  # rules the swap search does not see: the greedy start may still meet them
        W, value = evaluate_selection(problem, greedy, deadline=config.deadline(), clock=config.clock)
        ils_selection = greedy if W is not None else None
    else:
        ils_selection = ils.selection
    term = Termination.INTERRUPTED if ils.interrupted else Termination.CONVERGED
    history = [] if W is None else [(config.clock() - config.start_time, value)]
    return BackendResult(ils_selection, W, term, history=history, info={"swap_search_rounds": ils.iterations})


def _anneal_from(problem: Problem, config: SolverConfig, first: BackendResult) -> BackendResult:
    """The annealer started from ``first``'s selection; the better of the two answers, with
    both histories."""
    anneal = get_backend("anneal")
    raw = anneal.solve(problem, dataclasses.replace(config, warm_start=first.selection), anneal.Options())
    if raw.selection is None or (objective_terms(problem, first.selection, first.assignment).total
                                 >= objective_terms(problem, raw.selection, raw.assignment).total):
        raw.selection, raw.assignment = first.selection, first.assignment
    raw.history = first.history + [h for h in raw.history if not first.history or h[1] > first.history[-1][1]]
    return raw


#: ``n_classes * n_candidates`` from which ``auto`` runs the swap search before the annealer
#: when the annealer would run on a CPU: there the annealer makes few steps a second, and
#: starting it from the swap search's local optimum did not end measurably lower than
#: annealing alone (benchmarks/results/swap_first.json, swap_first-share.json: both ways
#: by thousandths of a percent, so the rule stays until more seeds say otherwise).
SWAP_FIRST_MIN_CELLS = 4_000_000


def _large(problem: Problem) -> bool:
    """At least :data:`SWAP_FIRST_MIN_CELLS` cells: ImageNet-21k sizes."""
    return problem.n_classes * problem.n_candidates >= SWAP_FIRST_MIN_CELLS


def _swap_search_first(problem: Problem, options: AutoOptions) -> bool:
    if options.swap_search_first is not None:
        return options.swap_search_first
    if not _large(problem):
        return False
    import torch

    return not torch.cuda.is_available()


def _available(name: str) -> bool:
    return bool(backend_class(name).availability())


def _full_size(problem: Problem) -> int:
    """Variables ``W`` and ``y`` of the full model (the formulation counts them; nothing is
    built, which at ImageNet-21k scale would take gigabytes)."""
    n_shared = 0 if problem.rules is None else int(problem.rules.shared.shape[0])
    return Formulation.count_variables(problem) - problem.n_candidates * (1 + n_shared)


__all__ = ["AutoBackend", "AutoOptions"]
