"""The exact model, written once.

:class:`Formulation` is a structured mixed-integer *linear* description of the problem
(index sets, coefficient arrays, and a sparse constraint matrix).  The built-in exact
backends and the plug-ins hand these arrays to their solver APIs directly;
:mod:`qpmopt.pyomo_model` writes the same model in Pyomo, with named parts, for users and
for the ``pyomo`` backend.

Restricted models: features may be *forbidden* (not candidates) or *fixed* (selected by
construction; they become constants, so that their redundancy with a free feature folds
into that feature's linear cost).  With every selected feature fixed, the model is the
exact class assignment of that selection under the rules (``qpmopt.search`` uses it).

Variables (all in ``[0, 1]``):

- ``s[f]`` binary, for every free candidate feature ``f``;
- ``W[c, f]`` binary, for every class and candidate feature;
- ``y[i, j]`` continuous for pairs of free candidates, standing for ``s_i * s_j``;
- ``p[a, b, f]`` continuous for every shared class pair of the rules and candidate ``f``,
  standing for ``W[a, f] * W[b, f]``.

The user's rules (:mod:`qpmopt.constraints`) are variable bounds (``s`` fixed to 1 for
included and 0 for excluded features, ``W`` to 1 for required and 0 for forbidden pairs)
and, per shared pair, ``p <= W[a, f]``, ``p <= W[b, f]`` and ``sum_f p = m`` (mode
``exact``, with ``p >= W[a, f] + W[b, f] - 1`` too) or ``sum_f p >= m`` (``at_least``).

Constraints:

- ``sum_f s_f = n_sel - |fixed|``; ``sum_f W[c, f] = k``; ``W[c, f] <= s_f`` (free ``f``);
- linearisation of ``y = s_i s_j``: ``y >= s_i + s_j - 1`` where ``R_ij > 0`` (penalised
  pairs push ``y`` down) and ``y <= s_i``, ``y <= s_j`` where ``R_ij < 0``;
- strengthening (``strengthen=True``): ``y`` for *every* free pair with all three
  inequalities plus the reformulation-linearisation equalities
  ``sum_{j != i} y_ij = (n_free_sel - 1) s_i`` (the cardinality constraint multiplied by
  ``s_i``).  They force each selected feature to pay for its partners, which lifts the LP
  bound of the redundancy term from 0 to something useful;
- uniqueness, added lazily: for classes ``c, d`` that collide on a set ``T``,
  ``sum_{f in T} W[c, f] + W[d, f] <= 2k - 1``.

Objective (maximise): ``sum A W + sum B s - sum R y`` + the constant of the fixed features.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from qpmopt.problem import Problem
from qpmopt.search.assignment import identical_rows

__all__ = ["Formulation"]


@dataclass
class Formulation:
    """Structured MILP of a (possibly restricted) problem; build with :meth:`build`."""

    problem: Problem
    free: np.ndarray  # (m,) int64 ids of free candidate features (have an s variable)
    fixed: np.ndarray  # (x,) int64 ids of features selected by construction
    candidates: np.ndarray  # (n_cand,) sorted int64 ids: free and fixed features
    w_class: np.ndarray  # (n_w,) class of each W variable, sorted by class
    w_feature: np.ndarray  # (n_w,) feature id of each W variable
    pairs: np.ndarray  # (p, 2) positions into ``free``, i < j
    strengthen: bool
    shared: np.ndarray  # (q, 2) class pairs of the rules' shared pairs (a < b)
    cuts: list[tuple[int, int, tuple[int, ...]]] = field(default_factory=list)

    # ---- construction -----------------------------------------------------------------
    @classmethod
    def build(
        cls,
        problem: Problem,
        *,
        candidates: np.ndarray | None = None,
        fixed: np.ndarray | None = None,
        strengthen: bool | None = None,
        max_strengthen_features: int = 100,
    ) -> Formulation:
        """Formulate ``problem``, optionally restricted.

        Args:
            candidates: feature ids allowed in the selection (others are forbidden).
                Defaults to all features.
            fixed: feature ids that must be selected (must be candidates).
            strengthen: add the all-pairs RLT equalities; by default only when there are at
                most ``max_strengthen_features`` free candidates (their ``y`` grow as m^2).
        """
        n_f, n_c = problem.n_candidates, problem.n_classes
        cand = np.arange(n_f) if candidates is None else np.unique(np.asarray(candidates, dtype=np.int64))
        fix = np.zeros(0, np.int64) if fixed is None else np.unique(np.asarray(fixed, dtype=np.int64))
        if cand.size < problem.n_features:
            raise ValueError(f"candidates: need at least n_features={problem.n_features}, got {cand.size}")
        if not np.all(np.isin(fix, cand)):
            raise ValueError("fixed: every fixed feature must be a candidate")
        if fix.size > problem.n_features:
            raise ValueError(f"fixed: {fix.size} fixed features exceed n_features={problem.n_features}")
        free = np.setdiff1d(cand, fix)
        if strengthen is None:
            strengthen = free.size <= max_strengthen_features
        # W variables: every (class, candidate) pair, sorted by class then feature.
        w_class = np.repeat(np.arange(n_c), cand.size)
        w_feature = np.tile(cand, n_c)
        iu, ju = np.triu_indices(free.size, k=1)
        if not strengthen:
            nz = problem.R[free[iu], free[ju]] != 0
            iu, ju = iu[nz], ju[nz]
        pairs = np.stack([iu, ju], axis=1).astype(np.int64)
        shared = problem.rules.shared if problem.rules is not None else np.zeros((0, 2), np.int64)
        return cls(problem, free, fix, cand, w_class, w_feature, pairs, bool(strengthen), shared)

    @staticmethod
    def count_variables(problem: Problem, *, strengthen: bool | None = None, max_strengthen_features: int = 100,
                        ) -> int:
        """Variables of the unrestricted model :meth:`build` would make, counted without
        building it (at ImageNet-21k scale the index arrays alone take gigabytes)."""
        n_c, n_f = problem.n_classes, problem.n_candidates
        if strengthen is None:
            strengthen = n_f <= max_strengthen_features
        if strengthen:
            n_y = n_f * (n_f - 1) // 2
        else:
            n_y = (int(np.count_nonzero(problem.R)) - int(np.count_nonzero(np.diag(problem.R)))) // 2
        n_shared = 0 if problem.rules is None else int(problem.rules.shared.shape[0])
        return n_f + n_c * n_f + n_y + n_shared * n_f

    # ---- variable layout --------------------------------------------------------------
    @property
    def n_s(self) -> int:
        return int(self.free.size)

    @property
    def n_w(self) -> int:
        return int(self.w_class.size)

    @property
    def n_y(self) -> int:
        return int(self.pairs.shape[0])

    @property
    def n_p(self) -> int:
        """Variables ``p[a, b, f]`` of the shared class pairs."""
        return int(self.shared.shape[0] * self.candidates.size)

    @property
    def n_vars(self) -> int:
        return self.n_s + self.n_w + self.n_y + self.n_p

    def w_index(self, classes: np.ndarray, features: np.ndarray) -> np.ndarray:
        """Positions in the variable vector of ``W[classes, features]`` (broadcast)."""
        n_cand = self.candidates.size
        return self.n_s + np.asarray(classes) * n_cand + np.searchsorted(self.candidates, features)

    @property
    def n_free_selected(self) -> int:
        return self.problem.n_features - int(self.fixed.size)

    def add_uniqueness_cut(self, c: int, d: int, features: tuple[int, ...]) -> None:
        """Forbid classes ``c`` and ``d`` from both using exactly ``features`` (feature ids)."""
        self.cuts.append((int(c), int(d), tuple(int(f) for f in features)))

    def cut_collisions(self, assignment: np.ndarray) -> int:
        """Add a uniqueness cut for every pair of classes that ``assignment`` (``(n_c, n_f)``
        bool) gives the same feature set; return how many pairs collided."""
        added = 0
        for group in identical_rows(assignment):
            features = tuple(np.flatnonzero(assignment[group[0]]).tolist())
            for i, c in enumerate(group):
                for d in group[i + 1 :]:
                    self.add_uniqueness_cut(int(c), int(d), features)
                    added += 1
        return added

    def constant(self) -> float:
        """Objective contribution of the fixed features alone (their B and mutual R)."""
        problem, x = self.problem, self.fixed
        return float(problem.B[x].sum()) - 0.5 * float(problem.R[np.ix_(x, x)].sum())

    # ---- coefficient arrays -----------------------------------------------------------
    def arrays(self) -> dict[str, Any]:
        """The model as arrays (maximisation).

        Returns ``cost (n,), constant, lower (n,), upper (n,), integer (n,) bool,
        matrix (rows, n) csr, row_lower, row_upper``.
        """
        problem = self.problem
        free, k = self.free, problem.k
        n_s, n_w, n_y = self.n_s, self.n_w, self.n_y
        pi, pj = self.pairs[:, 0], self.pairs[:, 1]
        R_pair = problem.R[free[pi], free[pj]]
        s_cost = problem.B[free] - problem.R[np.ix_(free, self.fixed)].sum(axis=1)
        cost = np.concatenate([s_cost, problem.A[self.w_class, self.w_feature], -R_pair, np.zeros(self.n_p)])
        lower = np.zeros(self.n_vars)
        upper = np.ones(self.n_vars)
        rules = problem.rules
        if rules is not None:  # the user's fixed variables are bounds
            lower[:n_s] = rules.select[free]
            upper[:n_s] = ~rules.forbid_select[free]
            lower[n_s : n_s + n_w] = rules.assign[self.w_class, self.w_feature]
            upper[n_s : n_s + n_w] = ~rules.forbid_assign[self.w_class, self.w_feature]
        integer = np.zeros(self.n_vars, dtype=bool)
        integer[: n_s + n_w] = True

        blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        rlo: list[np.ndarray] = []
        rhi: list[np.ndarray] = []
        n_rows = 0

        def add(r: np.ndarray, c: np.ndarray, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
            nonlocal n_rows
            blocks.append((r + n_rows, c, v))
            rlo.append(np.asarray(lo, dtype=np.float64))
            rhi.append(np.asarray(hi, dtype=np.float64))
            n_rows += len(lo)

        one = np.ones
        # cardinality over the free features
        add(np.zeros(n_s, np.int64), np.arange(n_s), one(n_s), [self.n_free_selected], [self.n_free_selected])
        # k per class
        add(self.w_class, n_s + np.arange(n_w), one(n_w), np.full(problem.n_classes, k), np.full(problem.n_classes, k))
        # W[c, f] - s_f <= 0 for free f
        pos_free = np.full(problem.n_candidates, -1)
        pos_free[free] = np.arange(n_s)
        linked = np.flatnonzero(pos_free[self.w_feature] >= 0)
        r = np.arange(linked.size)
        add(np.concatenate([r, r]), np.concatenate([n_s + linked, pos_free[self.w_feature[linked]]]),
            np.concatenate([one(r.size), -one(r.size)]), np.full(r.size, -np.inf), np.zeros(r.size))
        if n_y:
            yi = n_s + n_w + np.arange(n_y)
            low_side = np.flatnonzero(np.ones(n_y, bool) if self.strengthen else R_pair > 0)
            up_side = np.flatnonzero(np.ones(n_y, bool) if self.strengthen else R_pair < 0)
            q = low_side  # y - s_i - s_j >= -1
            r = np.arange(q.size)
            add(np.concatenate([r, r, r]), np.concatenate([yi[q], pi[q], pj[q]]),
                np.concatenate([one(q.size), -one(q.size), -one(q.size)]), np.full(q.size, -1.0), np.full(q.size, np.inf))
            for side in (pi, pj):  # y - s_i <= 0, y - s_j <= 0
                q = up_side
                r = np.arange(q.size)
                add(np.concatenate([r, r]), np.concatenate([yi[q], side[q]]),
                    np.concatenate([one(q.size), -one(q.size)]), np.full(q.size, -np.inf), np.zeros(q.size))
            if self.strengthen:  # sum_{j != i} y_ij - (n_free_sel - 1) s_i = 0
                add(np.concatenate([pi, pj, np.arange(n_s)]), np.concatenate([yi, yi, np.arange(n_s)]),
                    np.concatenate([one(2 * n_y), np.full(n_s, -(self.n_free_selected - 1.0))]),
                    np.zeros(n_s), np.zeros(n_s))
        if self.n_p:
            self._shared_rows(add, n_s + n_w + n_y)
        if self.cuts:
            index = {(int(c), int(f)): n_s + i for i, (c, f) in enumerate(zip(self.w_class, self.w_feature))}
            r_l: list[int] = []
            c_l: list[int] = []
            for t, (c1, c2, feats) in enumerate(self.cuts):
                for cl in (c1, c2):
                    cols = [index[(cl, f)] for f in feats if (cl, f) in index]
                    r_l += [t] * len(cols)
                    c_l += cols
            nc = len(self.cuts)
            add(np.array(r_l, np.int64), np.array(c_l, np.int64), one(len(r_l)), np.full(nc, -np.inf), np.full(nc, 2 * k - 1.0))

        rows = np.concatenate([b[0] for b in blocks])
        cols = np.concatenate([b[1] for b in blocks])
        vals = np.concatenate([b[2] for b in blocks])
        matrix = sp.csr_matrix((vals, (rows, cols)), shape=(n_rows, self.n_vars))
        return {
            "cost": cost,
            "constant": self.constant(),
            "lower": lower,
            "upper": upper,
            "integer": integer,
            "matrix": matrix,
            "row_lower": np.concatenate(rlo),
            "row_upper": np.concatenate(rhi),
        }

    def _shared_rows(self, add: Any, first: int) -> None:
        """``p <= W[a, f]``, ``p <= W[b, f]`` (and ``p >= W[a, f] + W[b, f] - 1`` when
        exact) for every shared pair and candidate, and the count row per pair."""
        rules = self.problem.rules
        n_cand, q = self.candidates.size, self.shared.shape[0]
        p_idx = first + np.arange(q * n_cand)  # pair-major, then candidate
        a = np.repeat(self.shared[:, 0], n_cand)
        b = np.repeat(self.shared[:, 1], n_cand)
        feats = np.tile(self.candidates, q)
        wa, wb = self.w_index(a, feats), self.w_index(b, feats)
        n = p_idx.size
        r = np.arange(n)
        ones = np.ones(n)
        for w in (wa, wb):  # p - W <= 0
            add(np.concatenate([r, r]), np.concatenate([p_idx, w]), np.concatenate([ones, -ones]),
                np.full(n, -np.inf), np.zeros(n))
        if rules.shared_exact:  # p - W_a - W_b >= -1
            add(np.concatenate([r, r, r]), np.concatenate([p_idx, wa, wb]), np.concatenate([ones, -ones, -ones]),
                np.full(n, -1.0), np.full(n, np.inf))
        m = float(rules.shared_count)
        add(np.repeat(np.arange(q), n_cand), p_idx, ones, np.full(q, m), np.full(q, m if rules.shared_exact else np.inf))

    # ---- solutions <-> variable vectors -----------------------------------------------
    def encode(self, selection: np.ndarray, assignment: np.ndarray) -> np.ndarray:
        """Variable vector ``(n_vars,)`` of a solution of the (restricted) model (warm starts)."""
        s = np.asarray(selection, dtype=bool)[self.free].astype(np.float64)
        W = np.asarray(assignment, dtype=bool)[self.w_class, self.w_feature].astype(np.float64)
        y = s[self.pairs[:, 0]] * s[self.pairs[:, 1]]
        assignment = np.asarray(assignment, dtype=bool)
        p = (assignment[self.shared[:, 0]][:, self.candidates] & assignment[self.shared[:, 1]][:, self.candidates])
        return np.concatenate([s, W, y, p.ravel().astype(np.float64)])

    def decode(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(selection (n_f,) bool, assignment (n_c, n_f) bool)`` from a variable vector."""
        problem = self.problem
        x = np.asarray(x)
        sel = np.zeros(problem.n_candidates, dtype=bool)
        sel[self.fixed] = True
        sel[self.free] = x[: self.n_s] > 0.5
        W = np.zeros(problem.A.shape, dtype=bool)
        on = x[self.n_s : self.n_s + self.n_w] > 0.5
        W[self.w_class[on], self.w_feature[on]] = True
        return sel, W

    # ---- Pyomo ------------------------------------------------------------------------
    def to_pyomo(self, uniqueness: str = "auto") -> Any:
        """This (unrestricted) model in Pyomo with named parts: see :func:`qpmopt.to_pyomo`."""
        from qpmopt.pyomo_model import render

        return render(self, uniqueness=uniqueness)  # type: ignore[arg-type]
