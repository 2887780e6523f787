"""The semidefinite bound: weak duality for any multipliers, validity of what the optimiser
returns, that it sees redundancy the Lagrangian bound misses, and that the exact backends
and ``auto`` use it."""

import time

import numpy as np
import pytest
from helpers import FakeClock, oracle, oracle_with_rules, random_instance, ruled_preset, star_instance
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import qpmopt
from qpmopt import sdp_bound
from qpmopt.backends import MipBackend, ModelResult
from qpmopt.bounds import lagrangian_multipliers, lagrangian_upper_bound
from qpmopt.sdp_bound import _scaled_dual, sdp_dual_value, sdp_multiplier_count, sdp_upper_bound


def clash_instance(seed: int):
    """The six features every class likes most are pairwise redundant, so the optimum takes
    few of them; a bound blind to redundancy takes them all."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(0, 0.4, size=(5, 12))
    A[:, :6] += 0.6
    R = np.zeros((12, 12))
    R[:6, :6] = 0.8
    np.fill_diagonal(R, 0)
    return A, R, None


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), neg=st.booleans(), unique=st.booleans(), with_b=st.booleans(),
       spread=st.sampled_from([0.01, 1.0, 30.0]))
def test_any_multipliers_give_a_valid_bound(seed, neg, unique, with_b, spread):
    # Weak duality, independent of the optimiser: g(y) >= optimum for every y.
    rng = np.random.default_rng(seed)
    A, R, B = random_instance(rng, 4, 7, negative_r=neg, with_b=with_b)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4, unique=unique)
    truth = oracle(A, R, B, 2, 4, unique)
    y = rng.normal(scale=spread, size=sdp_multiplier_count(p))
    assert sdp_dual_value(p, y) >= truth - 1e-9


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), neg=st.booleans(), unique=st.booleans(), with_b=st.booleans())
def test_optimised_bound_is_valid_and_not_weaker_than_the_simple_one(seed, neg, unique, with_b):
    rng = np.random.default_rng(seed)
    A, R, B = random_instance(rng, 5, 8, negative_r=neg, with_b=with_b)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4, unique=unique)
    truth = oracle(A, R, B, 2, 4, unique)
    res = sdp_upper_bound(p, iterations_per_stage=60)
    assert res.value >= truth - 1e-9
    # y = 0 already bounds by the top-k sums plus (1 + n_sel) lambda_max; optimising must
    # do better than the start.
    assert res.value <= sdp_dual_value(p, np.zeros(sdp_multiplier_count(p))) + 1e-9


def _star_problem(seed: int, k: int, n_sel: int, unique: bool, neg: bool, mode: str = "exact"):
    A, R, B, rules = star_instance(seed, negative_r=neg, mode=mode)
    truth = oracle_with_rules(A, R, B, k, n_sel, unique, rules)
    return qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel, unique=unique, constraints=rules), truth


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 3), unique=st.booleans(), neg=st.booleans(),
       spread=st.sampled_from([0.01, 0.3, 3.0]), mode=st.sampled_from(["exact", "at_least"]))
def test_with_shared_pairs_any_multipliers_bound_the_ruled_optimum(seed, k, unique, neg, spread, mode):
    # The star's classes are bounded together (fewer than their top-k values each); weak
    # duality must still hold against the exhaustive optimum under the rules.
    p, truth = _star_problem(seed, k, 5, unique, neg, mode)
    assume(np.isfinite(truth) and _scaled_dual(p)[0].stars)
    y = np.random.default_rng(seed + 1).normal(scale=spread, size=sdp_multiplier_count(p))
    assert sdp_dual_value(p, y) >= truth - 1e-9


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 3), unique=st.booleans(),
       mode=st.sampled_from(["exact", "at_least"]))
def test_with_shared_pairs_the_optimised_bound_is_valid(seed, k, unique, mode):
    p, truth = _star_problem(seed, k, 5, unique, False, mode)
    assume(np.isfinite(truth) and _scaled_dual(p)[0].stars)
    assert sdp_upper_bound(p, iterations_per_stage=60).value >= truth - 1e-9


def test_shared_pairs_tighten_the_semidefinite_bound():
    # The small preset with CHiQPM's pairs: its stars bounded together give a lower bound
    # than the unconstrained relaxation, still above a rule-abiding answer.
    ruled, free, sol = ruled_preset("small", 0, "highs", 30)
    with_stars, alone = sdp_upper_bound(ruled).value, sdp_upper_bound(free).value
    assert sol.objective <= with_stars < alone - 1e-3 * abs(alone)


@pytest.mark.parametrize("seed", range(3))
def test_sees_redundancy_that_the_lagrangian_bound_misses(seed):
    A, R, B = clash_instance(seed)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    truth = oracle(A, R, B, 2, 4, True)
    lag = lagrangian_upper_bound(p, truth, iterations=2000)
    sdp = sdp_upper_bound(p).value
    assert truth - 1e-9 <= sdp
    assert sdp < lag - 0.25 * (lag - truth), (truth, sdp, lag)


def test_bound_scales_with_the_matrices():
    A, R, B = random_instance(np.random.default_rng(3), 5, 8)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    big = qpmopt.Problem.from_arrays(250 * A, 250 * R, 250 * B, k=2, n_features=4)
    assert sdp_upper_bound(big).value == pytest.approx(250 * sdp_upper_bound(p).value, rel=1e-6)


def test_deterministic_without_deadline_and_valid_when_out_of_time():
    A, R, B = clash_instance(0)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    truth = oracle(A, R, B, 2, 4, True)
    assert sdp_upper_bound(p).value == sdp_upper_bound(p).value
    late = sdp_upper_bound(p, deadline=time.perf_counter() - 1.0)
    assert late.stopped == "deadline" and late.evaluations == 1 and late.value >= truth


def test_stops_at_target():
    inst = qpmopt.instances.generate("small", seed=0)
    p = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    full = sdp_upper_bound(p, iterations_per_stage=80)
    target = full.value * 1.05
    early = sdp_upper_bound(p, iterations_per_stage=80, target=target)
    assert early.stopped == "target" and early.evaluations < full.evaluations
    assert early.value <= target * (1 + 1e-9)


def test_a_deadline_gives_the_smoothing_levels_its_time():
    # The fixed schedule (150 iterations a level) stops before it converges on the small
    # preset; given a deadline, the levels share its time and go on (here until they
    # converge, 4.6 times as many evaluations).  Before, the schedule and three finer
    # levels ran 150 iterations each (under 3 times) and the rest of the time went unused.
    inst = qpmopt.instances.generate("small", seed=0)
    p = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    fixed = sdp_upper_bound(p)
    clock = FakeClock(tick=1e-3)  # a deadline means a number of clock readings
    timed = sdp_upper_bound(p, deadline=clock.now + 20.0, clock=clock)
    assert timed.evaluations > 3 * fixed.evaluations
    assert timed.value <= fixed.value


def test_rejects_a_wrong_multiplier_vector():
    A, R, B = clash_instance(0)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    with pytest.raises(ValueError, match="multipliers: expected shape"):
        sdp_dual_value(p, np.zeros(3))


class _NoSolver(MipBackend):
    """A MILP backend whose solver never finds anything nor proves a bound: the driver's
    answer is its warm start, and its bound must come from the driver's own bounds."""

    name = "nosolver"

    def solve_model(self, form, time_limit, warm, config, options):
        return ModelResult(x=None, bound=None, optimal=False)


