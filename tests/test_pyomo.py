"""The Pyomo model (issue 16): ``to_pyomo`` solved by Pyomo alone against the brute-force
oracle, its named parts against objectives summed by hand, ``from_pyomo``, the ``pyomo``
backend, and its errors."""

import math

import numpy as np
import pytest
from helpers import (
    assert_feasible_by_hand,
    assert_rules_hold_by_hand,
    objective_by_hand,
    oracle_with_rules,
    small_arrays,
)

import qpmopt
from qpmopt import BackendUnavailableError, OptionsError, ProblemError, Status

pyo = pytest.importorskip("pyomo.environ")

RULES = [
    {},
    {"include_features": [1], "exclude_features": [4]},
    {"require_pairs": [(0, 2), (3, 5)], "forbid_pairs": [(1, 0), (2, 6)]},
    {"shared_pairs": [(0, 1), (2, 3)]},
    {"shared_pairs": [(0, 2)], "shared_mode": "at_least", "shared_count": 1, "include_features": [6]},
]


def arrays(seed):
    return small_arrays(seed, n_c=4, n_f=7)


def loaded(m):
    """``(selection, assignment)`` read from the model's variables with plain loops."""
    n_f = len(m.F)
    n_c = len(m.C)
    selection = np.array([m.s[f].value > 0.5 for f in range(n_f)])
    W = np.array([[m.W[c, f].value > 0.5 for f in range(n_f)] for c in range(n_c)])
    return selection, W


@pytest.mark.parametrize("strengthen", [None, False])
@pytest.mark.parametrize("unique", [True, False])
@pytest.mark.parametrize("rules", RULES)
@pytest.mark.parametrize("seed", [0, 1])
def test_model_solved_by_pyomo_alone_reaches_the_oracle(seed, rules, unique, strengthen):
    A, R, B = arrays(seed)
    truth = oracle_with_rules(A, R, B, 2, 4, unique, rules)
    m = qpmopt.to_pyomo(A, R, B, 2, n_features=4, unique=unique, constraints=rules, uniqueness="full",
                        strengthen=strengthen)
    assert hasattr(m, "rlt") == (strengthen is None)  # 7 candidates: strengthened by default
    results = pyo.SolverFactory("appsi_highs").solve(m, load_solutions=False)
    if truth == -math.inf:
        assert str(results.solver.termination_condition) in ("infeasible", "infeasibleOrUnbounded")
        return
    m.solutions.load_from(results)
    selection, W = loaded(m)
    assert_feasible_by_hand(selection, W, 2, 4, unique)
    assert_rules_hold_by_hand(selection, W, rules, 2)
    assert pyo.value(m.Z) == pytest.approx(truth, abs=1e-7)
    assert pyo.value(m.Z) == pytest.approx(objective_by_hand(A, R, B, selection, W), abs=1e-7)
    # the named terms, summed apart: Z_R is the penalty as a positive number
    chosen = np.flatnonzero(selection)
    assert pyo.value(m.Z_A) == pytest.approx(sum(A[c, f] for c in range(4) for f in range(7) if W[c, f]), abs=1e-7)
    assert pyo.value(m.Z_R) == pytest.approx(sum(R[i, j] for a, i in enumerate(chosen) for j in chosen[a + 1:]),
                                             abs=1e-7)
    assert pyo.value(m.Z_B) == pytest.approx(sum(B[f] for f in chosen), abs=1e-7)
    sol = qpmopt.from_pyomo(m, A, R, B, 2, n_features=4, unique=unique, constraints=rules)
    assert sol.objective == pytest.approx(truth, abs=1e-7)
    assert sol.status is Status.FEASIBLE  # a proof for the model is not claimed for the problem


def test_model_has_the_named_parts_indexed_by_array_positions():
    A, R, B = arrays(3)
    m = qpmopt.to_pyomo(A, R, B, 2, n_features=4, constraints={"shared_pairs": [(0, 1)], "include_features": [2]},
                        uniqueness="full")
    assert list(m.s.keys()) == list(range(7))
    assert sorted(m.W.keys()) == [(c, f) for c in range(4) for f in range(7)]
    assert all(m.s[f].is_binary() and m.W[0, f].is_binary() for f in range(7))
    for name in ("Z_A", "Z_R", "Z_B", "Z", "budget", "per_class", "link", "y_lower", "include", "p", "shared_count",
                 "unique", "u"):
        assert hasattr(m, name), name
    assert m.Z.sense == pyo.maximize
    assert len(m.per_class) == 4 and len(m.link) == 28 and len(m.unique) == 6
    lazy = qpmopt.to_pyomo(A, R, B, 2, n_features=4, uniqueness="lazy")
    assert len(lazy.uniqueness_cuts) == 0 and not hasattr(lazy, "u")
    free = qpmopt.to_pyomo(A, R, B, 2, n_features=4, unique=False)
    assert not hasattr(free, "u") and not hasattr(free, "uniqueness_cuts")
    assert qpmopt.to_pyomo(A, R, B, 2, n_features=4).qpm_uniqueness == "full"  # auto, small
    big_A = np.random.default_rng(0).uniform(size=(60, 30))
    assert qpmopt.to_pyomo(big_A, None, None, 2, n_features=20).qpm_uniqueness == "lazy"  # 1770 * 30 > 50 000


