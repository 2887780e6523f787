import numpy as np
import pytest
from helpers import oracle, random_instance
from hypothesis import given, settings
from hypothesis import strategies as st

import qpmopt
from qpmopt.bounds import lagrangian_upper_bound, simple_upper_bound


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), neg=st.booleans(), unique=st.booleans())
def test_bounds_are_valid_and_lagrangian_is_tighter(seed, neg, unique):
    rng = np.random.default_rng(seed)
    A, R, B = random_instance(rng, 4, 7, negative_r=neg)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4, unique=unique)
    truth = oracle(A, R, B, 2, 4, unique)
    simple = simple_upper_bound(p)
    lag = lagrangian_upper_bound(p, truth - 0.1, iterations=200)
    assert simple >= truth - 1e-9
    assert truth - 1e-9 <= lag <= simple + 1e-9


def test_lagrangian_closes_most_of_the_gap_on_a_preset():
    inst = qpmopt.instances.generate("medium", seed=1)
    p = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    sol = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="localsearch")
    simple = simple_upper_bound(p)
    lag = lagrangian_upper_bound(p, sol.objective, iterations=500)
    assert lag >= sol.objective
    assert (lag - sol.objective) < 0.25 * (simple - sol.objective)


@pytest.mark.parametrize("sdp", [False, True])
def test_auto_reports_a_bound_on_the_annealer_path(sdp):
    inst = qpmopt.instances.generate("medium", seed=2)
    sol = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, time_limit=6,
                                  options={"exact_max_vars": 0, "sdp_bound": sdp})
    assert sol.info["auto_path"] == ("anneal+sdp" if sdp else "anneal")
    # independent checks: above a solution found by another backend, below the simple bound
    other = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="localsearch")
    p = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    assert other.objective - 1e-9 <= sol.bound <= simple_upper_bound(p) + 1e-9
    assert sol.gap == pytest.approx((sol.bound - sol.objective) / max(1, abs(sol.objective)))



def test_lagrangian_out_of_time_still_gives_the_simple_bound():
    import time

    A, R, B = random_instance(np.random.default_rng(4), 4, 7)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    late = lagrangian_upper_bound(p, 0.0, iterations=100, deadline=time.perf_counter() - 1.0)
    assert late == pytest.approx(simple_upper_bound(p), rel=1e-12)
