import numpy as np
import pytest
import torch

from qpmopt import InfeasibleProblemError, Problem, ProblemError


def arrays(n_c=4, n_f=6, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.random((n_c, n_f))
    R = rng.random((n_f, n_f))
    return A, (R + R.T) / 2, rng.random(n_f)


def test_valid_problem_keeps_values_and_zeroes_the_diagonal():
    A, R, B = arrays()
    p = Problem.from_arrays(A, R, B, k=2, n_features=4)
    assert p.A.dtype == np.float64 and np.array_equal(p.A, A)
    assert np.all(np.diag(p.R) == 0)
    off = ~np.eye(6, dtype=bool)
    assert np.allclose(p.R[off], R[off])


def test_none_means_zero():
    A, _, _ = arrays()
    p = Problem.from_arrays(A, None, None, k=2, n_features=4)
    assert not p.R.any() and not p.B.any()


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda A, R, B: (A.T, R, B), "looks transposed"),
        (lambda A, R, B: (A[0], R, B), "A: expected a 2-D array"),
        (lambda A, R, B: (A, R[:, :5], B), "R: expected a square"),
        (lambda A, R, B: (A, R[:5, :5], B), r"R: expected shape \(6, 6\)"),
        (lambda A, R, B: (A, R + np.triu(np.ones_like(R), 1), B), "R: expected a symmetric matrix"),
        (lambda A, R, B: (A, R, B[:5]), r"B: expected shape \(6,\)"),
        (lambda A, R, B: (A, R, B[:, None]), "B: expected a 1-D array"),
        (lambda A, R, B: (np.where(np.eye(4, 6) > 0, np.nan, A), R, B), "A: expected finite values"),
        (lambda A, R, B: (A, np.full_like(R, np.inf), B), "R: expected finite values"),
        (lambda A, R, B: (A, R, np.full_like(B, -np.inf)), "B: expected finite values"),
        (lambda A, R, B: (A.astype(complex), R, B), "A: expected real numbers"),
        (lambda A, R, B: (A > 0.5, R, B), "A: expected real numbers"),
        (lambda A, R, B: ([[1.0, 2.0], [1.0]], None, None), "A: expected a rectangular"),
        (lambda A, R, B: (np.array([["a", "b"]]), None, None), "A: expected real numbers"),
        (lambda A, R, B: (np.zeros((0, 6)), None, None), "A: expected at least one class"),
    ],
)
def test_bad_arrays_name_the_argument(mutate, match):
    A, R, B = arrays()
    a, r, b = mutate(A, R, B)
    with pytest.raises(ProblemError, match=match):
        Problem.from_arrays(a, r, b, k=2, n_features=4)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"k": 0, "n_features": 4}, ProblemError, "k: expected an integer >= 1"),
        ({"k": -1, "n_features": 4}, ProblemError, "k: expected an integer >= 1"),
        ({"k": 2.0, "n_features": 4}, ProblemError, "k: expected an integer"),
        ({"k": True, "n_features": 4}, ProblemError, "k: expected an integer"),
        ({"k": 2, "n_features": 0}, ProblemError, "n_features: expected an integer >= 1"),
        ({"k": 2, "n_features": 7}, InfeasibleProblemError, "n_features: expected at most"),
        ({"k": 4, "n_features": 3}, InfeasibleProblemError, "k: expected at most n_features"),
        ({"k": 2, "n_features": 4, "unique": "yes"}, ProblemError, "unique: expected True or False"),
    ],
)
def test_bad_parameters(kwargs, err, match):
    A, R, B = arrays()
    with pytest.raises(err, match=match):
        Problem.from_arrays(A, R, B, **kwargs)


def test_uniqueness_infeasible_decided_up_front():
    A, R, B = arrays(n_c=4, n_f=6)
    # binomial(3, 3) = 1 < 4 classes
    with pytest.raises(InfeasibleProblemError, match=r"binomial\(3, 3\) = 1 < 4"):
        Problem.from_arrays(A, R, B, k=3, n_features=3)
    Problem.from_arrays(A, R, B, k=3, n_features=3, unique=False)  # fine without uniqueness


def test_single_class_is_valid():
    A, R, B = arrays(n_c=1)
    assert Problem.from_arrays(A, R, B, k=1, n_features=1).n_classes == 1


def test_torch_tensors_with_grad_are_accepted_as_copies():
    A, R, B = arrays()
    tA = torch.tensor(A, requires_grad=True)
    p = Problem.from_arrays(tA, torch.tensor(R), torch.tensor(B, dtype=torch.float32), k=2, n_features=4)
    assert isinstance(p.A, np.ndarray) and np.allclose(p.A, A)
