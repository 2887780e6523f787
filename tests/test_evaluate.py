import numpy as np
import pytest

from qpmopt import Problem
from qpmopt.evaluate import VerificationError, objective_terms, verify, violations


@pytest.fixture
def problem():
    A = np.array([[1.0, 0.5, 0.2, 0.0], [0.1, 0.9, 0.8, 0.3], [0.4, 0.4, 0.7, 0.6]])
    R = np.array([[0, 0.2, 0.4, 0], [0.2, 0, -0.1, 0.5], [0.4, -0.1, 0, 0.3], [0, 0.5, 0.3, 0]])
    B = np.array([0.1, -0.2, 0.05, 0.3])
    return Problem.from_arrays(A, R, B, k=2, n_features=3)


def test_terms_by_hand(problem):
    s = np.array([True, True, True, False])
    W = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 0]], dtype=bool)
    t = verify(problem, s, W)
    assert t.A == pytest.approx(1.0 + 0.5 + 0.9 + 0.8 + 0.4 + 0.7)
    assert t.R == pytest.approx(-(0.2 + 0.4 - 0.1))  # negative R is a reward
    assert t.B == pytest.approx(0.1 - 0.2 + 0.05)
    assert t.total == pytest.approx(t.A + t.R + t.B)
    # index arrays and masks give the same terms
    assert objective_terms(problem, np.array([0, 1, 2]), W) == t


@pytest.mark.parametrize(
    "s, W, reason",
    [
        ([1, 1, 0, 0], [[1, 1, 0, 0], [1, 1, 0, 0], [1, 1, 0, 0]], "2 features selected, expected n_features=3"),
        ([1, 1, 1, 0], [[1, 1, 1, 0], [0, 1, 1, 0], [1, 0, 1, 0]], "class 0 uses 3 features, expected k=2"),
        ([1, 1, 1, 0], [[1, 0, 0, 1], [0, 1, 1, 0], [1, 0, 1, 0]], "class 0 uses feature 3, which is not selected"),
        ([1, 1, 1, 0], [[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0]], r"uniqueness: classes \[0, 1\] share"),
    ],
)
def test_each_violation_is_named(problem, s, W, reason):
    s = np.array(s, dtype=bool)
    W = np.array(W, dtype=bool)
    assert any(__import__("re").search(reason, v) for v in violations(problem, s, W))
    with pytest.raises(VerificationError, match=reason):
        verify(problem, s, W)


def test_uniqueness_off_accepts_shared_sets(problem):
    p = Problem.from_arrays(problem.A, problem.R, problem.B, k=2, n_features=3, unique=False)
    s = np.array([1, 1, 1, 0], dtype=bool)
    W = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 1, 0]], dtype=bool)
    assert violations(p, s, W) == []


def test_wrong_shapes_and_values(problem):
    s = np.array([1, 1, 1, 0], dtype=bool)
    assert "expected shape (3, 4)" in violations(problem, s, np.zeros((4, 3)))[0]
    assert "0 or 1" in violations(problem, s, np.full((3, 4), 0.5))[0]
    assert "indices must lie" in violations(problem, np.array([0, 1, 9]), np.zeros((3, 4)))[0]
