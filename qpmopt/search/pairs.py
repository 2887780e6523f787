"""Class assignments under shared class pairs for a fixed selection: construction, then
local search over the classes' k-sets (feasible, not proven best).

Every class holds one k-subset of the selected features.  The construction places the
classes one at a time, the one with the fewest sets left that meet its placed partners
first (a component of the pair graph starts at its class with most partners, on the set
that leaves those partners most value).  A move gives one class another k-set from a list
built around its partners' sets (every set sharing the rule's count with a partner's, as
far as there are few enough of them), its own best sets and its one-swap neighbours.
Conflict moves mend what the construction left broken (fewest broken rules, ties by
value, a short tabu list against cycling); improving moves then raise the value while
every rule stays met.  Restarts with perturbed scores keep the best result.  A component
that placement by value and conflict moves leave broken is placed by structure alone
(:mod:`qpmopt.search.embedding`: a core of ``k - 2`` features shared by the component,
two labels per class) and improved from there.

For CHiQPM's rule (``k - 1`` shared) a partner's list holds all ``k * (n_sel - k)`` sets
one swap from its set, so every set that meets that partner is on it.  On ``cub-1`` with
``similar_class_pairs(A, 0.5)`` one class is in 51 of the 100 pairs; there the previous
class-by-class greedy found no assignment for some good selections, and CP-SAT (tried as a
repair) took 10 s and more to find a first one.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components, maximum_bipartite_matching

from qpmopt.constraints import neighbour_lists
from qpmopt.problem import Problem
from qpmopt.search.assignment import _top_subsets
from qpmopt.search.embedding import label_embedding
from qpmopt.search.neighbourhood import rule_scores

__all__ = ["pair_assignment"]

#: most sets listed around one partner's set (all of them for CHiQPM's k - 1 at CUB size)
_PER_PARTNER = 4096
#: a class's own best sets put on its candidate list
_OWN_BEST = 32
#: perturbed rebuilds of the components a construction left broken (few: where they do
#: not mend a component, the structural placement of :func:`_embed_components` does; on
#: the imagenet preset eight rebuilds of its 190-class component took 12 s and all failed)
_REBUILDS = 3
#: conflict moves without a new fewest-broken count before they give up
_STALL = 200
#: sets a placed class tries, best first, for one that leaves its waiting partners room
_TRIES = 16


def pair_assignment(problem: Problem, selection: np.ndarray, *, start: np.ndarray | None = None,
                    deadline: float | None = None, max_moves: int | None = None, restarts: int = 4,
                    seed: int = 0,
                    clock: Callable[[], float] = time.perf_counter) -> np.ndarray | None:
    """An assignment of ``selection`` that meets every rule (shared pairs, required and
    forbidden pairs, uniqueness), found by construction and local search; ``None`` when
    every try ends with a rule still broken (which does not prove that none exists).

    Args:
        selection: ``(n_f,)`` bool mask with ``n_features`` entries set.
        start: optional ``(n_c, n_f)`` bool assignment (``k`` features per class, all
            selected) used instead of the first construction.
        deadline: a ``clock()`` value after which no move starts.
        max_moves: most class moves in all (default ``200 * n_c``), so that the search
            ends without a deadline too.
        restarts: most constructions tried (the first without perturbation).
        seed: seed of the perturbations, tie-breaking and tabu tenure.

    Returns:
        ``W (n_c, n_f)`` bool or ``None``.
    """
    rules, k = problem.rules, problem.k
    selection = np.asarray(selection, dtype=bool)
    idx = np.flatnonzero(selection)
    n_c = problem.n_classes
    scores = rule_scores(problem, idx)
    rng = np.random.default_rng(seed)
    state = _State(problem, scores, rng)
    state.reset(np.sort(np.argsort(-scores, axis=1, kind="stable")[:, :k], axis=1))
    if start is not None:
        start = np.asarray(start, dtype=bool)
        if start.shape != problem.A.shape or (start.sum(axis=1) != k).any() or (start[:, ~selection].any()):
            raise ValueError(f"start: expected a ({n_c}, {problem.n_candidates}) bool assignment of k={k} "
                             "selected features per class")
        start = np.sort(np.nonzero(start[:, idx])[1].reshape(n_c, k), axis=1)
    budget = _Budget(200 * n_c if max_moves is None else int(max_moves), deadline, clock)

    # Constructions (the first without noise); the components of the pair graph where one
    # left a rule broken are built again alone with perturbations, then conflict moves
    # mend what is left and improving moves raise the value; the best result is kept.
    best_sets, best_value, tries = None, -np.inf, 0
    # components that value-driven placement could not meet in an earlier try of this call
    # (not kept across calls: the answer would depend on what was solved before)
    hard = np.zeros(0, dtype=np.int64)
    while budget.left() and tries < restarts:
        fixed = np.zeros(n_c, dtype=bool)
        if start is not None and tries == 0:
            state.reset(start)
        else:
            if hard.size:
                fixed = np.isin(state.component, _embed_components(state, problem, hard, seed, budget))
            state.reset(_construct(state, rng, 0.05 if tries else 0.0, keep=fixed if fixed.any() else None))
        tries += 1
        for _ in range(_REBUILDS):
            broken = state.broken_classes()
            if not broken.size or not budget.left():
                break
            keep = ~np.isin(state.component, state.component[broken]) | fixed
            if keep.all():
                break
            state.reset(_construct(state, rng, 0.5, keep=keep))
        _conflict_moves(state, rng, _STALL, budget)
        broken = state.broken_classes()
        stuck = np.setdiff1d(state.component[broken], hard)
        if stuck.size:
            # Values led into a dead end: place those components by structure alone (a
            # shared core and label pairs), then mend and improve from there.
            placed = _embed_components(state, problem, stuck, seed, budget)
            if placed.size:
                hard = np.union1d(hard, placed)
                _conflict_moves(state, rng, _STALL, budget)
        if state.broken_classes().size:
            if best_sets is None:
                break  # the later tries only perturb the values: they would fail alike
            continue
        _improving_moves(state, rng, budget)
        value = float(scores[np.arange(n_c)[:, None], state.sets].sum())
        if value > best_value:
            best_sets, best_value = state.sets.copy(), value
    if best_sets is None:
        return None
    state.reset(best_sets)
    W = np.zeros(problem.A.shape, dtype=bool)
    W[np.arange(n_c)[:, None], idx[state.sets]] = True
    if rules is not None and ((rules.assign & ~W).any() or (rules.forbid_assign & W).any()):
        return None  # a required or forbidden pair the selection cannot honour
    return W


def _embed_components(state: _State, problem: Problem, components: np.ndarray, seed: int,
                      budget: _Budget) -> np.ndarray:
    """Give the classes of each of ``components`` (ids of ``state.component``) sets built
    from :func:`~qpmopt.search.embedding.label_embedding`: ``k - 2`` features common to
    the component and two labels per class, neighbours sharing one label (so their sets
    share ``k - 1``, or ``k - 2`` with disjoint labels).  Which selected feature stands for
    which core element or label is a linear assignment on the classes' scores.  Returns
    the ids of the components placed; only their classes change.  Applies to shared
    counts ``k - 1`` and ``k - 2`` and to components without required or forbidden pairs
    (the structure ignores them)."""
    k, m_sel, count = state.k, state.m_sel, state.count
    core = k - 2
    rules = problem.rules
    placed: list[int] = []
    if core < 0 or rules is None or count < core or (state.exact and count > core + 1):
        return np.array(placed, dtype=np.int64)
    overlap = count - core
    singles = rules.assign.any(axis=1) | rules.forbid_assign.any(axis=1)
    sets = state.sets.copy()
    for comp in components.tolist():
        members = np.flatnonzero(state.component == comp)
        if singles[members].any():
            continue
        local = np.full(state.n_c, -1, dtype=np.int64)
        local[members] = np.arange(members.size)
        inside = np.isin(state.pairs[:, 0], members)
        edges = local[state.pairs[inside]]
        labels = _cached_embedding(members.size, edges.tobytes(), m_sel - core, overlap, state.exact,
                                   state.unique, seed, budget.deadline, budget.clock)
        if labels is None:
            continue
        # element e < core is in every member's set, element core + l is label l
        holds = np.zeros((members.size, m_sel), dtype=bool)
        holds[:, :core] = True
        holds[np.arange(members.size)[:, None], core + labels] = True
        profit = holds.T.astype(np.float64) @ state.scores[members]  # (element, selected position)
        element, position = linear_sum_assignment(profit, maximize=True)
        where = np.empty(m_sel, dtype=np.int64)
        where[element] = position
        sets[members] = np.sort(where[np.nonzero(holds)[1].reshape(members.size, k)], axis=1)
        placed.append(comp)
    if placed:
        state.reset(sets)
    return np.array(placed, dtype=np.int64)


#: label embeddings found, by component graph, labels, rule and seed (a pure function of
#: those, so remembering them changes no answer)
_EMBEDDINGS: dict[tuple, np.ndarray] = {}


def _cached_embedding(n_nodes: int, edges: bytes, n_labels: int, overlap: int, exact: bool, distinct: bool,
                      seed: int, deadline: float | None, clock: Callable[[], float]) -> np.ndarray | None:
    """:func:`label_embedding` of two labels, remembered: it depends on the pair graph
    alone, and searches call the assignment for many selections.  Failures are not kept
    (a later call may have more time)."""
    key = (n_nodes, edges, n_labels, overlap, exact, distinct, seed)
    if key not in _EMBEDDINGS:
        found = label_embedding(n_nodes, np.frombuffer(edges, dtype=np.int64).reshape(-1, 2), n_labels, 2,
                                overlap, exact=exact, distinct=distinct, seed=seed, deadline=deadline, clock=clock)
        if found is None:
            return None
        if len(_EMBEDDINGS) >= 16:
            _EMBEDDINGS.pop(next(iter(_EMBEDDINGS)))
        _EMBEDDINGS[key] = found
    return _EMBEDDINGS[key]


class _Budget:
    """Moves left and a deadline."""

    def __init__(self, moves: int, deadline: float | None, clock: Callable[[], float]) -> None:
        self.moves, self.deadline, self.clock = moves, deadline, clock

    def left(self) -> bool:
        return self.moves > 0 and (self.deadline is None or self.clock() < self.deadline)


def _construct(state: _State, rng: np.random.Generator, noise: float, keep: np.ndarray | None = None) -> np.ndarray:
    """Sets placed class by class, the class with the fewest sets left that meet its placed
    partners first (a component starts at its class with most partners, on the set that
    leaves its partners most value); each class takes its best such set that leaves every
    constrained unplaced partner a set, else its best such set, else the one breaking
    fewest rules (the conflict moves repair those).  ``noise`` (relative to ``max |A|``)
    perturbs the values and the choice of each component's first class on restarts.
    ``keep`` (``(n_c,)`` bool) marks classes that keep their current sets."""
    n_c, k = state.n_c, state.k
    scores = state.scores + noise * state.scale * rng.random(state.scores.shape) if noise else state.scores
    placed = np.zeros(n_c, dtype=bool) if keep is None else keep.copy()
    member = np.zeros((n_c, state.m_sel), dtype=np.int8)
    sets = state.sets.copy()
    member[np.flatnonzero(placed)[:, None], sets[placed]] = 1
    taken: set[int] = set(state.key[placed].tolist())

    def valid(c: int, cand: np.ndarray) -> np.ndarray:
        p = state.partners[c]
        p = p[placed[p]]
        ok = np.ones(len(cand), dtype=bool)
        if p.size:
            ok &= ~state._pair_broken(member[p][:, cand].sum(axis=2)).any(axis=0)
        if state.unique and taken:
            ok &= ~np.isin(state.keys(cand), np.fromiter(taken, dtype=np.uint64, count=len(taken)))
        return ok

    def candidates(c: int) -> np.ndarray:
        p = state.partners[c]
        p = p[placed[p]]
        if not p.size:
            return state.own[c]
        parts = [state.own[c]] + [state._sharing(c, sets[p[0]], j) for j in state.allowed]
        return _distinct(state, np.concatenate(parts))

    def place(c: int, t: np.ndarray) -> None:
        sets[c] = np.sort(t)
        member[c, sets[c]] = 1
        placed[c] = True
        taken.add(int(state.keys(sets[c][None])[0]))

    def root_candidates(c: int) -> np.ndarray:
        # the class's own best sets and the best sets of its partners' summed scores
        p = state.partners[c]
        pooled = scores[c] + scores[p].sum(axis=0) if p.size else scores[c]
        subs, _ = _top_subsets(pooled, k, _OWN_BEST)
        return _distinct(state, np.concatenate([state.own[c], np.array(subs, dtype=np.int64).reshape(-1, k)]))

    def lookahead(c: int, cand: np.ndarray) -> np.ndarray:
        # own value plus each unplaced partner's best value one swap away from the
        # candidate (the sets sharing k - 1 with it): its sum less its worst member plus
        # the partner's best feature outside it
        value = scores[c, cand].sum(axis=1)
        q = state.partners[c]
        q = q[~placed[q]]
        if not q.size:
            return value
        inside = scores[q][:, cand]  # (q, n, k)
        top = np.argsort(-scores[q], axis=1, kind="stable")[:, : k + 1]  # (q, k + 1)
        top_vals = np.take_along_axis(scores[q], top, axis=1)
        in_cand = (top[:, None, :, None] == cand[None, :, None, :]).any(axis=3)  # (q, n, k + 1)
        first_out = np.argmax(~in_cand, axis=2)  # k + 1 > k members: one lies outside
        best_out = np.take_along_axis(np.broadcast_to(top_vals[:, None, :], in_cand.shape), first_out[..., None],
                                      axis=2)[..., 0]
        return value + (inside.sum(axis=2) - inside.min(axis=2) + best_out).sum(axis=0)

    def leaves_room(t: np.ndarray, partner_set: set[int]) -> bool:
        # after a class with partners ``partner_set`` takes t: every waiting class (an unplaced class with a placed partner)
        # keeps a set that meets its placed partners, and with uniqueness they can all
        # have different ones (a bipartite matching of waiting classes to sets)
        t_hot = np.zeros(state.m_sel, dtype=bool)
        t_hot[t] = True
        t_key = int(state.keys(t[None])[0])
        rest = []
        for q, dom in domains.items():
            if not len(dom):
                continue  # already wiped out: the conflict moves mend it
            keep = np.ones(len(dom), dtype=bool)
            if q in partner_set:
                keep = ~state._pair_broken(t_hot[dom].sum(axis=1))
            if state.unique:
                keep &= state.keys(dom) != t_key
            if not keep.any():
                return False
            rest.append(dom[keep])
        if not state.unique or len(rest) < 2:
            return True
        keys = [state.keys(dom) for dom in rest]
        uniq, col = np.unique(np.concatenate(keys), return_inverse=True)
        if uniq.size < len(rest):
            return False
        row = np.repeat(np.arange(len(rest)), [len(x) for x in keys])
        graph = sp.csr_matrix((np.ones(row.size, dtype=np.int8), (row, col)), shape=(len(rest), uniq.size))
        return bool((maximum_bipartite_matching(graph, perm_type="column") >= 0).all())

    degree = np.array([p.size for p in state.partners])
    domains: dict[int, np.ndarray] = {}  # unplaced classes with a placed partner: their valid sets
    while not placed.all():
        if domains:
            c = min(domains, key=lambda d: (len(domains[d]), -degree[d], d))
            cand = candidates(c)
            value = scores[c, cand].sum(axis=1)
        else:
            # unplaced, most partners (on restarts, any of the three with most)
            order = np.lexsort((np.arange(n_c), -degree, placed))
            c = int(order[rng.integers(min(3, int((~placed).sum())))] if noise else order[0])
            cand = root_candidates(c) if degree[c] else state.own[c]
            one_off = state.count == k - 1  # the partners' sets are one swap from the root's
            value = lookahead(c, cand) if degree[c] and one_off else scores[c, cand].sum(axis=1)
        domains.pop(c, None)
        partner_set = set(state.partners[c].tolist())
        ok = valid(c, cand)
        if ok.any():
            # best first: a few, then (rarely needed, and slower) every set that meets the rules
            ranked = np.argsort(-np.where(ok, value, -np.inf), kind="stable")[: int(ok.sum())]
            pick = next((j for j in ranked[:_TRIES] if leaves_room(cand[j], partner_set)), None)
            if pick is None:
                pick = next((j for j in ranked[_TRIES:] if leaves_room(cand[j], partner_set)), ranked[0])
            place(c, cand[pick])
        else:  # nothing meets every placed partner: the set breaking fewest rules
            viol = np.zeros(len(cand))
            p = state.partners[c][placed[state.partners[c]]]
            if p.size:
                viol = state._pair_broken(member[p][:, cand].sum(axis=2)).sum(axis=0)
            fewest = viol == viol.min()
            place(c, cand[int(np.argmax(np.where(fewest, value, -np.inf)))])
        for q in state.partners[c].tolist():
            if not placed[q]:
                cq = candidates(q)
                domains[q] = cq[valid(q, cq)]
    return sets


def _conflict_moves(state: _State, rng: np.random.Generator, stall: int, budget: _Budget) -> None:
    """Min-conflicts moves with a short tabu list, until nothing is broken, the budget is
    spent or ``stall`` moves pass without a new fewest-broken count."""
    tabu: dict[tuple[int, int], int] = {}
    step, best, since = 0, None, 0
    while budget.left():
        broken = state.broken_classes()
        if not broken.size:
            return
        if best is None or broken.size < best:
            best, since = broken.size, 0
        elif since >= stall:
            return
        c = int(broken[rng.integers(len(broken))])
        cand = state.candidates(c)
        viol = state.violations(c, cand)
        value = state.scores[c, cand].sum(axis=1)
        banned = np.array([tabu.get((c, int(h)), -1) > step for h in state.keys(cand)])
        viol = viol + banned * (4 * len(state.partners[c]) + 4)
        fewest = viol == viol.min()
        pick = np.flatnonzero(fewest & (value >= value[fewest].max() - 1e-12))
        j = int(pick[rng.integers(len(pick))])
        tabu[(c, int(state.key[c]))] = step + 3 + int(rng.integers(8))
        state.move(c, cand[j])
        budget.moves -= 1
        step += 1
        since += 1


def _improving_moves(state: _State, rng: np.random.Generator, budget: _Budget) -> None:
    """Each class in turn takes its best candidate set that keeps every rule met, while
    that raises the value."""
    improved = True
    while improved and budget.left():
        improved = False
        for c in rng.permutation(state.n_c).tolist():
            if not budget.left():
                return
            cand = state.candidates(c)
            ok = state.violations(c, cand) == 0
            if not ok.any():
                continue
            value = np.where(ok, state.scores[c, cand].sum(axis=1), -np.inf)
            j = int(np.argmax(value))
            if value[j] > state.scores[c, state.sets[c]].sum() + 1e-12:
                state.move(c, cand[j])
                budget.moves -= 1
                improved = True


class _State:
    """The classes' current k-sets (positions in the selection) and what they break."""

    def __init__(self, problem: Problem, scores: np.ndarray, rng: np.random.Generator) -> None:
        rules = problem.rules
        self.k, self.unique = problem.k, problem.unique
        self.scores = scores
        self.n_c, self.m_sel = scores.shape
        self.scale = float(np.abs(problem.A).max()) or 1.0  # of the scores without the rules' shifts
        self.count = 0 if rules is None else int(rules.shared_count)
        self.exact = True if rules is None else bool(rules.shared_exact)
        # how many features of a partner's set a class's set may share
        self.allowed = [self.count] if self.exact else list(range(self.count, self.k + 1))
        self.pairs = np.zeros((0, 2), np.int64) if rules is None else rules.shared
        self.partners = neighbour_lists(self.n_c, self.pairs)
        # components of the pair graph (a class without partners is its own)
        self.component = np.arange(self.n_c)
        if rules is not None and len(rules.shared):
            graph = sp.coo_matrix((np.ones(len(rules.shared)), (rules.shared[:, 0], rules.shared[:, 1])),
                                  shape=(self.n_c, self.n_c))
            self.component = connected_components(graph, directed=False)[1]
        # A set's key: a sum of random 60-bit weights, so that equal sets have equal keys;
        # two different sets sharing one is (almost) impossible and only makes a set look
        # taken, never a taken one free.
        self.weights = rng.integers(1, 2**60, size=self.m_sel, dtype=np.int64).astype(np.uint64)
        self.own = [self._own_best(c) for c in range(self.n_c)]

    def _own_best(self, c: int) -> np.ndarray:
        subsets, _ = _top_subsets(self.scores[c], self.k, _OWN_BEST)
        return np.sort(np.array(subsets, dtype=np.int64).reshape(-1, self.k), axis=1)

    def reset(self, sets: np.ndarray) -> None:
        self.sets = np.array(sets, dtype=np.int64)
        self.member = np.zeros((self.n_c, self.m_sel), dtype=np.int8)
        self.member[np.arange(self.n_c)[:, None], self.sets] = 1
        self.key = self.keys(self.sets)
        self.taken: dict[int, int] = {}
        for h in self.key.tolist():
            self.taken[h] = self.taken.get(h, 0) + 1

    def keys(self, sets: np.ndarray) -> np.ndarray:
        return self.weights[sets].sum(axis=1)

    def move(self, c: int, new: np.ndarray) -> None:
        old = int(self.key[c])
        self.taken[old] -= 1
        if not self.taken[old]:
            del self.taken[old]
        self.member[c, self.sets[c]] = 0
        self.sets[c] = np.sort(new)
        self.member[c, self.sets[c]] = 1
        self.key[c] = self.keys(self.sets[c][None])[0]
        h = int(self.key[c])
        self.taken[h] = self.taken.get(h, 0) + 1

    def _pair_broken(self, overlap: np.ndarray) -> np.ndarray:
        return overlap != self.count if self.exact else overlap < self.count

    def broken_classes(self) -> np.ndarray:
        """Classes in a broken shared pair or (with uniqueness) a collision."""
        bad = np.zeros(self.n_c, dtype=bool)
        a, b = self.pairs[:, 0], self.pairs[:, 1]
        broken = self._pair_broken((self.member[a] & self.member[b]).sum(axis=1))
        bad[a[broken]] = True
        bad[b[broken]] = True
        if self.unique:
            counts = np.array([self.taken[int(h)] for h in self.key])
            bad |= counts > 1
        return np.flatnonzero(bad)

    def violations(self, c: int, cand: np.ndarray) -> np.ndarray:
        """Rules each candidate set ``cand (n, k)`` of class ``c`` would break."""
        p = self.partners[c]
        viol = np.zeros(len(cand), dtype=np.int64)
        if p.size:
            overlap = self.member[p][:, cand].sum(axis=2)  # (partners, n)
            viol += self._pair_broken(overlap).sum(axis=0)
        if self.unique:
            viol += np.isin(self.keys(cand), np.delete(self.key, c))
        return viol

    def candidates(self, c: int) -> np.ndarray:
        """Candidate k-sets of class ``c`` (``(n, k)`` positions, distinct sets; a row's
        order is not sorted): its own best sets, its one-swap neighbours and the sets
        around each partner's that meet the pair rule."""
        parts = [self.own[c], _one_swap(self.sets[c], self.m_sel)]
        parts += [self._sharing(c, self.sets[d], j) for d in self.partners[c] for j in self.allowed]
        return _distinct(self, np.concatenate(parts))

    def _sharing(self, c: int, base: np.ndarray, j: int) -> np.ndarray:
        """k-sets with exactly ``j`` positions of ``base``: all of them when there are at
        most :data:`_PER_PARTNER`, else each j-subset of ``base`` completed by class
        ``c``'s best positions outside it."""
        k, m_sel = self.k, self.m_sel
        if j == k:
            return base[None].copy()
        if j == k - 1:
            return _one_swap(base, m_sel)
        outside = np.setdiff1d(np.arange(m_sel), base)
        inner = list(itertools.combinations(base.tolist(), j))
        n_outer = math.comb(outside.size, k - j)
        if n_outer == 0:
            return np.zeros((0, k), dtype=np.int64)
        if len(inner) * n_outer <= _PER_PARTNER:
            outer = np.array(list(itertools.combinations(outside.tolist(), k - j)), dtype=np.int64).reshape(-1, k - j)
            inner_arr = np.array(inner, dtype=np.int64).reshape(-1, j)
            return np.concatenate([np.repeat(inner_arr, len(outer), axis=0), np.tile(outer, (len(inner_arr), 1))], axis=1)
        best_out = outside[np.argsort(-self.scores[c, outside], kind="stable")[: k - j]]
        inner = inner[:_PER_PARTNER]
        return np.array([list(t) + best_out.tolist() for t in inner], dtype=np.int64)


def _distinct(state: _State, cand: np.ndarray) -> np.ndarray:
    """``cand (n, k)`` without repeated sets (rows need not be sorted)."""
    _, first = np.unique(state.keys(cand), return_index=True)
    return cand[np.sort(first)]


def _one_swap(base: np.ndarray, m_sel: int) -> np.ndarray:
    """The ``k * (m_sel - k)`` sets one swap away from ``base``."""
    k = base.size
    outside = np.setdiff1d(np.arange(m_sel), base)
    if outside.size == 0:
        return np.zeros((0, k), dtype=np.int64)
    rows = np.repeat(base[None], k * outside.size, axis=0)
    rows[np.arange(rows.shape[0]), np.repeat(np.arange(k), outside.size)] = np.tile(outside, k)
    return rows
