"""Cheap upper bounds valid for the full problem (any selection, uniqueness or not)."""

from __future__ import annotations

import numpy as np

from qpmopt.problem import Problem

__all__ = ["simple_upper_bound"]


def simple_upper_bound(problem: Problem) -> float:
    """A valid upper bound on ``Z`` in ``O(n_f^2 log n_f)``.

    ``Z_A <= sum_c`` (top-k of ``A[c, :]`` over *all* features), because selecting fewer
    features can only lower a class's best k.  For the rest, every selected feature ``i``
    has ``n_sel - 1`` selected partners, so its share of ``sum_{i<j} R_ij`` is at least half
    the sum ``m_i`` of its ``n_sel - 1`` smallest off-diagonal entries; hence
    ``Z_R + Z_B <= `` the sum of the ``n_sel`` largest ``B_i - m_i / 2``.  Handles both
    signs of ``R``.
    """
    A, R, B, k, n_sel = problem.A, problem.R, problem.B, problem.k, problem.n_features
    z_a = float(np.sort(A, axis=1)[:, -k:].sum())
    n_f = R.shape[0]
    if n_sel > 1:
        off = R + np.diag(np.full(n_f, np.inf))  # exclude the diagonal from the smallest
        m = np.partition(off, n_sel - 2, axis=1)[:, : n_sel - 1].sum(axis=1)
    else:
        m = np.zeros(n_f)
    per_feature = B - 0.5 * m
    z_rb = float(np.sort(per_feature)[-n_sel:].sum())
    return z_a + z_rb