def test_a_users_own_rule_is_honoured():
    A, R, B = arrays(4)
    free = qpmopt.solve_assignment(A, R, B, 2, n_features=4, backend="bruteforce")
    a, b = free.features[:2]
    m = qpmopt.to_pyomo(A, R, B, 2, n_features=4, uniqueness="full")
    m.my_rule = pyo.Constraint(expr=m.s[int(a)] + m.s[int(b)] <= 1)
    pyo.SolverFactory("appsi_highs").solve(m)
    sol = qpmopt.from_pyomo(m, A, R, B, 2, n_features=4)
    assert not (sol.selection[a] and sol.selection[b])
    # the best selection without both a and b, by brute force over the two exclusions
    truth = max(oracle_with_rules(A, R, B, 2, 4, True, {"exclude_features": [f]}) for f in (a, b))
    assert sol.objective == pytest.approx(truth, abs=1e-7)


def test_lazy_model_alone_can_break_uniqueness_and_from_pyomo_says_why():
    A, R, B = arrays(5)
    A[1] = A[0]  # two identical classes: without uniqueness they take the same features
    m = qpmopt.to_pyomo(A, R, B, 2, n_features=4, uniqueness="lazy")
    pyo.SolverFactory("appsi_highs").solve(m)
    with pytest.raises(ProblemError, match="uniqueness.*lazy"):
        qpmopt.from_pyomo(m, A, R, B, 2, n_features=4)
    with pytest.raises(ProblemError, match=r"built for \(n_c, n_f, k, n_features\) = \(4, 7, 2, 4\)"):
        qpmopt.from_pyomo(m, A, R, B, 2, n_features=5)
    unsolved = qpmopt.to_pyomo(A, R, B, 2, n_features=4)
    with pytest.raises(ProblemError, match="no value"):
        qpmopt.from_pyomo(unsolved, A, R, B, 2, n_features=4)
    with pytest.raises(ProblemError, match="uniqueness: expected 'auto', 'full' or 'lazy'"):
        qpmopt.to_pyomo(A, R, B, 2, n_features=4, uniqueness="some")


@pytest.mark.parametrize("uniqueness", ["full", "lazy"])
@pytest.mark.parametrize("solver", ["appsi_highs", "highs", "scip_direct", "gurobi_direct"])
def test_pyomo_backend_reaches_the_oracle(solver, uniqueness):
    needs = {"scip_direct": "pyscipopt", "gurobi_direct": "gurobipy"}  # CI installs both with the plug-ins
    if solver in needs:
        pytest.importorskip(needs[solver])
    for seed, rules in enumerate(RULES):
        A, R, B = arrays(10 + seed)
        A[2] = A[1]  # forces the cut loop to work when lazy
        truth = oracle_with_rules(A, R, B, 2, 4, True, rules)
        sol = qpmopt.solve_assignment(A, R, B, 2, n_features=4, constraints=rules, backend="pyomo", time_limit=30,
                                      options={"solver": solver, "uniqueness": uniqueness})
        assert_feasible_by_hand(sol.selection, sol.assignment, 2, 4, True)
        assert_rules_hold_by_hand(sol.selection, sol.assignment, rules, 2)
        assert sol.objective == pytest.approx(truth, abs=1e-7)
        assert sol.status is Status.OPTIMAL
        assert sol.info["pyomo_solver"] == solver


def test_pyomo_backend_errors_name_the_option():
    A, R, B = arrays(0)
    run = dict(n_features=4, backend="pyomo")
    with pytest.raises(OptionsError, match=r"unknown key\(s\) \['solvr'\].*known: .*solver"):
        qpmopt.solve_assignment(A, R, B, 2, options={"solvr": "highs"}, **run)
    with pytest.raises(OptionsError, match=r"solver=3: Input should be a valid string"):
        qpmopt.solve_assignment(A, R, B, 2, options={"solver": 3}, **run)
    with pytest.raises(OptionsError, match=r"uniqueness='some'.*'auto', 'full' or 'lazy'"):
        qpmopt.solve_assignment(A, R, B, 2, options={"uniqueness": "some"}, **run)
    with pytest.raises(BackendUnavailableError, match=r"solver 'no_such_solver_xyz' is not available: Pyomo has no"):
        qpmopt.solve_assignment(A, R, B, 2, options={"solver": "no_such_solver_xyz"}, **run)
    with pytest.raises(OptionsError, match="time-limit option of solver 'no_such_solver_xyz'"):
        qpmopt.solve_assignment(A, R, B, 2, options={"solver": "no_such_solver_xyz"}, time_limit=5, **run)
    with pytest.raises(OptionsError, match="solver_options"):
        qpmopt.solve_assignment(A, R, B, 2, options={"solver_options": {"no_such_highs_option": 1}}, **run)


def test_pyomo_model_values_need_a_loaded_solution_in_every_variable():
    from qpmopt.pyomo_model import model_values

    A, R, B = arrays(1)
    m = qpmopt.to_pyomo(A, R, B, 2, n_features=4)
    for f in range(7):
        m.s[f].value = 1
    with pytest.raises(ProblemError, match="no value"):
        model_values(m)
