"""What a solve returns: the raw backend answer and the verified user-facing Solution.

Following Pyomo, *why it stopped* (:class:`Termination`) is kept apart from *what it holds*
(:class:`Status`).  A status never claims more than was proven: ``optimal`` needs either
the backend's proof or a bound that meets the verified objective.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

__all__ = ["OPTIMALITY_TOL", "Status", "Termination", "BackendResult", "Solution", "bound_within_gap", "proves_optimal",
           "relative_gap"]

#: relative tolerance under which a bound is taken to prove the objective optimal
OPTIMALITY_TOL = 1e-9


class Status(str, Enum):
    """What the result holds."""

    OPTIMAL = "optimal"
    FEASIBLE = "feasible"
    INFEASIBLE = "infeasible"
    NO_SOLUTION = "no_solution"

    def __str__(self) -> str:
        return self.value


class Termination(str, Enum):
    """Why the backend stopped."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    TIME_LIMIT = "time_limit"
    INTERRUPTED = "interrupted"
    ITERATION_LIMIT = "iteration_limit"
    GAP_LIMIT = "gap_limit"  # the proven gap reached the caller's gap_limit
    CONVERGED = "converged"  # a heuristic finished its schedule / found no improving move
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


def proves_optimal(objective: float, bound: float | None) -> bool:
    """Whether ``bound`` meets ``objective`` within :data:`OPTIMALITY_TOL` (relative)."""
    return bound is not None and bound - objective <= OPTIMALITY_TOL * max(1.0, abs(objective))


def bound_within_gap(objective: float, gap: float) -> float:
    """The largest bound that proves ``objective`` within ``gap`` (relative, the measure
    of :func:`relative_gap`): ``objective + gap * max(1, |objective|)``."""
    return objective + gap * max(1.0, abs(objective))


def relative_gap(objective: float, bound: float) -> float:
    """``max(0, bound - objective) / max(1, |objective|)``: the gap a :class:`Solution`
    reports."""
    return max(0.0, bound - objective) / max(1.0, abs(objective))


