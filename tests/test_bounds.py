import numpy as np
import pytest
from helpers import oracle, oracle_with_rules, random_instance, ruled_preset
from hypothesis import given, settings
from hypothesis import strategies as st

import qpmopt
from qpmopt.bounds import lagrangian_upper_bound, pair_stars, simple_upper_bound


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


def test_auto_gives_the_lagrangian_bound_what_the_annealer_leaves(monkeypatch):
    """Without the semidefinite bound to follow, the Lagrangian bound may run to the time
    limit (the annealer returns early, keeping a reserve it often does not use); with it,
    only its own share."""
    import time

    import qpmopt.backends.mip as mip_module  # auto's Lagrangian bound: mip.lagrangian_bound_for

    seen = []
    real = mip_module.lagrangian_bound_and_multipliers

    def spy(*args, **kwargs):
        seen.append(kwargs["deadline"])
        return real(*args, **kwargs)

    monkeypatch.setattr(mip_module, "lagrangian_bound_and_multipliers", spy)
    inst = qpmopt.instances.generate("medium", seed=2)
    for sdp in (False, True):
        start = time.perf_counter()
        qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, time_limit=6,
                                options={"exact_max_vars": 0, "sdp_bound": sdp})
        if sdp:  # the Lagrangian's deadline comes well before the limit: the rest is the SDP's
            assert seen[-1] - start < 6.0 - 1.0
        else:
            assert seen[-1] - start == pytest.approx(6.0, abs=0.5)


def test_lagrangian_out_of_time_still_gives_a_bound_no_worse_than_the_simple_one():
    import time

    A, R, B = random_instance(np.random.default_rng(4), 4, 7)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    late = lagrangian_upper_bound(p, 0.0, iterations=100, deadline=time.perf_counter() - 1.0)
    assert oracle(A, R, B, 2, 4, True) - 1e-9 <= late <= simple_upper_bound(p) + 1e-12
    # past the deadline only the first evaluation runs: the bound of one evaluation, above
    # what the full run reaches
    assert late == pytest.approx(lagrangian_upper_bound(p, 0.0, iterations=1), rel=1e-12)
    assert lagrangian_upper_bound(p, 0.0, iterations=100) < late - 1e-6


def _lp_value(problem) -> float:
    """The LP relaxation that the Lagrangian bound's dual reaches at its minimum, solved as
    an LP by scipy's linprog (HiGHS) in the plain variables ``W`` ``(n_c, n_f)`` and ``s``:
    max <A, W> + (B - m / 2).s, W <= s, each row of W summing to k, s summing to n_sel,
    all in [0, 1]."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    A, k, n_sel = problem.A, problem.k, problem.n_features
    n_c, n_f = A.shape
    # m_i: the n_sel - 1 smallest off-diagonal entries of R's row i, summed
    floor = np.sort(problem.R + np.diag(np.full(n_f, np.inf)), axis=1)[:, : n_sel - 1].sum(axis=1)
    cost = -np.concatenate([A.ravel(), problem.B - 0.5 * floor])
    cells = np.arange(n_c * n_f)
    below = sp.hstack([sp.identity(n_c * n_f), -sp.csr_matrix((np.ones(n_c * n_f), (cells, cells % n_f)),
                                                               shape=(n_c * n_f, n_f))])
    rows = sp.hstack([sp.kron(sp.identity(n_c), np.ones((1, n_f))), sp.csr_matrix((n_c, n_f))])
    total = sp.hstack([sp.csr_matrix((1, n_c * n_f)), np.ones((1, n_f))])
    res = linprog(cost, A_ub=below, b_ub=np.zeros(n_c * n_f), A_eq=sp.vstack([rows, total]),
                  b_eq=np.concatenate([np.full(n_c, k), [n_sel]]), bounds=(0, 1), method="highs")
    assert res.status == 0
    return -res.fun


@pytest.mark.parametrize("seed", range(4))
def test_the_lagrangian_bound_reaches_the_lp_value_and_never_goes_below_it(seed):
    # the per-class thresholds' dual (bounds._per_class_lagrangian) minimised is the LP
    # value; every point of it is an LP dual bound, so it can never be below that value
    rng = np.random.default_rng(seed)
    A, R, B = random_instance(rng, 30, 60, negative_r=bool(seed % 2))
    p = qpmopt.Problem.from_arrays(A, R, B, k=3, n_features=12)
    lp = _lp_value(p)
    bound = lagrangian_upper_bound(p, -1e9, iterations=3000)  # a target it cannot reach
    assert lp - 1e-7 * abs(lp) <= bound <= lp + 1e-3 * abs(lp)
    assert bound < simple_upper_bound(p) - 0.1 * (simple_upper_bound(p) - lp)


def test_an_iteration_that_cannot_fit_returns_the_floor_without_work():
    rng = np.random.default_rng(0)
    A, R, B = random_instance(rng, 5, 9)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    calls = []

    def clock():
        calls.append(1)
        return 10.0

    assert lagrangian_upper_bound(p, 0.0, deadline=11.0, clock=clock, floor=123.0, iteration_seconds=2.0) == 123.0
    assert lagrangian_upper_bound(p, 0.0, deadline=11.0, clock=clock, floor=1e9, iteration_seconds=0.5) < 1e9


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), neg=st.booleans(), unique=st.booleans(), exact=st.booleans(),
       count=st.integers(0, 2), iterations=st.integers(1, 150), target=st.floats(-2.0, 1.0))
def test_the_bound_with_shared_pairs_is_valid_for_any_multipliers(seed, neg, unique, exact, count, iterations, target):
    # Stars of shared pairs bounded together (bounds._star_lagrangian): never below the
    # exhaustive optimum under the rules, whatever the subgradient path (the iteration
    # count and the Polyak target move the multipliers).
    rng = np.random.default_rng(seed)
    n_c, n_f, k, n_sel = 5, 6, 2, 4
    A, R, B = random_instance(rng, n_c, n_f, negative_r=neg)
    if unique and count == k:
        count = k - 1
    pairs = sorted({tuple(sorted(rng.choice(n_c, 2, replace=False).tolist())) for _ in range(4)})
    rules = {"shared_pairs": pairs, "shared_count": count, "shared_mode": "exact" if exact else "at_least"}
    truth = oracle_with_rules(A, R, B, k, n_sel, unique, rules)
    if not np.isfinite(truth):
        return
    p = qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel, unique=unique, constraints=rules)
    assert pair_stars(p) or count == 0
    bound = lagrangian_upper_bound(p, truth + target, iterations=iterations)
    assert bound >= truth - 1e-9


def test_shared_pairs_tighten_the_bound_at_cub_size():
    # The cub preset with CHiQPM's pairs: one class is in many pairs, and its partners must
    # each use k - 1 of its features.  Bounding that star together is below the bound
    # that treats each class alone (at its LP value), and still above a rule-abiding answer.
    ruled, free, sol = ruled_preset("cub", 0, "localsearch", 20)
    with_stars = lagrangian_upper_bound(ruled, sol.objective, iterations=300)
    alone = lagrangian_upper_bound(free, sol.objective, iterations=300)
    assert sol.objective <= with_stars < alone - 0.5
