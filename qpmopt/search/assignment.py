"""The exact class assignment for a fixed selection, uniqueness included.

Without uniqueness each class takes its top-k of the selected features.  With it, the
classes whose top-k sets collide are matched to distinct k-subsets by a linear assignment
(see :func:`best_assignment`).  :func:`identical_rows` is the one place that groups
classes by their feature sets; the verifier and the MIP driver use it too.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching

from qpmopt.problem import Problem
from qpmopt.search.neighbourhood import rule_scores, topk_stats

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
    subsets, _, next_value = _ranked_subsets(values, k, count)
    return subsets, next_value


def _ranked_subsets(values: np.ndarray, k: int, count: int) -> tuple[list[tuple[int, ...]], list[float], float]:
    """:func:`_top_subsets` with each subset's sum: ``(subsets, sums, next_sum)``."""
    order = np.argsort(-values, kind="stable")
    v = values[order]
    m = len(v)
    start = tuple(range(k))
    heap = [(-float(v[list(start)].sum()), start)]
    seen = {start}
    out: list[tuple[int, ...]] = []
    sums: list[float] = []
    while heap and len(out) < count:
        neg, sub = heapq.heappop(heap)
        out.append(tuple(int(order[i]) for i in sub))
        sums.append(-neg)
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
    return out, sums, next_value


#: Largest ``n_classes * n_features`` whose assignment under shared pairs is solved exactly
#: by default; above it the model's root LP alone takes many seconds (CUB scale with 100
#: pairs: about 20 s), so a constructive assignment is used instead.
EXACT_SHARED_MAX_CELLS = 2_000


