"""Shared small problems and an oracle for the tests (like cvxpy's solver_test_helpers)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from qpmopt.solution import Status, Termination


class FakeClock:
    """Advances by ``tick`` seconds at every reading: elapsed time counts readings, the
    same on any machine."""

    def __init__(self, tick: float = 1.0):
        self.now, self.tick, self.reads = 0.0, tick, 0

    def __call__(self) -> float:
        self.now += self.tick
        self.reads += 1
        return self.now


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


def star_instance(seed: int, *, negative_r: bool = False, mode: str = "exact"):
    """5 x 8 arrays and CHiQPM-style rules: class 0 paired with classes 1-3 (a star),
    for odd seeds one more pair among the leaves (shared count ``k - 1``, ``mode``).  Each
    class has two strong features of its own, so that the rule costs the leaves and the
    bounds keep the star (bounding it together is below its classes' top-k values)."""
    rng = np.random.default_rng(seed)
    _, R, B = random_instance(rng, 5, 8, negative_r=negative_r)
    A = rng.uniform(-0.2, 0.1, size=(5, 8))
    for c in range(5):
        A[c, rng.choice(8, 2, replace=False)] += rng.uniform(0.6, 1.0, size=2)
    pairs = [(0, 1), (0, 2), (0, 3)] + ([(1, 2)] if seed % 2 else [])
    return A, R, B, {"shared_pairs": pairs, "shared_mode": mode}


def ruled_preset(preset: str, seed: int, backend: str, time_limit: float):
    """A preset with CHiQPM's pairs (``similar_class_pairs(A, 0.5)``): ``(problem with the
    rules, the same without them, a rule-abiding answer from ``backend``)``."""
    import qpmopt
    from qpmopt.matrices import similar_class_pairs

    inst = qpmopt.instances.generate(preset, seed=seed)
    rules = {"shared_pairs": similar_class_pairs(inst.A, 0.5)}
    ruled = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features, constraints=rules)
    free = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    sol = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, constraints=rules,
                                  backend=backend, time_limit=time_limit)
    assert sol.objective is not None
    return ruled, free, sol


def small_arrays(seed, n_c=5, n_f=7):
    """Random arrays for the steering tests: A in [-0.2, 1], symmetric R of both signs, B."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(-0.2, 1.0, (n_c, n_f))
    R = rng.uniform(-0.2, 0.5, (n_f, n_f))
    R = (R + R.T) / 2
    return A, R, rng.uniform(-0.3, 0.3, n_f)


def oracle(A, R, B, k: int, n_sel: int, unique: bool) -> float:
    """Exhaustive optimum written independently of qpmopt: every selection and, for each,
    every assignment of k-subsets (with uniqueness by backtracking)."""
    return oracle_with_rules(A, R, B, k, n_sel, unique, {})


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


def oracle_with_rules(A, R, B, k: int, n_sel: int, unique: bool, rules: dict) -> float:
    """Exhaustive optimum under steering rules (``rules``: a dict of Constraints' keys),
    written from the rules' definitions alone: every selection that keeps the included
    features and avoids the excluded ones; for each, every assignment of allowed k-subsets
    by backtracking, checking uniqueness and shared pairs.  ``-inf`` when nothing is
    feasible."""
    n_c, n_f = A.shape
    B = np.zeros(n_f) if B is None else B
    include = set(rules.get("include_features", []))
    exclude = set(rules.get("exclude_features", []))
    require = set(map(tuple, rules.get("require_pairs", [])))
    forbid = set(map(tuple, rules.get("forbid_pairs", [])))
    shared = [tuple(p) for p in rules.get("shared_pairs", [])]
    count = rules.get("shared_count")
    count = k - 1 if count is None else count
    exact = rules.get("shared_mode", "exact") == "exact"
    best = -math.inf
    for sel in itertools.combinations(range(n_f), n_sel):
        chosen = set(sel)
        if not include <= chosen or exclude & chosen or any(f not in chosen for _, f in require):
            continue
        options = []
        for c in range(n_c):
            subsets = [frozenset(t) for t in itertools.combinations(sel, k)
                       if all((c, f) not in forbid for f in t) and all(f in t for (cc, f) in require if cc == c)]
            options.append(sorted(subsets, key=lambda t, c=c: -sum(A[c, f] for f in t)))
        z_rest = -sum(R[i, j] for i, j in itertools.combinations(sel, 2)) + sum(B[i] for i in sel)
        tops = [max((sum(A[c, f] for f in t) for t in options[c]), default=-math.inf) for c in range(n_c)]
        suffix = [sum(tops[c:]) for c in range(n_c)] + [0.0]
        found = [-math.inf]

        def rec(c, chosen_sets, acc, options=options, suffix=suffix, found=found):
            if acc + suffix[c] <= found[0] + 1e-12:
                return
            if c == n_c:
                found[0] = acc
                return
            for t in options[c]:
                if unique and t in chosen_sets:
                    continue
                ok = True
                for a, b in shared:
                    if c == max(a, b):
                        other = chosen_sets[min(a, b)]
                        n = len(t & other)
                        ok = ok and (n == count if exact else n >= count)
                if ok:
                    rec(c + 1, chosen_sets + [t], acc + sum(A[c, f] for f in t))

        rec(0, [], 0.0)
        if found[0] > -math.inf:
            best = max(best, found[0] + z_rest)
    return best


def assert_rules_hold_by_hand(selection, W, rules: dict, k: int) -> None:
    """Every steering rule checked with plain loops."""
    for f in rules.get("include_features", []):
        assert selection[f], f"feature {f} must be selected"
    for f in rules.get("exclude_features", []):
        assert not selection[f], f"feature {f} must not be selected"
    for c, f in rules.get("require_pairs", []):
        assert W[c, f], f"class {c} must use feature {f}"
    for c, f in rules.get("forbid_pairs", []):
        assert not W[c, f], f"class {c} must not use feature {f}"
    count = rules.get("shared_count")
    count = k - 1 if count is None else count
    for a, b in rules.get("shared_pairs", []):
        n = sum(1 for f in range(W.shape[1]) if W[a, f] and W[b, f])
        if rules.get("shared_mode", "exact") == "exact":
            assert n == count, f"classes {a}, {b} share {n}, expected {count}"
        else:
            assert n >= count, f"classes {a}, {b} share {n}, expected at least {count}"


def assert_within_gap_of_oracle(sol, A, R, B, k, n_sel, unique, gap_limit):
    """A solve under ``gap_limit``: feasible, its objective recomputed by hand, its bound
    never below the optimum, ``gap_limit`` or ``optimal`` as termination, and, where it
    stopped at the gap, the answer within that gap of the optimum.  Returns the optimum."""
    truth = oracle(A, R, B, k, n_sel, unique)
    assert_feasible_by_hand(sol.selection, sol.assignment, k, n_sel, unique)
    assert sol.objective == pytest.approx(objective_by_hand(A, R, B, sol.selection, sol.assignment), abs=1e-9)
    assert sol.bound >= truth - 1e-9  # the bound stays valid however early the search stopped
    assert sol.termination in (Termination.OPTIMAL, Termination.GAP_LIMIT)
    if sol.termination is Termination.GAP_LIMIT:
        assert sol.gap <= gap_limit + 1e-9
        # what the gap promises: the answer is at most that far below the optimum
        assert sol.objective >= truth - gap_limit * max(1.0, abs(sol.objective)) - 1e-9
    if sol.status is Status.OPTIMAL:
        assert sol.objective == pytest.approx(truth, abs=1e-9)
    return truth
