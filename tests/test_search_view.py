"""The search view: rules on single pairs shift ``A``; a large star of shared pairs whose
rule costs its classes value is searched as one class; everything else is left alone."""

import numpy as np
import pytest

import qpmopt
from qpmopt.search import search_view
from qpmopt.search.neighbourhood import MIN_COLLAPSED_LEAVES


def _star(leaves: int, seed: int = 0, shared_count=None):
    """A hub liking features 0-4 and leaves each liking five features of their own, so that
    sharing four of the hub's costs them (the star formula is below their top-k values)."""
    rng = np.random.default_rng(seed)
    n_c, n_f = leaves + 3, 40
    A = rng.uniform(-0.1, 0.1, size=(n_c, n_f))
    A[0, :5] += 1.0
    for c in range(1, leaves + 1):
        A[c, rng.choice(np.arange(5, n_f), 5, replace=False)] += 0.9
    rules = {"shared_pairs": [(0, c) for c in range(1, leaves + 1)]}
    if shared_count is not None:
        rules["shared_count"] = shared_count
    return qpmopt.Problem.from_arrays(A, None, None, k=5, n_features=12, constraints=rules), A


def test_a_large_costly_star_is_searched_as_one_class():
    leaves = MIN_COLLAPSED_LEAVES
    p, A = _star(leaves)
    view = search_view(p)
    m, k = 4, 5  # CHiQPM's default shared count is k - 1
    np.testing.assert_allclose(view.A[0], A[0] + (m / k) * A[1:leaves + 1].sum(axis=0))
    np.testing.assert_allclose(view.A[1:leaves + 1], (1 - m / k) * A[1:leaves + 1])
    np.testing.assert_array_equal(view.A[leaves + 1:], A[leaves + 1:])  # classes outside the star
    np.testing.assert_array_equal(p.A, A)  # the problem itself is untouched


@pytest.mark.parametrize("count", [2, 3])
def test_the_share_follows_the_shared_count(count):
    p, A = _star(MIN_COLLAPSED_LEAVES, seed=1, shared_count=count)
    view = search_view(p)
    np.testing.assert_allclose(view.A[0], A[0] + (count / 5) * A[1:MIN_COLLAPSED_LEAVES + 1].sum(axis=0))


def test_small_stars_and_problems_without_pairs_are_left_alone():
    p, A = _star(MIN_COLLAPSED_LEAVES - 1)
    assert search_view(p) is p
    free = qpmopt.Problem.from_arrays(A, None, None, k=5, n_features=12)
    assert search_view(free) is free


def test_backends_answer_a_collapsed_star_within_the_rules():
    # The view only steers the search; answers are scored and verified on the problem.
    p, A = _star(MIN_COLLAPSED_LEAVES, seed=2)
    rules = p.constraints
    for backend in ("localsearch", "anneal"):
        sol = qpmopt.solve_assignment(A, None, None, 5, n_features=12, constraints=rules, backend=backend,
                                      time_limit=20, seed=0)
        W = sol.assignment
        for c in range(1, MIN_COLLAPSED_LEAVES + 1):
            assert int((W[0] & W[c]).sum()) == 4  # each leaf shares exactly four with the hub
        assert len({tuple(row) for row in W.astype(int)}) == W.shape[0]  # uniqueness