def test_mip_driver_adds_the_sdp_bound_when_the_solver_does_not_finish():
    A, R, B = clash_instance(1)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    truth = oracle(A, R, B, 2, 4, True)
    lag = lagrangian_upper_bound(p, truth, iterations=3000)
    raw = _NoSolver().solve(p, qpmopt.SolverConfig(time_limit=5.0), _NoSolver.Options())
    assert "sdp_bound" in raw.info
    assert truth - 1e-9 <= raw.bound < lag - 0.25 * (lag - truth)
    off = _NoSolver().solve(p, qpmopt.SolverConfig(time_limit=5.0), _NoSolver.Options(sdp_bound=False))
    assert "sdp_bound" not in off.info and off.bound >= raw.bound


def test_auto_adds_the_sdp_bound_on_the_annealer_path():
    A, R, B = clash_instance(2)
    truth = oracle(A, R, B, 2, 4, True)
    opts = {"exact_max_vars": 0, "bruteforce_limit": 0, "bnb_max_candidates": 0}
    sol = qpmopt.solve_assignment(A, R, B, 2, n_features=4, seed=0, options=opts)
    assert sol.info["auto_path"] == "anneal+sdp"
    assert sol.bound >= truth - 1e-9 and sol.bound == pytest.approx(sol.info["sdp_bound"]["value"])
    again = qpmopt.solve_assignment(A, R, B, 2, n_features=4, seed=0, options=opts)
    assert again.bound == sol.bound  # no time limit: a fixed schedule, deterministic


