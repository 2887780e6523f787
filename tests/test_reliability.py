"""Issue-7 promises: bad input, interrupts, determinism, fuzzing against the oracle."""

import math

import numpy as np
import pytest
from helpers import assert_feasible_by_hand, objective_by_hand, oracle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qpmopt
from qpmopt import OptionsError, ProblemError, Status, Termination
from qpmopt.backends import MipBackend, ModelResult
from qpmopt.instances import generate

FAST = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def valid_problems(draw):
    n_f = draw(st.integers(2, 7))
    n_sel = draw(st.integers(1, min(5, n_f)))
    k = draw(st.integers(1, n_sel))
    unique = draw(st.booleans())
    max_c = math.comb(n_sel, k) if unique else 5
    n_c = draw(st.integers(1, min(5, max_c)))
    kind = draw(st.sampled_from(["random", "ties", "equal", "duplicated"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    A = rng.uniform(-1, 1, (n_c, n_f))
    if kind == "ties":
        A = np.round(A, 1)
    elif kind == "equal":
        A = np.full((n_c, n_f), 0.5)
    elif kind == "duplicated":
        A[:] = A[0]
    R = rng.uniform(-0.5, 0.5, (n_f, n_f)) if draw(st.booleans()) else None
    if R is not None:
        R = (R + R.T) / 2
    B = rng.uniform(-0.3, 0.3, n_f) if draw(st.booleans()) else None
    return A, R, B, k, n_sel, unique


@settings(**FAST)
@given(valid_problems(), st.sampled_from(["auto", "localsearch", "anneal", "highs"]))
def test_fuzz_valid_problems_are_solved_feasibly(prob, backend):
    A, R, B, k, n_sel, unique = prob
    opts = {"max_steps": 60, "num_chains": 2} if backend == "anneal" else None
    sol = qpmopt.solve_assignment(A, R, B, k, n_features=n_sel, unique=unique, backend=backend, time_limit=20,
                                  options=opts)
    p = qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel, unique=unique)
    assert_feasible_by_hand(sol.selection, sol.assignment, k, n_sel, unique)
    assert sol.objective == pytest.approx(objective_by_hand(A, R, B, sol.selection, sol.assignment), abs=1e-9)
    truth = oracle(p.A, p.R, p.B, k, n_sel, unique)
    assert sol.objective <= truth + 1e-9
    if backend in ("auto", "highs"):
        assert sol.status is Status.OPTIMAL and sol.objective == pytest.approx(truth, abs=1e-9)


@st.composite
def invalid_problems(draw):
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    A = rng.uniform(0, 1, (4, 6))
    R = np.zeros((6, 6))
    kw = {"k": 2, "n_features": 4}
    bad = draw(st.sampled_from(["nan", "inf", "complex", "object", "rank3", "transposed", "R_shape", "R_asym",
                                "B_shape", "k0", "k_big", "n_big", "unique", "empty"]))
    if bad == "nan":
        A[draw(st.integers(0, 3)), draw(st.integers(0, 5))] = np.nan
    elif bad == "inf":
        R[1, 2] = R[2, 1] = -np.inf
    elif bad == "complex":
        A = A.astype(complex)
    elif bad == "object":
        A = np.array([[1, "x"], [2, 3]], dtype=object)
    elif bad == "rank3":
        A = A[None]
    elif bad == "transposed":
        A = A.T
    elif bad == "R_shape":
        R = np.zeros((6, 5))
    elif bad == "R_asym":
        R[0, 1] = 1.0
    elif bad == "B_shape":
        return A, R, np.zeros(5), kw
    elif bad == "k0":
        kw["k"] = 0
    elif bad == "k_big":
        kw["k"] = 5
    elif bad == "n_big":
        kw["n_features"] = 7
    elif bad == "unique":
        kw = {"k": 3, "n_features": 3}
    elif bad == "empty":
        A = np.zeros((0, 6))
    return A, R, None, kw


@settings(**FAST)
@given(invalid_problems())
def test_fuzz_invalid_problems_raise_problem_error(prob):
    A, R, B, kw = prob
    with pytest.raises(ProblemError):
        qpmopt.solve_assignment(A, R, B, backend="localsearch", **kw)


def test_bad_call_arguments():
    inst = generate("tiny", seed=1)
    args = (*inst.arrays(), inst.k)
    with pytest.raises(OptionsError, match=r"unknown key\(s\) \['colour'\]"):
        qpmopt.solve_assignment(*args, n_features=4, backend="anneal", options={"colour": 1})
    with pytest.raises(ProblemError, match="time_limit"):
        qpmopt.solve_assignment(*args, n_features=4, time_limit=float("nan"))
    with pytest.raises(ProblemError, match="seed"):
        qpmopt.solve_assignment(*args, n_features=4, seed=-1)
    with pytest.raises(ProblemError, match="warm_start: expected 4 selected"):
        qpmopt.solve_assignment(*args, n_features=4, warm_start=[0, 1])
    with pytest.raises(qpmopt.UnknownBackendError, match="known backends"):
        qpmopt.solve_assignment(*args, n_features=4, backend="gurobi-nope")


INTERRUPTIBLE = ["localsearch", "anneal", "highs", "cpsat", "bruteforce", "bnb"]


@pytest.mark.parametrize("backend", INTERRUPTIBLE)
def test_should_stop_returns_best_so_far_marked_interrupted(backend):
    inst = generate("medium" if backend != "bruteforce" else "tiny", seed=2)
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 3

    sol = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend=backend, should_stop=stop,
                                  time_limit=30)
    assert sol.termination is Termination.INTERRUPTED
    assert sol.status in (Status.FEASIBLE, Status.OPTIMAL) and sol.objective is not None
    # It stopped at the request, not at the time limit: it polled only a few more times.
    assert calls["n"] <= 3 + 1 + 4


@pytest.mark.parametrize("backend", INTERRUPTIBLE)
def test_keyboard_interrupt_returns_best_so_far(backend):
    inst = generate("medium" if backend != "bruteforce" else "tiny", seed=2)
    calls = {"n": 0}

    def ctrl_c():  # Ctrl-C arriving in the middle of the search
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return False

    sol = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend=backend, should_stop=ctrl_c,
                                  time_limit=30)
    assert sol.termination is Termination.INTERRUPTED and sol.objective is not None


