"""Small label sets for the nodes of a graph such that neighbours share a given number of
labels: a feasibility search, blind to values, for shared class pairs the value-driven
search in :mod:`qpmopt.search.pairs` cannot meet.

Why it exists: on the ``imagenet`` preset with CHiQPM's pairs (``similar_class_pairs(A,
0.5)``, 500 pairs) one component of the pair graph holds 190 classes, 275 pairs and 98
triangles.  Placing classes by value left 13 of them broken and conflict moves did not
mend them; CP-SAT on the component's ``k``-sets found nothing in 60 s.  Giving all the
component's classes ``k - 2`` common features (a "core") leaves each class two labels out
of ``n_sel - k + 2``; paired classes then share ``k - 1`` features exactly when their
label pairs share one label.  That much smaller problem is solved by heat-bath
annealing (each step gives one node a label set drawn with probability falling
exponentially in the rules it would break), with restarts.

Which selected feature plays the role of which label is decided afterwards by the
caller (a linear assignment on value), so the search itself does not depend on the
selection and its result can be cached.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from qpmopt.constraints import neighbour_lists

__all__ = ["label_embedding", "MAX_LABEL_SETS"]

#: most candidate label sets (the table of their pairwise overlaps is this squared, in
#: bytes)
MAX_LABEL_SETS = 6000
#: temperature schedule, in units of one broken rule: start, factor per sweep, floor; and
#: sweeps (one step per node each) before a restart from a new random state.  Measured on
#: graphs planted from 31 of the 36 pairs of 9 labels (nearly rigid: 20 seeds) and on the
#: imagenet preset's 190-class component: cooling by 0.97 to 0.15 with restarts every
#: 200 sweeps solved 15 of the 20 planted graphs (the component in about 1 s); this
#: schedule solved all 20 (the component in about 3 s).
_T_START, _T_FACTOR, _T_FLOOR = 1.0, 0.99, 0.1
_RESTART_SWEEPS = 400


def label_embedding(n_nodes: int, edges: np.ndarray, n_labels: int, size: int, overlap: int, *,
                    exact: bool = True, distinct: bool = True, seed: int = 0, max_sweeps: int = 2000,
                    deadline: float | None = None,
                    clock: Callable[[], float] = time.perf_counter) -> np.ndarray | None:
    """Label sets for the nodes of a graph: every node gets ``size`` of ``n_labels``
    labels, the two ends of every edge share exactly ``overlap`` labels (at least that many
    when ``exact`` is false), and with ``distinct`` no two nodes get the same set.

    Args:
        n_nodes: number of nodes.
        edges: ``(n_edges, 2)`` node indices, ``0 <= index < n_nodes``.
        n_labels, size: the labels to choose from and how many each node gets.
        overlap: labels the ends of an edge share.
        seed: seed of the random states and draws (deterministic given it, unless the
            deadline cuts the search).
        max_sweeps: most sweeps (one step per node) over all restarts.
        deadline: a ``clock()`` value after which no sweep starts.

    Returns:
        ``(n_nodes, size)`` int64, each row sorted, or ``None`` when none was found (which
        does not prove that none exists) or there are more than :data:`MAX_LABEL_SETS`
        candidate sets.
    """
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if size < 1 or size > n_labels or math.comb(n_labels, size) > MAX_LABEL_SETS:
        return None
    if distinct and math.comb(n_labels, size) < n_nodes:
        return None
    sets, table = _candidate_sets(n_labels, size)
    nbr = neighbour_lists(n_nodes, edges)
    rng = np.random.default_rng(seed)
    n_sets = len(sets)

    def broken(cols: np.ndarray) -> np.ndarray:  # (n_sets, deg) -> rules broken per candidate
        ov = table[:, cols]
        return (ov != overlap if exact else ov < overlap).sum(axis=1)

    sweeps = 0
    while sweeps < max_sweeps:
        label = rng.integers(n_sets, size=n_nodes)
        count = np.bincount(label, minlength=n_sets)
        energy = _energy(label, count, edges, table, overlap, exact, distinct)
        temperature = _T_START
        for _ in range(min(_RESTART_SWEEPS, max_sweeps - sweeps)):
            if energy == 0:
                return sets[label]
            if deadline is not None and clock() >= deadline:
                return None
            sweeps += 1
            for i in rng.permutation(n_nodes).tolist():
                count[label[i]] -= 1  # node i off its set: count holds the others
                cost = broken(label[nbr[i]]).astype(np.float64) if nbr[i].size else np.zeros(n_sets)
                if distinct:
                    cost += count
                weight = np.exp(-(cost - cost.min()) / temperature)
                cum = np.cumsum(weight)
                j = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), n_sets - 1)
                energy += int(cost[j] - cost[label[i]])
                label[i] = j
                count[j] += 1
            temperature = max(_T_FLOOR, temperature * _T_FACTOR)
        if energy == 0:
            return sets[label]
    return None


@lru_cache(maxsize=8)
def _candidate_sets(n_labels: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every ``size``-subset of the labels and the table of their pairwise overlaps."""
    sets = np.array(list(itertools.combinations(range(n_labels), size)), dtype=np.int64).reshape(-1, size)
    hot = np.zeros((len(sets), n_labels), dtype=np.float32)
    hot[np.arange(len(sets))[:, None], sets] = 1.0
    table = (hot @ hot.T).astype(np.int8)
    sets.setflags(write=False)
    table.setflags(write=False)
    return sets, table


def _energy(label: np.ndarray, count: np.ndarray, edges: np.ndarray, table: np.ndarray, overlap: int,
            exact: bool, distinct: bool) -> int:
    """Rules broken: edges whose ends share the wrong number of labels, plus, with
    ``distinct``, the pairs of nodes on one label set (what a step's cost counts)."""
    ov = table[label[edges[:, 0]], label[edges[:, 1]]] if len(edges) else np.zeros(0)
    bad = int((ov != overlap).sum() if exact else (ov < overlap).sum())
    if distinct:
        bad += int((count * (count - 1) // 2).sum())
    return bad
