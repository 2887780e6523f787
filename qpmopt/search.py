"""Shared search building blocks (numpy): relaxed values, greedy construction, swap
local search, and the exact assignment of classes for a given selection.

Structure used throughout (see PROBLEM.md, "Useful structure"): for a fixed selection
``s`` and without uniqueness each class takes its ``k`` largest selected ``A[c, f]``.  We
call that value the *relaxed* value of ``s``; it is an upper bound of the best value with
uniqueness, and equal to it whenever no two classes' top-k sets collide.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from qpmopt.problem import Problem

__all__ = [
    "relaxed_value",
    "topk_assignment",
    "greedy_selection",
    "swap_deltas",
    "local_search",
    "iterated_local_search",
    "best_assignment",
    "LocalSearchResult",
    "complete",
    "true_value",
    "unique_polish",
]


def _topk_stats(A_sel: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per class: top-k membership ``(n_c, m)``, top-k sum, k-th and (k+1)-th best value."""
    n_c, m = A_sel.shape
    order = np.argsort(-A_sel, axis=1, kind="stable")
    rows = np.arange(n_c)[:, None]
    member = np.zeros_like(A_sel, dtype=bool)
    member[rows, order[:, :k]] = True
    sorted_vals = A_sel[rows, order]
    topsum = sorted_vals[:, :k].sum(axis=1)
    kth = sorted_vals[:, k - 1]
    next_ = sorted_vals[:, k] if m > k else np.full(n_c, -np.inf)
    return member, topsum, kth, next_


def topk_assignment(problem: Problem, selection: np.ndarray) -> np.ndarray:
    """``(n_c, n_f)`` bool: each class's k best selected features (uniqueness ignored)."""
    idx = np.flatnonzero(selection)
    member, *_ = _topk_stats(problem.A[:, idx], problem.k)
    W = np.zeros(problem.A.shape, dtype=bool)
    W[:, idx] = member
    return W


def relaxed_value(problem: Problem, selection: np.ndarray) -> float:
    """Objective of ``selection`` with each class on its top-k (an upper bound when unique)."""
    idx = np.flatnonzero(selection)
    _, topsum, _, _ = _topk_stats(problem.A[:, idx], problem.k)
    z_r = -0.5 * float(problem.R[np.ix_(idx, idx)].sum())
    return float(topsum.sum()) + z_r + float(problem.B[idx].sum())


def greedy_selection(problem: Problem) -> np.ndarray:
    """Greedy construction: add the feature of largest marginal relaxed gain, ``n_features`` times.

    Returns a bool mask ``(n_f,)``.  While a class has fewer than ``k`` features its gain
    from a new feature is the full ``A[c, f]``; afterwards it is ``max(0, A[c,f] - kth)``.
    """
    A, R, B, k = problem.A, problem.R, problem.B, problem.k
    n_c, n_f = A.shape
    mask = np.zeros(n_f, dtype=bool)
    red = np.zeros(n_f)  # sum of R to the selected set
    for step in range(problem.n_features):
        if step < k:
            gain_a = A.sum(axis=0)
        else:
            idx = np.flatnonzero(mask)
            _, _, kth, _ = _topk_stats(A[:, idx], k)
            gain_a = np.maximum(A - kth[:, None], 0.0).sum(axis=0)
        gain = gain_a - red + B
        gain[mask] = -np.inf
        f = int(np.argmax(gain))
        mask[f] = True
        red += R[:, f]
    return mask


