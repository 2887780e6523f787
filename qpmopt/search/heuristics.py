"""Heuristics on the selection: greedy construction, best-improvement swap local search,
iterated local search, and the uniqueness-aware polish.  They search the relaxed value
(:mod:`qpmopt.search.neighbourhood`); :mod:`qpmopt.search.assignment` turns a selection
into its exact assignment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from qpmopt.problem import Problem
from qpmopt.search.assignment import evaluate_selection
from qpmopt.search.neighbourhood import relaxed_value, search_view, swap_deltas

__all__ = ["greedy_selection", "greedy_then_swaps", "LocalSearchResult", "local_search", "iterated_local_search", "unique_polish",
           "movable_features"]


def greedy_selection(
    problem: Problem,
    *,
    deadline: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
    stats: dict | None = None,
) -> np.ndarray:
    """Greedy construction: add the feature of largest marginal relaxed gain, ``n_features`` times.

    Starts from the features the rules force in and never adds an excluded one.
    Returns a bool mask ``(n_f,)``.  While a class has fewer than ``k`` features its gain
    from a new feature is the full ``A[c, f]``; afterwards it is ``max(0, A[c,f] - kth)``.

    The gains are kept up to date incrementally: a new feature changes the k-th best value
    of only the classes whose top-k it enters, so a step costs ``O(changed classes * n_f)``
    rather than a pass over ``A`` (at ImageNet-21k scale the difference between seconds and
    a minute).

    Args:
        deadline: a ``clock()`` value; once passed, the remaining features are the best of
            the last computed gains (one step's ranking instead of one step each), so a
            complete selection is always returned.
        clock: the time source (tests pass a fake one).
        stats: if given, receives ``"steps"`` (features added one gain update at a time)
            and ``"filled"`` (features added from the last ranking when out of time).
    """
    A, R, B, k = problem.A, problem.R, problem.B, problem.k
    n_c, n_f = A.shape
    rules = problem.rules
    mask = np.zeros(n_f, dtype=bool) if rules is None else rules.select.copy()
    blocked = mask.copy() if rules is None else mask | rules.forbid_select
    red = R[:, mask].sum(axis=1)  # sum of R to the selected set
    top = np.full((n_c, k), -np.inf)  # each class's k best selected values (unordered)
    for f in np.flatnonzero(mask):
        _insert(top, A[:, f])
    kth = top.min(axis=1)
    gain_a = A.sum(axis=0) if not np.isfinite(kth).all() else _excess(A, kth)
    steps = filled = 0
    while int(mask.sum()) < problem.n_features:
        gain = gain_a - red + B
        gain[blocked] = -np.inf
        if deadline is not None and clock() >= deadline:
            need = problem.n_features - int(mask.sum())
            best = np.argsort(-gain, kind="stable")[:need]
            mask[best] = True
            filled = need
            break
        f = int(np.argmax(gain))
        mask[f] = True
        blocked[f] = True
        red += R[:, f]
        steps += 1
        had_k = np.isfinite(kth).all()
        changed = np.flatnonzero(A[:, f] > kth)
        old = kth[changed]
        _insert(top, A[:, f], changed)
        kth = top.min(axis=1)
        if not np.isfinite(kth).all():
            continue  # fewer than k selected: the gain stays the column sum
        if not had_k:
            gain_a = _excess(A, kth)
        elif changed.size:
            # max(0, a - new) - max(0, a - old) == old - clip(a, old, new) for new >= old
            rows = A[changed]
            np.clip(rows, old[:, None], kth[changed, None], out=rows)
            gain_a -= rows.sum(axis=0) - old.sum()
    if stats is not None:
        stats.update(steps=steps, filled=filled)
    return mask


def _insert(top: np.ndarray, values: np.ndarray, rows: np.ndarray | None = None) -> None:
    """Put ``values[c]`` into class ``c``'s k best (``top (n_c, k)``) where it is larger
    than the smallest, for the classes ``rows`` (default: all)."""
    rows = np.arange(top.shape[0]) if rows is None else rows
    v = values[rows]
    pos = np.argmin(top[rows], axis=1)
    better = v > top[rows, pos]
    top[rows[better], pos[better]] = v[better]


def _excess(A: np.ndarray, kth: np.ndarray, chunk_rows: int = 2048) -> np.ndarray:
    """``sum_c max(0, A[c, :] - kth[c])`` ``(n_f,)``, by blocks of classes (bounded temporaries)."""
    out = np.zeros(A.shape[1])
    for a in range(0, A.shape[0], chunk_rows):
        out += np.maximum(A[a : a + chunk_rows] - kth[a : a + chunk_rows, None], 0.0).sum(axis=0)
    return out


@dataclass
class LocalSearchResult:
    """Where a swap search ended: the selection, its relaxed value, the iterations (or
    rounds) made, and whether it converged or was interrupted."""

    selection: np.ndarray
    value: float  # relaxed value
    iterations: int
    converged: bool
    interrupted: bool


def movable_features(problem: Problem, selection: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(selected, unselected)`` feature ids that a move may swap: the rules' included
    features never leave and excluded ones never enter."""
    leave, enter = selection.copy(), ~selection
    if problem.rules is not None:
        leave &= ~problem.rules.select
        enter &= ~problem.rules.forbid_select
    return np.flatnonzero(leave), np.flatnonzero(enter)


def local_search(
    problem: Problem,
    selection: np.ndarray,
    *,
    deadline: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_iterations: int = 100_000,
    tol: float = 1e-12,
    clock: Callable[[], float] = time.perf_counter,
) -> LocalSearchResult:
    """Best-improvement swap local search on the relaxed value until no swap improves.

    Args:
        selection: starting ``(n_f,)`` bool mask with ``n_features`` entries set.
        deadline: a ``clock()`` value; no iteration starts that would end after it (the
            longest iteration so far is the estimate).
        should_stop: called once per iteration; ``True`` stops the search.
        clock: the time source (tests pass a fake one).
    """
    sel = np.asarray(selection, dtype=bool).copy()
    value = relaxed_value(problem, sel)
    it = 0
    interrupted = False
    converged = False
    if sel.sum() == sel.size:
        return LocalSearchResult(sel, value, 0, True, False)
    longest = 0.0
    while it < max_iterations:
        now = clock()
        if deadline is not None and now + longest >= deadline:
            break
        if should_stop is not None and should_stop():
            interrupted = True
            break
        delta, si, ui = swap_deltas(problem, sel)
        longest = max(longest, clock() - now)
        a, b = np.unravel_index(int(np.argmax(delta)), delta.shape)
        if delta[a, b] <= tol * max(1.0, abs(value)):
            converged = True
            break
        sel[si[a]] = False
        sel[ui[b]] = True
        value += float(delta[a, b])
        it += 1
    # Re-evaluate once to shed accumulated rounding.
    return LocalSearchResult(sel, relaxed_value(problem, sel), it, converged, interrupted)


def iterated_local_search(
    problem: Problem,
    selection: np.ndarray,
    *,
    seed: int = 0,
    max_rounds: int | None = 200,
    max_stall: int | None = None,
    deadline: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> LocalSearchResult:
    """Swap local search restarted from random perturbations of the best selection.

    Each round swaps 2 to 4 random selected features for random unselected ones, runs
    :func:`local_search` to a local optimum and keeps it if its relaxed value is higher.
    Deterministic given ``seed`` when ``max_rounds`` ends it (not ``deadline``).  Why: the
    landscape is rugged: a plain local search stops at the first local optimum, and on the
    shared ``medium-1`` a few seconds of perturbations lift it by several per cent.

    Args:
        selection: ``(n_f,)`` bool mask with ``n_features`` entries set (the start).
        max_rounds: perturbation rounds at most (``None``: no limit; then give a
            ``deadline``, ``max_stall`` or ``should_stop``).
        max_stall: stop after this many rounds in a row without improvement (``None``:
            never).
        should_stop: polled once per round; ``True`` (or Ctrl-C) ends it with
            ``interrupted=True`` and the best selection so far.
    """
    rng = np.random.default_rng(seed)
    best = local_search(problem, selection, deadline=deadline, clock=clock)
    sel, value, rounds = best.selection, best.value, 0
    interrupted = best.interrupted
    if not sel.any() or sel.all():  # nothing to swap
        return best
    last_gain = 0
    try:
        while (max_rounds is None or rounds < max_rounds) and not interrupted:
            if max_stall is not None and rounds - last_gain >= max_stall:
                break
            if deadline is not None and clock() >= deadline:
                break
            if should_stop is not None and should_stop():
                interrupted = True
                break
            trial = sel.copy()
            on, off = movable_features(problem, trial)
            m = int(min(rng.integers(2, 5), on.size, off.size))
            trial[rng.choice(on, m, replace=False)] = False
            trial[rng.choice(off, m, replace=False)] = True
            res = local_search(problem, trial, deadline=deadline, clock=clock)
            rounds += 1
            if res.value > value + 1e-12 * max(1.0, abs(value)):
                sel, value, last_gain = res.selection, res.value, rounds
    except KeyboardInterrupt:
        interrupted = True
    return LocalSearchResult(sel, value, rounds, not interrupted, interrupted)


def unique_polish(
    problem: Problem,
    selection: np.ndarray,
    *,
    deadline: float | None = None,
    max_evaluations: int | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> np.ndarray:
    """Swap local search on the *true* objective (exact assignment with uniqueness and the
    rules on shared class pairs).

    The relaxed search ignores uniqueness and shared pairs; when classes collide or must
    share features, the relaxed optimum can be far from the true one (tiny instances where
    ``binomial(n_features, k)`` is close to ``n_classes``).  Swaps are tried best relaxed delta first, each scored exactly, and the
    first improving one is taken; it stops at a local optimum, the deadline, or after
    ``max_evaluations`` exact scorings (default: about ``2e7 / (n_c * n_f)``, at most 5 000:
    thousands on tiny instances where uniqueness binds, a handful at ImageNet scale where
    each exact scoring is costly and collisions cost little; with shared pairs, where each
    scoring is a small MILP, a hundred times fewer).  No scoring starts that the
    ``deadline`` (a ``clock()`` value) could not hold, by the longest one so far.
    """
    sel = np.asarray(selection, dtype=bool).copy()
    shared = problem.rules is not None and len(problem.rules.shared) > 0
    if not (problem.unique or shared) or sel.all():
        return sel
    if max_evaluations is None:
        work = 2e5 if shared else 2e7
        max_evaluations = int(min(5_000, max(4, work / (problem.n_classes * problem.n_candidates))))
    t0 = clock()
    current = evaluate_selection(problem, sel, deadline=deadline, clock=clock)[1]
    longest = clock() - t0
    evaluations = 0
    while evaluations < max_evaluations:
        delta, si, ui = swap_deltas(problem, sel)
        base = relaxed_value(problem, sel)
        order = np.argsort(-delta, axis=None, kind="stable")
        improved = False
        for flat in order:
            if evaluations >= max_evaluations or (deadline is not None and clock() + longest > deadline):
                return sel
            a, b = divmod(int(flat), delta.shape[1])
            # the relaxed value bounds the true one: a swap whose relaxed value cannot beat
            # the current true value cannot improve it
            if base + delta[a, b] <= current + 1e-12:
                break
            cand = sel.copy()
            cand[si[a]], cand[ui[b]] = False, True
            evaluations += 1
            t0 = clock()
            value = evaluate_selection(problem, cand, deadline=deadline, clock=clock)[1]
            longest = max(longest, clock() - t0)
            if value > current + 1e-12 * max(1.0, abs(current)):
                sel, current, improved = cand, value, True
                break
        if not improved:
            return sel
    return sel


def greedy_then_swaps(
    problem: Problem,
    *,
    seed: int = 0,
    max_rounds: int | None = 200,
    max_stall: int | None = None,
    greedy_deadline: float | None = None,
    deadline: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[np.ndarray, LocalSearchResult]:
    """The start the exact backends take: :func:`greedy_selection` (until
    ``greedy_deadline``), then :func:`iterated_local_search` from it (the other arguments),
    both on :func:`~qpmopt.search.search_view` ``(problem)``.  Returns ``(greedy selection,
    search result)``, both ``(n_f,)`` bool masks scored without the rules on class pairs."""
    view = search_view(problem)
    greedy = greedy_selection(view, deadline=greedy_deadline, clock=clock)
    return greedy, iterated_local_search(view, greedy, seed=seed, max_rounds=max_rounds, max_stall=max_stall,
                                         deadline=deadline, should_stop=should_stop, clock=clock)
