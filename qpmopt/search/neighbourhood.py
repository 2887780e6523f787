"""The relaxed value of a selection and the change of every swap move.

For a fixed selection ``s`` and without uniqueness each class takes its ``k`` largest
selected ``A[c, f]`` (docs/problem.md, "Structure").  That value is the *relaxed* value of
``s``: an upper bound of the best value with uniqueness, equal to it whenever no two
classes' top-k sets collide.  A swap (drop one selected feature, add one unselected) is
evaluated from each class's k-th and (k+1)-th best selected value alone.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from qpmopt.bounds import costly_stars
from qpmopt.problem import Problem

#: Entries of ``A`` a block of :func:`swap_deltas` copies at once (32 MB in float64).
_BLOCK_ENTRIES = 1 << 22

__all__ = ["topk_stats", "relaxed_value", "swap_deltas", "search_view", "rule_scores"]


#: Fewest leaves of a star that :func:`search_view` searches as one class.  Measured with
#: the ``localsearch`` backend: on 40 tiny random stars of 4 leaves (k = 3, 6 of 12
#: features) the collapsed view reached the exhaustive optimum under the rules in 30,
#: the separate classes in 37; with ``auto`` at 60 s under CHiQPM's pairs, stars of 11
#: (medium-1) and 51 leaves (cub-1) gained, the imagenet preset's (11 and 10 leaves among
#: 500 pairs) lost 0.2% (benchmarks/results/star_view.json).
MIN_COLLAPSED_LEAVES = 8


def search_view(problem: Problem) -> Problem:
    """The problem the heuristics search: ``problem`` itself, or a copy with another ``A``.

    - With rules on single class-feature pairs, ``A`` is raised on required pairs and
      lowered on forbidden ones by more than any assignment can gain otherwise, so that the
      relaxed value (each class's top-k) honours them wherever the selection allows.
    - With shared class pairs, each star of pairs (:func:`qpmopt.bounds.pair_stars`) with
      at least :data:`MIN_COLLAPSED_LEAVES` leaves whose rule costs its classes value
      (:func:`qpmopt.bounds.costly_stars`) is searched as one class: its
      hub's row becomes the hub's values plus ``m / k`` of the leaves' (``m`` the shared
      count: a leaf uses ``m`` of the hub's ``k`` features), each leaf's row ``(k - m) / k``
      of its own (its features outside the hub's set).  Searched as separate classes, the
      selection serves each leaf's own top-k, which the rule forbids (cub-1 with CHiQPM's
      pairs, one star of 52 classes: benchmarks/results/star_view.json).  The collapse
      is a proxy (a leaf really takes ``k - m`` features of its own, not a share of its
      top-k), which cost more than it gained on small stars.

    Answers are always scored on the original problem."""
    rules = problem.rules
    if rules is None:
        return problem
    A = problem.A
    if rules.assign.any() or rules.forbid_assign.any():
        A = rule_scores(problem, np.arange(problem.n_candidates))
    collapsed = [(hub, leaves) for hub, leaves in costly_stars(problem) if leaves.size >= MIN_COLLAPSED_LEAVES]
    if collapsed:
        A = A.copy() if A is problem.A else A
        share = int(rules.shared_count) / problem.k
        for hub, leaves in collapsed:
            A[hub] = A[hub] + share * A[leaves].sum(axis=0)
            A[leaves] = (1.0 - share) * A[leaves]
    return problem if A is problem.A else dataclasses.replace(problem, A=A)


def rule_scores(problem: Problem, columns: np.ndarray) -> np.ndarray:
    """``A[:, columns]`` raised on the rules' required pairs and lowered on forbidden ones by
    more than any assignment of ``k`` features per class can gain otherwise."""
    A = problem.A[:, columns]
    rules = problem.rules
    if rules is None:
        return A
    shift = 1.0 + 2.0 * problem.n_classes * problem.k * float(np.abs(problem.A).max())
    return A + shift * rules.assign[:, columns] - shift * rules.forbid_assign[:, columns]


def topk_stats(A_sel: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per class of ``A_sel (n_c, m)``: top-k membership ``(n_c, m)`` bool, top-k sum
    ``(n_c,)``, k-th and (k+1)-th best value ``(n_c,)`` (``-inf`` when ``m == k``)."""
    n_c, m = A_sel.shape
    order = np.argsort(-A_sel, axis=1, kind="stable")
    rows = np.arange(n_c)[:, None]
    member = np.zeros_like(A_sel, dtype=bool)
    member[rows, order[:, :k]] = True
    sorted_vals = A_sel[rows, order]
    topsum = sorted_vals[:, :k].sum(axis=1)
    kth = sorted_vals[:, k - 1]
    next_best = sorted_vals[:, k] if m > k else np.full(n_c, -np.inf)
    return member, topsum, kth, next_best


def relaxed_value(problem: Problem, selection: np.ndarray) -> float:
    """Objective of ``selection`` (``(n_f,)`` bool) with each class on its top-k (an upper
    bound of the true value when ``unique``)."""
    idx = np.flatnonzero(selection)
    _, topsum, _, _ = topk_stats(problem.A[:, idx], problem.k)
    z_r = -0.5 * float(problem.R[np.ix_(idx, idx)].sum())
    return float(topsum.sum()) + z_r + float(problem.B[idx].sum())


def swap_deltas(problem: Problem, selection: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Relaxed objective change of every swap (drop one selected, add one unselected).

    Returns ``(delta, sel_idx, unsel_idx)`` with ``delta`` of shape ``(n_sel, n_f - n_sel)``:
    ``delta[a, b]`` is the change when ``sel_idx[a]`` leaves and ``unsel_idx[b]`` enters.
    A class whose top-k holds the leaving feature ``o`` gains ``max(next, A[c,i]) - A[c,o]``,
    any other class gains ``max(0, A[c,i] - kth)``.  Swaps that would break a rule on the
    selection are ``-inf``.
    """
    A, R, B, k = problem.A, problem.R, problem.B, problem.k
    sel = np.flatnonzero(selection)
    uns = np.flatnonzero(~selection)
    member, _, kth, next_best = topk_stats(A[:, sel], k)
    # For a class with k-th and (k+1)-th best selected values kth >= next:
    # max(A, next) - max(0, A - kth) == clip(A, next, kth), so the member part is one clip
    # and a product, the rest one column sum.  Blocks of classes bound the temporaries
    # (ImageNet-21k scale: 10 000 x 4 000 entries each).
    delta_a = np.zeros((sel.size, uns.size))
    gain_other = np.zeros(uns.size)
    rows = max(1, _BLOCK_ENTRIES // max(1, uns.size))
    for a in range(0, A.shape[0], rows):
        block = A[a : a + rows][:, uns]
        lo, hi = next_best[a : a + rows, None], kth[a : a + rows, None]
        gain_other += np.maximum(block - hi, 0.0).sum(axis=0)
        np.clip(block, lo, hi, out=block)
        delta_a += member[a : a + rows].T.astype(np.float64) @ block
    loss_out = (member * A[:, sel]).sum(axis=0)  # (n_sel,)
    delta_a += gain_other[None, :] - loss_out[:, None]
    red = R[:, sel].sum(axis=1)  # (n_f,) redundancy of each feature to the selected set
    delta_r = red[sel][:, None] - red[uns][None, :] + R[np.ix_(sel, uns)]
    delta_b = B[uns][None, :] - B[sel][:, None]
    delta = delta_a + delta_r + delta_b
    if problem.rules is not None:  # included features never leave, excluded ones never enter
        delta[problem.rules.select[sel], :] = -np.inf
        delta[:, problem.rules.forbid_select[uns]] = -np.inf
    return delta, sel, uns
