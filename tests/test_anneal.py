import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import qpmopt
from qpmopt.backends.anneal import AnnealBackend, default_steps
from qpmopt.instances import generate
from qpmopt.search import relaxed_value

pytestmark = pytest.mark.solver("anneal")


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n_c=st.integers(1, 6), n_f=st.integers(4, 14), data=st.data())
def test_incremental_deltas_equal_full_recomputation(seed, n_c, n_f, data):
    k = data.draw(st.integers(1, 3))
    n_sel = data.draw(st.integers(k, n_f - 1))
    rng = np.random.default_rng(seed)
    A = np.round(rng.uniform(-0.2, 1, (n_c, n_f)), 2)  # rounding creates ties
    R = rng.uniform(-0.3, 0.5, (n_f, n_f))
    p = qpmopt.Problem.from_arrays(A, (R + R.T) / 2, rng.uniform(-0.2, 0.2, n_f), k=k, n_features=n_sel, unique=False)
    chains = 3
    masks = []
    for _ in range(chains):
        m = np.zeros(n_f, bool)
        m[rng.choice(n_f, n_sel, replace=False)] = True
        masks.append(m)
    t = {x: torch.tensor(getattr(p, x)) for x in "ARB"}
    sel = torch.tensor(np.stack([np.flatnonzero(m) for m in masks]))
    red = t["R"][sel].sum(1)
    full = AnnealBackend._swap_deltas(t["A"], t["R"], t["B"], sel, red, k, chunk=2)
    cand = torch.tensor(np.stack([rng.permutation(n_f)[: max(1, n_f // 2)] for _ in range(chains)]))
    pooled = AnnealBackend._swap_deltas(t["A"], t["R"], t["B"], sel, red, k, chunk=1, cand=cand)
    assert torch.allclose(pooled, torch.gather(full, 2, cand[:, None, :].expand(-1, n_sel, -1)))
    for c, m in enumerate(masks):
        base = relaxed_value(p, m)
        for a, o in enumerate(np.flatnonzero(m)):
            for i in np.flatnonzero(~m):
                moved = m.copy()
                moved[o], moved[i] = False, True
                assert float(full[c, a, i]) == pytest.approx(relaxed_value(p, moved) - base, abs=1e-9)


def test_step_budget_makes_runs_reproducible_and_seed_matters():
    inst = generate("medium", seed=3)
    args = (*inst.arrays(), inst.k)
    opts = {"max_steps": 150, "num_chains": 4}
    a = qpmopt.solve_assignment(*args, n_features=inst.n_features, backend="anneal", seed=1, options=opts)
    b = qpmopt.solve_assignment(*args, n_features=inst.n_features, backend="anneal", seed=1, options=opts)
    assert np.array_equal(a.features, b.features) and np.array_equal(a.assignment, b.assignment)
    assert a.objective == b.objective
    assert a.info["steps"] == 150 and a.termination is qpmopt.Termination.ITERATION_LIMIT


def test_warm_start_and_initial_states_are_used():
    inst = generate("small", seed=4)
    ls = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="localsearch")
    sol = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="anneal",
                                  warm_start=ls.features, options={"max_steps": 5, "num_chains": 1, "polish": False})
    assert sol.objective >= ls.objective - 1e-9  # the best state is never worse than the start
    with pytest.raises(qpmopt.OptionsError, match=r"initial_states\[0\] selects 3 features"):
        qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="anneal",
                                options={"initial_states": [[0, 1, 2]]})


def test_beats_or_matches_the_baseline_on_a_cub_sized_instance():
    # quality check (not timed): a short step budget must already beat greedy + swaps
    inst = generate("medium", seed=8)
    base = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="localsearch")
    ann = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="anneal",
                                  options={"max_steps": 400})
    assert ann.objective >= base.objective - 1e-9


def test_default_steps_shrink_with_size():
    small = qpmopt.Problem.from_arrays(np.ones((20, 60)), k=3, n_features=15)
    big = qpmopt.Problem.from_arrays(np.ones((1000, 2048)), k=5, n_features=50)
    cub = qpmopt.Problem.from_arrays(np.ones((200, 2048)), k=5, n_features=50)
    assert default_steps(small) > default_steps(cub) == 2000 > default_steps(big)


def test_refuses_up_front_when_memory_would_not_fit(monkeypatch):
    import psutil

    class Tiny:
        available = 1 << 20  # 1 MiB free

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tiny())
    inst = generate("small", seed=1)
    with pytest.raises(qpmopt.ProblemTooLargeError, match=r"anneal: needs about .* GiB on cpu"):
        qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="anneal")
