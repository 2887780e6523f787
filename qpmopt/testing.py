"""Conformance checks that any backend, built-in or third-party, can run against itself
(like ``dimod.testing``).  Use from a test::

    from qpmopt.testing import assert_backend_conforms
    def test_my_backend():
        assert_backend_conforms(MyBackend())

Each check solves small random instances and compares with the exhaustive oracle.
"""

from __future__ import annotations

import math

import numpy as np

from qpmopt.backends.base import Backend, OptionsError
from qpmopt.backends.registry import get_backend
from qpmopt.problem import Problem
from qpmopt.solution import Status
from qpmopt.solve import solve_problem

__all__ = ["assert_backend_conforms", "random_problem"]


def random_problem(seed: int, n_c: int = 5, n_f: int = 8, n_sel: int = 4, k: int = 2, *, unique: bool = True,
                   negative_r: bool = True) -> Problem:
    """A small random problem with both signs of R (unless ``negative_r=False``) and a bias."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(-0.2, 1.0, (n_c, n_f))
    R = rng.uniform(-0.3 if negative_r else 0.0, 0.6, (n_f, n_f))
    R = (R + R.T) / 2
    B = rng.uniform(-0.3, 0.3, n_f)
    return Problem.from_arrays(A, R, B, k=k, n_features=n_sel, unique=unique)


def _objective_by_hand(problem: Problem, selection: np.ndarray, W: np.ndarray) -> float:
    # Term by term, apart from qpmopt.evaluate, so that a bug there cannot hide one here.
    chosen = [int(f) for f in np.flatnonzero(selection)]
    z = sum(float(problem.A[c, f]) for c, f in zip(*np.nonzero(W)))
    z -= sum(float(problem.R[i, j]) for a, i in enumerate(chosen) for j in chosen[a + 1 :])
    return z + sum(float(problem.B[f]) for f in chosen)


def _broken_constraint(problem: Problem, selection: np.ndarray, W: np.ndarray) -> str | None:
    chosen = set(np.flatnonzero(selection).tolist())
    if len(chosen) != problem.n_features:
        return f"{len(chosen)} features selected, expected {problem.n_features}"
    rows = []
    for c in range(problem.n_classes):
        used = set(np.flatnonzero(W[c]).tolist())
        if len(used) != problem.k:
            return f"class {c} uses {len(used)} features, expected {problem.k}"
        if not used <= chosen:
            return f"class {c} uses unselected features {sorted(used - chosen)}"
        rows.append(frozenset(used))
    if problem.unique and len(set(rows)) < len(rows):
        return "two classes use the same feature set"
    return None


def assert_backend_conforms(backend: str | Backend, *, seeds: range = range(6), time_limit: float = 20.0) -> None:
    """Raise ``AssertionError`` where ``backend`` breaks the contract.

    Checks: every answer is feasible and its reported objective is the independent
    recomputation; a reported bound is >= the true optimum; an exact backend that says
    ``optimal`` matches the optimum; the same seed gives the same answer when the backend
    claims determinism; unknown options are refused.
    """
    impl = get_backend(backend)
    oracle = get_backend("bruteforce")
    for seed in seeds:
        problem = random_problem(seed, unique=seed % 2 == 0)
        truth = solve_problem(problem, backend=oracle).objective
        sol = solve_problem(problem, backend=impl, time_limit=time_limit, seed=seed)
        assert sol.status in (Status.OPTIMAL, Status.FEASIBLE), f"{impl.name}: no solution on seed {seed}"
        broken = _broken_constraint(problem, sol.selection, sol.assignment)
        assert broken is None, f"{impl.name}: infeasible on seed {seed}: {broken}"
        recomputed = _objective_by_hand(problem, sol.selection, sol.assignment)
        assert math.isclose(sol.objective, recomputed, rel_tol=1e-9, abs_tol=1e-9), (
            f"{impl.name}: reported objective {sol.objective}, recomputed {recomputed} (seed {seed})")
        assert sol.objective <= truth + 1e-9, f"{impl.name}: objective above the optimum on seed {seed}"
        if sol.bound is not None:
            assert sol.bound >= truth - 1e-9, f"{impl.name}: bound {sol.bound} below the optimum {truth}"
        if sol.status is Status.OPTIMAL:
            assert math.isclose(sol.objective, truth, rel_tol=1e-9, abs_tol=1e-9), (
                f"{impl.name}: claims optimal at {sol.objective}, optimum is {truth} (seed {seed})"
            )
        if impl.capabilities_for(problem).deterministic:
            again = solve_problem(problem, backend=impl, time_limit=time_limit, seed=seed)
            assert np.array_equal(again.features, sol.features), f"{impl.name}: not deterministic on seed {seed}"
    try:
        impl.parse_options({"__no_such_option__": 1})
    except OptionsError:
        pass
    else:
        raise AssertionError(f"{impl.name}: accepted an unknown option")
