
import numpy as np
import pytest
from helpers import oracle
from hypothesis import given, settings
from hypothesis import strategies as st

from qpmopt import Problem
from qpmopt.evaluate import violations
from qpmopt.search import best_assignment, greedy_selection, local_search, relaxed_value, swap_deltas


def make(seed, n_c, n_f, n_sel, k, unique=False, negative=True):
    rng = np.random.default_rng(seed)
    A = rng.uniform(-0.2, 1, (n_c, n_f))
    # ties are common in practice (thresholded, rounded matrices): round some values
    A[:, ::3] = np.round(A[:, ::3], 1)
    R = rng.uniform(-0.3 if negative else 0, 0.5, (n_f, n_f))
    return Problem.from_arrays(A, (R + R.T) / 2, rng.uniform(-0.2, 0.2, n_f), k=k, n_features=n_sel, unique=unique)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n_c=st.integers(1, 6), n_f=st.integers(4, 12), data=st.data())
def test_swap_deltas_equal_full_recomputation(seed, n_c, n_f, data):
    k = data.draw(st.integers(1, 3))
    n_sel = data.draw(st.integers(k, n_f - 1))
    p = make(seed, n_c, n_f, n_sel, k)
    rng = np.random.default_rng(seed)
    sel = np.zeros(n_f, bool)
    sel[rng.choice(n_f, n_sel, replace=False)] = True
    delta, si, ui = swap_deltas(p, sel)
    base = relaxed_value(p, sel)
    for a, o in enumerate(si):
        for b, i in enumerate(ui):
            moved = sel.copy()
            moved[o], moved[i] = False, True
            assert np.isclose(delta[a, b], relaxed_value(p, moved) - base, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n_c=st.integers(2, 7), n_sel=st.integers(3, 6), k=st.integers(1, 3))
def test_best_assignment_is_exact_with_uniqueness(seed, n_c, n_sel, k):
    from math import comb

    if comb(n_sel, k) < n_c:
        return
    p = make(seed, n_c, n_sel + 2, n_sel, k, unique=True)
    # make collisions likely: duplicate some classes
    A = p.A.copy()
    A[1::2] = A[0]
    p = Problem.from_arrays(A, p.R, p.B, k=k, n_features=n_sel)
    sel = np.zeros(p.n_candidates, bool)
    sel[:n_sel] = True
    W, z_a = best_assignment(p, sel)
    assert violations(p, sel, W) == []
    # the oracle over the selected features alone (one selection), without R and B
    assert np.isclose(z_a, oracle(A[:, :n_sel], np.zeros((n_sel, n_sel)), None, k, n_sel, True), atol=1e-10)


def test_local_search_ends_at_a_local_optimum():
    p = make(3, 8, 20, 6, 2)
    res = local_search(p, greedy_selection(p))
    assert res.converged and res.selection.sum() == 6
    delta, _, _ = swap_deltas(p, res.selection)
    assert delta.max() <= 1e-9
    assert np.isclose(res.value, relaxed_value(p, res.selection))


def test_unique_polish_repairs_a_relaxed_optimum_where_uniqueness_binds():
    from helpers import oracle

    from qpmopt.instances import generate
    from qpmopt.search import evaluate_selection, unique_polish

    inst = generate("tiny", seed=1)  # binomial(4, 2) = 6 = n_classes: uniqueness binds hard
    p = Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    relaxed = local_search(p, greedy_selection(p)).selection
    polished = unique_polish(p, relaxed)
    truth = oracle(p.A, p.R, p.B, p.k, p.n_features, True)
    assert evaluate_selection(p, relaxed)[1] < truth - 1e-6  # the relaxed search alone misses it
    assert evaluate_selection(p, polished)[1] == __import__("pytest").approx(truth, abs=1e-9)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n_sel=st.integers(2, 5))
def test_iterated_local_search_never_loses_and_reports_its_value(seed, n_sel):
    from qpmopt.search import iterated_local_search

    rng = np.random.default_rng(seed)
    A = rng.uniform(-0.2, 1, size=(4, 9))
    R = rng.uniform(0, 0.5, size=(9, 9))
    R = (R + R.T) / 2
    p = Problem.from_arrays(A, R, rng.uniform(-0.2, 0.2, 9), k=1, n_features=n_sel, unique=False)
    start = greedy_selection(p)
    res = iterated_local_search(p, start, seed=seed, max_rounds=20)
    assert res.selection.sum() == n_sel
    assert res.value == pytest.approx(relaxed_value(p, res.selection), abs=1e-12)
    assert res.value >= local_search(p, start).value - 1e-12
    again = iterated_local_search(p, start, seed=seed, max_rounds=20)
    assert np.array_equal(again.selection, res.selection)


def test_iterated_local_search_escapes_a_local_optimum():
    from qpmopt.instances import generate
    from qpmopt.search import iterated_local_search

    inst = generate("small", seed=1)  # plain swap search stops at 21.4468 here
    p = Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    start = greedy_selection(p)
    assert iterated_local_search(p, start, max_rounds=200).value > local_search(p, start).value + 0.05


def test_iterated_local_search_stops_when_asked():
    from qpmopt.instances import generate
    from qpmopt.search import iterated_local_search

    inst = generate("small", seed=1)
    p = Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    calls = [0]

    def stop():
        calls[0] += 1
        if calls[0] > 3:
            raise KeyboardInterrupt
        return False

    res = iterated_local_search(p, greedy_selection(p), max_rounds=10**6, should_stop=stop)
    assert res.interrupted and res.iterations == 3 and res.selection.sum() == inst.n_features


def test_iterated_local_search_stops_after_a_stall():
    from qpmopt.instances import generate
    from qpmopt.search import iterated_local_search

    inst = generate("tiny", seed=0)
    p = Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    res = iterated_local_search(p, greedy_selection(p), max_rounds=10**5, max_stall=30)
    # ends 30 rounds after its last improvement, far below max_rounds
    assert 30 <= res.iterations < 10**5 and not res.interrupted
    full = iterated_local_search(p, greedy_selection(p), max_rounds=res.iterations)
    assert full.value == res.value
