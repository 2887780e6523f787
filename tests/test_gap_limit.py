"""``gap_limit``: the backends that prove bounds may stop once the proven relative gap is
that small, and then say so (termination ``gap_limit``) without claiming optimality.
Checked against the exhaustive oracle of tests/helpers.py."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from helpers import assert_within_gap_of_oracle, oracle, random_instance
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qpmopt
import qpmopt.branch_bound as bb
from qpmopt.backends import MipBackend, ModelResult
from qpmopt.instances import generate
from qpmopt.solution import Status, Termination


@pytest.mark.parametrize("bad", [-0.01, 1.0, 3, float("nan"), True, "1%", None])
def test_a_bad_gap_limit_is_refused_by_name(bad):
    inst = generate("tiny", seed=0)
    with pytest.raises(qpmopt.ProblemError, match="gap_limit"):
        qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="bruteforce",
                                gap_limit=bad)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**16), gap_limit=st.sampled_from([0.01, 0.05, 0.2]), unique=st.booleans(),
       negative_r=st.booleans())
def test_branch_and_bound_under_a_gap_limit_keeps_its_promise(seed, gap_limit, unique, negative_r):
    A, R, B = random_instance(np.random.default_rng(seed), 5, 10, negative_r=negative_r)
    # nodes are bounded and pruned at the gap, not all scored at the root
    with mock.patch.object(bb, "ENUMERATE_MAX", 2):
        sol = qpmopt.solve_assignment(A, R, B, 2, n_features=5, unique=unique, backend="bnb", gap_limit=gap_limit,
                                      threads=1)
    assert_within_gap_of_oracle(sol, A, R, B, 2, 5, unique, gap_limit)


@pytest.mark.parametrize("backend", ["highs", "cpsat", "pyomo"])
@pytest.mark.parametrize("seed", [0, 1, 2, 3])  # 3: where cpsat stops at the gap instead of proving the optimum
def test_milp_backends_under_a_gap_limit_keep_its_promise(backend, seed):
    A, R, B = random_instance(np.random.default_rng(100 + seed), 6, 10, negative_r=seed == 1)
    sol = qpmopt.solve_assignment(A, R, B, 2, n_features=5, backend=backend, gap_limit=0.05, time_limit=30,
                                  options={"sdp_bound": False})
    assert_within_gap_of_oracle(sol, A, R, B, 2, 5, True, 0.05)


def test_a_large_gap_limit_closes_the_tree_early_and_claims_no_optimum():
    A, R, B = random_instance(np.random.default_rng(7), 6, 12, negative_r=False)
    problem = qpmopt.Problem.from_arrays(A, R, B, k=2, n_features=6)
    truth = oracle(A, R, B, 2, 6, True)
    start = np.zeros(12, dtype=bool)
    start[qpmopt.solve_assignment(A, R, B, 2, n_features=6, backend="localsearch").features] = True
    with mock.patch.object(bb, "ENUMERATE_MAX", 2):
        exact = bb.branch_and_bound(problem, start)
        loose = bb.branch_and_bound(problem, start, gap_limit=0.5)
    assert exact.proven and exact.value == pytest.approx(truth, abs=1e-9) and exact.nodes > 1
    # the root's bound is within 50% of the start: nothing is branched
    assert loose.stopped == "done" and loose.nodes == 1 and not loose.infeasible
    assert loose.bound >= truth - 1e-9 and loose.bound <= loose.value + 0.5 * max(1.0, abs(loose.value)) + 1e-9
    assert loose.proven == (loose.bound - loose.value <= 1e-9 * max(1.0, abs(loose.value)))


class ReportsOptimalAtItsGap(MipBackend):
    """A MILP 'solver' that returns its warm start and calls it optimal, with a bound
    ``slack`` times its gap option above it (``slack < 1``: what HiGHS, CP-SAT or Gurobi
    report once their relative gap option is met; ``slack > 1``: a solver whose gap measure
    is looser than qpmopt's).  Records the gap options it was given."""

    name = "reports-optimal-at-its-gap"

    def __init__(self, slack: float):
        self.slack, self.asked = slack, []

    def solve_model(self, form, time_limit, warm, config, options):
        self.asked.append(config.gap_limit)
        arr = form.arrays()
        value = float(arr["cost"] @ warm + arr["constant"])
        return ModelResult(x=warm, bound=value + self.slack * config.gap_limit * max(1.0, abs(value)), optimal=True)


def test_a_solvers_optimal_under_a_gap_limit_is_not_called_optimal():
    inst = generate("small", seed=2)
    A, R, B = inst.arrays()
    sol = qpmopt.solve_assignment(A, R, B, inst.k, n_features=inst.n_features, backend=ReportsOptimalAtItsGap(0.5),
                                  gap_limit=0.04, time_limit=20, options={"sdp_bound": False})
    assert sol.termination is Termination.GAP_LIMIT and sol.status is Status.FEASIBLE
    assert 0 < sol.gap <= 0.04
    # without a gap limit the same report is a proof (the solver was told to close the gap)
    exact = qpmopt.solve_assignment(A, R, B, inst.k, n_features=inst.n_features, backend=ReportsOptimalAtItsGap(0.5),
                                    time_limit=20, options={"sdp_bound": False})
    assert exact.termination is Termination.OPTIMAL and exact.status is Status.OPTIMAL


def test_a_gap_met_by_the_solvers_measure_alone_is_asked_again():
    inst = generate("small", seed=2)
    A, R, B = inst.arrays()
    solver = ReportsOptimalAtItsGap(1.5)
    # no Lagrangian bound to help: the solver's bound is the only one
    with mock.patch("qpmopt.backends.mip.lagrangian_bound_and_multipliers", lambda *a, **k: (np.inf, None)):
        sol = qpmopt.solve_assignment(A, R, B, inst.k, n_features=inst.n_features, backend=solver, gap_limit=0.04,
                                      time_limit=20, options={"sdp_bound": False})
    # 6% by qpmopt's measure after the first answer: asked again for 2%, which gives 3%
    assert solver.asked == [0.04, 0.02]
    assert sol.termination is Termination.GAP_LIMIT and sol.gap == pytest.approx(0.03, rel=1e-6)


def test_auto_skips_the_semidefinite_bound_once_the_gap_limit_is_proven():
    pytest.importorskip("torch")  # the annealer's; imported here so that its import takes none of the limit
    inst = generate("small", seed=3)
    A, R, B = inst.arrays()
    forced = {"bruteforce_limit": 0, "exact_max_vars": 0, "sdp_bound": True}  # annealer, then the bounds
    loose = qpmopt.solve_assignment(A, R, B, inst.k, n_features=inst.n_features, backend="auto", gap_limit=0.5,
                                    time_limit=4, options=forced)
    assert loose.termination is Termination.GAP_LIMIT and loose.gap <= 0.5
    assert "sdp_bound" not in loose.info
    tight = qpmopt.solve_assignment(A, R, B, inst.k, n_features=inst.n_features, backend="auto", time_limit=4,
                                    options=forced)
    assert "sdp_bound" in tight.info and tight.termination is not Termination.GAP_LIMIT
