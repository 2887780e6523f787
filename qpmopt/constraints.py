"""User rules on the selection and the assignment (docs/problem.md, "Steering rules").

:class:`Constraints` is what users write (a frozen pydantic model; unknown keys are
rejected); :func:`resolve_rules` checks it against a problem's sizes and returns the
:class:`Rules` the backends read: masks of fixed variables and the shared class pairs.

Semantics: a required pair ``(c, f)`` implies that ``f`` is selected; a shared pair
``(a, b)`` counts the features both classes use, which must equal ``shared_count`` (mode
``"exact"``) or be at least it (``"at_least"``); ``shared_count=None`` means ``k - 1``
(CHiQPM's rule).  Duplicated entries are merged, and ``(a, b)`` and ``(b, a)`` name the
same shared pair: neither changes the meaning.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, StrictInt, ValidationError

__all__ = ["Constraints", "Rules", "resolve_rules", "as_constraints"]


class Constraints(BaseModel):
    """Hard rules on ``s`` and ``W`` (all indices 0-based).

    Attributes:
        include_features: features that must be selected (``s_f = 1``).
        exclude_features: features that must not be selected (``s_f = 0``).
        require_pairs: ``(class, feature)`` pairs with ``W[c, f] = 1``.
        forbid_pairs: ``(class, feature)`` pairs with ``W[c, f] = 0``.
        shared_pairs: ``(class, class)`` pairs whose feature sets must overlap.
        shared_count: how many features a shared pair shares (``None``: ``k - 1``).
        shared_mode: ``"exact"`` (CHiQPM) or ``"at_least"`` (DINO-QPM).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    include_features: list[StrictInt] = []
    exclude_features: list[StrictInt] = []
    require_pairs: list[tuple[StrictInt, StrictInt]] = []
    forbid_pairs: list[tuple[StrictInt, StrictInt]] = []
    shared_pairs: list[tuple[StrictInt, StrictInt]] = []
    shared_count: StrictInt | None = None
    shared_mode: Literal["exact", "at_least"] = "exact"

    def is_empty(self) -> bool:
        """No rule at all."""
        return not (self.include_features or self.exclude_features or self.require_pairs or self.forbid_pairs
                    or self.shared_pairs)


def as_constraints(value: Any) -> Constraints | None:
    """A :class:`Constraints` from ``None``, an instance, or a dict with the same keys.

    Raises:
        ProblemError: naming the field and what was expected.
    """
    from qpmopt.problem import ProblemError

    if value is None or isinstance(value, Constraints):
        return value
    if not isinstance(value, dict):
        raise ProblemError(f"constraints: expected qpmopt.Constraints, a dict or None, got {type(value).__name__}")
    try:
        return Constraints(**_plain(value))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ProblemError(f"constraints.{where}: {first['msg']} (got {first.get('input')!r})") from None


def _plain(value: Any) -> Any:
    # numpy integers and arrays (what users compute indices with) become Python ints and
    # lists; numpy booleans stay what they are, and are refused as indices.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass(frozen=True)
class Rules:
    """:class:`Constraints` resolved against a problem: what the backends read.

    Attributes:
        select: ``(n_f,)`` bool, features that must be selected (included, or in a
            required pair).
        forbid_select: ``(n_f,)`` bool, excluded features.
        assign: ``(n_c, n_f)`` bool, required pairs.
        forbid_assign: ``(n_c, n_f)`` bool, forbidden pairs.
        shared: ``(p, 2)`` int64 class pairs ``a < b``, sorted.
        shared_count: the count every shared pair must reach.
        shared_exact: ``True`` for ``== shared_count``, ``False`` for ``>=``.
        source: the user's :class:`Constraints`.
    """

    select: np.ndarray
    forbid_select: np.ndarray
    assign: np.ndarray
    forbid_assign: np.ndarray
    shared: np.ndarray
    shared_count: int
    shared_exact: bool
    source: Constraints

    @property
    def fixed_features(self) -> np.ndarray:
        """``(n_f,)`` bool: features whose selection the rules decide (in or out)."""
        return self.select | self.forbid_select

    @property
    def has_pair_rules(self) -> bool:
        """Rules on single class-feature pairs or on class pairs (not only on ``s``)."""
        return bool(self.assign.any() or self.forbid_assign.any() or len(self.shared))


def neighbour_lists(n_nodes: int, edges: np.ndarray) -> list[np.ndarray]:
    """Each node's neighbours in an undirected graph, as int64 arrays in the order of
    ``edges`` (``(n_edges, 2)`` node indices), e.g. each class's partners in
    :attr:`Rules.shared`."""
    lists: list[list[int]] = [[] for _ in range(n_nodes)]
    for a, b in np.asarray(edges, dtype=np.int64).reshape(-1, 2).tolist():
        lists[a].append(b)
        lists[b].append(a)
    return [np.array(x, dtype=np.int64) for x in lists]


