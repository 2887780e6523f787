"""Directions for stronger bounds that were measured and not kept (issues 13 and 11), and
where the remaining gaps come from, so that the next attempt starts from numbers.

    python benchmarks/bound_directions.py          (about 27 minutes on 2 cores, about 10
                                                   more for coselection_sets, 5 more for
                                                   the three parts of
                                                   results/bound_directions-fixing.json and
                                                   3 more for hybrid_sdp; 5 with
                                                   --hybrid-iterations 1000, as in
                                                   results/bound_directions-hybrid.json)

Writes results/bound_directions.json with these parts (``--parts`` picks some):

- ``gap_sources``: medium-1 and cub-1 with ``R`` and with ``R = 0``: ``auto``'s objective
  and the Lagrangian bound.  Without ``R`` the gap left is the selection coupling's alone
  (the Lagrangian relaxation of ``W <= s``); with ``R`` the redundancy term's is added.
- ``triangle_cuts``: the semidefinite bound on medium-1 with the most violated triangle
  inequalities ``X_ij >= X_ik + X_jk - s_k`` (valid for binary ``s``) added to its dual in
  rounds, against the plain bound given the same extra iterations.
- ``clique_cuts``: the same on small-1 and medium-1 with clique inequalities over two
  features (``X_ij >= s_i + s_j - 1``, the product's lower McCormick bound) and over three
  (``s_i + s_j + s_l - X_ij - X_il - X_jl <= 1``), neither of which the relaxation
  implies at fractional points (``python benchmarks/bound_directions.py --parts
  clique_cuts class_pair_cuts redundancy_alone --out results/bound_directions-cuts.json``).
- ``class_pair_cuts``: the same with ``W_cf + W_cg <= 1 + X_fg`` (a class uses two
  features only if the pair is selected), separated among each class's best features.
- ``upper_pair_cuts``: the same on small-1 and medium-1 with the product's upper
  McCormick bounds ``X_ij <= s_i`` (every ordered pair), which positive semidefiniteness
  does not imply where ``s_i < s_j`` (``python benchmarks/bound_directions.py --parts
  upper_pair_cuts long_branching --out results/bound_directions-long.json``).
- ``coselection_cuts``: the same on small-1 and medium-1 with co-selection cuts
  ``k s_g <= sum_f min(X_fg, W_cf)`` for every class ``c`` and feature ``g`` (a selected
  feature is selected together with each of the class's features), linearised anew in
  each of ``--rounds`` rounds (``python benchmarks/bound_directions.py --parts
  coselection_cuts --out results/bound_directions-coselection.json``).
- ``coselection_sets``: the same cuts linearised once per class and set of its features
  (a set ``S``: ``sum_{f in S} X_fg + sum_{f not in S} W_cf >= k s_g`` for every ``g``),
  three new sets per class in each of ``--rounds`` rounds, from a plain bound with a finer
  last level and more iterations (``python benchmarks/bound_directions.py --parts
  coselection_sets --out results/bound_directions-sets.json``; with five times the
  iterations per level in four rounds: ``--rounds 4 --set-iterations 4000 --out
  results/bound_directions-sets-long.json``).
- ``relaxation_value`` (only when named; needs cvxpy, which qpmopt does not depend on):
  the semidefinite relaxation's own value from a general SDP solver on small-1 (also with
  every co-selection cut) and medium-1, next to ``sdp_upper_bound`` given 50 s
  (``python benchmarks/bound_directions.py --parts relaxation_value --out
  results/bound_directions-relaxation.json``).
- ``redundancy_alone``: medium-1 with ``A = 0``: ``auto``'s answer against the
  semidefinite bound, the gap the selection's own terms leave without the classes.
- ``best_first``: the branch and bound on medium-1 in one process, open nodes largest
  bound first, pruning at 1% above the incumbent: the largest open bound over time and how
  much each branching lowered the children's bounds.
- ``long_branching``: ``bnb``'s own search (two worker processes, largest bound first
  with short dives) on medium-1 from the annealer's answer, pruning at 1% above it, for
  ``--branch-seconds``: the largest open bound over time, nodes bounded and left open.
- ``fixing_by_bound``: fixing features by bound, as issue 13 suggests.  On small-1 (every
  feature) and medium-1 (the five features with the lowest and the five with the highest
  relaxed ``s``), each feature forced in and forced out, its bound minimised from the
  root's multipliers, next to the root given the same iterations more; how many features
  a 1% proof could fix.
- ``convex_reformulation_root``: the semidefinite bound on small-1 and medium-1 with and
  without ``X >= 0``; without it is the most a convex reformulation (QCR) gives a MILP
  solver at its root.
- ``facility_part``: medium-1 with ``R = 0`` solved by HiGHS (300 s limit): the classes'
  part alone.
- ``hybrid_sdp``: cub-1 with the semidefinite lifting on the 300 features the Lagrangian
  bound values most, the other features linear and their pairs dropped (valid for
  ``R >= 0``), next to the plain semidefinite bound of the problem restricted to those
  features.
- ``cub_star``: cub-1 with CHiQPM's pairs (``similar_class_pairs(A, 0.5)``): the star
  that ``bounds.pair_stars`` finds, its classes' share of the unconstrained and the
  constrained answers, the star's bound by positive parts, the best hub set found by
  enumeration (each leaf four of the hub's five, its own fifth outside), and the
  Lagrangian bound of the other classes alone.
"""

from __future__ import annotations

import argparse
import heapq
import sys
import time
from contextlib import nullcontext
from itertools import combinations
from pathlib import Path
from unittest import mock

import numpy as np
import reference
from scipy.optimize import Bounds, minimize
from scipy.special import expit

import qpmopt
import qpmopt.branch_bound as bb
from qpmopt.bench import provenance
from qpmopt.bounds import _pair_floor, lagrangian_iterations, lagrangian_multipliers, lagrangian_upper_bound, pair_stars
from qpmopt.io import write_json
from qpmopt.sdp_bound import DEFAULT_SCHEDULE, _Dual, _Layout, _scaled_dual, sdp_upper_bound
from qpmopt.search import evaluate_selection
from qpmopt.solution import bound_within_gap
from qpmopt.testing import random_problem
from qpmopt.threads import single_threaded_blas

ROOT = Path(__file__).resolve().parents[1]


def _problem(name: str, R_zero: bool = False, constraints=None) -> qpmopt.Problem:
    k, n_sel, _ = reference.REFERENCE[name]
    A, R, B = reference.load(name)
    if R_zero:
        R = np.zeros_like(R)
    return qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel, constraints=constraints)


