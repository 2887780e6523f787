"""The branch and bound of qpmopt.branch_bound and the ``bnb`` backend, against the
independent exhaustive oracle of tests/helpers.py."""

from __future__ import annotations

import time
from unittest import mock

import numpy as np
import pytest
from helpers import (
    FakeClock,
    assert_feasible_by_hand,
    objective_by_hand,
    oracle,
    oracle_with_rules,
    random_instance,
    star_instance,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qpmopt
import qpmopt.branch_bound as bb
from qpmopt.instances import generate
from qpmopt.solution import Status


def _problem(seed: int, n_c: int, n_f: int, n_sel: int, k: int, unique: bool, negative_r: bool):
    A, R, B = random_instance(np.random.default_rng(seed), n_c, n_f, negative_r=negative_r)
    return (A, R, B), qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel, unique=unique)


@st.composite
def fixings(draw):
    n_f = draw(st.integers(6, 9))
    n_sel = draw(st.integers(4, 5))  # binomial(4, 2) = 6 keeps 5 classes unique
    labels = draw(st.lists(st.sampled_from(["in", "out", "free"]), min_size=n_f, max_size=n_f))
    include = [f for f, lab in enumerate(labels) if lab == "in"][: n_sel - 1]
    exclude = [f for f, lab in enumerate(labels) if lab == "out"][: n_f - n_sel]
    return (draw(st.integers(0, 2**16)), draw(st.integers(3, 5)), n_f, n_sel, draw(st.booleans()),
            draw(st.booleans()), include, exclude)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=fixings())
def test_node_bounds_are_never_below_the_best_selection_under_the_node(case):
    seed, n_c, n_f, n_sel, unique, negative_r, include, exclude = case
    (A, R, B), problem = _problem(seed, n_c, n_f, n_sel, 2, unique, negative_r)
    truth = oracle_with_rules(A, R, B, 2, n_sel, unique, {"include_features": include, "exclude_features": exclude})
    inc, exc = np.zeros(n_f, bool), np.zeros(n_f, bool)
    inc[include], exc[exclude] = True, True
    bounder = bb._Bounder(problem)
    y0 = bb._zero_multipliers(bounder.A, 2)
    optimised, _, y = bounder.bound(bb._Node(inc, exc, y0, np.inf), -np.inf, 40, (0.01,), None)
    assert optimised >= truth - 1e-9
    # at any multipliers (the inequality ones clipped non-negative), weak duality holds too
    rng = np.random.default_rng(seed)
    noisy = {name: arr + rng.normal(0.0, 0.3, arr.shape) for name, arr in y.items()}
    assert bounder.exact_bound(inc, exc, noisy) >= truth - 1e-9


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), unique=st.booleans(), negative_r=st.booleans(), warm=st.booleans())
def test_branch_and_bound_proves_the_oracles_optimum(seed, unique, negative_r, warm):
    (A, R, B), problem = _problem(seed, 4, 9, 4, 2, unique, negative_r)
    truth = oracle(A, R, B, 2, 4, unique)
    start = None
    if warm:
        start = np.zeros(9, bool)
        start[np.random.default_rng(seed).choice(9, 4, replace=False)] = True
    # nodes are bounded and branched, not all scored at the root
    with mock.patch.object(bb, "ENUMERATE_MAX", 2):
        res = bb.branch_and_bound(problem, start)
    assert res.proven and res.stopped == "done" and res.nodes >= 1
    assert res.value == pytest.approx(truth, abs=1e-9)
    assert_feasible_by_hand(res.selection, res.assignment, 2, 4, unique)
    assert objective_by_hand(A, R, B, res.selection, res.assignment) == pytest.approx(truth, abs=1e-9)
    assert truth - 1e-9 <= res.bound <= truth + 1e-8 * max(1.0, abs(truth))


def test_workers_split_the_tree_and_agree_with_the_oracle():
    (A, R, B), problem = _problem(7, 6, 13, 5, 2, True, True)
    truth = oracle(A, R, B, 2, 5, True)
    with mock.patch.object(bb, "ENUMERATE_MAX", 4), mock.patch.object(bb, "NODES_PER_TASK", 2):
        res = bb.branch_and_bound(problem, None, workers=2)
    assert res.proven and res.nodes > 6  # the root, the split and the workers' nodes
    assert res.value == pytest.approx(truth, abs=1e-9)
    assert_feasible_by_hand(res.selection, res.assignment, 2, 5, True)


