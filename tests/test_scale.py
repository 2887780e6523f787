"""Issue 12: budgets checked with step counters and a fake clock (never wall time), the
restricted sparse unique assignment against a dense oracle, the generator against the
dense construction it replaced, counted model sizes, the memory refusal and the error when
no first answer fits."""

import itertools
import math

import numpy as np
import pytest
from helpers import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

import qpmopt
from qpmopt.backends.anneal import AnnealBackend, AnnealOptions, default_chains
from qpmopt.backends.base import ProblemTooLargeError, SolverConfig
from qpmopt.backends.localsearch import LocalSearchBackend, LocalSearchOptions
from qpmopt.budget import TimeLimitTooShortError, check_first_answer, late_allowance
from qpmopt.evaluate import violations
from qpmopt.formulation import Formulation
from qpmopt.instances import PRESETS, generate
from qpmopt.matrices import locality_bias, pearson_similarity, redundancy_from_similarity, threshold_redundancy
from qpmopt.search import best_assignment, greedy_selection, local_search, unique_polish


def _problem(preset="medium", seed=2, **kw):
    inst = generate(preset, seed=seed)
    return qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features, **kw)


# ---- budgets -------------------------------------------------------------------------
def test_greedy_stops_at_its_deadline_and_still_returns_a_full_selection():
    p = _problem()
    full_stats, stats = {}, {}
    full = greedy_selection(p, stats=full_stats)
    clock = FakeClock()
    cut = greedy_selection(p, deadline=6.0, clock=clock, stats=stats)
    assert full_stats == {"steps": p.n_features, "filled": 0}
    # one clock reading per step: readings 1..5 are before the deadline, the sixth stops it
    assert stats["steps"] == 5 and stats["filled"] == p.n_features - 5
    assert cut.sum() == p.n_features
    # the five steps taken are the full greedy's first five: the greedy of a 5-feature
    # problem on the same arrays picks exactly them (uniqueness plays no part in the greedy)
    five = greedy_selection(qpmopt.Problem.from_arrays(p.A, p.R, p.B, k=p.k, n_features=5, unique=False))
    assert (cut[five]).all() and (full[five]).all()


def test_greedy_out_of_time_honours_the_rules():
    inst = generate("medium", seed=3)
    rules = {"include_features": [0, 1, 2], "exclude_features": [3, 4, 5, 6]}
    p = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features, constraints=rules)
    sel = greedy_selection(p, deadline=0.5, clock=FakeClock())  # no step fits
    assert sel.sum() == p.n_features and sel[[0, 1, 2]].all() and not sel[[3, 4, 5, 6]].any()


def test_local_search_starts_no_iteration_its_deadline_cannot_hold():
    p = _problem()
    start = greedy_selection(p)
    free = local_search(p, start)
    assert free.iterations >= 3  # the instance needs several swaps
    # Each iteration reads the clock twice (1 s per reading): it takes 1 s, and the next one
    # starts only if now + 1 s is before the deadline.
    res = local_search(p, start, deadline=6.5, clock=FakeClock())
    assert not res.converged and 1 <= res.iterations <= 3


def test_unique_polish_respects_its_deadline():
    inst = generate("small", seed=1)
    p = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    sel = greedy_selection(p)
    clock = FakeClock()
    unique_polish(p, sel, deadline=3.0, clock=clock)
    assert clock.reads <= 4  # one scoring measured, nothing more fits


def test_localsearch_backend_on_a_fake_clock_stops_with_its_start_as_answer():
    p = _problem()
    clock = FakeClock(tick=0.5)
    config = SolverConfig(time_limit=3.0, start_time=0.0, clock=clock)
    raw = LocalSearchBackend().solve(p, config, LocalSearchOptions())
    assert raw.termination.value == "time_limit"
    assert raw.info["iterations"] <= 3
    assert violations(p, raw.selection, raw.assignment) == []


def test_anneal_loop_counts_its_steps_against_the_deadline():
    p = _problem()
    clock = FakeClock(tick=0.01)
    config = SolverConfig(time_limit=2.0, start_time=0.0, clock=clock)
    raw = AnnealBackend().solve(p, config, AnnealOptions(device="cpu", num_chains=2, polish=False))
    # the loop ends 15% of the limit before it: (2.0 - 0.3) s at two readings per step
    assert raw.termination.value == "time_limit"
    assert 0 < raw.info["steps"] <= 1.7 / 0.02
    assert violations(p, raw.selection, raw.assignment) == []