def test_a_bound_cut_short_by_the_deadline_ends_the_solve_on_the_time_limit():
    # On auto's path the annealer may have said "converged" (on medium-1 it did); when the
    # deadline then stops the bound short of a proof, the time limit is why the solve ended.
    from qpmopt.backends.mip import tighten_with_sdp

    A, R, B = clash_instance(2)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    sol = qpmopt.solve_assignment(A, R, B, 2, n_features=4, backend="bruteforce")
    config = qpmopt.SolverConfig(time_limit=1.0, start_time=time.perf_counter() - 2.0)  # its deadline has passed
    raw = qpmopt.BackendResult(sol.selection, sol.assignment, qpmopt.Termination.CONVERGED)
    tighten_with_sdp(p, config, sol.objective, raw)
    assert raw.info["sdp_bound"]["stopped"] == "deadline" and raw.bound > sol.objective + 1e-6
    assert raw.termination is qpmopt.Termination.TIME_LIMIT


def test_the_bound_phase_keeps_the_solve_clock():
    # SolverConfig.clock is the time source of every deadline: on the fake clock below the
    # solve has a second (a thousand readings) left, where the real clock is far past it.
    from qpmopt.backends.mip import tighten_with_sdp

    inst = qpmopt.instances.generate("small", seed=0)
    p = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    clock = FakeClock(tick=1e-3)
    config = qpmopt.SolverConfig(time_limit=1.0, start_time=clock.now, clock=clock)
    raw = qpmopt.BackendResult(np.zeros(p.n_candidates, dtype=bool), np.zeros(p.A.shape, dtype=bool),
                               qpmopt.Termination.CONVERGED)
    tighten_with_sdp(p, config, 0.0, raw)  # an incumbent far below the bound: no early proof
    assert raw.info["sdp_bound"]["evaluations"] > 100
    assert raw.info["sdp_bound"]["seconds"] == pytest.approx(1.0, abs=0.05)  # fake seconds


def _stop_after(n: int, exc: type[BaseException] | None = None):
    calls = [0]

    def should_stop() -> bool:
        calls[0] += 1
        if calls[0] > n:
            if exc is not None:
                raise exc
            return True
        return False

    return should_stop


@pytest.mark.parametrize("exc", [None, KeyboardInterrupt])
def test_interrupt_returns_the_bound_so_far(exc):
    A, R, B = clash_instance(0)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    truth = oracle(A, R, B, 2, 4, True)
    res = sdp_upper_bound(p, should_stop=_stop_after(5, exc))
    assert res.stopped == "interrupted" and res.evaluations == 5 and res.value >= truth - 1e-9