def test_a_stopped_search_keeps_its_incumbent_and_a_valid_bound():
    (A, R, B), problem = _problem(3, 5, 10, 4, 2, True, False)
    truth = oracle(A, R, B, 2, 4, True)
    start = np.zeros(10, bool)
    start[:4] = True
    for kwargs, why in [({"deadline": time.perf_counter() - 1.0}, "deadline"),
                        ({"should_stop": lambda: True}, "interrupted"),
                        ({"node_limit": 1}, "node_limit")]:
        with mock.patch.object(bb, "ENUMERATE_MAX", 2):
            res = bb.branch_and_bound(problem, start, **kwargs)
        assert res.stopped == why and not res.proven
        assert np.array_equal(res.selection, start) or res.value > objective_by_hand(A, R, B, start, res.assignment)
        assert res.bound >= truth - 1e-9


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 3), unique=st.booleans(),
       mode=st.sampled_from(["exact", "at_least"]))
def test_branch_and_bound_under_a_star_of_shared_pairs_proves_the_oracles_optimum(seed, k, unique, mode):
    # the node bounds count the star's classes together (qpmopt.sdp_bound); pruning on
    # them must never lose the optimum under the rules
    A, R, B, rules = star_instance(seed, mode=mode)
    truth = oracle_with_rules(A, R, B, k, 5, unique, rules)
    problem = qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=5, unique=unique, constraints=rules)
    with mock.patch.object(bb, "ENUMERATE_MAX", 10):
        res = bb.branch_and_bound(problem, None)
    if not np.isfinite(truth):
        assert res.infeasible
        return
    assert res.proven and res.nodes >= 1
    assert_feasible_by_hand(res.selection, res.assignment, k, 5, unique)
    for a, b in rules["shared_pairs"]:
        shared = int((res.assignment[a] & res.assignment[b]).sum())
        assert shared == k - 1 if mode == "exact" else shared >= k - 1
    assert abs(objective_by_hand(A, R, B, res.selection, res.assignment) - truth) <= 1e-9 * max(1.0, abs(truth))


@pytest.mark.parametrize("seed", [0, 2, 3])
def test_the_bound_at_a_node_limit_falls_below_the_roots(seed):
    # Open nodes are taken largest bound first, so the bound reported when the search is cut
    # short (the largest over the open nodes) falls as it goes; depth first alone left a
    # child of the root open and reported the root's bound however long it ran.
    (A, R, B), problem = _problem(seed, 6, 14, 5, 2, True, False)
    truth = oracle(A, R, B, 2, 5, True)
    with mock.patch.object(bb, "ENUMERATE_MAX", 2):
        root = bb.branch_and_bound(problem, None, node_limit=1)
        later = bb.branch_and_bound(problem, None, node_limit=12)
        full = bb.branch_and_bound(problem, None)
    assert full.proven and full.nodes > 12 and abs(full.value - truth) <= 1e-9
    assert not root.proven and not later.proven
    assert truth - 1e-9 <= later.bound < root.bound - 1e-6


def test_bnb_backend_is_never_beaten_by_a_heuristic_on_the_small_preset():
    inst = generate("small", seed=1)
    args = (*inst.arrays(), inst.k)
    sol = qpmopt.solve_assignment(*args, n_features=inst.n_features, backend="bnb", time_limit=120)
    assert sol.status is Status.OPTIMAL and sol.info["nodes"] > 1
    for other, opts in [("localsearch", None), ("anneal", {"max_steps": 2000})]:
        rival = qpmopt.solve_assignment(*args, n_features=inst.n_features, backend=other, options=opts, seed=3)
        assert rival.objective <= sol.objective + 1e-9


def test_bnb_refuses_large_problems_by_name():
    inst = generate("tiny", seed=0)
    A = np.tile(inst.A, (1, 40))
    with pytest.raises(qpmopt.ProblemTooLargeError, match="bnb"):
        qpmopt.solve_assignment(A, None, None, inst.k, n_features=inst.n_features, backend="bnb")


_real_subtree = bb._subtree


def _subtree_after_the_interrupt(*args):
    bb._STOP_EVENT.wait(10)  # in the worker: start only once the caller has asked to stop
    return _real_subtree(*args)