def test_no_first_answer_fits_raises_a_clear_error():
    p = _problem()
    clock = FakeClock(tick=0.0)
    with pytest.raises(TimeLimitTooShortError, match=r"time_limit: 1 s cannot hold a first feasible answer"):
        check_first_answer(p, start_time=-0.5, time_limit=1.0, clock=clock, estimate=10.0)
    check_first_answer(p, start_time=0.0, time_limit=1.0, clock=clock, estimate=2.9)  # within the allowance
    check_first_answer(p, start_time=0.0, time_limit=None, clock=clock, estimate=1e9)
    # through the backends: a solve whose time was spent before it started
    late = SolverConfig(time_limit=0.5, start_time=-100.0, clock=lambda: 0.0)
    for backend in (LocalSearchBackend(), AnnealBackend()):
        with pytest.raises(TimeLimitTooShortError, match="give time_limit >="):
            backend.solve(p, late, backend.Options())
    assert isinstance(TimeLimitTooShortError("x"), qpmopt.ProblemError)
    assert late_allowance(10) == 2.0 and late_allowance(60) == 6.0


def test_the_exact_assignment_counts_its_deadline_on_the_callers_clock():
    # A deadline is a value of the clock that comes with it: the shared-pair assignment
    # model gets the time left on that clock as HiGHS's own limit (30 s on the frozen fake
    # clock below), whatever the real clock says, and the history counts fake seconds.
    from unittest import mock

    from qpmopt.backends.highs import HighsBackend
    from qpmopt.backends.mip import Incumbent

    inst = generate("small", seed=0)
    rules = {"shared_pairs": qpmopt.matrices.similar_class_pairs(inst.A, 0.5)}
    p = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features, constraints=rules)
    selection = greedy_selection(p)
    clock = FakeClock(tick=0.0)
    clock.now = 5000.0
    limits = []
    real = HighsBackend.solve_model

    def spy(self, form, time_limit, *args):
        limits.append(time_limit)
        return real(self, form, time_limit, *args)

    incumbent = Incumbent(p, start_time=4990.0, clock=clock)
    with mock.patch.object(HighsBackend, "solve_model", spy):
        assert incumbent.offer(selection, deadline=5030.0)
    assert limits and all(t == pytest.approx(30.0) for t in limits)
    assert incumbent.history == [(pytest.approx(10.0), incumbent.value)]
    assert violations(p, incumbent.selection, incumbent.assignment) == []


# ---- the unique assignment -------------------------------------------------------------
def _dense_unique_optimum(A_sel, k):
    """Every class against every k-subset, one dense linear assignment (an oracle written
    apart from qpmopt's restricted sparse matching)."""
    subsets = list(itertools.combinations(range(A_sel.shape[1]), k))
    score = np.stack([A_sel[:, list(t)].sum(axis=1) for t in subsets], axis=1)
    rows, cols = linear_sum_assignment(score, maximize=True)
    return float(score[rows, cols].sum())


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n_c=st.integers(2, 12), m=st.integers(3, 7), k=st.integers(1, 3))
def test_unique_assignment_equals_dense_oracle(seed, n_c, m, k):
    if math.comb(m, k) < n_c or k >= m:
        return
    rng = np.random.default_rng(seed)
    # few distinct rows, so that many classes share their top set (collisions everywhere)
    base = rng.uniform(0, 1, (3, m))
    A = base[rng.integers(0, 3, n_c)] + rng.choice([0.0, 0.01, 0.1], (n_c, m))
    p = qpmopt.Problem.from_arrays(A, k=k, n_features=m)
    W, z = best_assignment(p, np.ones(m, bool))
    assert violations(p, np.ones(m, bool), W) == []
    assert z == pytest.approx(_dense_unique_optimum(A, k), abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_c=st.integers(4, 14), m=st.integers(4, 7))
def test_unique_assignment_out_of_time_is_feasible_and_not_above_the_optimum(seed, n_c, m):
    k = 2
    if math.comb(m, k) < n_c:
        return
    rng = np.random.default_rng(seed)
    A = rng.uniform(0, 1, (1, m)).repeat(n_c, axis=0) + rng.choice([0.0, 0.01], (n_c, m))
    p = qpmopt.Problem.from_arrays(A, k=k, n_features=m)
    W, z = best_assignment(p, np.ones(m, bool), deadline=-1.0)  # past: one round, then the repair
    assert violations(p, np.ones(m, bool), W) == []
    assert z <= _dense_unique_optimum(A, k) + 1e-9
    assert z == pytest.approx(float(A[W].sum()))