def _check_index(value: int, size: int, field: str, entry: Any, what: str) -> None:
    from qpmopt.problem import ProblemError

    if not 0 <= value < size:
        raise ProblemError(f"constraints.{field}: entry {entry!r} has {what} {value} outside [0, {size})")


def resolve_rules(constraints: Constraints, *, n_classes: int, n_candidates: int, k: int, n_features: int,
                  unique: bool) -> Rules:
    """Check ``constraints`` against the problem's sizes and resolve them into :class:`Rules`.

    Raises:
        ProblemError: an index out of range, a class paired with itself, ``shared_count``
            outside ``0..k``; the message names the field and the entry.
        InfeasibleProblemError: rules that contradict each other or the sizes (a feature
            both included and excluded, a pair both required and forbidden, a required
            pair on an excluded feature, more features forced in than ``n_features``, a
            class with more than ``k`` required or fewer than ``k`` allowed features,
            fewer allowed features than ``n_features``, ``shared_count == k`` with
            uniqueness on).
    """
    from qpmopt.problem import InfeasibleProblemError, ProblemError

    c = constraints
    for f in c.include_features:
        _check_index(f, n_candidates, "include_features", f, "feature")
    for f in c.exclude_features:
        _check_index(f, n_candidates, "exclude_features", f, "feature")
    for field in ("require_pairs", "forbid_pairs"):
        for pair in getattr(c, field):
            _check_index(pair[0], n_classes, field, pair, "class")
            _check_index(pair[1], n_candidates, field, pair, "feature")
    for pair in c.shared_pairs:
        _check_index(pair[0], n_classes, "shared_pairs", pair, "class")
        _check_index(pair[1], n_classes, "shared_pairs", pair, "class")
        if pair[0] == pair[1]:
            raise ProblemError(f"constraints.shared_pairs: entry {pair!r} pairs class {pair[0]} with itself")
    count = k - 1 if c.shared_count is None else c.shared_count
    if not 0 <= count <= k:
        raise ProblemError(f"constraints.shared_count: expected 0..k={k}, got {count}")
    if c.shared_pairs and unique and count == k:
        raise InfeasibleProblemError(
            f"constraints.shared_count: {count} = k shared features makes the two classes' sets equal, which "
            "uniqueness forbids; use k - 1 or unique=False")

    select = np.zeros(n_candidates, dtype=bool)
    select[list(c.include_features)] = True
    forbid_select = np.zeros(n_candidates, dtype=bool)
    forbid_select[list(c.exclude_features)] = True
    both = np.flatnonzero(select & forbid_select)
    if both.size:
        raise InfeasibleProblemError(
            f"constraints: feature {int(both[0])} is in both include_features and exclude_features")
    assign = np.zeros((n_classes, n_candidates), dtype=bool)
    for cl, f in c.require_pairs:
        assign[cl, f] = True
    forbid_assign = np.zeros((n_classes, n_candidates), dtype=bool)
    for cl, f in c.forbid_pairs:
        forbid_assign[cl, f] = True
    clash = np.argwhere(assign & forbid_assign)
    if clash.size:
        cl, f = (int(v) for v in clash[0])
        raise InfeasibleProblemError(f"constraints: pair ({cl}, {f}) is in both require_pairs and forbid_pairs")
    on_excluded = np.argwhere(assign & forbid_select[None, :])
    if on_excluded.size:
        cl, f = (int(v) for v in on_excluded[0])
        raise InfeasibleProblemError(
            f"constraints: require_pairs entry ({cl}, {f}) needs feature {f}, which exclude_features excludes")
    select |= assign.any(axis=0)
    if select.sum() > n_features:
        raise InfeasibleProblemError(
            f"constraints: {int(select.sum())} features must be selected (include_features and the features of "
            f"require_pairs), more than n_features={n_features}")
    if n_candidates - forbid_select.sum() < n_features:
        raise InfeasibleProblemError(
            f"constraints.exclude_features: leaves {int(n_candidates - forbid_select.sum())} features, fewer than "
            f"n_features={n_features}")
    per_class = assign.sum(axis=1)
    if per_class.max(initial=0) > k:
        cl = int(np.argmax(per_class))
        raise InfeasibleProblemError(
            f"constraints.require_pairs: class {cl} has {int(per_class[cl])} required features, more than k={k}")
    allowed = (~forbid_assign & ~forbid_select[None, :]).sum(axis=1)
    if allowed.min(initial=k) < k:
        cl = int(np.argmin(allowed))
        raise InfeasibleProblemError(
            f"constraints.forbid_pairs: class {cl} may use only {int(allowed[cl])} features (forbidden pairs and "
            f"excluded features), fewer than k={k}")
    shared = np.array(sorted({(min(a, b), max(a, b)) for a, b in c.shared_pairs}), dtype=np.int64).reshape(-1, 2)
    return Rules(select=select, forbid_select=forbid_select, assign=assign, forbid_assign=forbid_assign,
                 shared=shared, shared_count=int(count), shared_exact=c.shared_mode == "exact", source=c)