def best_assignment(problem: Problem, selection: np.ndarray, *, deadline: float | None = None,
                    exact: bool | None = None, clock: Callable[[], float] = time.perf_counter,
                    ) -> tuple[np.ndarray | None, float]:
    """Exact best assignment ``W`` for a fixed selection, honouring ``problem.unique`` and
    the user's rules (``problem.rules``).

    Rules on single class-feature pairs shift the scores (a required pair by more, a
    forbidden one by less, than any assignment can otherwise gain), so the assignment below
    honours them whenever the selection allows it; shared class pairs need the exact
    assignment model of :class:`~qpmopt.Formulation` with every selected feature fixed,
    solved by HiGHS; if ``deadline`` (a ``clock()`` value) passes first, the
    best assignment it found so far is returned (feasible, not proven best).  That model is
    used when ``exact`` is true, or by default up to :data:`EXACT_SHARED_MAX_CELLS` class
    and selected-feature pairs; above, :func:`qpmopt.search.pairs.pair_assignment` searches
    for one (feasible, not proven best; ``None`` when it finds none).

    With uniqueness, classes are matched to distinct k-subsets by a linear assignment over
    candidate subsets: every class lists its ``m_c`` best subsets and gets a private "any
    other subset" column worth the value of its ``(m_c+1)``-th best.  That restricted
    problem is a relaxation of the full one; when its optimum uses no private column it is
    a feasible optimum.  Else the lists of the classes that used one are lengthened and it
    is solved again, while ``deadline`` leaves time for another round; after that, the
    classes left on their private column get their best free subset (feasible, not proven
    best).

    Args:
        selection: ``(n_f,)`` bool mask with ``n_features`` entries set.
        clock: the time source of ``deadline`` (a solve passes ``SolverConfig.clock``).

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
            small = problem.n_classes * problem.n_features <= EXACT_SHARED_MAX_CELLS
            if exact or (exact is None and small):
                return _assignment_model(problem, selection, deadline, clock)
            from qpmopt.search.pairs import pair_assignment

            W = pair_assignment(problem, selection, deadline=deadline, clock=clock)
            return (None, -np.inf) if W is None else (W, float(np.sum(A[W])))
    idx = np.flatnonzero(selection)
    A_sel = A[:, idx]
    if rules is not None and rules.has_pair_rules:
        A_sel = rule_scores(problem, idx)
    member, _, _, _ = topk_stats(A_sel, k)
    W_sel = member
    if problem.unique:
        groups = identical_rows(member)
        if groups:
            group_size = np.ones(problem.n_classes, dtype=np.int64)
            for g in groups:
                group_size[g] = g.size
            W_sel = _unique_assignment(A_sel, k, group_size, deadline, clock)
    W = np.zeros(A.shape, dtype=bool)
    W[:, idx] = W_sel
    if rules is not None and ((rules.assign & ~W).any() or (rules.forbid_assign & W).any()):
        return None, -np.inf
    return W, float(np.sum(A[W]))


def _assignment_model(problem: Problem, selection: np.ndarray, deadline: float | None,
                      clock: Callable[[], float] = time.perf_counter) -> tuple[np.ndarray | None, float]:
    """The exact assignment of ``selection`` under every rule, as a MILP with the selection
    fixed, re-solved with uniqueness cuts until no two classes collide.  HiGHS gets the time
    left before ``deadline`` (a ``clock()`` value) as its own limit."""
    from qpmopt.backends.base import SolverConfig
    from qpmopt.backends.highs import HighsBackend
    from qpmopt.backends.mip import MipOptions
    from qpmopt.formulation import Formulation

    idx = np.flatnonzero(selection)
    form = Formulation.build(problem, candidates=idx, fixed=idx)
    highs, config, options = HighsBackend(), SolverConfig(threads=1), MipOptions()
    while True:
        left = None if deadline is None else max(0.05, deadline - clock())
        answer = highs.solve_model(form, left, None, config, options)
        if answer.x is None:
            return None, -np.inf
        _, W = form.decode(answer.x)
        if not problem.unique or not identical_rows(W):
            return W, float(np.sum(problem.A[W]))
        if not answer.optimal:  # out of time with classes still colliding
            return None, -np.inf
        form.cut_collisions(W)


#: components up to this many rows x columns are matched dense (robust, and fast at that size)
_DENSE_MATCHING_CELLS = 4_000_000


def _repair(A_sel: np.ndarray, k: int, W: np.ndarray, classes: list[int]) -> None:
    """Give each of ``classes`` (rows of ``W`` to be replaced) its best k-subset that no
    other class holds, best-valued classes first: feasible under uniqueness, not proven
    best."""
    moving = set(classes)
    taken = {tuple(np.flatnonzero(row).tolist()) for i, row in enumerate(W) if i not in moving}
    for c in sorted(classes, key=lambda c: -float(np.sort(A_sel[c])[-k:].sum())):
        count = 2
        while True:
            subsets, _ = _top_subsets(A_sel[c], k, count)
            free = next((t for t in (tuple(sorted(x)) for x in subsets) if t not in taken), None)
            if free is not None:
                break
            count *= 2
        W[c] = False
        W[c, list(free)] = True
        taken.add(free)


def _unique_assignment(A_sel: np.ndarray, k: int, group_size: np.ndarray, deadline: float | None = None,
                       clock: Callable[[], float] = time.perf_counter) -> np.ndarray:
    """Distinct k-subsets of maximum total value, ``(n_c, m)`` bool.

    Only the classes that can be affected take part in the matching: the colliding ones,
    and, transitively, every class whose own top-k set some participant lists.  Any other
    class keeps its top-k set, which no participant can take (it lists it nowhere and no
    other class shares it), so the smaller matching is exact; it is built sparse (each
    participant has a few listed subsets and its private column) and solved component by
    component (:func:`_matching_by_component`), which keeps it at ImageNet-21k scale to
    thousands of rows and edges instead of a dense classes x classes matrix.  When another
    round would end past ``deadline`` (a ``clock()`` value), the classes still on their
    private column are repaired greedily (:func:`_repair`): the result is feasible but not
    proven best.
    """
    n_c, m = A_sel.shape
    listed = np.where(group_size > 1, group_size + 1, 1).astype(np.int64)
    best_k = np.sort(np.argsort(-A_sel, axis=1, kind="stable")[:, :k], axis=1)  # as _ranked_subsets ranks
    owners: dict[tuple[int, ...], list[int]] = {}
    for c in range(n_c):
        owners.setdefault(tuple(best_k[c].tolist()), []).append(c)
    W = np.zeros((n_c, m), dtype=bool)
    W[np.arange(n_c)[:, None], best_k] = True

    # Each participant's edges: (column key, weight) per listed subset, and its private value.
    edges: dict[int, tuple[list[tuple[int, ...]], list[float], float]] = {}
    involved: list[int] = []

    def take_part(classes: list[int]) -> None:
        """List the subsets of ``classes`` (at their current ``listed``) and pull in, until
        nothing changes, the owners of every top set listed."""
        queue = list(classes)
        queued = set(queue)
        while queue:
            c = queue.pop()
            if c not in edges:
                involved.append(c)
            subsets, sums, next_value = _ranked_subsets(A_sel[c], k, int(listed[c]))
            keys = [tuple(sorted(t)) for t in subsets]
            edges[c] = (keys, sums, next_value)
            for t in keys:
                for d in owners.get(t, ()):
                    if d not in edges and d not in queued:
                        queued.add(d)
                        queue.append(d)

    take_part([int(c) for c in np.flatnonzero(group_size > 1)])
    solved: dict[tuple, list] = {}  # component key -> chosen column key per row
    while True:
        round_start = clock()
        column_of: dict[tuple[int, ...], int] = {}
        rows: list[int] = []
        cols: list[int] = []
        weights: list[float] = []
        for r, c in enumerate(involved):
            keys, sums, next_value = edges[c]
            rows.extend([r] * len(keys))
            cols.extend(column_of.setdefault(t, len(column_of)) for t in keys)
            weights.extend(sums)
            if np.isfinite(next_value):  # "any subset not listed", private to the class
                rows.append(r)
                cols.append(-1 - r)
                weights.append(float(next_value))
        n_sub, n_rows = len(column_of), len(involved)
        col = np.asarray(cols)
        col = np.where(col < 0, n_sub + (-1 - col), col)
        w = np.asarray(weights)
        # The matching needs non-zero weights; a constant shift moves every full matching alike.
        w = w - w.min() + 1.0
        graph = sp.csr_matrix((w, (np.asarray(rows), col)), shape=(n_rows, n_sub + n_rows))
        col_keys: list = list(column_of) + [("other", c) for c in involved]
        c_ind = _matching_by_component(graph, [(c, int(listed[c])) for c in involved], col_keys, solved)
        private = c_ind >= n_sub
        out_of_time = deadline is not None and clock() + (clock() - round_start) > deadline
        if not private.any() or out_of_time:
            subsets = list(column_of)
            displaced = []
            for r, c_col in enumerate(c_ind.tolist()):
                cls = involved[r]
                if c_col >= n_sub:
                    displaced.append(cls)
                    continue
                W[cls] = False
                W[cls, list(subsets[c_col])] = True
            if displaced:  # no time for another round: a feasible repair, not proven best
                _repair(A_sel, k, W, displaced)
            return W
        grow = [involved[r] for r in np.flatnonzero(private).tolist()]
        listed[grow] = listed[grow] * 4  # fewer rounds: each re-solves the components involved
        take_part(grow)


def _matching_by_component(graph: sp.csr_matrix, row_keys: list[tuple[int, int]], col_keys: list, solved: dict,
                           ) -> np.ndarray:
    """Maximum-weight full matching of the rows of ``graph``, one connected component at a
    time: the column matched to each row.  A component met before (the same classes with
    the same list lengths, ``row_keys``) reuses its answer from ``solved``, so the rounds
    that lengthen a few classes' lists re-solve only the components those classes are in.
    ``col_keys`` names the columns across rounds (their numbers change)."""
    n_rows = graph.shape[0]
    full = sp.bmat([[None, graph], [graph.T, None]], format="csr")
    _, label = connected_components(full, directed=False)
    by_label: dict[int, list[int]] = {}
    for r, lab in enumerate(label[:n_rows].tolist()):
        by_label.setdefault(lab, []).append(r)
    col_of = {key: j for j, key in enumerate(col_keys)}
    out = np.empty(n_rows, dtype=np.int64)
    for rs in by_label.values():
        key = tuple(row_keys[r] for r in rs)
        chosen = solved.get(key)
        if chosen is None:
            sub = graph[rs]
            used = np.unique(sub.indices)
            part = sub[:, used]
            if part.shape[0] * part.shape[1] <= _DENSE_MATCHING_CELLS:
                # small components dense: scipy's sparse matching was seen to hang on some
                # small inputs with many equal weights (tests/test_search.py)
                dense = np.full(part.shape, -1e12)
                coo = part.tocoo()
                dense[coo.row, coo.col] = coo.data
                _, c_local = linear_sum_assignment(dense, maximize=True)
            else:
                _, c_local = min_weight_full_bipartite_matching(part, maximize=True)
            chosen = [col_keys[int(used[c])] for c in c_local.tolist()]
            solved[key] = chosen
        out[rs] = [col_of[c] for c in chosen]
    return out


def evaluate_selection(problem: Problem, selection: np.ndarray, *, deadline: float | None = None,
                       exact: bool | None = None, clock: Callable[[], float] = time.perf_counter,
                       ) -> tuple[np.ndarray | None, float]:
    """``(W, Z)``: the best assignment of ``selection`` and its objective, or ``(None,
    -inf)`` when no assignment of it meets the rules (see :func:`best_assignment` for
    ``deadline``, ``exact``, ``clock`` and when it is proven best)."""
    W, z_a = best_assignment(problem, selection, deadline=deadline, exact=exact, clock=clock)
    if W is None:
        return None, -np.inf
    idx = np.flatnonzero(selection)
    return W, z_a - 0.5 * float(problem.R[np.ix_(idx, idx)].sum()) + float(problem.B[idx].sum())