def test_mip_driver_reports_an_interrupt_during_the_sdp_bound():
    A, R, B = clash_instance(1)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    # With a warm start the driver polls should_stop only a few times before the SDP
    # phase; stop well inside it.
    warm = np.zeros(12, dtype=bool)
    warm[[0, 6, 7, 8]] = True
    cfg = qpmopt.SolverConfig(time_limit=5.0, should_stop=_stop_after(40), warm_start=warm)
    raw = _NoSolver().solve(p, cfg, _NoSolver.Options())
    assert raw.termination == qpmopt.Termination.INTERRUPTED
    assert raw.info["sdp_bound"]["stopped"] == "interrupted"
    assert raw.bound >= oracle(A, R, B, 2, 4, True) - 1e-9


def test_verbose_prints_one_line_per_level(capsys):
    A, R, B = clash_instance(0)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    res = sdp_upper_bound(p, schedule=(0.03, 0.01), iterations_per_stage=20, verbose=True)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("sdp bound:")]
    assert len(lines) == 2
    assert float(lines[-1].split("bound=")[1].split()[0]) == pytest.approx(res.value, rel=1e-7)


def test_applicability_follows_size_and_time():
    from qpmopt.sdp_bound import SDP_MAX_FEATURES, sdp_applicable

    A, R, B = clash_instance(0)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    assert sdp_applicable(p) and sdp_applicable(p, 60.0)
    assert not sdp_applicable(p, 1e-9)  # no time to converge: the Lagrangian bound is better
    n_f = SDP_MAX_FEATURES + 1
    big = qpmopt.Problem.from_arrays(np.ones((2, n_f)), None, None, k=2, n_features=4)
    assert not sdp_applicable(big)


@pytest.mark.parametrize("need, max_share, expected", [
    (37.0, None, 30.0),   # the exact backends: their half, the schedule cut at 30 s of 37
    (55.0, None, 30.0),   # up to twice the time it gets: still run
    (65.0, None, 0.0),    # more than twice the half: skipped
    (37.0, 0.8, 44.4),    # auto: raised to the prediction and a fifth
    (70.0, 0.8, 48.0),    # up to 80% of the limit, cut there
    (100.0, 0.8, 0.0),    # more than twice even that: skipped
    (10.0, 0.8, 20.0),    # a short schedule: twice its prediction, the rest to the solver
    (10.0, None, 20.0),
])
def test_sdp_time_follows_the_prediction(monkeypatch, need, max_share, expected):
    import qpmopt.sdp_bound as sdp

    monkeypatch.setattr(sdp, "estimated_seconds", lambda problem: need)
    A, R, B = clash_instance(0)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    assert sdp.sdp_seconds(p, None, 60.0, 0.5, max_share=max_share) == pytest.approx(expected)
    assert sdp.sdp_seconds(p, False, 60.0, 0.5, max_share=max_share) == 0.0
    # forced on: never skipped
    assert sdp.sdp_seconds(p, True, 60.0, 0.5, max_share=max_share) >= min(30.0, 2.0 * need)


def test_sdp_time_is_none_above_the_size_unless_forced(monkeypatch):
    import qpmopt.sdp_bound as sdp

    monkeypatch.setattr(sdp, "estimated_seconds", lambda problem: 1.0)
    big = qpmopt.Problem.from_arrays(np.ones((2, sdp.SDP_MAX_FEATURES + 1)), None, None, k=2, n_features=4)
    assert sdp.sdp_seconds(big, None, 60.0, 0.5) == 0.0
    assert sdp.sdp_seconds(big, True, 60.0, 0.5) == 2.0  # forced on: twice the 1 s prediction


