"""Independent objective and constraint checks.

This module never trusts a backend: it recomputes every term from the problem's arrays.
``solve_assignment`` runs :func:`verify` on every answer, and tests use it as the oracle
of feasibility.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qpmopt.problem import Problem
from qpmopt.search.assignment import identical_rows

__all__ = ["Terms", "VerificationError", "objective_terms", "violations", "verify", "selection_mask"]


class VerificationError(RuntimeError):
    """A candidate solution breaks a constraint. Raised for backend answers: it is a bug."""


@dataclass(frozen=True)
class Terms:
    """Objective ``Z = A + R + B`` split into its three terms (float)."""

    A: float
    R: float
    B: float

    @property
    def total(self) -> float:
        return self.A + self.R + self.B

    def as_dict(self) -> dict[str, float]:
        return {"A": self.A, "R": self.R, "B": self.B}


def selection_mask(features: np.ndarray, n_f: int) -> np.ndarray:
    """Boolean mask ``(n_f,)`` from an index array or a mask; validates the indices."""
    arr = np.asarray(features)
    if arr.dtype == bool:
        if arr.shape != (n_f,):
            raise VerificationError(f"selection: expected a boolean mask of shape ({n_f},), got {arr.shape}")
        return arr.copy()
    idx = arr.astype(np.int64).ravel()
    if idx.size and (idx.min() < 0 or idx.max() >= n_f):
        raise VerificationError(f"selection: indices must lie in [0, {n_f}), got {idx.min()}..{idx.max()}")
    if np.unique(idx).size != idx.size:
        raise VerificationError("selection: repeated feature indices")
    mask = np.zeros(n_f, dtype=bool)
    mask[idx] = True
    return mask


def objective_terms(problem: Problem, selection: np.ndarray, assignment: np.ndarray) -> Terms:
    """Objective terms of ``(s, W)`` without checking feasibility.

    Args:
        selection: ``(n_f,)`` boolean mask or index array of selected features.
        assignment: ``(n_c, n_f)`` boolean (or 0/1) class-feature assignment.
    """
    s = selection_mask(selection, problem.n_candidates).astype(np.float64)
    W = np.asarray(assignment, dtype=np.float64)
    z_a = float(np.sum(problem.A * W))
    # R has a zero diagonal, so s^T R s counts every pair i<j twice.
    z_r = -0.5 * float(s @ problem.R @ s)
    z_b = float(problem.B @ s)
    return Terms(z_a, z_r, z_b)


def violations(problem: Problem, selection: np.ndarray, assignment: np.ndarray) -> list[str]:
    """Every constraint that ``(s, W)`` breaks, as readable strings (empty when feasible)."""
    n_c, n_f = problem.A.shape
    out: list[str] = []
    try:
        s = selection_mask(selection, n_f)
    except VerificationError as exc:
        return [str(exc)]
    W = np.asarray(assignment)
    if W.shape != (n_c, n_f):
        return [f"assignment: expected shape ({n_c}, {n_f}), got {W.shape}"]
    if W.dtype != bool:
        if not np.all((W == 0) | (W == 1)):
            return ["assignment: entries must be 0 or 1"]
        W = W.astype(bool)
    if int(s.sum()) != problem.n_features:
        out.append(f"selection: {int(s.sum())} features selected, expected n_features={problem.n_features}")
    row_sums = W.sum(axis=1)
    bad_rows = np.flatnonzero(row_sums != problem.k)
    if bad_rows.size:
        c = int(bad_rows[0])
        out.append(f"assignment: class {c} uses {int(row_sums[c])} features, expected k={problem.k} ({bad_rows.size} classes wrong)")
    outside = W & ~s[None, :]
    if outside.any():
        c, f = (int(v) for v in np.argwhere(outside)[0])
        out.append(f"assignment: class {c} uses feature {f}, which is not selected")
    if problem.unique:
        groups = identical_rows(W)
        if groups:
            out.append(f"uniqueness: classes {groups[0][:5].tolist()} share the same feature set "
                       f"({len(groups)} groups of classes collide)")
    if problem.constraints is not None:
        out += _rule_violations(problem, s, W)
    return out


def _rule_violations(problem: Problem, s: np.ndarray, W: np.ndarray) -> list[str]:
    # Read from the user's Constraints, not from the resolved Rules the backends use.
    rules = problem.constraints
    out = [f"include_features: feature {f} is not selected" for f in rules.include_features if not s[f]]
    out += [f"exclude_features: feature {f} is selected" for f in rules.exclude_features if s[f]]
    out += [f"require_pairs: class {c} does not use feature {f}" for c, f in rules.require_pairs if not W[c, f]]
    out += [f"forbid_pairs: class {c} uses feature {f}" for c, f in rules.forbid_pairs if W[c, f]]
    count = problem.k - 1 if rules.shared_count is None else rules.shared_count
    for a, b in rules.shared_pairs:
        shared = int(np.sum(W[a] & W[b]))
        if shared != count if rules.shared_mode == "exact" else shared < count:
            want = f"exactly {count}" if rules.shared_mode == "exact" else f"at least {count}"
            out.append(f"shared_pairs: classes {a} and {b} share {shared} features, expected {want}")
    return out


def verify(problem: Problem, selection: np.ndarray, assignment: np.ndarray) -> Terms:
    """Check every constraint, then return the objective terms.

    Raises:
        VerificationError: listing every broken constraint.
    """
    bad = violations(problem, selection, assignment)
    if bad:
        raise VerificationError("infeasible candidate: " + "; ".join(bad))
    return objective_terms(problem, selection, assignment)
