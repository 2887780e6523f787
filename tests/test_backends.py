"""Every backend against the independent oracle of tests/helpers.py."""

import numpy as np
import pytest
from helpers import assert_feasible_by_hand, objective_by_hand, oracle, random_instance

import qpmopt
from qpmopt import Status
from qpmopt.testing import assert_backend_conforms

EXACT = ["bruteforce", "highs", "cpsat"]
CASES = [
    # (n_c, n_f, n_sel, k, unique, negative_r, with_b)
    (4, 7, 4, 2, True, False, True),
    (5, 7, 4, 2, True, True, True),
    (6, 8, 4, 2, True, False, False),
    (3, 8, 5, 3, False, True, True),
    (6, 6, 4, 2, True, True, True),  # binomial(4, 2) = 6 = n_c: uniqueness binds hard
]


@pytest.mark.parametrize("backend", [pytest.param(b, marks=pytest.mark.solver(b)) for b in EXACT])
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("seed", range(4))
def test_exact_backends_match_the_oracle(backend, case, seed):
    n_c, n_f, n_sel, k, unique, neg, with_b = case
    A, R, B = random_instance(np.random.default_rng(seed), n_c, n_f, negative_r=neg, with_b=with_b)
    truth = oracle(A, R, B, k, n_sel, unique)
    sol = qpmopt.solve_assignment(A, R, B, k, n_features=n_sel, unique=unique, backend=backend, time_limit=30)
    assert sol.status is Status.OPTIMAL
    assert sol.objective == pytest.approx(truth, abs=1e-9)
    assert sol.bound >= truth - 1e-9
    assert_feasible_by_hand(sol.selection, sol.assignment, k, n_sel, unique)
    assert objective_by_hand(A, R, B, sol.selection, sol.assignment) == pytest.approx(truth, abs=1e-9)


@pytest.mark.parametrize("backend", ["localsearch", pytest.param("anneal", marks=pytest.mark.solver("anneal")), "auto"])
def test_heuristics_are_feasible_and_never_above_the_optimum(backend):
    rng = np.random.default_rng(11)
    for case in CASES:
        n_c, n_f, n_sel, k, unique, neg, with_b = case
        A, R, B = random_instance(rng, n_c, n_f, negative_r=neg, with_b=with_b)
        truth = oracle(A, R, B, k, n_sel, unique)
        sol = qpmopt.solve_assignment(A, R, B, k, n_features=n_sel, unique=unique, backend=backend, time_limit=2)
        assert_feasible_by_hand(sol.selection, sol.assignment, k, n_sel, unique)
        assert sol.objective <= truth + 1e-9
        assert sol.objective == pytest.approx(objective_by_hand(A, R, B, sol.selection, sol.assignment), abs=1e-9)


@pytest.mark.solver("cpsat")
def test_cpsat_scaled_objective_matches_recomputation():
    inst = qpmopt.instances.generate("tiny", seed=3)
    # no time limit: the solve runs to its end whatever the machine's load
    sol = qpmopt.solve_assignment(*inst.arrays(), k=inst.k, n_features=inst.n_features, backend="cpsat", threads=1)
    last = sol.info["last_model"]
    # CP-SAT's descaled objective against the core's recomputation of the same raw answer
    own, recomputed = last["solver_objective"], last["recomputed_objective"]
    assert abs(own - recomputed) <= 1e-6 * max(1.0, abs(recomputed))


@pytest.mark.parametrize("backend", ["bruteforce", "localsearch", pytest.param("anneal", marks=pytest.mark.solver("anneal")),
                                     pytest.param("highs", marks=pytest.mark.solver("highs")),
                                     pytest.param("cpsat", marks=pytest.mark.solver("cpsat")), "bnb"])
def test_conformance_suite(backend):
    assert_backend_conforms(backend, seeds=range(3), time_limit=5)