@dataclass
class BackendResult:
    """A backend's raw answer, before verification.

    Attributes:
        selection: ``(n_f,)`` bool mask, or ``None`` when no solution was found.
        assignment: ``(n_c, n_f)`` bool, or ``None``.
        termination: why the backend stopped.
        bound: a proven upper bound on the objective of the *full* problem, or ``None``.
        proven_optimal: the backend proved the returned solution optimal.
        history: ``[(seconds, objective)]`` of improving solutions (for time-to-best).
        info: backend-specific details (path taken, iterations, solver log summary).
    """

    selection: np.ndarray | None
    assignment: np.ndarray | None
    termination: Termination
    bound: float | None = None
    proven_optimal: bool = False
    history: list[tuple[float, float]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Solution:
    """A verified solution of :func:`qpmopt.solve_assignment`.

    Attributes:
        features: sorted int64 ``(n_features,)`` selected feature indices (empty if none).
        assignment: bool ``(n_c, n_f)``; ``True`` where class ``c`` uses feature ``f``.
        objective: ``Z = Z_A + Z_R + Z_B`` recomputed by :mod:`qpmopt.evaluate`.
        terms: ``{"A": Z_A, "R": Z_R, "B": Z_B}``.
        bound: proven upper bound on ``Z`` or ``None``.
        gap: ``(bound - objective) / max(1, |objective|)`` or ``None``.
        status, termination, backend, wall_time (s), seed, info, history: see their types.
        constraints: the steering rules the solution meets (``Constraints.model_dump()``),
            or ``None``.
    """

    features: np.ndarray
    assignment: np.ndarray | None
    objective: float | None
    terms: dict[str, float] | None
    bound: float | None
    gap: float | None
    status: Status
    termination: Termination
    backend: str
    wall_time: float
    seed: int | None
    info: dict[str, Any] = field(default_factory=dict)
    history: list[tuple[float, float]] = field(default_factory=list)
    constraints: dict[str, Any] | None = None

    @property
    def selection(self) -> np.ndarray:
        """Boolean mask ``(n_f,)`` of the selected features."""
        n_f = 0 if self.assignment is None else self.assignment.shape[1]
        mask = np.zeros(n_f, dtype=bool)
        mask[self.features] = True
        return mask

    def class_features(self) -> list[list[int]]:
        """For every class, the sorted indices of the ``k`` features it uses."""
        if self.assignment is None:
            return []
        return [np.flatnonzero(row).tolist() for row in self.assignment]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the assignment as per-class feature lists)."""
        from qpmopt import __version__

        return {
            "features": self.features.tolist(),
            "n_candidates": None if self.assignment is None else int(self.assignment.shape[1]),
            "class_features": self.class_features(),
            "objective": self.objective,
            "terms": self.terms,
            "bound": self.bound,
            "gap": self.gap,
            "status": self.status.value,
            "termination": self.termination.value,
            "backend": self.backend,
            "wall_time": self.wall_time,
            "seed": self.seed,
            "constraints": _jsonable(self.constraints),
            "info": _jsonable(self.info),
            "qpmopt_version": __version__,
        }

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any], problem: Any = None) -> Solution:
        """A solution from :meth:`to_dict`'s output, checked.

        Without ``problem`` the structure is checked: feature ids in range, sorted and
        distinct, every class using the same number of them, all selected.  With
        ``problem`` (a :class:`qpmopt.Problem`) the solution is verified against it like a
        backend's answer (every constraint and rule), and the recorded objective must match
        the recomputed one.

        Raises:
            ValueError: a missing key or a broken structure (the message names it).
            qpmopt.VerificationError: the solution does not solve ``problem`` as recorded.
        """
        from qpmopt.evaluate import VerificationError, verify

        missing = [key for key in ("features", "n_candidates", "class_features", "status", "termination", "backend")
                   if key not in data]
        if missing:
            raise ValueError(f"solution: missing key(s) {missing}")
        features = np.asarray(data["features"], dtype=np.int64)
        rows = data["class_features"]
        n_f = data["n_candidates"]
        assignment = None
        if n_f is not None:
            if not isinstance(n_f, int) or n_f < 1:
                raise ValueError(f"solution: n_candidates must be a positive integer, got {n_f!r}")
            if features.size and (features.min() < 0 or features.max() >= n_f):
                raise ValueError(f"solution: features must lie in [0, {n_f})")
            if np.any(np.diff(features) <= 0):
                raise ValueError("solution: features must be sorted and distinct")
            assignment = np.zeros((len(rows), n_f), dtype=bool)
            for c, row in enumerate(rows):
                idx = np.asarray(row, dtype=np.int64)
                if not np.isin(idx, features).all():
                    raise ValueError(f"solution: class {c} uses features that are not selected")
                assignment[c, idx] = True
                if assignment[c].sum() != len(row) or len(row) != len(rows[0]):
                    raise ValueError(f"solution: class {c} uses {len(row)} features (repeats?), class 0 {len(rows[0])}")
        objective = data.get("objective")
        terms = data.get("terms")
        if problem is not None:
            if assignment is None:
                raise ValueError("solution: holds no assignment to verify")
            if assignment.shape != problem.A.shape:
                raise VerificationError(f"solution: shape {assignment.shape}, the problem's A is {problem.A.shape}")
            selection = np.zeros(n_f, dtype=bool)
            selection[features] = True
            checked = verify(problem, selection, assignment)
            if objective is None or not np.isclose(checked.total, objective, rtol=1e-9, atol=1e-9):
                raise VerificationError(f"solution: recorded objective {objective}, recomputed {checked.total}")
            objective, terms = checked.total, checked.as_dict()
        return cls(
            features=features, assignment=assignment, objective=objective, terms=terms, bound=data.get("bound"),
            gap=data.get("gap"), status=Status(data["status"]), termination=Termination(data["termination"]),
            backend=str(data["backend"]), wall_time=float(data.get("wall_time") or 0.0), seed=data.get("seed"),
            info=dict(data.get("info") or {}), constraints=data.get("constraints"),
        )

    @classmethod
    def from_json(cls, text: str, problem: Any = None) -> Solution:
        """:meth:`from_dict` of a JSON string written by :meth:`to_json`."""
        return cls.from_dict(json.loads(text), problem)

    def __repr__(self) -> str:
        obj = "None" if self.objective is None else f"{self.objective:.6g}"
        bnd = "None" if self.bound is None else f"{self.bound:.6g}"
        return (
            f"Solution(status={self.status.value}, termination={self.termination.value}, objective={obj}, "
            f"bound={bnd}, backend={self.backend!r}, wall_time={self.wall_time:.3g}s, seed={self.seed})"
        )


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
