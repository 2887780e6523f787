"""The optimisation problem: validated arrays plus the integer parameters.

Every check here runs before any solver, so that a backend only ever sees a well-formed,
feasible-by-counting problem.  Errors name the argument and what was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from qpmopt.constraints import Constraints, Rules, as_constraints, resolve_rules

__all__ = ["Problem", "ProblemError", "InfeasibleProblemError"]


class ProblemError(ValueError):
    """An argument of the problem is malformed; the message names it."""


class InfeasibleProblemError(ProblemError):
    """The problem is well formed but has no feasible solution (decided up front)."""


def _to_numpy(value: Any, name: str) -> np.ndarray:
    # Torch tensors (on any device, with or without grad) are accepted without importing
    # torch: they expose detach()/cpu()/numpy().
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise ProblemError(f"{name}: expected a rectangular numeric array ({exc})") from None
    if arr.dtype == object:
        raise ProblemError(
            f"{name}: expected a rectangular array of real numbers, got dtype=object "
            "(ragged rows or non-numeric entries)"
        )
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ProblemError(f"{name}: expected real numbers (float or int), got dtype={arr.dtype}")
    return arr.astype(np.float64, copy=True)


def _check_finite(arr: np.ndarray, name: str) -> None:
    # One reduction without temporaries first: a finite sum means every entry is finite (a
    # sum that overflows takes the full check, which then finds nothing).
    if np.isfinite(np.add.reduce(arr, axis=None)):
        return
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ProblemError(f"{name}: expected finite values, found {arr[tuple(bad)]} at index {tuple(int(i) for i in bad)}")


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ProblemError(f"{name}: expected an integer, got {value!r}")
    if value < minimum:
        raise ProblemError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


@dataclass(frozen=True, eq=False)
class Problem:
    """A validated QPM assignment problem.

    Attributes:
        A: ``(n_c, n_f)`` float64 class-feature similarity (rows are classes).
        R: ``(n_f, n_f)`` float64 symmetric redundancy with a zero diagonal (the diagonal
            of the input is ignored by definition of the objective).
        B: ``(n_f,)`` float64 per-feature bias.
        k: features per class.
        n_features: number of selected features (``n_sel``).
        unique: whether classes must have pairwise different feature sets.
        rules: the user's steering rules resolved against the sizes
            (:class:`qpmopt.constraints.Rules`), or ``None``.

    Build it with :meth:`from_arrays`, which validates; the constructor trusts its input.
    """

    A: np.ndarray
    R: np.ndarray
    B: np.ndarray
    k: int
    n_features: int
    unique: bool = True
    rules: Rules | None = None

    @property
    def constraints(self) -> Constraints | None:
        """The user's :class:`~qpmopt.Constraints` (``None`` without rules)."""
        return None if self.rules is None else self.rules.source

    @property
    def n_classes(self) -> int:
        return int(self.A.shape[0])

    @property
    def n_candidates(self) -> int:
        """Number of candidate features ``n_f``."""
        return int(self.A.shape[1])

    @classmethod
    def from_arrays(
        cls,
        A: Any,
        R: Any = None,
        B: Any = None,
        *,
        k: Any,
        n_features: Any = 50,
        unique: bool = True,
        constraints: Any = None,
        symmetry_tol: float = 1e-6,
    ) -> Problem:
        """Validate arrays and parameters and return a :class:`Problem`.

        Args:
            A: ``(n_c, n_f)`` class-feature similarity. Torch tensors are accepted.
            R: ``(n_f, n_f)`` symmetric redundancy, or ``None`` for zeros.
            B: ``(n_f,)`` feature bias, or ``None`` for zeros.
            k: features per class, ``1 <= k <= n_features``.
            n_features: features to select, ``k <= n_features <= n_f``.
            unique: require pairwise different class feature sets.
            constraints: a :class:`~qpmopt.Constraints`, a dict with its keys, or ``None``.
            symmetry_tol: largest accepted ``|R - R.T|`` relative to ``max(1, max|R|)``.

        Raises:
            ProblemError: a malformed argument (the message names it).
            InfeasibleProblemError: no feasible solution exists.
        """
        A_arr = _to_numpy(A, "A")
        if A_arr.ndim != 2:
            raise ProblemError(f"A: expected a 2-D array of shape (n_classes, n_features), got {A_arr.ndim}-D with shape {A_arr.shape}")
        if A_arr.size == 0:
            raise ProblemError(f"A: expected at least one class and one feature, got shape {A_arr.shape}")
        n_c, n_f = A_arr.shape
        _check_finite(A_arr, "A")

        if R is None:
            R_arr = np.zeros((n_f, n_f))
        else:
            R_arr = _to_numpy(R, "R")
            if R_arr.ndim != 2 or R_arr.shape[0] != R_arr.shape[1]:
                raise ProblemError(f"R: expected a square 2-D array (n_features, n_features), got shape {R_arr.shape}")
            if R_arr.shape[0] != n_f:
                if R_arr.shape[0] == n_c:
                    raise ProblemError(
                        f"A: shape {A_arr.shape} looks transposed: R is {R_arr.shape}, so A must be "
                        f"(n_classes, {R_arr.shape[0]}); pass A.T (rows are classes, like nn.Linear.weight)"
                    )
                raise ProblemError(f"R: expected shape ({n_f}, {n_f}) to match A's {n_f} features, got {R_arr.shape}")
            _check_finite(R_arr, "R")
            scale = max(1.0, float(np.max(np.abs(R_arr))))
            asym = float(np.max(np.abs(R_arr - R_arr.T)))
            if asym > symmetry_tol * scale:
                i, j = np.unravel_index(int(np.argmax(np.abs(R_arr - R_arr.T))), R_arr.shape)
                raise ProblemError(
                    f"R: expected a symmetric matrix, but R[{i},{j}]={R_arr[i, j]:.6g} differs from "
                    f"R[{j},{i}]={R_arr[j, i]:.6g}"
                )
            R_arr = 0.5 * (R_arr + R_arr.T)
            np.fill_diagonal(R_arr, 0.0)  # the objective ignores the diagonal by definition

        if B is None:
            B_arr = np.zeros(n_f)
        else:
            B_arr = _to_numpy(B, "B")
            if B_arr.ndim != 1:
                raise ProblemError(f"B: expected a 1-D array of shape ({n_f},), got shape {B_arr.shape}")
            if B_arr.shape[0] != n_f:
                if B_arr.shape[0] == n_c and R is None:
                    raise ProblemError(
                        f"B: has {B_arr.shape[0]} entries = n_classes; expected one per feature ({n_f}). "
                        "If A is transposed, pass A.T (rows are classes)"
                    )
                raise ProblemError(f"B: expected shape ({n_f},) to match A's {n_f} features, got {B_arr.shape}")
            _check_finite(B_arr, "B")

        k_int = _check_int(k, "k", 1)
        n_sel = _check_int(n_features, "n_features", 1)
        if not isinstance(unique, (bool, np.bool_)):
            raise ProblemError(f"unique: expected True or False, got {unique!r}")
        if n_sel > n_f:
            raise InfeasibleProblemError(f"n_features: expected at most the number of candidate features ({n_f}), got {n_sel}")
        if k_int > n_sel:
            raise InfeasibleProblemError(f"k: expected at most n_features ({n_sel}), got {k_int}")
        if unique and math.comb(n_sel, k_int) < n_c:
            raise InfeasibleProblemError(
                f"unique=True needs binomial(n_features, k) >= n_classes, but binomial({n_sel}, {k_int}) = "
                f"{math.comb(n_sel, k_int)} < {n_c}: raise n_features or k, or pass unique=False"
            )
        rules = None
        user_rules = as_constraints(constraints)
        if user_rules is not None and not user_rules.is_empty():
            rules = resolve_rules(user_rules, n_classes=n_c, n_candidates=n_f, k=k_int, n_features=n_sel,
                                  unique=bool(unique))
        return cls(A=A_arr, R=R_arr, B=B_arr, k=k_int, n_features=n_sel, unique=bool(unique), rules=rules)