def swap_deltas(problem: Problem, selection: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relaxed objective change of every swap (drop one selected, add one unselected).

    Returns ``(delta, sel_idx, unsel_idx)`` with ``delta`` of shape ``(n_sel, n_f - n_sel)``:
    ``delta[a, b]`` is the change when ``sel_idx[a]`` leaves and ``unsel_idx[b]`` enters.
    Evaluated from each class's k-th and (k+1)-th best selected value:
    a class whose top-k holds the leaving feature ``o`` gains ``max(next, A[c,i]) - A[c,o]``,
    any other class gains ``max(0, A[c,i] - kth)``.
    """
    A, R, B, k = problem.A, problem.R, problem.B, problem.k
    sel = np.flatnonzero(selection)
    uns = np.flatnonzero(~selection)
    member, _, kth, next_ = _topk_stats(A[:, sel], k)
    A_in = A[:, uns]
    gain_other = np.maximum(A_in - kth[:, None], 0.0)  # (n_c, n_unsel)
    gain_member = np.maximum(A_in, next_[:, None])  # (n_c, n_unsel)
    Mf = member.astype(np.float64)
    loss_out = (Mf * A[:, sel]).sum(axis=0)  # (n_sel,)
    delta_a = Mf.T @ (gain_member - gain_other) + gain_other.sum(axis=0)[None, :] - loss_out[:, None]
    red = R[:, sel].sum(axis=1)  # (n_f,) redundancy of each feature to the selected set
    delta_r = red[sel][:, None] - red[uns][None, :] + R[np.ix_(sel, uns)]
    delta_b = B[uns][None, :] - B[sel][:, None]
    return delta_a + delta_r + delta_b, sel, uns


@dataclass
class LocalSearchResult:
    selection: np.ndarray
    value: float  # relaxed value
    iterations: int
    converged: bool
    interrupted: bool


def local_search(
    problem: Problem,
    selection: np.ndarray,
    *,
    deadline: float | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_iterations: int = 100_000,
    tol: float = 1e-12,
) -> LocalSearchResult:
    """Best-improvement swap local search on the relaxed value until no swap improves.

    Args:
        selection: starting ``(n_f,)`` bool mask with ``n_features`` entries set.
        deadline: ``time.perf_counter()`` value after which to stop.
        should_stop: called once per iteration; ``True`` stops the search.
    """
    sel = np.asarray(selection, dtype=bool).copy()
    value = relaxed_value(problem, sel)
    it = 0
    interrupted = False
    converged = False
    if sel.sum() == sel.size:
        return LocalSearchResult(sel, value, 0, True, False)
    while it < max_iterations:
        if deadline is not None and time.perf_counter() >= deadline:
            break
        if should_stop is not None and should_stop():
            interrupted = True
            break
        delta, si, ui = swap_deltas(problem, sel)
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
) -> LocalSearchResult:
    """Swap local search restarted from random perturbations of the best selection.

    Each round swaps 2 to 4 random selected features for random unselected ones, runs
    :func:`local_search` to a local optimum and keeps it if its relaxed value is higher.
    Deterministic given ``seed`` when ``max_rounds`` ends it (not ``deadline``).  Why: the
    landscape is rugged, and on the shared ``medium-1`` 1 to 3 s of this lift a plain local
    search from 52.19 to 53.67 to 53.68 (2-core CPU), which the exact backends then start from.

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
    best = local_search(problem, selection, deadline=deadline)
    sel, value, rounds = best.selection, best.value, 0
    interrupted = best.interrupted
    if not sel.any() or sel.all():  # nothing to swap
        return best
    last_gain = 0
    try:
        while (max_rounds is None or rounds < max_rounds) and not interrupted:
            if max_stall is not None and rounds - last_gain >= max_stall:
                break
            if deadline is not None and time.perf_counter() >= deadline:
                break
            if should_stop is not None and should_stop():
                interrupted = True
                break
            trial = sel.copy()
            on, off = np.flatnonzero(trial), np.flatnonzero(~trial)
            m = int(min(rng.integers(2, 5), on.size, off.size))
            trial[rng.choice(on, m, replace=False)] = False
            trial[rng.choice(off, m, replace=False)] = True
            res = local_search(problem, trial, deadline=deadline)
            rounds += 1
            if res.value > value + 1e-12 * max(1.0, abs(value)):
                sel, value, last_gain = res.selection, res.value, rounds
    except KeyboardInterrupt:
        interrupted = True
    return LocalSearchResult(sel, value, rounds, not interrupted, interrupted)


# --- exact assignment for a given selection -------------------------------------------


def _top_subsets(values: np.ndarray, k: int, count: int) -> tuple[list[tuple[int, ...]], float]:
    """The ``count`` best k-subsets (as position tuples) of ``values`` by sum, best first.

    Returns the subsets and the sum of the next one (``-inf`` when all were listed), i.e. an
    upper bound on the value of any subset not listed.
    """
    order = np.argsort(-values, kind="stable")
    v = values[order]
    m = len(v)
    start = tuple(range(k))
    heap = [(-float(v[list(start)].sum()), start)]
    seen = {start}
    out: list[tuple[int, ...]] = []
    while heap and len(out) < count:
        neg, sub = heapq.heappop(heap)
        out.append(tuple(int(order[i]) for i in sub))
        # Successors: move one position to the next free index; each has a sum <= parent's.
        for j in range(k):
            nxt = sub[j] + 1
            limit = sub[j + 1] if j + 1 < k else m
            if nxt < limit:
                child = sub[:j] + (nxt,) + sub[j + 1 :]
                if child not in seen:
                    seen.add(child)
                    heapq.heappush(heap, (neg + float(v[sub[j]] - v[nxt]), child))
    next_value = -heap[0][0] if heap else -np.inf
    return out, next_value


def best_assignment(problem: Problem, selection: np.ndarray) -> tuple[np.ndarray, float]:
    """Exact best assignment ``W`` for a fixed selection, honouring ``problem.unique``.

    Without uniqueness each class takes its top-k.  With it, classes are matched to
    distinct k-subsets by a linear assignment over candidate subsets: every class lists its
    ``m_c`` best subsets and gets a private "any other subset" column worth the value of its
    ``(m_c+1)``-th best.  That restricted problem with private columns is a relaxation of
    the full one; when its optimum uses no private column it is a feasible optimum.  Else
    the lists of the classes that used one are doubled and it is solved again.

    Returns:
        ``(W, Z_A)`` with ``W`` bool ``(n_c, n_f)``.
    """
    A, k = problem.A, problem.k
    idx = np.flatnonzero(selection)
    A_sel = A[:, idx]
    member, topsum, _, _ = _topk_stats(A_sel, k)
    W_sel = member
    if problem.unique:
        keys = np.packbits(member, axis=1)
        _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.ravel()
        if np.any(counts > 1):
            W_sel = _unique_assignment(A_sel, k, counts[inverse])
    W = np.zeros(A.shape, dtype=bool)
    W[:, idx] = W_sel
    return W, float(np.sum(A[W]))


def _unique_assignment(A_sel: np.ndarray, k: int, group_size: np.ndarray) -> np.ndarray:
    n_c, m = A_sel.shape
    want = np.where(group_size > 1, group_size + 1, 1).astype(np.int64)
    big = 1e6 * (1.0 + float(np.abs(A_sel).max()) * k)
    while True:
        lists: dict[tuple[int, ...], int] = {}
        private = np.empty(n_c)
        for c in range(n_c):
            subs, nxt = _top_subsets(A_sel[c], k, int(want[c]))
            for sub in subs:
                lists.setdefault(tuple(sorted(sub)), len(lists))
            private[c] = nxt
        columns = list(lists)
        inc = np.zeros((len(columns), m))
        for j, sub in enumerate(columns):
            inc[j, list(sub)] = 1.0
        score = A_sel @ inc.T  # (n_c, n_cols)
        # Private columns: finite "-big" elsewhere keeps linear_sum_assignment feasible.
        priv = np.full((n_c, n_c), -big)
        has_more = np.isfinite(private)
        priv[np.arange(n_c), np.arange(n_c)] = np.where(has_more, private, -big)
        full = np.hstack([score, priv])
        rows, cols = linear_sum_assignment(full, maximize=True)
        used_private = cols >= len(columns)
        if not used_private.any():
            W = np.zeros((n_c, m), dtype=bool)
            for r, c in zip(rows, cols):
                W[r, list(columns[c])] = True
            return W
        grow = rows[used_private]
        want[grow] = want[grow] * 2


def complete(problem: Problem, selection: np.ndarray) -> tuple[np.ndarray, float]:
    """``(W, Z)``: the exact best assignment of ``selection`` and its objective."""
    W, z_a = best_assignment(problem, selection)
    idx = np.flatnonzero(selection)
    return W, z_a - 0.5 * float(problem.R[np.ix_(idx, idx)].sum()) + float(problem.B[idx].sum())


def true_value(problem: Problem, selection: np.ndarray) -> float:
    """Objective of ``selection`` with its exact assignment (uniqueness honoured)."""
    return complete(problem, selection)[1]


def unique_polish(
    problem: Problem,
    selection: np.ndarray,
    *,
    deadline: float | None = None,
    max_evaluations: int | None = None,
) -> np.ndarray:
    """Swap local search on the *true* objective (exact assignment with uniqueness).

    The relaxed search ignores uniqueness; when classes collide, the relaxed optimum can be
    far from the true one (tiny instances where ``binomial(n_features, k)`` is close to
    ``n_classes``).  Swaps are tried best relaxed delta first, each scored exactly, and the
    first improving one is taken; it stops at a local optimum, the deadline, or after
    ``max_evaluations`` exact scorings (default: about ``2e7 / (n_c * n_f)``, at most 5 000:
    thousands on tiny instances where uniqueness binds, a handful at ImageNet scale where
    each scoring costs tens of milliseconds and collisions cost little).
    """
    sel = np.asarray(selection, dtype=bool).copy()
    if not problem.unique or sel.all():
        return sel
    if max_evaluations is None:
        max_evaluations = int(min(5_000, max(4, 2e7 / (problem.n_classes * problem.n_candidates))))
    current = true_value(problem, sel)
    evaluations = 0
    while evaluations < max_evaluations:
        delta, si, ui = swap_deltas(problem, sel)
        base = relaxed_value(problem, sel)
        order = np.argsort(-delta, axis=None, kind="stable")
        improved = False
        for flat in order:
            if evaluations >= max_evaluations or (deadline is not None and time.perf_counter() > deadline):
                return sel
            a, b = divmod(int(flat), delta.shape[1])
            # the relaxed value bounds the true one: a swap whose relaxed value cannot beat
            # the current true value cannot improve it
            if base + delta[a, b] <= current + 1e-12:
                break
            cand = sel.copy()
            cand[si[a]], cand[ui[b]] = False, True
            evaluations += 1
            value = true_value(problem, cand)
            if value > current + 1e-12 * max(1.0, abs(current)):
                sel, current, improved = cand, value, True
                break
        if not improved:
            return sel
    return sel