def gap_sources(time_limit: float, seed: int) -> list[dict]:
    rows = []
    for name in ("medium-1", "cub-1"):
        for r_zero in (False, True):
            p = _problem(name, r_zero)
            sol = qpmopt.solve_assignment(p.A, p.R, p.B, p.k, n_features=p.n_features, backend="auto",
                                          time_limit=time_limit, seed=seed)
            t0 = time.perf_counter()
            lag = lagrangian_upper_bound(p, sol.objective, iterations=lagrangian_iterations(p))
            rows.append({"instance": name, "R": "zero" if r_zero else "as given", "objective": sol.objective,
                         "auto_bound": sol.bound, "lagrangian": lag, "lagrangian_seconds": time.perf_counter() - t0,
                         "lagrangian_gap": lag / sol.objective - 1})
            print(rows[-1], flush=True)
    return rows


class _CutDual:
    """The dual of :mod:`qpmopt.sdp_bound` with multipliers ``nu >= 0`` for a family of
    valid inequalities on ``(s, X)`` appended to the packed vector.

    A family is written once for ``q`` feature positions: ``x_terms`` holds ``(a, b,
    sign)`` for ``sign * X[f_a, f_b]``, ``s_terms`` ``(a, sign)`` for ``sign * s[f_a]``,
    and ``const`` the constant; a cut is the sum, ``>= 0``, at one row of ``cuts``.
    """

    def __init__(self, dual: _Dual, x_terms, s_terms, const: float) -> None:
        self.dual, self.n_base = dual, dual.layout.size
        self.x_terms, self.s_terms, self.const = x_terms, s_terms, const
        self.cuts = np.zeros((0, 1 + max(max(a, b) for a, b, _ in x_terms)), dtype=np.int64)
        self._matrix = dual.matrix
        dual.matrix = self._with_cuts  # the smooth/exact code of _Dual stays as it is
        self.nu = np.zeros(0)

    def _with_cuts(self, p):
        C, const = self._matrix(p)
        size = C.shape[0]
        flat = C.reshape(-1)
        f = self.cuts + 1  # rows and columns of C
        for a, b, sign in self.x_terms + [(None, a, sign) for a, sign in self.s_terms]:
            row = np.zeros(len(f), dtype=np.int64) if a is None else f[:, a]
            np.add.at(flat, row * size + f[:, b], 0.5 * sign * self.nu)
            np.add.at(flat, f[:, b] * size + row, 0.5 * sign * self.nu)
        return C, const + self.const * float(self.nu.sum())

    def residual(self, s: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Each cut's left-hand side at ``(s, X)``."""
        t = self.cuts
        out = np.full(len(t), self.const)
        for a, sign in self.s_terms:
            out += sign * s[t[:, a]]
        for a, b, sign in self.x_terms:
            out += sign * X[t[:, a], t[:, b]]
        return out

    def smooth(self, y: np.ndarray, tau: float):
        """As ``_Dual.smooth``, with the cuts' residuals at its smoothed maximiser
        (``dual.last_M``, which the next separation reads too) appended to the gradient."""
        self.nu = y[self.n_base:]
        value, grad, certified = self.dual.smooth(y[: self.n_base], tau)
        M = self.dual.last_M
        return value, np.concatenate([grad, self.residual(M[0, 1:], M[1:, 1:])]), certified


def _triangle_dual(dual: _Dual) -> _CutDual:
    """``X_ij - X_ik - X_jk + s_k >= 0`` at rows ``(i, j, k)``."""
    return _CutDual(dual, [(0, 1, 1.0), (0, 2, -1.0), (1, 2, -1.0)], [(2, 1.0)], 0.0)


def _clique_dual(dual: _Dual, q: int) -> _CutDual:
    """``1 - sum_a s_a + sum_{a<b} X_ab >= 0`` over ``q`` features (2: the product's
    lower McCormick bound ``X_ij >= s_i + s_j - 1``; 3: at most one of three features
    selected unless their products say otherwise)."""
    pairs = [(a, b, 1.0) for a, b in combinations(range(q), 2)]
    return _CutDual(dual, pairs, [(a, -1.0) for a in range(q)], 1.0)


def _cut_rounds(p: qpmopt.Problem, make_cuts, separate, rounds: int, per_round: int) -> dict:
    """The semidefinite bound with ``rounds`` rounds of the ``per_round`` most violated
    cuts that ``separate(cut_dual, s, X)`` returns (candidate rows and their violations),
    each round followed by two smoothing levels, against the plain bound given the same
    extra iterations."""

    def add_round(cuts: _CutDual) -> tuple[int, dict]:
        M = cuts.dual.last_M
        rows, violation = separate(cuts, M[0, 1:], M[1:, 1:].copy())
        order = np.argsort(-violation)[:per_round]
        order = order[violation[order] > 1e-4]
        seen = {tuple(t) for t in cuts.cuts.tolist()}
        new = [t for t in rows[order].tolist() if tuple(t) not in seen]
        cuts.cuts = np.concatenate([cuts.cuts, np.array(new, dtype=np.int64).reshape(-1, cuts.cuts.shape[1])])
        largest = float(violation.max()) if violation.size else 0.0
        return len(new), {"cuts": len(cuts.cuts), "largest_violation": largest}

    def clear(cuts: _CutDual) -> None:
        cuts.cuts = cuts.cuts[:0]

    return _rounds(p, make_cuts, add_round, clear, rounds)


def _rounds(p: qpmopt.Problem, make_cuts, add_round, clear, rounds: int, root_levels=DEFAULT_SCHEDULE,
            round_levels=(0.003, 0.001), root_iterations: int = 150, round_iterations: int = 150) -> dict:
    """What the cut families here share: the plain bound's ``root_levels`` (smoothing
    levels, ``root_iterations`` L-BFGS iterations each), then ``rounds`` times
    ``add_round(cuts)`` (which adds cuts and returns how many multipliers they add and what
    to record) followed by ``round_levels`` (``round_iterations`` each); then, from the
    plain bound again (``clear(cuts)`` drops the cuts), the same extra iterations without
    cuts."""
    dual, scale = _scaled_dual(p)
    cuts = make_cuts(dual)
    best = [np.inf]

    def fun(v, tau):
        value, grad, certified = cuts.smooth(v, tau)
        best[0] = min(best[0], certified)
        return value, grad

    def run(y, taus, iterations):
        lb = np.concatenate([dual.layout.bounds().lb, np.zeros(y.size - cuts.n_base)])
        for tau in taus:
            y = minimize(fun, y, args=(tau,), jac=True, method="L-BFGS-B", bounds=Bounds(lb, np.full(lb.size, np.inf)),
                         options={"maxiter": iterations, "maxcor": 5}).x
        return y

    out = {"rounds": []}
    t0 = time.perf_counter()
    with single_threaded_blas():
        y = np.zeros(dual.layout.size)
        y[dual.layout.slices["t"]] = np.sort(dual.A, axis=1)[:, -p.k]
        y = run(y, root_levels, root_iterations)
        out["root"] = {"bound": scale * best[0], "seconds": time.perf_counter() - t0}
        y_plain, best_root = y.copy(), best[0]
        for _ in range(rounds):
            added, info = add_round(cuts)
            y = run(np.concatenate([y, np.zeros(added)]), round_levels, round_iterations)
            out["rounds"].append({**info, "bound": scale * best[0], "seconds": time.perf_counter() - t0})
            print(out["rounds"][-1], flush=True)
        clear(cuts)
        best[0] = best_root
        y = y_plain
        t_plain = time.perf_counter()
        for _ in range(rounds):
            y = run(y, round_levels, round_iterations)
        out["plain_same_iterations"] = scale * best[0]
        out["plain_seconds"] = out["root"]["seconds"] + time.perf_counter() - t_plain
    print("plain with the same iterations", out["plain_same_iterations"], flush=True)
    return out


def triangle_cuts(rounds: int, per_round: int) -> dict:
    p = _problem("medium-1")
    R = p.R

    def separate(_, s, X):
        np.fill_diagonal(X, s)
        ii, jj = np.nonzero(np.triu(R > 0, 1))  # only pairs the objective charges
        V = X[ii, :] + X[jj, :] - s[None, :] - X[ii, jj][:, None]
        V[np.arange(ii.size), ii] = V[np.arange(ii.size), jj] = -np.inf
        kb = np.argmax(V, axis=1)
        return np.stack([ii, jj, kb], 1), V[np.arange(ii.size), kb]

    return _cut_rounds(p, _triangle_dual, separate, rounds, per_round)


#: Features, by their relaxed ``s``, among which three-feature cliques are separated.
CLIQUE_POOL = 80


def clique_cuts(name: str, rounds: int, per_round: int) -> dict:
    """Two- and three-feature clique inequalities (``X_ij >= s_i + s_j - 1`` and
    ``s_i + s_j + s_l - X_ij - X_il - X_jl <= 1``) on one instance."""
    p = _problem(name)
    n_f = p.n_candidates

    def pairs(_, s, X):
        i, j = np.triu_indices(n_f, 1)
        return np.stack([i, j], 1), s[i] + s[j] - 1.0 - X[i, j]

    def triples(_, s, X):
        pool = np.argsort(-s)[:CLIQUE_POOL]
        t = np.sort(pool[np.array(list(combinations(range(pool.size), 3)))], axis=1)
        a, b, c = t.T
        return t, s[a] + s[b] + s[c] - X[a, b] - X[a, c] - X[b, c] - 1.0

    out = {}
    for label, q, separate in (("pairs", 2, pairs), ("triples", 3, triples)):
        print(name, label, flush=True)
        out[label] = _cut_rounds(p, lambda dual, q=q: _clique_dual(dual, q), separate, rounds, per_round)
    return out


class _ClassPairDual(_CutDual):
    """Cuts ``1 + X_fg - W_cf - W_cg >= 0`` at rows ``(c, f, g)``: a class uses two
    features only if both are selected, which ties the classes' part to the pair products
    (the relaxation links ``W`` to ``s`` alone).  Their multipliers lower the class's
    values in the top-k part and raise ``X_fg``'s coefficient."""

    def __init__(self, dual: _Dual) -> None:
        super().__init__(dual, [(1, 2, 1.0)], [], 1.0)
        self.A = dual.A.copy()
        self.last_W = None

    def smooth(self, y: np.ndarray, tau: float):
        nu = y[self.n_base:]
        c, f, g = self.cuts.T
        A = self.A.copy()
        np.add.at(A, (c, f), -nu)
        np.add.at(A, (c, g), -nu)
        self.dual.A = A
        value, grad, certified = super().smooth(y, tau)
        mu_grad = grad[self.dual.layout.slices["mu"]].reshape(self.A.shape)
        self.last_W = self.dual.last_M[0, 1:][None, :] - mu_grad  # the smoothed maximiser's W
        grad[self.n_base:] -= self.last_W[c, f] + self.last_W[c, g]
        return value, grad, certified


#: Each class's features, by its values, among which class-pair cuts are separated.
CLASS_PAIR_POOL = 12


def class_pair_cuts(name: str, rounds: int, per_round: int) -> dict:
    """:class:`_ClassPairDual` cuts on one instance, separated among each class's
    :data:`CLASS_PAIR_POOL` best features."""
    p = _problem(name)
    top = np.sort(np.argsort(-p.A, axis=1)[:, :CLASS_PAIR_POOL], axis=1)
    a, b = np.triu_indices(CLASS_PAIR_POOL, 1)
    rows = np.stack([np.repeat(np.arange(p.n_classes), a.size), top[:, a].ravel(), top[:, b].ravel()], 1)

    def separate(cuts, s, X):
        W = cuts.last_W
        return rows, W[rows[:, 0], rows[:, 1]] + W[rows[:, 0], rows[:, 2]] - 1.0 - X[rows[:, 1], rows[:, 2]]

    return _cut_rounds(p, _ClassPairDual, separate, rounds, per_round)


def upper_pair_cuts(name: str, rounds: int, per_round: int) -> dict:
    """``s_i - X_ij >= 0`` at rows ``(i, j)``, every ordered pair of distinct features."""
    p = _problem(name)
    off_diagonal = np.nonzero(~np.eye(p.n_candidates, dtype=bool))

    def separate(_, s, X):
        i, j = off_diagonal
        return np.stack([i, j], 1), X[i, j] - s[i]

    return _cut_rounds(p, lambda dual: _CutDual(dual, [(0, 1, -1.0)], [(0, 1.0)], 0.0), separate, rounds, per_round)


class _CoselectionTerms:
    """What the co-selection duals share: the dual of :mod:`qpmopt.sdp_bound` whose ``X``
    coefficients, classes' values and linear term of ``s`` get the cuts' terms (its code
    stays as it is), and the smoothed maximiser ``(s, X, W)`` kept in ``last``."""

    def __init__(self, dual: _Dual) -> None:
        self.dual, self.n_base = dual, dual.layout.size
        self.A0, self.half_R0, self.B0 = dual.A.copy(), dual.half_R.copy(), dual.B.copy()

    def _smooth_with(self, y: np.ndarray, tau: float, K: np.ndarray, extra: np.ndarray, total: np.ndarray):
        """``_Dual.smooth`` at the base multipliers of ``y`` with ``K`` ``(n_f, n_f)`` added
        to the ``X`` coefficients, ``extra`` ``(n_c, n_f)`` to the classes' values and
        ``-k total`` ``(n_f,)`` to the linear term of ``s``."""
        d = self.dual
        d.A = self.A0 + extra
        d.half_R = self.half_R0 + 0.5 * (K + K.T)
        d.B = self.B0 - d.k * total
        value, grad, certified = d.smooth(y[: self.n_base], tau)
        p = d.layout.split(y[: self.n_base])
        M = d.last_M
        self.last = (M[0, 1:], M[1:, 1:], expit((d.A - p["mu"] - p["t"][:, None]) / tau))
        return value, grad, certified


class _CoselectionDual(_CoselectionTerms):
    """The dual of :mod:`qpmopt.sdp_bound` with co-selection cuts: for a class ``c`` and a
    feature ``g``, ``k s_g <= sum_f min(X_fg, W_cf)`` (a selected feature is selected
    together with each of the class's ``k`` features; valid at every binary point).  The
    minimum is written with products ``P_fg = W_cf s_g``, ``P <= X``, ``P <= W``; their
    multipliers are ``theta * lam`` and ``(1 - theta) * lam``, so that a set of
    ``theta`` in ``[0, 1]^(n_c, n_f, n_f)`` and ``lam >= 0`` ``(n_c, n_f)`` is one
    linearisation: ``sum_f [theta X_fg + (1 - theta) W_cf] >= k s_g``.  Every round adds
    one set, ``theta = [X_fg < W_cf]`` at the last smoothed maximiser (where the minimum
    takes ``X``), with new multipliers.
    """

    def __init__(self, dual: _Dual) -> None:
        super().__init__(dual)
        self.sets: list[np.ndarray] = []

    def smooth(self, y: np.ndarray, tau: float):
        n_c, n_f = self.A0.shape
        lam = y[self.n_base:].reshape(len(self.sets), n_c, n_f)
        K, extra, total = np.zeros((n_f, n_f)), np.zeros((n_c, n_f)), np.zeros(n_f)
        for theta, lm in zip(self.sets, lam):
            K += np.einsum("cfg,cg->fg", theta, lm)
            extra += lm.sum(axis=1)[:, None] - np.einsum("cfg,cg->cf", theta, lm)
            total += lm.sum(axis=0)
        value, grad, certified = self._smooth_with(y, tau, K, extra, total)
        s, X, W = self.last
        grads = [grad]
        for theta in self.sets:
            grads.append((W.sum(axis=1)[:, None] + np.einsum("cfg,fg->cg", theta, X)
                          - np.einsum("cfg,cf->cg", theta, W) - self.dual.k * s[None, :]).ravel())
        return value, np.concatenate(grads), certified

    def violation(self) -> float:
        """The cuts' total violation at the last smoothed maximiser."""
        s, X, W = self.last
        lhs = np.minimum(X[None, :, :], W[:, :, None]).sum(axis=1)
        return float(np.maximum(self.dual.k * s[None, :] - lhs, 0.0).sum())


def coselection_cuts(name: str, rounds: int) -> dict:
    """The co-selection cuts (:class:`_CoselectionDual`) in ``rounds`` rounds, each
    followed by two smoothing levels, against the plain bound given the same extra
    iterations (as the other cut families here)."""

    def add_round(cuts: _CoselectionDual) -> tuple[int, dict]:
        _, X, W = cuts.last
        before = cuts.violation()
        cuts.sets.append((X[None, :, :] < W[:, :, None]).astype(np.float64))
        return W.size, {"sets": len(cuts.sets), "violation_before": before}

    return _rounds(_problem(name), _CoselectionDual, add_round, lambda cuts: cuts.sets.clear(), rounds)


class _CoselectionSets(_CoselectionTerms):
    """The co-selection cuts of :class:`_CoselectionDual`, linearised once per class and
    set instead of per class, feature pair and round: a set ``S`` of class ``c``'s
    features gives, for every feature ``g``, ``sum_{f in S} X_fg + sum_{f not in S} W_cf
    >= k s_g`` (valid, since each term is at least ``min(X_fg, W_cf)``), with ``n_f``
    multipliers.
    Solved by an SDP solver, a few such sets per class came within 0.002 of every cut's
    value on small-1 (ad hoc, Clarabel: 18.2725 with 266 sets against 18.2710)."""

    def __init__(self, dual: _Dual) -> None:
        super().__init__(dual)
        self.member = np.zeros((0, self.A0.shape[1]))  # (sets, n_f): 1 where f is in the set
        self.owner = np.zeros(0, dtype=np.int64)  # each set's class
        self.seen: set[tuple[int, bytes]] = set()

    def add(self, c: int, in_set: np.ndarray) -> bool:
        key = (c, np.packbits(in_set).tobytes())
        if key in self.seen:
            return False
        self.seen.add(key)
        self.member = np.vstack([self.member, in_set[None, :].astype(np.float64)])
        self.owner = np.append(self.owner, c)
        return True

    def clear(self) -> None:
        self.member, self.owner, self.seen = self.member[:0], self.owner[:0], set()

    def smooth(self, y: np.ndarray, tau: float):
        n_c, n_f = self.A0.shape
        nu = y[self.n_base:].reshape(len(self.owner), n_f)
        K = self.member.T @ nu  # K[f, g]: the multipliers of the cuts whose set holds f
        extra = np.zeros((n_c, n_f))
        np.add.at(extra, self.owner, (1.0 - self.member) * nu.sum(axis=1)[:, None])
        value, grad, certified = self._smooth_with(y, tau, K, extra, nu.sum(axis=0))
        s, X, W = self.last
        lhs = self.member @ X + ((1.0 - self.member) * W[self.owner]).sum(axis=1)[:, None]
        return value, np.concatenate([grad, (lhs - self.dual.k * s[None, :]).ravel()]), certified

    def separate(self, per_class: int) -> tuple[int, float]:
        """Adds, for each class, the sets ``{f: X_fg < W_cf}`` of its ``per_class`` most
        violated features ``g`` at the last smoothed maximiser (``f`` with ``W_cf`` under
        1e-3 left out: their terms are about equal either way); returns the sets added and
        the total violation of every co-selection cut there."""
        s, X, W = self.last
        k, added, violation = self.dual.k, 0, 0.0
        for c in range(W.shape[0]):
            gap = k * s - np.minimum(X, W[c][:, None]).sum(axis=0)
            violation += float(np.maximum(gap, 0.0).sum())
            new = 0
            for g in np.argsort(gap)[::-1]:
                if gap[g] <= 1e-4 or new == per_class:
                    break
                new += self.add(c, (X[:, g] < W[c]) & (W[c] > 1e-3))
            added += new
        return added, violation


def coselection_sets(name: str, rounds: int, per_class: int, round_iterations: int) -> dict:
    """The co-selection cuts as sets (:class:`_CoselectionSets`): from the plain bound's
    default levels and a finer one (1 000 iterations each), ``rounds`` rounds of
    ``per_class`` new sets per class, each followed by two fine levels
    (``round_iterations`` each), against the plain bound given the same extra
    iterations."""

    def add_round(cuts: _CoselectionSets) -> tuple[int, dict]:
        added, violation = cuts.separate(per_class)
        return added * cuts.A0.shape[1], {"sets": len(cuts.owner), "violation_before": violation}

    return _rounds(_problem(name), _CoselectionSets, add_round, _CoselectionSets.clear, rounds,
                   root_levels=DEFAULT_SCHEDULE + (0.0003,), round_levels=(0.001, 0.0003), root_iterations=1000,
                   round_iterations=round_iterations)


def _relaxation(p: qpmopt.Problem, coselection: bool):
    """The relaxation of :mod:`qpmopt.sdp_bound` (with the co-selection cuts of
    :class:`_CoselectionDual`, all of them, when asked) as a cvxpy problem."""
    import cvxpy as cp

    n_c, n_f = p.A.shape
    M = cp.Variable((n_f + 1, n_f + 1), PSD=True)
    s, X = M[0, 1:], M[1:, 1:]
    W = cp.Variable((n_c, n_f), nonneg=True)
    cons = [M[0, 0] == 1, cp.diag(X) == s, X @ np.ones(n_f) == p.n_features * s, X >= 0,
            cp.sum(W, axis=1) == p.k, W <= np.ones((n_c, 1)) @ cp.reshape(s, (1, n_f), order="C")]
    if coselection:
        for c in range(n_c):
            P = cp.Variable((n_f, n_f), nonneg=True)  # P[f, g] = W_cf s_g
            cons += [P <= X, P <= cp.reshape(W[c, :], (n_f, 1), order="C") @ np.ones((1, n_f)),
                     cp.sum(P, axis=0) >= p.k * s]
    objective = cp.sum(cp.multiply(p.A, W)) - cp.sum(cp.multiply(np.triu(p.R, 1), X)) + p.B @ s
    return cp.Problem(cp.Maximize(objective), cons)


def relaxation_value(deadline_seconds: float) -> dict:
    """The relaxation's own value from a general SDP solver (cvxpy: Clarabel, an interior
    point method, on small-1; SCS, a first-order one, on medium-1, where Clarabel ran out of
    memory), next to ``sdp_upper_bound`` given ``deadline_seconds``; on small-1 also with
    every co-selection cut.  Needs cvxpy (``pip install cvxpy``), which qpmopt does not."""
    try:
        import cvxpy  # noqa: F401
    except ImportError:
        raise SystemExit("part relaxation_value needs cvxpy: pip install cvxpy") from None
    out = {}
    for name, solver, kwargs in (("small-1", "CLARABEL", {}),
                                 ("medium-1", "SCS", {"max_iters": 20000, "eps_abs": 1e-5, "eps_rel": 1e-5})):
        p = _problem(name)
        row = {}
        for label, cuts in (("plain", False), ("coselection", True)):
            if cuts and name != "small-1":
                continue
            prob = _relaxation(p, cuts)
            t0 = time.perf_counter()
            prob.solve(solver=solver, **kwargs)
            row[label] = {"solver": solver, "status": prob.status, "value": float(prob.value),
                          "seconds": time.perf_counter() - t0}
        res = sdp_upper_bound(p, deadline=time.perf_counter() + deadline_seconds)
        row["sdp_upper_bound"] = {"deadline_seconds": deadline_seconds, "value": res.value, "seconds": res.seconds,
                                  "stopped": res.stopped}
        out[name] = row
        print(name, row, flush=True)
    return out


def redundancy_alone(time_limit: float, seed: int) -> dict:
    """medium-1 with ``A = 0`` (uniqueness off: no class has a value to tell rows apart):
    how much of the semidefinite bound's gap the selection's own terms leave, without the
    classes."""
    k, n_sel, _ = reference.REFERENCE["medium-1"]
    A_given, R, B = reference.load("medium-1")
    A = np.zeros_like(A_given)
    sol = qpmopt.solve_assignment(A, R, B, k, n_features=n_sel, backend="auto", time_limit=time_limit, seed=seed,
                                  unique=False)
    p = qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel, unique=False)
    bound = sdp_upper_bound(p, schedule=DEFAULT_SCHEDULE + (0.0003, 0.0001))
    out = {"objective": sol.objective, "auto_bound": sol.bound, "sdp": bound.value, "sdp_seconds": bound.seconds,
           "gap": bound.value - sol.objective}
    print("redundancy alone", out, flush=True)
    return out


