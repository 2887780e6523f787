"""The exact class assignment for a fixed selection, uniqueness included.

Without uniqueness each class takes its top-k of the selected features.  With it, the
classes whose top-k sets collide are matched to distinct k-subsets by a linear assignment
(see :func:`best_assignment`).  :func:`identical_rows` is the one place that groups
classes by their feature sets; the verifier and the MIP driver use it too.
"""

from __future__ import annotations

import heapq

import numpy as np
from scipy.optimize import linear_sum_assignment

from qpmopt.problem import Problem
from qpmopt.search.neighbourhood import topk_stats

__all__ = ["identical_rows", "best_assignment", "evaluate_selection"]


def identical_rows(W: np.ndarray) -> list[np.ndarray]:
    """Groups of two or more classes whose rows of ``W (n_c, n_f)`` bool are equal, each
    an ascending int array of class ids; groups ordered by their first class."""
    keys = np.packbits(np.asarray(W, dtype=bool), axis=1)
    _, inverse, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.ravel()
    groups = [np.flatnonzero(inverse == g) for g in np.flatnonzero(counts > 1)]
    return sorted(groups, key=lambda g: int(g[0]))


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

    With uniqueness, classes are matched to distinct k-subsets by a linear assignment over
    candidate subsets: every class lists its ``m_c`` best subsets and gets a private "any
    other subset" column worth the value of its ``(m_c+1)``-th best.  That restricted
    problem is a relaxation of the full one; when its optimum uses no private column it is
    a feasible optimum.  Else the lists of the classes that used one are doubled and it is
    solved again.

    Args:
        selection: ``(n_f,)`` bool mask with ``n_features`` entries set.

    Returns:
        ``(W, Z_A)`` with ``W`` bool ``(n_c, n_f)``.
    """
    A, k = problem.A, problem.k
    idx = np.flatnonzero(selection)
    A_sel = A[:, idx]
    member, _, _, _ = topk_stats(A_sel, k)
    W_sel = member
    if problem.unique:
        groups = identical_rows(member)
        if groups:
            group_size = np.ones(problem.n_classes, dtype=np.int64)
            for g in groups:
                group_size[g] = g.size
            W_sel = _unique_assignment(A_sel, k, group_size)
    W = np.zeros(A.shape, dtype=bool)
    W[:, idx] = W_sel
    return W, float(np.sum(A[W]))


def _unique_assignment(A_sel: np.ndarray, k: int, group_size: np.ndarray) -> np.ndarray:
    n_c, m = A_sel.shape
    listed = np.where(group_size > 1, group_size + 1, 1).astype(np.int64)
    # A finite stand-in for "forbidden" keeps linear_sum_assignment feasible.
    forbidden = -1e6 * (1.0 + float(np.abs(A_sel).max()) * k)
    while True:
        columns_of: dict[tuple[int, ...], int] = {}
        other_value = np.empty(n_c)
        for c in range(n_c):
            subsets, next_value = _top_subsets(A_sel[c], k, int(listed[c]))
            for sub in subsets:
                columns_of.setdefault(tuple(sorted(sub)), len(columns_of))
            other_value[c] = next_value
        columns = list(columns_of)
        incidence = np.zeros((len(columns), m))
        for j, sub in enumerate(columns):
            incidence[j, list(sub)] = 1.0
        score = A_sel @ incidence.T  # (n_c, n_cols)
        other = np.full((n_c, n_c), forbidden)
        other[np.arange(n_c), np.arange(n_c)] = np.where(np.isfinite(other_value), other_value, forbidden)
        rows, cols = linear_sum_assignment(np.hstack([score, other]), maximize=True)
        used_other = cols >= len(columns)
        if not used_other.any():
            W = np.zeros((n_c, m), dtype=bool)
            for r, c in zip(rows, cols):
                W[r, list(columns[c])] = True
            return W
        grow = rows[used_other]
        listed[grow] = listed[grow] * 2


def evaluate_selection(problem: Problem, selection: np.ndarray) -> tuple[np.ndarray, float]:
    """``(W, Z)``: the exact best assignment of ``selection`` and its objective."""
    W, z_a = best_assignment(problem, selection)
    idx = np.flatnonzero(selection)
    return W, z_a - 0.5 * float(problem.R[np.ix_(idx, idx)].sum()) + float(problem.B[idx].sum())

