"""Cheap upper bounds valid for the full problem (any selection, uniqueness or not)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from qpmopt.constraints import neighbour_lists
from qpmopt.problem import Problem

__all__ = ["simple_upper_bound", "lagrangian_upper_bound", "lagrangian_bound_and_multipliers", "lagrangian_iterations",
           "lagrangian_multipliers", "pair_stars", "costly_stars", "star_value"]


def simple_upper_bound(problem: Problem) -> float:
    """A valid upper bound on ``Z`` in ``O(n_f^2 log n_f)``.

    ``Z_A <= sum_c`` (top-k of ``A[c, :]`` over *all* features), because selecting fewer
    features can only lower a class's best k.  For the rest, every selected feature ``i``
    has ``n_sel - 1`` selected partners, so its share of ``sum_{i<j} R_ij`` is at least half
    the sum ``m_i`` of its ``n_sel - 1`` smallest off-diagonal entries; hence
    ``Z_R + Z_B <= `` the sum of the ``n_sel`` largest ``B_i - m_i / 2``.  Handles both
    signs of ``R``.
    """
    A, B, k, n_sel = problem.A, problem.B, problem.k, problem.n_features
    z_a = float(np.partition(A, A.shape[1] - k, axis=1)[:, -k:].sum())
    per_feature = B - 0.5 * _pair_floor(problem)
    z_rb = float(np.sort(per_feature)[-n_sel:].sum())
    return z_a + z_rb


def _pair_floor(problem: Problem) -> np.ndarray:
    """``m_i``: the sum of the ``n_sel - 1`` smallest off-diagonal ``R[i, :]``."""
    R, n_sel = problem.R, problem.n_features
    n_f = R.shape[0]
    if n_sel <= 1:
        return np.zeros(n_f)
    off = R + np.diag(np.full(n_f, np.inf))  # exclude the diagonal from the smallest
    return np.partition(off, n_sel - 2, axis=1)[:, : n_sel - 1].sum(axis=1)


def lagrangian_iterations(problem: Problem) -> int:
    """Iterations callers give the Lagrangian bound (evaluations of the per-class threshold
    dual; with shared pairs, half of them are the star method's subgradient steps): 3 000 up
    to CUB scale, fewer above so that the work (``O(n_c n_f)`` per iteration) stays about
    constant."""
    return int(min(3000, max(200, 1.2e9 // (problem.n_classes * problem.n_candidates))))


def lagrangian_upper_bound(
    problem: Problem,
    incumbent: float,
    *,
    iterations: int = 300,
    deadline: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
    floor: float | None = None,
    iteration_seconds: float | None = None,
) -> float:
    """A valid upper bound from Lagrangian relaxation of ``W[c, f] <= s_f``.

    For multipliers ``mu >= 0`` of shape ``(n_c, n_f)``:

        L(mu) = sum_c topk_f(A[c, f] - mu[c, f]) + top_{n_sel}(B_f - m_f / 2 + sum_c mu[c, f])

    bounds ``Z`` from above (the redundancy enters through ``m_f`` as in
    :func:`simple_upper_bound`; uniqueness is dropped, which only relaxes).  ``mu = 0`` gives
    the simple bound and is always evaluated, so the result is never above it.  The
    multipliers are found through one threshold per class (see ``_per_class_lagrangian``):
    at its minimum the bound equals the relaxation's LP value.
    Returns the smallest bound seen; it stops early once the bound proves ``incumbent`` (a
    known objective), and ``iterations`` caps the evaluations of the bound.

    ``deadline`` (a ``clock()`` value): no further evaluation starts that the longest one so
    far says would end after it.  ``floor``: a valid bound the caller already has (e.g.
    :func:`simple_upper_bound`); when given and the deadline has passed on entry, or
    ``iteration_seconds`` (the caller's estimate of one iteration) would take the first
    iteration past it, it is returned without any work (at ImageNet-21k scale one
    iteration takes seconds).

    With shared class pairs (:func:`pair_stars`), half of the iterations and of the time go
    to the method above and the rest to bounding stars of pairs together, started from its
    multipliers (see :func:`_star_lagrangian`).
    """
    bound, _ = lagrangian_bound_and_multipliers(problem, incumbent, iterations=iterations, deadline=deadline,
                                                clock=clock, floor=floor, iteration_seconds=iteration_seconds,
                                                want_mu=False)
    return bound


def lagrangian_bound_and_multipliers(
    problem: Problem,
    incumbent: float,
    *,
    iterations: int = 300,
    deadline: float | None = None,
    clock: Callable[[], float] = time.perf_counter,
    floor: float | None = None,
    iteration_seconds: float | None = None,
    want_mu: bool = True,
) -> tuple[float, np.ndarray | None]:
    """``(bound, mu)``: :func:`lagrangian_upper_bound` (same arguments, same value) and, with
    ``want_mu``, the per-class method's multipliers of ``W <= s`` at its best bound,
    ``(n_c, n_f)``, as :func:`lagrangian_multipliers` gives them: a warm start for
    :func:`qpmopt.sdp_bound.sdp_upper_bound` without running the bound twice.  ``mu`` is
    ``None`` without ``want_mu`` (no ``(n_c, n_f)`` array is made) and where ``floor`` came
    back without any work."""
    if floor is not None and deadline is not None and clock() + (iteration_seconds or 0.0) >= deadline:
        return floor, None
    stars = pair_stars(problem)
    if stars:
        # The per-class method first (it reaches its LP value in few evaluations; its
        # bound is valid here too), then the stars' from its multipliers: at the imagenet
        # preset's size with CHiQPM's pairs the dense star method alone got few iterations
        # in auto's share and ended above the per-class bound.
        start = clock()
        half = None if deadline is None else start + 0.5 * (deadline - start)
        first, mu = _per_class_lagrangian(problem, incumbent, max(1, iterations // 2), half, clock)
        best = min(first, _star_lagrangian(problem, stars, incumbent, max(1, iterations - iterations // 2),
                                           deadline, clock, mu))
    else:
        best, mu = _per_class_lagrangian(problem, incumbent, iterations, deadline, clock, want_mu=want_mu)
    return (best if floor is None else min(best, floor)), (mu if want_mu else None)


def lagrangian_multipliers(problem: Problem, incumbent: float, *, iterations: int = 300,
                           deadline: float | None = None,
                           clock: Callable[[], float] = time.perf_counter) -> tuple[float, np.ndarray]:
    """``(bound, mu)``: the smallest bound of :func:`lagrangian_upper_bound`'s per-class
    method (each class alone, shared pairs not seen; valid for every rule set) and its
    multipliers of ``W <= s`` there, ``(n_c, n_f)``, non-negative.

    For warm starts: :func:`qpmopt.sdp_bound.sdp_upper_bound` takes ``mu`` as
    ``start_mu``.  ``incumbent`` is a known objective (the bound stops once it proves it).
    """
    return _per_class_lagrangian(problem, incumbent, iterations, deadline, clock)


#: Smoothing levels of the per-class Lagrangian bound's threshold dual, in units of the
#: largest ``|A|``: coarse first (a smooth, easy function), then finer.  On cub-1 the last
#: ends at 316.696 (benchmarks/results/auto_bound.json), against the LP value 316.693
#: (HiGHS on the LP).
THRESHOLD_LEVELS = (0.01, 0.003, 0.001, 0.0003, 0.0001)

#: Entries of ``A`` per block in the threshold dual's passes: its temporary arrays stay
#: near 16 MB each at any size (at ImageNet-21k scale one dense pass would need gigabytes).
_BLOCK_ENTRIES = 1 << 21


class _Stop(Exception):
    """Ends the threshold dual's optimisation: out of evaluations or time, or the
    incumbent proven."""


def _per_class_lagrangian(problem: Problem, incumbent: float, iterations: int, deadline: float | None,
                          clock: Callable[[], float], want_mu: bool = True) -> tuple[float, np.ndarray | None]:
    """The per-class Lagrangian bound of :func:`lagrangian_upper_bound`: the smallest bound
    seen and, with ``want_mu``, its multipliers ``(n_c, n_f)`` (``None`` otherwise).

    For thresholds ``t`` ``(n_c,)``, the multipliers ``mu = max(A - t, 0)`` leave every
    reduced value of class ``c`` at most ``t_c``, so

        L(mu) <= U(t) = k * sum_c t_c + top_{n_sel}(base + sum_c max(A[c] - t_c, 0)),

    with ``base = B - m / 2``.  The smallest ``U`` is the value of the relaxation's LP, which
    is also the Lagrangian dual's optimum (given ``t``, these multipliers are optimal in the
    LP's dual).  So the bound is minimised over ``n_c`` thresholds instead of ``n_c x n_f``
    multipliers: L-BFGS on a smoothed ``U`` (softplus for ``max(., 0)``, the top-``n_sel``
    sum as ``min_u n_sel * u + sum softplus``) over :data:`THRESHOLD_LEVELS`.  Subgradient
    steps on the multipliers, used before, stopped far above it on cub-1 (328.2 after
    2 929 steps, against 316.7 for this).  Every evaluation's exact ``U`` is a valid bound,
    and so is ``L(0)``, the simple bound (from the same pass over ``A`` that places the
    first thresholds); the smallest is returned, with ``mu = 0`` where ``L(0)`` is it.
    ``iterations`` caps the evaluations (two passes over ``A`` each); ``deadline`` (a
    ``clock()`` value): none starts that the longest so far says would end after it,
    except the first.  Stops once the bound proves ``incumbent``.
    """
    from scipy.optimize import minimize
    from scipy.special import expit

    A, k, n_sel = problem.A, problem.k, problem.n_features
    n_c, n_f = A.shape
    base = problem.B - 0.5 * _pair_floor(problem)
    step = max(1, _BLOCK_ENTRIES // max(1, n_f))
    blocks = [slice(r, min(r + step, n_c)) for r in range(0, n_c, step)]
    scale = max(max(float(max(A[b].max(), -A[b].min())) for b in blocks), 1e-12)
    goal = incumbent + 1e-9 * max(1.0, abs(incumbent))

    def top_sum(values: np.ndarray, count: int) -> float:
        return float(np.partition(values, values.size - count)[-count:].sum())

    # start: each threshold between the class's k-th and (k+1)-th largest value; the same
    # pass gives each class's top-k sum, so L(0) (the simple bound) comes with it
    t0 = np.empty(n_c)
    top_k_total = 0.0
    for b in blocks:
        if k < n_f:
            part = np.partition(A[b], (n_f - k - 1, n_f - k), axis=1)
            t0[b] = 0.5 * (part[:, n_f - k] + part[:, n_f - k - 1])
            top_k_total += float(part[:, n_f - k:].sum())
        else:
            t0[b] = A[b].min(axis=1) - 1.0
            top_k_total += float(A[b].sum())
    # "t": the thresholds of the best bound so far; None while it is L(0)
    state = {"best": top_k_total + top_sum(base, n_sel), "t": None, "evaluations": 0, "longest": 0.0}

    def over_thresholds(t: np.ndarray) -> np.ndarray:
        return sum((np.maximum(A[b] - t[b, None], 0.0).sum(axis=0) for b in blocks), np.zeros(n_f))

    def fun(x: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
        started = clock()
        if state["evaluations"] and (state["evaluations"] >= iterations or state["best"] <= goal or (
                deadline is not None and started + state["longest"] > deadline)):
            raise _Stop
        t, u = x[:n_c], float(x[n_c])
        soft, hard = np.zeros(n_f), np.zeros(n_f)
        for b in blocks:
            over = A[b] - t[b, None]
            soft += tau * np.logaddexp(0.0, over / tau).sum(axis=0)
            hard += np.maximum(over, 0.0).sum(axis=0)
        kt = k * float(t.sum())
        exact = kt + top_sum(base + hard, n_sel)
        if exact < state["best"]:
            state["best"], state["t"] = exact, t.copy()
        z = (base + soft - u) / tau
        weight = expit(z)
        value = kt + n_sel * u + tau * float(np.logaddexp(0.0, z).sum())
        grad = np.empty(n_c + 1)
        # a second pass: the weights need every block's part of q first, and keeping the
        # first pass's sigmoids would take an (n_c, n_f) array, which the blocks avoid
        for b in blocks:
            grad[b] = k - (expit((A[b] - t[b, None]) / tau) * weight).sum(axis=1)
        grad[n_c] = n_sel - float(weight.sum())
        state["evaluations"] += 1
        state["longest"] = max(state["longest"], clock() - started)
        return value, grad

    x = np.append(t0, np.partition(base + over_thresholds(t0), n_f - n_sel)[n_f - n_sel])
    try:
        for i, level in enumerate(THRESHOLD_LEVELS):
            # each level may use its share of the evaluations left
            share = max(1, (iterations - state["evaluations"]) // (len(THRESHOLD_LEVELS) - i))
            res = minimize(fun, x, args=(level * scale,), jac=True, method="L-BFGS-B",
                           options={"maxfun": share, "maxcor": 20})
            x = res.x
    except _Stop:
        pass
    if not want_mu:
        return state["best"], None
    return state["best"], np.zeros_like(A) if state["t"] is None else np.maximum(A - state["t"][:, None], 0.0)


def pair_stars(problem: Problem) -> list[tuple[int, np.ndarray]]:
    """Disjoint stars of the shared class pairs, ``(hub, leaves)``: the class with most
    partners among the classes not yet in a star, with those partners, in turn.  Empty
    without shared pairs or with a shared count of 0 (nothing to gain)."""
    rules = problem.rules
    if rules is None or not len(rules.shared) or rules.shared_count == 0:
        return []
    n_c = problem.n_classes
    partners = neighbour_lists(n_c, rules.shared)
    free = np.ones(n_c, dtype=bool)
    stars = []
    for hub in sorted(range(n_c), key=lambda c: (-len(partners[c]), c)):
        leaves = partners[hub][free[partners[hub]]]
        if not free[hub] or not leaves.size:
            continue
        free[hub] = False
        free[leaves] = False
        stars.append((hub, leaves))
    return stars


def costly_stars(problem: Problem, A: np.ndarray | None = None) -> list[tuple[int, np.ndarray]]:
    """The stars of :func:`pair_stars` whose :func:`star_value` at the values ``A``
    (``problem.A`` when ``None``) is below their classes' top-k values each alone: the
    rule costs them value.  For a few similar classes the star formula is not smaller, so
    the semidefinite bound leaves such a star out (optimising it would only slow the rest)
    and the search keeps its classes apart (:func:`qpmopt.search.search_view`)."""
    stars = pair_stars(problem)  # empty without shared pairs or with a shared count of 0
    if not stars:
        return []
    A = problem.A if A is None else A
    rules, k = problem.rules, problem.k
    own = k - int(rules.shared_count)
    kept = []
    for hub, leaves in stars:
        alone = float(np.sort(A[np.concatenate([[hub], leaves])], axis=1)[:, -k:].sum())
        if star_value(A[hub], A[leaves], k, own, rules.shared_exact) < alone:
            kept.append((hub, leaves))
    return kept


def star_value(hub_row: np.ndarray, leaf_rows: np.ndarray, k: int, own: int, exact: bool = True) -> float:
    """An upper bound on what a star of shared pairs is worth at values ``hub_row``
    ``(n_f,)`` and ``leaf_rows`` ``(n_leaves, n_f)`` (reduced values in a Lagrangian): each
    leaf shares ``k - own`` of its ``k`` features with the hub's set ``H``, so it is worth
    at most its positive values on ``H`` plus its ``own`` best values (their positive
    parts when ``exact`` is False, the at-least mode); ``H`` is the top-``k`` of the hub's
    values plus the leaves' positive parts."""
    return _star_parts(hub_row, leaf_rows, k, own, exact)[0]


def _star_parts(hub_row: np.ndarray, leaf_rows: np.ndarray, k: int, own: int, exact: bool,
                ) -> tuple[float, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """:func:`star_value` with what its subgradient needs: ``(value, H, the leaves'
    positive mask, their own top indices, which of those count)``."""
    n_f = hub_row.shape[0]
    positive = leaf_rows > 0
    hub_set = np.argpartition(-(hub_row + np.where(positive, leaf_rows, 0.0).sum(axis=0)), k - 1)[:k]
    value = float(hub_row[hub_set].sum()) + float(np.where(positive[:, hub_set], leaf_rows[:, hub_set], 0.0).sum())
    own_top = counted = None
    if own:
        own_top = np.argpartition(leaf_rows, n_f - own, axis=1)[:, n_f - own:]
        vals = np.take_along_axis(leaf_rows, own_top, axis=1)
        counted = np.ones_like(vals, dtype=bool) if exact else vals > 0
        value += float(vals[counted].sum())
    return value, hub_set, positive, own_top, counted


def _star_lagrangian(problem: Problem, stars: list[tuple[int, np.ndarray]], incumbent: float, iterations: int,
                     deadline: float | None, clock: Callable[[], float], mu: np.ndarray | None = None) -> float:
    """:func:`lagrangian_upper_bound` with the classes of ``stars`` bounded together.

    A leaf shares ``m`` (the shared count) of its ``k`` features with its hub's set ``H``:
    its value is at most the positive parts of its reduced values on ``H`` plus its
    ``k - m`` best values overall (their positive parts in the at-least mode, where it may
    take fewer outside ``H``).  So a star is worth at most the top-``k`` of ``hub + sum of
    the leaves' positive parts`` plus each leaf's best ``k - m``, or its classes' top-k
    values each alone where that is less.  Other pairs, uniqueness
    and rules on single pairs are dropped, which only relaxes.  (On cub-1 with CHiQPM's
    pairs one star holds 52 classes; unconstrained, their top-k values sum to 152, this
    bound on them is 54.)  ``mu``: the starting multipliers (zeros when ``None``).
    """
    A, k, n_sel = problem.A, problem.k, problem.n_features
    rules = problem.rules
    own = k - int(rules.shared_count)
    n_c, n_f = A.shape
    base = problem.B - 0.5 * _pair_floor(problem)
    in_star = np.zeros(n_c, dtype=bool)
    for hub, leaves in stars:
        in_star[hub] = True
        in_star[leaves] = True
    alone = np.flatnonzero(~in_star)
    mu = np.zeros_like(A) if mu is None else mu.copy()
    # mu changes only where the subgradient is non-zero (the selected columns and the
    # entries the bound counted): those are updated alone.
    reduced = A - mu
    col_sum = mu.sum(axis=0)
    where = np.full(n_f, -1, dtype=np.int64)  # column -> its position among the selected
    best, theta, stall, longest = np.inf, 1.0, 0, 0.0
    for it in range(max(1, iterations)):
        started = clock()
        if it > 0 and deadline is not None and started + longest > deadline:
            break
        # the entries the bound counts, with their coefficients (-d/dmu)
        rows, cols, coefs = [], [], []
        value = 0.0
        if alone.size:
            rest = reduced[alone]
            top = np.argpartition(rest, n_f - k, axis=1)[:, n_f - k:]
            value += float(np.take_along_axis(rest, top, axis=1).sum())
            rows.append(np.repeat(alone, k))
            cols.append(top.ravel())
            coefs.append(np.ones(top.size))
        for hub, leaves in stars:
            members = np.concatenate([[hub], leaves])
            # each class alone is also a bound of the star: the smaller one counts (for a
            # few similar classes, the leaves' positive values on the hub's set plus their
            # best outside it can exceed their own top-k)
            star = reduced[members]
            top = np.argpartition(star, n_f - k, axis=1)[:, n_f - k:]
            each = float(np.take_along_axis(star, top, axis=1).sum())
            leaf = star[1:]
            together, hub_set, positive, own_top, counted = _star_parts(reduced[hub], leaf, k, own,
                                                                        rules.shared_exact)
            if each <= together:
                value += each
                rows.append(np.repeat(members, k))
                cols.append(top.ravel())
                coefs.append(np.ones(top.size))
                continue
            value += together
            rows.append(np.full(k, hub))
            cols.append(hub_set)
            coefs.append(np.ones(k))
            r_pos, c_pos = np.nonzero(positive[:, hub_set])
            rows.append(leaves[r_pos])
            cols.append(hub_set[c_pos])
            coefs.append(np.ones(r_pos.size))
            if own:
                rows.append(np.broadcast_to(leaves[:, None], own_top.shape)[counted])
                cols.append(own_top[counted])
                coefs.append(np.ones(int(counted.sum())))
        feat = base + col_sum
        top_s = np.argpartition(-feat, n_sel - 1)[:n_sel]
        value += float(feat[top_s].sum())
        if not np.isfinite(best) or value < best - 1e-12 * max(1.0, abs(best)):
            best, stall = value, 0
        else:
            stall += 1
            if stall >= 10:
                theta, stall = theta / 2, 0
        # subgradient of L in mu: +1 on the selected columns, minus the coefficients
        flat, inverse = np.unique(np.concatenate(rows) * n_f + np.concatenate(cols), return_inverse=True)
        coef = np.bincount(inverse, weights=np.concatenate(coefs), minlength=flat.size)
        r_e, c_e = flat // n_f, flat % n_f
        where[top_s] = np.arange(n_sel)
        pos = where[c_e]
        where[top_s] = -1
        block = np.ones((n_c, n_sel))  # the selected columns' subgradient
        in_block = pos >= 0
        block[r_e[in_block], pos[in_block]] -= coef[in_block]
        off_r, off_c, off_g = r_e[~in_block], c_e[~in_block], -coef[~in_block]
        norm = float((block * block).sum() + (off_g * off_g).sum())
        if norm == 0 or value - incumbent <= 1e-9 * max(1.0, abs(incumbent)):
            break
        step = theta * (value - incumbent) / norm
        old = mu[:, top_s]
        new = np.maximum(0.0, old - step * block)
        mu[:, top_s] = new
        reduced[:, top_s] = A[:, top_s] - new
        col_sum[top_s] += (new - old).sum(axis=0)
        moved = np.maximum(0.0, mu[off_r, off_c] - step * off_g) - mu[off_r, off_c]  # entries are distinct
        mu[off_r, off_c] += moved
        reduced[off_r, off_c] = A[off_r, off_c] - mu[off_r, off_c]
        np.add.at(col_sum, off_c, moved)
        longest = max(longest, clock() - started)
    return best
