"""Shared small problems and an oracle for the tests (like cvxpy's solver_test_helpers)."""

from __future__ import annotations

import itertools
import math

import numpy as np


def random_instance(rng: np.random.Generator, n_c: int, n_f: int, *, negative_r: bool = False, with_b: bool = True):
    """Random QPM-like arrays: A in [-0.2, 1], symmetric R (>= 0 unless negative_r), B small."""
    A = rng.uniform(-0.2, 1.0, size=(n_c, n_f))
    R = rng.uniform(0, 0.6, size=(n_f, n_f))
    if negative_r:
        R -= 0.3
    R = (R + R.T) / 2
    np.fill_diagonal(R, 0)
    B = rng.uniform(-0.3, 0.3, size=n_f) if with_b else None
    return A, R, B


def oracle(A, R, B, k: int, n_sel: int, unique: bool) -> float:
    """Exhaustive optimum written independently of qpmopt: every selection and, for each,
    every assignment of k-subsets (with uniqueness by backtracking)."""
    n_c, n_f = A.shape
    B = np.zeros(n_f) if B is None else B
    best = -math.inf
    for sel in itertools.combinations(range(n_f), n_sel):
        subsets = list(itertools.combinations(sel, k))
        scores = np.array([[A[c, list(t)].sum() for t in subsets] for c in range(n_c)])
        if unique:
            z_a = _best_distinct(scores)
        else:
            z_a = scores.max(axis=1).sum()
        z_r = -sum(R[i, j] for i, j in itertools.combinations(sel, 2))
        z_b = sum(B[i] for i in sel)
        best = max(best, z_a + z_r + z_b)
    return best


def _best_distinct(scores: np.ndarray) -> float:
    n_c, n_t = scores.shape
    order = np.argsort(-scores, axis=1)
    best = [-math.inf]
    # an optimistic bound per remaining class prunes the backtracking
    tops = scores.max(axis=1)
    suffix = np.concatenate([np.cumsum(tops[::-1])[::-1], [0.0]])

    def rec(c: int, used: set, acc: float) -> None:
        if acc + suffix[c] <= best[0] + 1e-12:
            return
        if c == n_c:
            best[0] = acc
            return
        for t in order[c]:
            if t not in used:
                used.add(t)
                rec(c + 1, used, acc + scores[c, t])
                used.remove(t)

    rec(0, set(), 0.0)
    return best[0]


def objective_by_hand(A, R, B, selection, W) -> float:
    """Z of a solution, summed term by term (written apart from qpmopt.evaluate)."""
    chosen = [int(f) for f in np.flatnonzero(selection)]
    z = sum(float(A[c, f]) for c in range(A.shape[0]) for f in range(A.shape[1]) if W[c, f])
    if R is not None:
        z -= sum(float(R[i, j]) for a, i in enumerate(chosen) for j in chosen[a + 1 :])
    if B is not None:
        z += sum(float(B[f]) for f in chosen)
    return z


def assert_feasible_by_hand(selection, W, k: int, n_sel: int, unique: bool) -> None:
    """Every constraint checked with plain loops (written apart from qpmopt.evaluate)."""
    chosen = {int(f) for f in np.flatnonzero(selection)}
    assert len(chosen) == n_sel, f"{len(chosen)} features selected, expected {n_sel}"
    rows = []
    for c in range(W.shape[0]):
        used = {int(f) for f in np.flatnonzero(W[c])}
        assert len(used) == k, f"class {c} uses {len(used)} features"
        assert used <= chosen, f"class {c} uses unselected features {sorted(used - chosen)}"
        rows.append(frozenset(used))
    if unique:
        assert len(set(rows)) == len(rows), "two classes share a feature set"