def test_single_threaded_blas_limits_and_restores():
    from threadpoolctl import threadpool_info

    from qpmopt.threads import single_threaded_blas

    before = [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert before, "numpy has a BLAS"
    with pytest.raises(RuntimeError), single_threaded_blas():
        inside = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
        assert inside == [1] * len(before)
        raise RuntimeError  # the limits come back on an exception too
    after = [(lib["filepath"], lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]
    assert after == before


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), neg=st.booleans(), top=st.integers(1, 4), tau=st.sampled_from([0.3, 0.01, 0.001]))
def test_truncated_smoothing_stays_above_the_dual_function_and_certifies_the_same(seed, neg, top, tau):
    # Above PARTIAL_EIGEN_ABOVE candidates the smoothing keeps the largest eigenpairs only;
    # its value must still lie above g (checked with every eigenvalue, by eigvalsh) and the
    # certified value must be g's.
    rng = np.random.default_rng(seed)
    A, R, B = random_instance(rng, 4, 9, negative_r=neg)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    dual, _ = _scaled_dual(p)
    truncated, _ = _scaled_dual(p)
    truncated.top_eigenpairs = top
    y = rng.normal(scale=0.3, size=dual.layout.size)
    y = np.maximum(y, dual.layout.bounds().lb)
    g, _ = dual.exact(y)
    smooth_all, _, certified_all = dual.smooth(y, tau)
    smooth_top, grad, certified_top = truncated.smooth(y, tau)
    assert smooth_top >= g - 1e-9
    assert smooth_top <= smooth_all + 1e-9  # fewer terms in the log-sum-exp
    assert certified_top == pytest.approx(certified_all, rel=1e-9, abs=1e-9)
    # its gradient is the truncated function's (finite differences along a random direction)
    d = rng.normal(size=y.size)
    d[dual.layout.slices["mu"]] = np.abs(d[dual.layout.slices["mu"]])
    d[dual.layout.slices["N"]] = np.abs(d[dual.layout.slices["N"]])
    h = 1e-6
    plus = truncated.smooth(y + h * d, tau)[0]
    minus = truncated.smooth(np.maximum(y - h * d, dual.layout.bounds().lb), tau)[0]
    if np.all(y - h * d >= dual.layout.bounds().lb):
        assert (plus - minus) / (2 * h) == pytest.approx(float(grad @ d), rel=1e-3, abs=1e-5)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), neg=st.booleans(), unique=st.booleans(), scale=st.sampled_from([0.0, 0.1, 2.0]))
def test_warm_start_and_truncated_smoothing_keep_the_bound_valid(seed, neg, unique, scale):
    # The path CUB-sized problems take (truncated eigenpairs, Lagrangian multipliers as the
    # start), forced on tiny problems: the bound must stay above the exhaustive optimum.
    rng = np.random.default_rng(seed)
    A, R, B = random_instance(rng, 5, 8, negative_r=neg)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4, unique=unique)
    truth = oracle(A, R, B, 2, 4, unique)
    start = scale * rng.uniform(size=A.shape)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sdp_bound, "PARTIAL_EIGEN_ABOVE", 0)
        patch.setattr(sdp_bound, "TOP_EIGENPAIRS", 3)
        assert _scaled_dual(p)[0].top_eigenpairs == 3
        assert sdp_upper_bound(p, iterations_per_stage=40, start_mu=start).value >= truth - 1e-9


def test_lagrangian_multipliers_bound_the_optimum_by_hand():
    # The Lagrangian function at the returned multipliers, written out here, bounds the
    # exhaustive optimum, and the returned bound is no larger than it.
    rng = np.random.default_rng(3)
    A, R, B = random_instance(rng, 5, 8, negative_r=False)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    truth = oracle(A, R, B, 2, 4, True)
    value, mu = lagrangian_multipliers(p, truth, iterations=200)
    assert mu.shape == A.shape and mu.min() >= 0
    off = p.R + np.diag(np.full(8, np.inf))
    floor = np.sort(off, axis=1)[:, :3].sum(axis=1)  # the n_sel - 1 smallest partners
    by_hand = np.sort(A - mu, axis=1)[:, -2:].sum() + np.sort(p.B - floor / 2 + mu.sum(axis=0))[-4:].sum()
    assert truth - 1e-9 <= value <= by_hand + 1e-9


def test_rejects_a_bad_start():
    p = qpmopt.Problem.from_arrays(*clash_instance(0), k=2, n_features=4)
    with pytest.raises(ValueError, match="start_mu: expected shape"):
        sdp_upper_bound(p, start_mu=np.zeros((3, 3)))
    with pytest.raises(ValueError, match="start_mu: expected finite, non-negative"):
        sdp_upper_bound(p, start_mu=-np.ones(p.A.shape))