@pytest.mark.parametrize("backend", ["anneal", "highs", "localsearch", "bruteforce", "auto", "bnb"])
def test_same_seed_same_answer(backend):
    inst = generate("tiny" if backend == "bruteforce" else "small", seed=5)
    opts = {"max_steps": 300} if backend == "anneal" else None
    runs = [qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend=backend, seed=7,
                                    threads=1, options=opts) for _ in range(2)]
    assert np.array_equal(runs[0].features, runs[1].features)
    assert np.array_equal(runs[0].assignment, runs[1].assignment)
    assert runs[0].objective == runs[1].objective and runs[0].seed == 7


class NeverProves(MipBackend):
    """A MILP 'solver' that returns its warm start and proves nothing, whatever its time."""

    name = "never-proves"

    def solve_model(self, form, time_limit, warm, config, options):
        return ModelResult(x=warm, bound=None, optimal=False)


def test_time_limit_returns_best_with_time_limit_termination():
    inst = generate("small", seed=1)
    A, R, B = inst.arrays()
    sol = qpmopt.solve_assignment(A, R, B, inst.k, n_features=inst.n_features, backend=NeverProves(), time_limit=5,
                                  options={"sdp_bound": False})
    assert sol.termination is Termination.TIME_LIMIT and sol.status is Status.FEASIBLE
    assert sol.objective == pytest.approx(objective_by_hand(A, R, B, sol.selection, sol.assignment), abs=1e-9)
    assert sol.bound is not None and sol.bound >= sol.objective


def test_ctrl_c_before_any_solution_propagates():
    inst = generate("tiny", seed=2)

    def ctrl_c():
        raise KeyboardInterrupt  # at the very first poll: nothing found yet

    with pytest.raises(KeyboardInterrupt):
        qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="bruteforce",
                                should_stop=ctrl_c)
