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


#: Largest ``n_classes * n_features`` whose assignment under shared pairs is solved exactly
#: by default; above it the model's root LP alone takes many seconds (CUB scale with 100
#: pairs: about 20 s), so a constructive assignment is used instead.
EXACT_SHARED_MAX_CELLS = 2_000


def best_assignment(problem: Problem, selection: np.ndarray, *, deadline: float | None = None,
                    exact: bool | None = None) -> tuple[np.ndarray | None, float]:
    """Exact best assignment ``W`` for a fixed selection, honouring ``problem.unique`` and
    the user's rules (``problem.rules``).

    Rules on single class-feature pairs shift the scores (a required pair by more, a
    forbidden one by less, than any assignment can otherwise gain), so the assignment below
    honours them whenever the selection allows it; shared class pairs need the exact
    assignment model of :class:`~qpmopt.Formulation` with every selected feature fixed,
    solved by HiGHS; if ``deadline`` (a ``time.perf_counter()`` value) passes first, the
    best assignment it found so far is returned (feasible, not proven best).  That model is
    used when ``exact`` is true, or by default up to :data:`EXACT_SHARED_MAX_CELLS` class
    and selected-feature pairs; above, :func:`_shared_pairs_greedy` builds a feasible
    assignment (not proven best; ``None`` when it finds none).

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
            small = problem.n_classes * problem.n_features <= EXACT_SHARED_MAX_CELLS
            if exact or (exact is None and small):
                return _assignment_model(problem, selection, deadline)
            W = _shared_pairs_greedy(problem, selection)
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
            W_sel = _unique_assignment(A_sel, k, group_size)
    W = np.zeros(A.shape, dtype=bool)
    W[:, idx] = W_sel
    if rules is not None and ((rules.assign & ~W).any() or (rules.forbid_assign & W).any()):
        return None, -np.inf
    return W, float(np.sum(A[W]))


def _shared_pairs_greedy(problem: Problem, selection: np.ndarray) -> np.ndarray | None:
    """A feasible assignment under every rule, built class by class (not proven best).

    Classes are visited component by component of the shared-pair graph (breadth first,
    from the class with most partners); a class takes the best k-set, among candidates
    built from each partner already placed, that meets the pair rule with every placed
    partner and (with uniqueness) is not taken yet.  The candidates from a partner's set
    ``S``: its ``m`` best features inside ``S`` and the best remaining ones outside it (mode
    ``exact``) or anywhere (``at_least``), and every set one swap away from the first placed
    partner's set (which, for CHiQPM's ``m = k - 1``, are all sets sharing exactly
    ``k - 1`` with it).  A class
    without placed partners takes its best k-set not taken yet.  Required and forbidden
    pairs are honoured through shifted scores, as in :func:`best_assignment`.  Returns
    ``W (n_c, n_f)`` bool or ``None`` when some class has no candidate left.
    """
    rules, k = problem.rules, problem.k
    idx = np.flatnonzero(selection)
    n_c, m_sel = problem.n_classes, idx.size
    scores = rule_scores(problem, idx)
    m, exact = rules.shared_count, rules.shared_exact
    partners: list[list[int]] = [[] for _ in range(n_c)]
    for a, b in rules.shared:
        partners[a].append(int(b))
        partners[b].append(int(a))

    def meets(c: int, t: frozenset, sets: dict) -> bool:
        for d in partners[c]:
            if d in sets:
                shared = len(t & sets[d])
                if (shared != m) if exact else (shared < m):
                    return False
        return True

    def best_with(c: int, s: frozenset) -> frozenset:
        inside = sorted(s, key=lambda j: -scores[c, j])[:m]
        rest = [j for j in range(m_sel) if j not in inside and (not exact or j not in s)]
        rest.sort(key=lambda j: -scores[c, j])
        return frozenset(inside + rest[: k - m])

    def candidates(c: int, placed: list[int]) -> list[frozenset]:
        if not placed:
            subsets, _ = _top_subsets(scores[c], k, 64)
            return [frozenset(t) for t in subsets]
        out = [best_with(c, sets[d]) for d in placed]
        s = sets[placed[0]]  # one partner's swap neighbourhood holds every set sharing k - 1 with it
        out += [(s - {x}) | {y} for x in s for y in range(m_sel) if y not in s]
        return out

    order: list[int] = []
    seen = np.zeros(n_c, dtype=bool)
    roots = sorted(range(n_c), key=lambda c: (-len(partners[c]), c))
    for root in roots:  # breadth first over each component of the pair graph
        if seen[root]:
            continue
        seen[root] = True
        queue = [root]
        while queue:
            c = queue.pop(0)
            order.append(c)
            for d in sorted(partners[c], key=lambda d: (-len(partners[d]), d)):
                if not seen[d]:
                    seen[d] = True
                    queue.append(d)
    sets: dict[int, frozenset] = {}
    taken: set[frozenset] = set()
    for c in order:
        placed = [d for d in partners[c] if d in sets]
        valid = [t for t in candidates(c, placed)
                 if len(t) == k and meets(c, t, sets) and not (problem.unique and t in taken)]
        if not valid:
            return None
        sets[c] = max(valid, key=lambda t: float(scores[c, list(t)].sum()))
        taken.add(sets[c])
    W = np.zeros(problem.A.shape, dtype=bool)
    for c, t in sets.items():
        W[c, idx[list(t)]] = True
    if (rules.assign & ~W).any() or (rules.forbid_assign & W).any():
        return None
    return W


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
        if not problem.unique or not identical_rows(W):
            return W, float(np.sum(problem.A[W]))
        if not answer.optimal:  # out of time with classes still colliding
            return None, -np.inf
        form.cut_collisions(W)


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
                       exact: bool | None = None) -> tuple[np.ndarray | None, float]:
    """``(W, Z)``: the best assignment of ``selection`` and its objective, or ``(None,
    -inf)`` when no assignment of it meets the rules (see :func:`best_assignment` for
    ``deadline``, ``exact`` and when it is proven best)."""
    W, z_a = best_assignment(problem, selection, deadline=deadline, exact=exact)
    if W is None:
        return None, -np.inf
    idx = np.flatnonzero(selection)
    return W, z_a - 0.5 * float(problem.R[np.ix_(idx, idx)].sum()) + float(problem.B[idx].sum())