def _annealed_selection(p: qpmopt.Problem, seed: int) -> np.ndarray:
    """The annealer's selection at 10 s, ``(n_f,)`` bool: the branching parts' start."""
    return qpmopt.solve_assignment(p.A, p.R, p.B, p.k, n_features=p.n_features, backend="anneal",
                                   time_limit=10, seed=seed).selection


def best_first(seconds: float, tolerance: float, seed: int) -> dict:
    p = _problem("medium-1")
    sel = _annealed_selection(p, seed)
    W, z = evaluate_selection(p, sel, exact=True)
    search = bb._Search(p, sel, W, z, time.perf_counter(), gap_limit=tolerance)
    drops = []
    bound_node = search.bounder.bound

    def logged(node, *args, **kwargs):
        out = bound_node(node, *args, **kwargs)
        if np.isfinite(node.parent_bound):
            drops.append(node.parent_bound - out[0])
        return out

    search.bounder.bound = logged
    heap, count, trace = [(-np.inf, 0, search.root())], 1, []
    t0 = time.perf_counter()
    with single_threaded_blas():
        while heap and time.perf_counter() - t0 < seconds:
            _, _, node = heapq.heappop(heap)
            for child in search._expand(node, None):
                heapq.heappush(heap, (-child.parent_bound, count, child))
                count += 1
            top = max([search.closed_bound] + [-h[0] for h in heap])
            trace.append({"seconds": time.perf_counter() - t0, "nodes": search.nodes, "bound": top})
    d = np.array(drops)
    every = max(1, len(trace) // 20)
    return {"incumbent": z, "tolerance": tolerance, "seconds": seconds, "trace": trace[::every] + trace[-1:],
            "children": len(d), "drop_median": float(np.median(d)),
            "drop_quartiles": np.percentile(d, [25, 75]).tolist(),
            "drop_max": float(d.max())}


def long_branching(seconds: float, tolerance: float, seed: int, workers: int = 2) -> dict:
    p = _problem("medium-1")
    sel = _annealed_selection(p, seed)
    trace = []
    t0 = time.perf_counter()

    def record(nodes: int, open_nodes: int, value: float, bound: float) -> None:
        trace.append({"seconds": time.perf_counter() - t0, "nodes": nodes, "open": open_nodes, "bound": bound})

    # pruning at the tolerance: what "proven within 1%" needs
    res = bb.branch_and_bound(p, sel, deadline=t0 + seconds, workers=workers, on_progress=record, gap_limit=tolerance)
    every = max(1, len(trace) // 40)
    return {"incumbent": res.value, "tolerance": tolerance, "seconds": seconds, "workers": workers,
            "target_bound": res.value * (1 + tolerance), "final_bound": res.bound, "nodes": res.nodes,
            "open_at_end": trace[-1]["open"] if trace else None, "stopped": res.stopped,
            "trace": trace[::every] + trace[-1:]}


def fixing_by_bound(name: str, root_iterations: int, iterations: int, features: int | None, seed: int) -> dict:
    """How far forcing one feature in or out lowers the semidefinite bound: each forced
    bound is minimised for ``iterations`` from the root's multipliers, next to the root's
    own bound given the same ``iterations`` more.  A feature whose forced-in bound is at
    most 1% above the annealer's answer can be fixed out for a 1% proof (and one whose
    forced-out bound is, fixed in).  ``features``: that many of the lowest and of the
    highest relaxed ``s`` (``None``: every feature)."""
    p = _problem(name)
    _, z = evaluate_selection(p, _annealed_selection(p, seed), exact=True)
    target = bound_within_gap(z, 0.01)
    search = bb._Search(p, None, None, -np.inf, time.perf_counter())
    none = np.zeros(p.n_candidates, dtype=bool)
    with single_threaded_blas():
        t0 = time.perf_counter()
        root, s, y = search.bounder.bound(search.root(), -np.inf, root_iterations, (0.01, 0.003, 0.001), None)
        root_seconds = time.perf_counter() - t0

        def further(include: np.ndarray, exclude: np.ndarray) -> float:
            node = bb._Node(include, exclude, y, root, 1)
            return search.bounder.bound(node, -np.inf, iterations, (0.001,), None)[0]

        t0 = time.perf_counter()
        continued = further(none, none)
        order = np.argsort(s, kind="stable")
        chosen = order if features is None else np.concatenate([order[:features], order[-features:]])
        rows = []
        for f in chosen:
            one = none.copy()
            one[f] = True
            rows.append({"feature": int(f), "s": float(s[f]), "forced_in": further(one, none),
                         "forced_out": further(none, one)})
        forced_seconds = time.perf_counter() - t0
    forced_in = np.array([r["forced_in"] for r in rows])
    forced_out = np.array([r["forced_out"] for r in rows])
    out = {"incumbent": z, "target_1pct": target, "root_iterations": root_iterations, "root": root,
           "root_seconds": root_seconds, "iterations": iterations, "root_continued": continued,
           "forced_seconds": forced_seconds, "features_tried": len(rows),
           "fixable_out_at_1pct": int((forced_in <= target).sum()),
           "fixable_in_at_1pct": int((forced_out <= target).sum()),
           "lowest_forced_in": float(forced_in.min()), "lowest_forced_out": float(forced_out.min()), "rows": rows}
    print(name, {key: v for key, v in out.items() if key != "rows"}, flush=True)
    return out


_PLAIN_BOUNDS = _Layout.bounds  # kept: the patch below replaces the method


def _without_nonnegativity(layout) -> Bounds:
    """The dual's bounds with the multipliers ``N`` of ``X >= 0`` held at zero."""
    b = _PLAIN_BOUNDS(layout)
    ub = b.ub.copy()
    ub[layout.slices["N"]] = 0.0
    return Bounds(b.lb, ub)


def convex_reformulation_root(deadline_seconds: float) -> dict:
    """The semidefinite bound with and without ``X >= 0``, each given ``deadline_seconds``:
    the second is the most a convex reformulation (QCR) gives a MILP solver at its root,
    since only the perturbations that vanish on feasible selections (``diag X = s``,
    ``X 1 = n_sel s``) have a counterpart there."""
    out = {}
    for name in ("small-1", "medium-1"):
        p = _problem(name)
        row = {"best_known": reference.REFERENCE[name][2]}
        for label, patch in (("with_nonnegativity", None), ("without_nonnegativity", _without_nonnegativity)):
            with mock.patch.object(_Layout, "bounds", patch) if patch is not None else nullcontext():
                res = sdp_upper_bound(p, deadline=time.perf_counter() + deadline_seconds)
            row[label] = {"value": res.value, "seconds": res.seconds, "evaluations": res.evaluations,
                          "stopped": res.stopped}
        out[name] = row
        print(name, row, flush=True)
    return out


def facility_part(time_limit: float, seed: int) -> dict:
    """``medium-1`` with ``R = 0`` (the classes' part alone) solved by HiGHS: whether that
    part is what keeps a MILP solver from a proof."""
    p = _problem("medium-1", R_zero=True)
    sol = qpmopt.solve_assignment(p.A, p.R, p.B, p.k, n_features=p.n_features, backend="highs",
                                  time_limit=time_limit, seed=seed)
    out = {"time_limit": time_limit, "status": str(sol.status), "termination": str(sol.termination),
           "objective": sol.objective, "bound": sol.bound, "gap": sol.gap, "wall_time": sol.wall_time}
    print("facility part", out, flush=True)
    return out


class _HybridDual:
    """The semidefinite relaxation with ``X ~ s s^T`` lifted on a feature subset ``F``
    only: pairs with a feature outside ``F`` are dropped from ``Z_R`` (valid where those
    ``R`` entries are non-negative), ``W`` ranges over every feature, and the features
    outside ``F`` enter linearly (``0 <= s_g <= 1``).  With ``|S & F| <= n_sel``:
    ``trace M <= 1 + n_sel`` and ``X 1 <= n_sel s_F``, so for any multipliers

        g = gamma n_sel - delta + sum_c top_k(A[c] - mu[c]) + sum_{g not in F} max(B_g
            + sum_c mu[c, g] - gamma, 0) + (1 + n_sel) max(lambda_max(C), 0)

    bounds the problem.  Arrays are scaled by the largest ``|A|``."""

    def __init__(self, A, R, B, k: int, n_sel: int, F: np.ndarray) -> None:
        self.scale = max(float(np.abs(A).max()), 1e-12)
        self.A, self.B, self.k, self.n = A / self.scale, B / self.scale, k, n_sel
        self.F = np.asarray(F)
        self.O = np.setdiff1d(np.arange(A.shape[1]), self.F)
        self.R_F = R[np.ix_(self.F, self.F)] / self.scale
        m = self.F.size
        self.iu = np.triu_indices(m, 1)
        sizes = {"mu": A.size, "t": A.shape[0], "alpha": m, "beta": m, "gamma": 1, "delta": 1, "N": self.iu[0].size}
        self.slices, start = {}, 0
        for name, size in sizes.items():
            self.slices[name] = slice(start, start + size)
            start += size
        self.size = start

    def bounds(self) -> Bounds:
        lb = np.full(self.size, -np.inf)
        for name in ("mu", "beta", "N"):
            lb[self.slices[name]] = 0.0
        return Bounds(lb, np.full(self.size, np.inf))

    def _parts(self, y: np.ndarray) -> dict:
        p = {name: y[sl] for name, sl in self.slices.items()}
        p["mu"] = p["mu"].reshape(self.A.shape)
        return p

    def _matrix(self, p: dict, col_mu: np.ndarray) -> np.ndarray:
        m, n = self.F.size, self.n
        C = np.empty((m + 1, m + 1))
        X = C[1:, 1:]
        X[:] = -0.5 * self.R_F - 0.5 * (p["beta"][:, None] + p["beta"][None, :])
        X[self.iu] += p["N"]
        X[(self.iu[1], self.iu[0])] += p["N"]
        X[np.diag_indices(m)] += p["alpha"]
        lin = self.B[self.F] + col_mu[self.F] - p["alpha"] + n * p["beta"] - p["gamma"][0]
        C[0, 1:] = C[1:, 0] = 0.5 * lin
        C[0, 0] = p["delta"][0]
        return C

    def exact(self, y: np.ndarray) -> float:
        """The certified bound at ``y`` (unscaled, with a floating-point margin)."""
        p, k, n = self._parts(y), self.k, self.n
        reduced = self.A - p["mu"]
        w_part = float(np.partition(reduced, reduced.shape[1] - k, axis=1)[:, -k:].sum())
        col_mu = p["mu"].sum(axis=0)
        outside = float(np.maximum(self.B[self.O] + col_mu[self.O] - p["gamma"][0], 0.0).sum())
        C = self._matrix(p, col_mu)
        lam = float(np.linalg.eigvalsh(C)[-1])
        value = p["gamma"][0] * n - p["delta"][0] + w_part + outside + (1 + n) * max(lam, 0.0)
        return self.scale * (value + 1e-10 * ((1 + n) * float(np.linalg.norm(C)) + abs(value) + 1.0))

    def smooth(self, y: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
        """Softplus for the maxima, log-sum-exp (with a zero term) for the eigenvalue."""
        p, k, n = self._parts(y), self.k, self.n
        z = (self.A - p["mu"] - p["t"][:, None]) / tau
        sig = expit(z)
        value = k * float(p["t"].sum()) + tau * float(np.logaddexp(0.0, z).sum())
        col_mu = p["mu"].sum(axis=0)
        z_out = (self.B[self.O] + col_mu[self.O] - p["gamma"][0]) / tau
        sig_out = expit(z_out)
        value += tau * float(np.logaddexp(0.0, z_out).sum())
        g_col = np.zeros(self.A.shape[1])
        g_col[self.O] = sig_out
        C = self._matrix(p, col_mu)
        lam, V = np.linalg.eigh(C)
        top = max(float(lam[-1]), 0.0)
        weights = np.exp((lam - top) / tau)
        total = float(weights.sum()) + float(np.exp(-top / tau))
        value += (1 + n) * (top + tau * np.log(total)) + p["gamma"][0] * n - p["delta"][0]
        G = (V * ((1 + n) * weights / total)) @ V.T
        G0 = G[0, 1:]
        g_col[self.F] += G0
        grad = np.empty(self.size)
        grad[self.slices["mu"]] = (g_col[None, :] - sig).ravel()
        grad[self.slices["t"]] = k - sig.sum(axis=1)
        grad[self.slices["alpha"]] = np.diag(G)[1:] - G0
        grad[self.slices["beta"]] = -G[1:, 1:].sum(axis=1) + n * G0
        grad[self.slices["gamma"]] = n - float(sig_out.sum()) - float(G0.sum())
        grad[self.slices["delta"]] = G[0, 0] - 1.0
        grad[self.slices["N"]] = 2.0 * G[1:, 1:][self.iu]
        return value, grad


def _hybrid_bound(dual: _HybridDual, start_mu: np.ndarray, levels: tuple[float, ...], iterations: int,
                  quiet: bool = False) -> dict:
    y = np.zeros(dual.size)
    y[dual.slices["mu"]] = (start_mu / dual.scale).ravel()
    reduced = dual.A - start_mu / dual.scale
    y[dual.slices["t"]] = np.sort(reduced, axis=1)[:, -dual.k]
    best, trace, count = dual.exact(y), [], [0]
    t0 = time.perf_counter()

    def fun(v, tau):
        count[0] += 1
        return dual.smooth(v, tau)

    for tau in levels:
        res = minimize(fun, y, args=(tau,), jac=True, method="L-BFGS-B", bounds=dual.bounds(),
                       options={"maxiter": iterations, "maxcor": 10})
        y = res.x
        best = min(best, dual.exact(y))
        trace.append({"level": tau, "bound": best, "evaluations": count[0], "seconds": time.perf_counter() - t0})
        if not quiet:
            print("  hybrid level", trace[-1], flush=True)
    return {"bound": best, "levels": trace}


def hybrid_sdp(name: str, subset: int, iterations: int, seed: int) -> dict:
    """``cub-1`` (or ``name``) with the semidefinite lifting on the ``subset`` features
    the Lagrangian bound values most (its reduced per-feature values at the threshold
    dual's multipliers), started from those multipliers; next to it, the plain
    semidefinite bound of the problem restricted to those features (not a bound of the
    full problem: a floor for what the hybrid can reach) and the annealer's answers on
    both."""
    # first the bound against exhaustive search on tiny instances (uniqueness off, which the
    # relaxation drops): it must never be below the optimum, whatever the subset
    rng = np.random.default_rng(seed)
    slack = np.inf
    for i in range(20):
        q = random_problem(seed + i, n_c=4, n_f=8, n_sel=4, k=2, unique=False, negative_r=False)
        truth = qpmopt.solve_problem(q, backend="bruteforce").objective
        F = np.sort(rng.choice(8, int(rng.integers(2, 9)), replace=False))
        tiny = _hybrid_bound(_HybridDual(q.A, q.R, q.B, 2, 4, F), np.zeros_like(q.A), (0.03, 0.01, 0.003), 200,
                             quiet=True)
        slack = min(slack, tiny["bound"] - truth)
    assert slack >= -1e-9, slack
    p = _problem(name)
    assert (p.R >= 0).all(), "the hybrid drops pairs outside the subset: valid for R >= 0"
    lag, mu = lagrangian_multipliers(p, -1e9, iterations=3000)
    value = p.B - 0.5 * _pair_floor(p) + mu.sum(axis=0)
    F = np.sort(np.argsort(-value, kind="stable")[:subset])
    full = qpmopt.solve_assignment(p.A, p.R, p.B, p.k, n_features=p.n_features, backend="anneal",
                                   time_limit=20, seed=seed)
    sub = qpmopt.Problem.from_arrays(p.A[:, F], p.R[np.ix_(F, F)], p.B[F], k=p.k, n_features=p.n_features)
    sub_answer = qpmopt.solve_assignment(sub.A, sub.R, sub.B, sub.k, n_features=sub.n_features, backend="anneal",
                                         time_limit=20, seed=seed)
    t0 = time.perf_counter()
    restricted = sdp_upper_bound(sub, start_mu=mu[:, F])
    restricted_seconds = time.perf_counter() - t0
    with single_threaded_blas():
        hybrid = _hybrid_bound(_HybridDual(p.A, p.R, p.B, p.k, p.n_features, F), mu,
                               (0.03, 0.01, 0.003, 0.001), iterations)
    out = {"tiny_instances_smallest_slack": slack, "subset": subset, "lagrangian": lag, "anneal": full.objective,
           "anneal_features_in_subset": int(np.isin(full.features, F).sum()),
           "restricted_anneal": sub_answer.objective, "restricted_sdp": restricted.value,
           "restricted_sdp_seconds": restricted_seconds, "iterations_per_level": iterations, "hybrid": hybrid,
           "best_known": reference.REFERENCE[name][2], "target_5pct": reference.REFERENCE[name][2] * 1.05}
    print(name, out, flush=True)
    return out


def cub_star(time_limit: float, seed: int, enumerate_top: int) -> dict:
    A, R, B = reference.load("cub-1")
    rules = qpmopt.Constraints(shared_pairs=qpmopt.matrices.similar_class_pairs(A, 0.5))
    p = _problem("cub-1", constraints=rules)
    stars = pair_stars(p)
    hub, leaves = max(stars, key=lambda s: len(s[1]))
    members = np.concatenate([[hub], leaves])
    out = {"stars": [[int(h), len(lv)] for h, lv in stars], "hub": int(hub), "leaves": len(leaves),
           "star_topk_alone": float(np.sort(A[members], axis=1)[:, -p.k:].sum())}
    for label, cons in (("unconstrained", None), ("constrained", rules)):
        sol = qpmopt.solve_assignment(A, R, B, p.k, n_features=p.n_features, constraints=cons, backend="auto",
                                      time_limit=time_limit, seed=seed)
        per_class = (A * np.asarray(sol.assignment)).sum(axis=1)
        out[label] = {"objective": sol.objective, "terms": sol.terms, "bound": sol.bound,
                      "star_classes": float(per_class[members].sum()),
                      "other_classes": float(per_class.sum() - per_class[members].sum())}
    # the star alone, every feature available: each leaf takes four of the hub's five
    # features and its best one outside them
    h, L = A[hub], A[leaves]
    positive = h + np.maximum(L, 0.0).sum(axis=0)
    own = L.max(axis=1).sum()
    out["star_positive_part_bound"] = float(np.sort(positive)[-p.k:].sum() + own)
    top = np.argsort(-positive)[:enumerate_top]
    best, best_set = -np.inf, None
    sets = top[np.array(list(combinations(range(enumerate_top), p.k)))]
    for i in range(0, len(sets), 20000):
        H = sets[i:i + 20000]
        sub = L[:, H]
        vals = h[H].sum(axis=1) + (sub.sum(axis=2) - sub.min(axis=2)).sum(axis=0) + own
        j = int(np.argmax(vals))
        if vals[j] > best:
            best, best_set = float(vals[j]), H[j]
    outside = L.copy()
    outside[:, best_set] = -np.inf
    exact_at_best = float(h[best_set].sum() + (L[:, best_set].sum(1) - L[:, best_set].min(1)).sum()
                          + outside.max(axis=1).sum())
    out["star_enumerated"] = {"top_features": enumerate_top, "best_upper": best, "value_at_best_set": exact_at_best,
                              "any_set_outside_top_at_most": float(np.sort(positive)[::-1][: p.k - 1].sum()
                                                                   + positive[np.argsort(-positive)[enumerate_top]]
                                                                   + own)}
    others = np.setdiff1d(np.arange(A.shape[0]), members)
    po = qpmopt.Problem.from_arrays(A[others], R, B, k=p.k, n_features=p.n_features)
    out["others_lagrangian"] = lagrangian_upper_bound(po, out["unconstrained"]["other_classes"],
                                                      iterations=lagrangian_iterations(po))
    print(out, flush=True)
    return out


PARTS = ("gap_sources", "triangle_cuts", "clique_cuts", "class_pair_cuts", "upper_pair_cuts", "coselection_cuts",
         "coselection_sets", "redundancy_alone", "best_first", "long_branching", "fixing_by_bound",
         "convex_reformulation_root", "facility_part", "hybrid_sdp", "cub_star")
#: Parts that need a package qpmopt does not depend on: run only when named.
OPTIONAL_PARTS = ("relaxation_value",)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bound_directions.json")
    ap.add_argument("--branch-seconds", type=float, default=540.0, help="long_branching's time")
    ap.add_argument("--rounds", type=int, default=8, help="coselection_cuts' and coselection_sets' rounds")
    ap.add_argument("--set-iterations", type=int, default=800,
                    help="coselection_sets' L-BFGS iterations per smoothing level in each round")
    ap.add_argument("--hybrid-iterations", type=int, default=400,
                    help="hybrid_sdp's L-BFGS iterations per smoothing level")
    ap.add_argument("--parts", nargs="+", choices=PARTS + OPTIONAL_PARTS, default=list(PARTS),
                    help="which parts to run (each is written under its name)")
    args = ap.parse_args()
    data = {**provenance(), "seed": args.seed, "time_limit": args.time_limit}
    for part in args.parts:
        if part == "gap_sources":
            data[part] = gap_sources(args.time_limit, args.seed)
        elif part == "triangle_cuts":
            data[part] = triangle_cuts(rounds=4, per_round=3000)
        elif part == "clique_cuts":
            data[part] = {name: clique_cuts(name, rounds=4, per_round=3000) for name in ("small-1", "medium-1")}
        elif part == "class_pair_cuts":
            data[part] = {name: class_pair_cuts(name, rounds=4, per_round=3000) for name in ("small-1", "medium-1")}
        elif part == "upper_pair_cuts":
            data[part] = {name: upper_pair_cuts(name, rounds=4, per_round=3000) for name in ("small-1", "medium-1")}
        elif part == "coselection_cuts":
            data[part] = {name: coselection_cuts(name, rounds=args.rounds) for name in ("small-1", "medium-1")}
        elif part == "coselection_sets":
            data[part] = {name: coselection_sets(name, rounds=args.rounds, per_class=3,
                                                 round_iterations=args.set_iterations)
                          for name in ("small-1", "medium-1")}
        elif part == "relaxation_value":
            data[part] = relaxation_value(50.0)
        elif part == "redundancy_alone":
            data[part] = redundancy_alone(args.time_limit, args.seed)
        elif part == "best_first":
            data[part] = best_first(120.0, 0.01, args.seed)
        elif part == "long_branching":
            data[part] = long_branching(args.branch_seconds, 0.01, args.seed)
        elif part == "fixing_by_bound":
            data[part] = {"small-1": fixing_by_bound("small-1", 300, 300, None, args.seed),
                          "medium-1": fixing_by_bound("medium-1", 1500, 600, 5, args.seed)}
        elif part == "convex_reformulation_root":
            data[part] = convex_reformulation_root(50.0)
        elif part == "facility_part":
            data[part] = facility_part(300.0, args.seed)
        elif part == "hybrid_sdp":
            data[part] = hybrid_sdp("cub-1", 300, args.hybrid_iterations, args.seed)
        else:
            data[part] = cub_star(args.time_limit, args.seed, enumerate_top=45)
    write_json(args.out, data, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