def test_an_interrupt_reaches_the_workers():
    (A, R, B), problem = _problem(7, 6, 13, 5, 2, True, True)
    truth = oracle(A, R, B, 2, 5, True)
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 50  # past the split: the pool's polling asks from then on

    with (mock.patch.object(bb, "ENUMERATE_MAX", 4), mock.patch.object(bb, "NODES_PER_TASK", 2),
          mock.patch.object(bb, "_subtree", _subtree_after_the_interrupt)):
        started = time.perf_counter()
        res = bb.branch_and_bound(problem, None, workers=2, should_stop=should_stop)
    assert res.stopped == "interrupted" and not res.proven
    assert time.perf_counter() - started < 30
    assert res.bound >= truth - 1e-9


def test_a_deadline_cuts_the_scoring_of_a_small_node_short():
    (A, R, B), problem = _problem(11, 5, 9, 4, 2, True, True)  # 126 selections: scored at the root
    truth = oracle(A, R, B, 2, 4, True)
    real_values = bb._relaxed_values

    def slow_values(*args):  # the deadline passes while the node's selections are listed
        time.sleep(0.2)
        return real_values(*args)

    with mock.patch.object(bb, "_relaxed_values", slow_values):
        started = time.perf_counter()
        res = bb.branch_and_bound(problem, None, deadline=started + 0.1)
    assert res.stopped == "deadline" and not res.proven and res.enumerated == 0 and res.selection is None
    assert time.perf_counter() - started < 1.0
    # the largest unscored value bounds the node: never below the optimum
    assert res.bound >= truth - 1e-9


def test_a_deadline_stops_the_branching_estimates():
    (A, R, B), problem = _problem(5, 5, 12, 5, 2, True, False)
    search = bb._Search(problem, None, None, -np.inf, time.perf_counter())
    root = search.root()
    _, s, y = search.bounder.bound(root, -np.inf, 40, (0.01,), None)
    real_exact = search.bounder.exact_bound
    calls = []

    def counted(*args):
        calls.append(args)
        return real_exact(*args)

    with mock.patch.object(search.bounder, "exact_bound", counted):
        search._branch_feature(root, s, y, None)
        unhurried = len(calls)
        calls.clear()
        f = search._branch_feature(root, s, y, time.perf_counter() - 1.0)
    # without a deadline every candidate is estimated (several evaluations each); past it,
    # only the node's own value is computed, and the feature is still a free one
    assert unhurried > 1 + len(bb._PHI_TRIALS)
    assert len(calls) == 1
    assert not root.include[f] and not root.exclude[f]


@pytest.mark.parametrize("tick", [0.0, 1.0])
def test_the_bnb_backend_keeps_the_solve_clock(tick):
    # SolverConfig.clock is the time source of every deadline.  A frozen fake clock never
    # reaches the time limit, though far more real time passes than it allows; one that
    # advances a second a reading reaches it within 30 readings, long before the tree is
    # closed (and 30 real seconds, which the search once counted instead, close it).
    from qpmopt.backends.bnb import BranchAndBoundBackend, BranchAndBoundOptions

    (A, R, B), problem = _problem(7, 6, 13, 5, 2, True, True)
    truth = oracle(A, R, B, 2, 5, True)
    start = np.zeros(13, dtype=bool)
    start[:5] = True
    clock = FakeClock(tick=tick)
    limit = 1e-3 if tick == 0.0 else 30.0
    config = qpmopt.SolverConfig(time_limit=limit, start_time=clock.now, clock=clock, warm_start=start)
    with mock.patch.object(bb, "ENUMERATE_MAX", 4):
        raw = BranchAndBoundBackend().solve(problem, config, BranchAndBoundOptions(workers=1))
    assert raw.bound >= truth - 1e-9
    if tick == 0.0:
        assert raw.termination == qpmopt.Termination.OPTIMAL and raw.proven_optimal
        assert objective_by_hand(A, R, B, raw.selection, raw.assignment) == pytest.approx(truth, abs=1e-9)
    else:
        assert raw.termination == qpmopt.Termination.TIME_LIMIT and raw.info["stopped"] == "deadline"
        assert all(0.0 <= t <= limit + 2.0 for t, _ in raw.history)  # fake seconds
