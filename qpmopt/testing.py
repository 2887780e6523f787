"""Conformance checks that any backend, built-in or third-party, can run against itself
(like ``dimod.testing``).  Use from a test::

    from qpmopt.testing import assert_backend_conforms
    def test_my_backend():
        assert_backend_conforms(MyBackend())

Each check solves small random instances and compares with the exhaustive oracle.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from qpmopt.backends.base import Backend, OptionsError
from qpmopt.backends.registry import get_backend
from qpmopt.constraints import Constraints
from qpmopt.evaluate import VerificationError
from qpmopt.problem import InfeasibleProblemError, Problem
from qpmopt.solution import Status, Termination, bound_within_gap
from qpmopt.solve import solve_problem

__all__ = ["CONFORMANCE_GAP", "assert_backend_conforms", "random_problem"]

#: The ``gap_limit`` under which :func:`assert_backend_conforms` checks what a backend
#: claims when it may stop early.
CONFORMANCE_GAP = 0.05


def random_problem(seed: int, n_c: int = 5, n_f: int = 8, n_sel: int = 4, k: int = 2, *, unique: bool = True,
                   negative_r: bool = True, rules: bool = False) -> Problem:
    """A small random problem with both signs of R (unless ``negative_r=False``) and a
    bias; with ``rules=True`` it carries one rule of every kind (feasible)."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(-0.2, 1.0, (n_c, n_f))
    R = rng.uniform(-0.3 if negative_r else 0.0, 0.6, (n_f, n_f))
    R = (R + R.T) / 2
    B = rng.uniform(-0.3, 0.3, n_f)
    constraints = None
    if rules:
        constraints = Constraints(include_features=[int(seed % n_f)], exclude_features=[int((seed + 1) % n_f)],
                                  require_pairs=[(n_c - 1, int(seed % n_f))], forbid_pairs=[(0, int((seed + 2) % n_f))],
                                  shared_pairs=[(0, 1)], shared_mode="exact" if seed % 2 else "at_least")
    return Problem.from_arrays(A, R, B, k=k, n_features=n_sel, unique=unique, constraints=constraints)


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
    rules = problem.constraints
    if rules is not None:
        count = problem.k - 1 if rules.shared_count is None else rules.shared_count
        broken = ([f"include_features {f}" for f in rules.include_features if f not in chosen]
                  + [f"exclude_features {f}" for f in rules.exclude_features if f in chosen]
                  + [f"require_pairs {p}" for p in rules.require_pairs if p[1] not in rows[p[0]]]
                  + [f"forbid_pairs {p}" for p in rules.forbid_pairs if p[1] in rows[p[0]]]
                  + [f"shared_pairs {p}" for p in rules.shared_pairs
                     if (len(rows[p[0]] & rows[p[1]]) != count if rules.shared_mode == "exact"
                         else len(rows[p[0]] & rows[p[1]]) < count)])
        if broken:
            return "breaks " + ", ".join(broken)
    return None


def _solve_checked(impl: Backend, problem: Problem, time_limit: float, seed: int) -> Any:
    try:
        return solve_problem(problem, backend=impl, time_limit=time_limit, seed=seed)
    except VerificationError as exc:
        raise AssertionError(f"{impl.name}: its answer fails verification (seed {seed}): {exc}") from None


def assert_backend_conforms(backend: str | Backend, *, seeds: range = range(6), time_limit: float = 20.0) -> None:
    """Raise ``AssertionError`` where ``backend`` breaks the contract.

    Checks: every answer is feasible (steering rules included: every third problem carries
    one rule of every kind) and its reported objective is the independent recomputation;
    a reported bound is >= the true optimum; an exact backend that says ``optimal``
    matches the optimum; the same seed gives the same answer when the backend claims
    determinism; rules that cannot all hold raise ``InfeasibleProblemError`` from an exact
    backend and never give an answer from any; unknown options are refused.  Under a
    ``gap_limit`` (:data:`CONFORMANCE_GAP`, on two of the problems) the bound still holds,
    ``optimal`` still means the optimum, and an answer that ends with ``gap_limit`` is
    within that gap of the optimum, by the gap it reports.
    """
    impl = get_backend(backend)
    oracle = get_backend("bruteforce")
    for seed in seeds:
        problem = random_problem(seed, unique=seed % 2 == 0, rules=seed % 3 == 2)
        truth = solve_problem(problem, backend=oracle).objective
        sol = _solve_checked(impl, problem, time_limit, seed)
        if sol.status is Status.NO_SOLUTION and not impl.capabilities_for(problem).exact:
            continue  # a heuristic may find nothing, and says so
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
    for seed in list(seeds)[:2]:
        problem = random_problem(seed, unique=seed % 2 == 0)
        truth = solve_problem(problem, backend=oracle).objective
        try:
            sol = solve_problem(problem, backend=impl, time_limit=time_limit, seed=seed, gap_limit=CONFORMANCE_GAP)
        except VerificationError as exc:
            raise AssertionError(f"{impl.name}: its answer under a gap limit fails verification (seed {seed}): "
                                 f"{exc}") from None
        if sol.objective is None:
            continue
        if sol.bound is not None:
            assert sol.bound >= truth - 1e-9, (
                f"{impl.name}: under a gap limit, bound {sol.bound} below the optimum {truth} (seed {seed})")
        if sol.status is Status.OPTIMAL:
            assert math.isclose(sol.objective, truth, rel_tol=1e-9, abs_tol=1e-9), (
                f"{impl.name}: under a gap limit, claims optimal at {sol.objective}, optimum is {truth} (seed {seed})")
        if sol.termination is Termination.GAP_LIMIT:
            assert sol.gap is not None and sol.gap <= CONFORMANCE_GAP + 1e-9, (
                f"{impl.name}: stopped at the gap limit {CONFORMANCE_GAP} with gap {sol.gap} (seed {seed})")
            assert truth <= bound_within_gap(sol.objective, CONFORMANCE_GAP) + 1e-9, (
                f"{impl.name}: stopped at the gap limit {CONFORMANCE_GAP} at {sol.objective}, optimum {truth} "
                f"(seed {seed})")
    # Two classes required to use the same two features: uniqueness makes that impossible,
    # which no up-front check sees.
    clash = Constraints(require_pairs=[(0, 0), (0, 1), (1, 0), (1, 1)])
    base = random_problem(0)
    impossible = Problem.from_arrays(base.A, base.R, base.B, k=2, n_features=4, constraints=clash)
    try:
        sol = solve_problem(impossible, backend=impl, time_limit=time_limit)
    except InfeasibleProblemError:
        pass
    else:
        assert not impl.capabilities_for(impossible).exact, f"{impl.name}: exact, but did not prove infeasibility"
        assert sol.assignment is None and sol.status is Status.NO_SOLUTION, (
            f"{impl.name}: returned an answer to rules that cannot all hold")
    try:
        impl.parse_options({"__no_such_option__": 1})
    except OptionsError:
        pass
    else:
        raise AssertionError(f"{impl.name}: accepted an unknown option")
