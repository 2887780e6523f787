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


def best_assignment(problem: Problem, selection: np.ndarray, *, deadline: float | None = None,
                    ) -> tuple[np.ndarray | None, float]:
    """Exact best assignment ``W`` for a fixed selection, honouring ``problem.unique`` and
    the user's rules (``problem.rules``).

    Rules on single class-feature pairs shift the scores (a required pair by more, a
    forbidden one by less, than any assignment can otherwise gain), so the assignment below
    honours them whenever the selection allows it; shared class pairs need the exact
    assignment model of :class:`~qpmopt.Formulation` with every selected feature fixed,
    solved by HiGHS; if ``deadline`` (a ``time.perf_counter()`` value) passes first, the
    best assignment it found so far is returned (feasible, not proven best).

    With uniqueness, classes are matched to distinct k-subsets by a linear assignment over
    candidate subsets: every class lists its ``m_c`` best subsets and gets a private "any
    other subset" column worth the value of its ``(m_c+1)``-th best.  That restricted
    problem is a relaxation of the full one; when its optimum uses no private column it is
    a feasible optimum.  Else the lists of the classes that used one are doubled and it is
    solved again.

    Args:
        selection: ``(n_f,)`` bool mask with ``n_features`` entries set.

    Returns:
        ``(W, Z_A)`` with ``W`` bool ``(n_c, n_f)``, or ``(None, -inf)`` when no assignment
        of this selection meets the rules.
    """
    A, k = problem.A, problem.k
    rules = problem.rules
    selection = np.asarray(selection, dtype=bool)
    if rules is not None:
        if (rules.select & ~selection).any() or (rules.forbid_select & selection).any():
            return None, -np.inf
        if len(rules.shared):
            return _assignment_model(problem, selection, deadline)
    idx = np.flatnonzero(selection)
    A_sel = A[:, idx]
    if rules is not None and rules.has_pair_rules:
        shift = 1.0 + 2.0 * problem.n_classes * k * float(np.abs(A_sel).max())
        A_sel = A_sel + shift * rules.assign[:, idx] - shift * rules.forbid_assign[:, idx]
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
    if rules is not None and ((rules.assign & ~W).any() or (rules.forbid_assign & W).any()):
        return None, -np.inf
    return W, float(np.sum(A[W]))


def _assignment_model(problem: Problem, selection: np.ndarray, deadline: float | None,
                      ) -> tuple[np.ndarray | None, float]:
    """The exact assignment of ``selection`` under every rule, as a MILP with the selection
    fixed, re-solved with uniqueness cuts until no two classes collide."""
    import time

    from qpmopt.backends.base import SolverConfig
    from qpmopt.backends.highs import HighsBackend
    from qpmopt.backends.mip import MipOptions
    from qpmopt.formulation import Formulation

    idx = np.flatnonzero(selection)
    form = Formulation.build(problem, candidates=idx, fixed=idx)
    highs, config, options = HighsBackend(), SolverConfig(threads=1), MipOptions()
    while True:
        left = None if deadline is None else max(0.05, deadline - time.perf_counter())
        answer = highs.solve_model(form, left, None, config, options)
        if answer.x is None:
            return None, -np.inf
        _, W = form.decode(answer.x)
        groups = identical_rows(W) if problem.unique else []
        if not groups:
            return W, float(np.sum(problem.A[W]))
        if not answer.optimal:  # out of time with classes still colliding
            return None, -np.inf
        for group in groups:
            features = tuple(np.flatnonzero(W[group[0]]).tolist())
            for i, c in enumerate(group):
                for d in group[i + 1 :]:
                    form.add_uniqueness_cut(int(c), int(d), features)


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


def evaluate_selection(problem: Problem, selection: np.ndarray, *, deadline: float | None = None,
                       ) -> tuple[np.ndarray | None, float]:
    """``(W, Z)``: the exact best assignment of ``selection`` and its objective, or
    ``(None, -inf)`` when no assignment of it meets the rules (see :func:`best_assignment`
    for ``deadline``)."""
    W, z_a = best_assignment(problem, selection, deadline=deadline)
    if W is None:
        return None, -np.inf
    idx = np.flatnonzero(selection)
    return W, z_a - 0.5 * float(problem.R[np.ix_(idx, idx)].sum()) + float(problem.B[idx].sum())