# ---- generator, model size, memory -----------------------------------------------------
def _dense_generate(n_c, n_f, n_sel, k, seed, family_size=6):
    """The generator as first written, with dense part matrices (the recorded presets)."""
    rng = np.random.default_rng(seed)
    n_fam = max(1, -(-n_c // family_size))
    fam_parts, own_parts = 4, 2
    n_parts = n_fam * fam_parts + n_c * own_parts
    presence = np.zeros((n_c, n_parts))
    family = np.arange(n_c) // family_size
    for c in range(n_c):
        fam = family[c] * fam_parts + np.arange(fam_parts)
        presence[c, rng.choice(fam, size=3, replace=False)] = rng.uniform(0.6, 1.0, 3)
        presence[c, n_fam * fam_parts + c * own_parts + np.arange(own_parts)] = rng.uniform(0.5, 1.0, own_parts)
        presence[c, rng.integers(0, n_parts, size=2)] += rng.uniform(0.2, 0.6, 2)
    loading = np.zeros((n_parts, n_f))
    popularity = rng.gamma(0.7, size=n_parts)
    popularity /= popularity.sum()
    for f in range(n_f - int(0.15 * n_f)):
        parts = rng.choice(n_parts, size=rng.integers(2, 6), replace=False, p=popularity)
        loading[parts, f] = rng.uniform(0.5, 1.5, parts.size)
    styles = rng.normal(size=(n_c, 8)) @ np.abs(rng.normal(size=(8, n_f)))
    class_mean = presence @ loading + 0.3 * styles + rng.normal(0, 0.05, (n_c, n_f))
    within_sd = rng.uniform(0.1, 0.3, n_f)
    sums = class_mean * 50
    sumsq = (class_mean**2 + within_sd[None, :] ** 2).sum(axis=0) * 50
    A = pearson_similarity(sums, np.full(n_c, 50.0), sumsq)
    R, _ = threshold_redundancy(redundancy_from_similarity(A, normalise="offdiagonal"), n_sel,
                                relevance=np.abs(A).max(axis=0))
    localness = rng.beta(2, 2, n_f) + 0.3 * (loading.sum(axis=0) > 0)
    B = locality_bias(localness, rng.beta(1.5, 6, n_f), 0.32, method="robust")
    return A, R, B


@pytest.mark.parametrize("preset,seed", [("tiny", 1), ("small", 2), ("medium", 1), ("medium", 4)])
def test_sparse_generator_makes_the_recorded_presets(preset, seed):
    n_c, n_f, n_sel, k = PRESETS[preset]
    A, R, B = _dense_generate(n_c, n_f, n_sel, k, seed)
    inst = generate(preset, seed=seed)
    np.testing.assert_allclose(inst.A, A, atol=1e-12)
    np.testing.assert_allclose(inst.R, R, atol=1e-12)
    np.testing.assert_allclose(inst.B, B, atol=1e-12)


def test_imagenet21k_preset():
    assert PRESETS["imagenet21k"] == (10_000, 4_096, 100, 5)


@pytest.mark.parametrize("strengthen", [None, True, False])
@pytest.mark.parametrize("preset", ["tiny", "small", "medium"])
def test_counted_variables_equal_the_built_model(preset, strengthen):
    p = _problem(preset, seed=3)
    assert Formulation.count_variables(p, strengthen=strengthen) == Formulation.build(p, strengthen=strengthen).n_vars
    rules = {"shared_pairs": [(0, 1), (1, 2)]}
    q = _problem(preset, seed=3, constraints=rules)
    assert Formulation.count_variables(q) == Formulation.build(q).n_vars


def test_anneal_memory_refusal_threshold(monkeypatch):
    import psutil

    p = _problem("medium", seed=1)
    opts = AnnealOptions(device="cpu", num_chains=8)
    need = AnnealBackend.memory_estimate(p, opts, "cpu")
    assert need > p.A.nbytes // 2  # float32 copies of A and R at least

    class Free:
        def __init__(self, available):
            self.available = available

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Free(int(need / 0.8) + 1))
    AnnealBackend._check_memory(p, opts, _cpu())  # just fits
    monkeypatch.setattr(psutil, "virtual_memory", lambda: Free(int(need / 0.8) - 1))
    with pytest.raises(ProblemTooLargeError, match="num_chains"):
        AnnealBackend._check_memory(p, opts, _cpu())


def _cpu():
    import torch

    return torch.device("cpu")


def test_default_chains():
    small, big = _problem("small", seed=1), _problem("medium", seed=1)
    assert default_chains(small, "cpu") == 8
    assert default_chains(small, "cuda") == 128  # a small instance fills the card with many chains
    assert default_chains(big, "cuda", temp_mb=1.0) == 8  # never fewer than 8


def test_lagrangian_bound_budget_and_floor():
    from qpmopt.bounds import lagrangian_upper_bound, simple_upper_bound

    p = _problem("medium", seed=1)
    floor = simple_upper_bound(p)
    # deadline passed on entry: the floor comes back without an iteration
    clock = FakeClock()
    assert lagrangian_upper_bound(p, 0.0, iterations=50, deadline=0.0, clock=clock, floor=floor) == floor
    assert clock.reads == 1
    # two readings per iteration at 1 s each: an iteration takes 1 s; deadline 5.5 holds two
    clock = FakeClock()
    lagrangian_upper_bound(p, 0.0, iterations=50, deadline=5.5, clock=clock)
    assert clock.reads <= 6


def test_auto_swap_search_first_is_never_below_localsearch():
    inst = generate("medium", seed=5)
    args = (*inst.arrays(), inst.k)
    ls = qpmopt.solve_assignment(*args, n_features=inst.n_features, backend="localsearch")
    au = qpmopt.solve_assignment(*args, n_features=inst.n_features, backend="auto",
                                 options={"swap_search_first": True, "bruteforce_limit": 0, "exact_max_vars": 0,
                                          "sdp_bound": False})
    assert au.info["auto_path"] == "localsearch+anneal"
    assert au.objective >= ls.objective - 1e-9


@pytest.mark.parametrize("large", [True, False])
@pytest.mark.parametrize("swap_first", [True, False])
def test_auto_keeps_the_bound_a_larger_share_at_large_sizes(monkeypatch, swap_first, large):
    # At ImageNet-21k sizes the threshold dual needs seconds: 10% of the limit is kept for
    # the bound there, on either path, as in the MILP backends; below, 5% (at most 3 s).
    import qpmopt.backends.auto as auto_module

    monkeypatch.setattr(auto_module, "SWAP_FIRST_MIN_CELLS", 0 if large else 10**9)
    limits = []

    def record(self, problem, config, options):
        from qpmopt.search import evaluate_selection, greedy_selection

        limits.append((type(self).__name__, config.time_limit))
        start = config.warm_start if config.warm_start is not None else greedy_selection(problem)
        W, _ = evaluate_selection(problem, start)
        return qpmopt.BackendResult(start, W, qpmopt.Termination.CONVERGED)

    monkeypatch.setattr(AnnealBackend, "solve", record)
    monkeypatch.setattr(LocalSearchBackend, "solve", record)
    inst = generate("medium", seed=5)
    au = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="auto",
                                 time_limit=30, options={"swap_search_first": swap_first, "bruteforce_limit": 0,
                                                         "exact_max_vars": 0, "sdp_bound": False})
    first = limits[0]
    assert first[0] == ("LocalSearchBackend" if swap_first else "AnnealBackend")
    # the simple bound's pass takes milliseconds here, so the shares are the percentages
    assert first[1] == pytest.approx(27.0 if large else 28.5)
    assert au.bound >= au.objective


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auto_exact_path_warm_start_is_never_below_localsearch(monkeypatch, seed):
    # An annealer with no time to step (in a fresh process its torch import took the whole
    # warm share of a 10 s limit) returns its start: the warm start HiGHS gets must still be
    # at least localsearch's answer.
    def no_steps(self, problem, config, options):
        from qpmopt.search import evaluate_selection, greedy_selection

        start = config.warm_start if config.warm_start is not None else greedy_selection(problem)
        W, _ = evaluate_selection(problem, start)
        return qpmopt.BackendResult(start, W, qpmopt.Termination.TIME_LIMIT)

    monkeypatch.setattr(AnnealBackend, "solve", no_steps)
    inst = generate("small", seed=seed)
    args = (*inst.arrays(), inst.k)
    ls = qpmopt.solve_assignment(*args, n_features=inst.n_features, backend="localsearch")
    au = qpmopt.solve_assignment(*args, n_features=inst.n_features, backend="auto", time_limit=3,
                                 options={"bruteforce_limit": 0, "bnb_max_candidates": 0, "sdp_bound": False})
    assert au.info["auto_path"] == "anneal+highs"
    assert au.info["warm_start_objective"] >= ls.objective - 1e-9
