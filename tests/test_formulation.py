"""The one formulation: its arrays, solved through a plain Pyomo rendering written here, and
its named Pyomo model describe the same exact model."""

import numpy as np
import pytest
from helpers import objective_by_hand, oracle, random_instance

import qpmopt
from qpmopt.formulation import Formulation

pyo = pytest.importorskip("pyomo.environ")


def _arrays_in_pyomo(form):
    """The arrays as a generic Pyomo model: variables ``x[i]``, one constraint per row."""
    arr = form.arrays()
    model = pyo.ConcreteModel()
    model.x = pyo.Var(range(form.n_vars), bounds=lambda m, i: (arr["lower"][i], arr["upper"][i]))
    for i in np.flatnonzero(arr["integer"]):
        model.x[int(i)].domain = pyo.Integers
    model.cons = pyo.ConstraintList()
    mat = arr["matrix"]
    for r in range(mat.shape[0]):
        sl = slice(mat.indptr[r], mat.indptr[r + 1])
        expr = sum(float(v) * model.x[int(j)] for j, v in zip(mat.indices[sl], mat.data[sl]))
        lo, hi = arr["row_lower"][r], arr["row_upper"][r]
        model.cons.add((None if np.isinf(lo) else float(lo), expr, None if np.isinf(hi) else float(hi)))
    model.obj = pyo.Objective(expr=arr["constant"] + sum(float(c) * model.x[i] for i, c in enumerate(arr["cost"])),
                              sense=pyo.maximize)
    return model


def _solve_pyomo(form):
    model = _arrays_in_pyomo(form)
    pyo.SolverFactory("appsi_highs").solve(model)
    x = np.array([pyo.value(model.x[i]) for i in range(form.n_vars)])
    return pyo.value(model.obj), x


@pytest.mark.solver("highs")
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("strengthen", [False, True])
def test_pyomo_model_optimum_matches_the_oracle_without_uniqueness(seed, strengthen):
    A, R, B = random_instance(np.random.default_rng(seed), 4, 7, negative_r=bool(seed % 2))
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=3, unique=False)
    form = Formulation.build(p, strengthen=strengthen)
    value, x = _solve_pyomo(form)
    sel, W = form.decode(x)
    assert value == pytest.approx(oracle(A, R, B, 2, 3, False), abs=1e-7)
    # the model's objective is the core's objective of the decoded answer
    assert value == pytest.approx(objective_by_hand(A, R, B, sel, W), abs=1e-7)


@pytest.mark.solver("highs")
def test_uniqueness_cuts_and_restricted_models():
    A, R, B = random_instance(np.random.default_rng(5), 5, 8)
    A[1] = A[0]  # two identical classes collide without uniqueness
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4, unique=True)
    form = Formulation.build(p)
    _, x = _solve_pyomo(form)
    sel, W = form.decode(x)
    assert np.array_equal(W[0], W[1])
    form.add_uniqueness_cut(0, 1, tuple(np.flatnonzero(W[0])))
    _, x = _solve_pyomo(form)
    _, W2 = form.decode(x)
    assert not np.array_equal(W2[0], W2[1])
    # restricted: forbid feature 0, fix feature 7; the answer respects both and its
    # objective (constant of the fixed feature included) is the core's
    restricted = Formulation.build(p, candidates=np.arange(1, 8), fixed=[7])
    value, x = _solve_pyomo(restricted)
    sel, W = restricted.decode(x)
    assert sel[7] and not sel[0] and sel.sum() == 4
    assert value == pytest.approx(objective_by_hand(A, R, B, sel, W), abs=1e-7)
    # a warm-start vector encodes and decodes back to the same solution
    assert np.array_equal(restricted.decode(restricted.encode(sel, W))[1], W)