def test_mip_driver_starts_a_large_bound_from_the_lagrangian_multipliers(monkeypatch):
    # Above PARTIAL_EIGEN_ABOVE candidates (forced here on a small problem) the driver
    # starts the bound from the Lagrangian multipliers; the bound must stay valid and
    # keep its strength.
    import qpmopt.backends.mip as mip

    monkeypatch.setattr(mip, "PARTIAL_EIGEN_ABOVE", 0)
    monkeypatch.setattr(sdp_bound, "PARTIAL_EIGEN_ABOVE", 0)
    starts = []
    real = mip.sdp_upper_bound

    def spy(*args, **kwargs):  # what the bound is started from
        starts.append(kwargs["start_mu"])
        return real(*args, **kwargs)

    monkeypatch.setattr(mip, "sdp_upper_bound", spy)
    A, R, B = clash_instance(1)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    truth = oracle(A, R, B, 2, 4, True)
    lag = lagrangian_upper_bound(p, truth, iterations=3000)
    raw = _NoSolver().solve(p, qpmopt.SolverConfig(time_limit=5.0), _NoSolver.Options(sdp_bound=True))
    assert len(starts) == 1 and starts[0].shape == A.shape
    assert truth - 1e-9 <= raw.bound < lag - 0.25 * (lag - truth)


@pytest.mark.parametrize("backend", ["mip_driver", "auto"])
def test_forced_sdp_above_the_partial_threshold_finds_the_multipliers_once(monkeypatch, backend):
    # The semidefinite bound starts from the per-class Lagrangian multipliers there: the
    # Lagrangian bound computed just before hands them over instead of the threshold dual
    # running a second time.
    import qpmopt.backends.mip as mip
    import qpmopt.bounds as bounds

    monkeypatch.setattr(mip, "PARTIAL_EIGEN_ABOVE", 0)
    monkeypatch.setattr(sdp_bound, "PARTIAL_EIGEN_ABOVE", 0)
    runs = []
    real = bounds._per_class_lagrangian

    def count(*args, **kwargs):
        runs.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(bounds, "_per_class_lagrangian", count)
    A, R, B = clash_instance(1)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    truth = oracle(A, R, B, 2, 4, True)
    if backend == "mip_driver":
        bound = _NoSolver().solve(p, qpmopt.SolverConfig(time_limit=5.0), _NoSolver.Options(sdp_bound=True)).bound
    else:
        sol = qpmopt.solve_problem(p, backend="auto", time_limit=5.0,
                                   options={"bruteforce_limit": 0, "exact_max_vars": 0, "sdp_bound": True})
        assert sol.info["auto_path"].endswith("+sdp")
        bound = sol.bound
    assert len(runs) == 1
    assert truth - 1e-9 <= bound < lagrangian_upper_bound(p, truth, iterations=3000) - 1e-6


@pytest.mark.parametrize("partial", [False, True])
def test_kept_multipliers_certify_the_bound_again(partial):
    # The returned multipliers, evaluated afresh by sdp_dual_value (every eigenvalue, by
    # eigvalsh), give the returned bound: the certificate can be checked by anyone.
    A, R, B = clash_instance(4)
    p = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=4)
    with pytest.MonkeyPatch.context() as patch:
        if partial:
            patch.setattr(sdp_bound, "PARTIAL_EIGEN_ABOVE", 0)
            patch.setattr(sdp_bound, "TOP_EIGENPAIRS", 3)
        res = sdp_upper_bound(p, iterations_per_stage=40, keep_multipliers=True)
    assert res.multipliers is not None and res.multipliers.shape == (sdp_multiplier_count(p),)
    assert sdp_dual_value(p, res.multipliers) == pytest.approx(res.value, rel=1e-10, abs=1e-10)
    assert sdp_upper_bound(p, iterations_per_stage=40).multipliers is None
