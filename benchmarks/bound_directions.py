"""Directions for stronger bounds that were measured and not kept (issues 13 and 11), and
where the remaining gaps come from, so that the next attempt starts from numbers.

    python benchmarks/bound_directions.py          (about 10 minutes on 2 cores)

Writes results/bound_directions.json with four parts:

- ``gap_sources``: medium-1 and cub-1 with ``R`` and with ``R = 0``: ``auto``'s objective
  and the Lagrangian bound.  Without ``R`` the gap left is the selection coupling's alone
  (the Lagrangian relaxation of ``W <= s``); with ``R`` the redundancy term's is added.
- ``triangle_cuts``: the semidefinite bound on medium-1 with the most violated triangle
  inequalities ``X_ij >= X_ik + X_jk - s_k`` (valid for binary ``s``) added to its dual in
  rounds, against the plain bound given the same extra iterations.
- ``best_first``: the branch and bound on medium-1 in one process, open nodes largest
  bound first, pruning at 1% above the incumbent: the largest open bound over time and how
  much each branching lowered the children's bounds.
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
from itertools import combinations
from pathlib import Path

import numpy as np
import reference
from scipy.optimize import Bounds, minimize

import qpmopt
import qpmopt.branch_bound as bb
from qpmopt.bench import provenance
from qpmopt.bounds import lagrangian_iterations, lagrangian_upper_bound, pair_stars
from qpmopt.io import write_json
from qpmopt.sdp_bound import DEFAULT_SCHEDULE, _Dual, _scaled_dual
from qpmopt.search import evaluate_selection
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


class _TriangleDual:
    """The dual of :mod:`qpmopt.sdp_bound` with multipliers ``nu >= 0`` for triangle
    inequalities ``s_k + X_ij - X_ik - X_jk >= 0`` appended to the packed vector."""

    def __init__(self, dual: _Dual) -> None:
        self.dual, self.n_base = dual, dual.layout.size
        self.triangles = np.zeros((0, 3), dtype=np.int64)
        self._matrix = dual.matrix
        dual.matrix = self._with_triangles  # the smooth/exact code of _Dual stays as it is
        self.nu = np.zeros(0)

    def _with_triangles(self, p):
        C, const = self._matrix(p)
        size = C.shape[0]
        flat = C.reshape(-1)
        i, j, k = (self.triangles[:, c] + 1 for c in range(3))
        zero = np.zeros_like(k)
        for a, b, sign in ((i, j, 1.0), (i, k, -1.0), (j, k, -1.0), (zero, k, 1.0)):
            np.add.at(flat, a * size + b, 0.5 * sign * self.nu)
            np.add.at(flat, b * size + a, 0.5 * sign * self.nu)
        return C, const

    def smooth(self, y: np.ndarray, tau: float):
        self.nu = y[self.n_base:]
        value, grad, certified = self.dual.smooth(y[: self.n_base], tau)
        M = self.primal
        s, X = M[0, 1:], M[1:, 1:]
        t = self.triangles
        g_nu = s[t[:, 2]] + X[t[:, 0], t[:, 1]] - X[t[:, 0], t[:, 2]] - X[t[:, 1], t[:, 2]]
        return value, np.concatenate([grad, g_nu]), certified

    @property
    def primal(self) -> np.ndarray:
        """The smoothed maximiser ``M`` at the last evaluation (recomputed: _Dual keeps only s)."""
        p = self.dual.layout.split(self._last_y)
        C, _ = self.dual.matrix(p)
        lam, U = np.linalg.eigh(C)
        w = np.exp((lam - lam[-1]) / self._last_tau)
        return self.dual.trace * (U * (w / w.sum())) @ U.T


def triangle_cuts(rounds: int, per_round: int) -> dict:
    p = _problem("medium-1")
    dual, scale = _scaled_dual(p)
    tri = _TriangleDual(dual)
    R = dual.half_R * -2.0
    best = [np.inf]

    def fun(v, tau):
        tri._last_y, tri._last_tau = v[: tri.n_base], tau
        value, grad, certified = tri.smooth(v, tau)
        best[0] = min(best[0], certified)
        return value, grad

    def run(y, taus):
        lb = np.concatenate([dual.layout.bounds().lb, np.zeros(len(tri.triangles))])
        for tau in taus:
            y = minimize(fun, y, args=(tau,), jac=True, method="L-BFGS-B", bounds=Bounds(lb, np.full(lb.size, np.inf)),
                         options={"maxiter": 150, "maxcor": 5}).x
        return y

    out = {"rounds": []}
    t0 = time.perf_counter()
    with single_threaded_blas():
        y = np.zeros(dual.layout.size)
        y[dual.layout.slices["t"]] = np.sort(dual.A, axis=1)[:, -p.k]
        y = run(y, DEFAULT_SCHEDULE)
        out["root"] = {"bound": scale * best[0], "seconds": time.perf_counter() - t0}
        y_plain, best_root = y.copy(), best[0]
        for _ in range(rounds):
            M = tri.primal
            s, X = M[0, 1:], M[1:, 1:].copy()
            np.fill_diagonal(X, s)
            ii, jj = np.nonzero(np.triu(R > 0, 1))  # only pairs the objective charges
            V = X[ii, :] + X[jj, :] - s[None, :] - X[ii, jj][:, None]
            V[np.arange(ii.size), ii] = V[np.arange(ii.size), jj] = -np.inf
            kb = np.argmax(V, axis=1)
            vb = V[np.arange(ii.size), kb]
            order = np.argsort(-vb)[:per_round]
            order = order[vb[order] > 1e-4]
            seen = {tuple(t) for t in tri.triangles.tolist()}
            new = [t for t in np.stack([ii[order], jj[order], kb[order]], 1).tolist() if tuple(t) not in seen]
            tri.triangles = np.concatenate([tri.triangles, np.array(new, dtype=np.int64).reshape(-1, 3)])
            y = run(np.concatenate([y, np.zeros(len(new))]), (0.003, 0.001))
            out["rounds"].append({"triangles": len(tri.triangles), "largest_violation": float(vb.max()),
                                  "bound": scale * best[0], "seconds": time.perf_counter() - t0})
            print("triangles", out["rounds"][-1], flush=True)
        # the same extra iterations without triangles
        tri.triangles = np.zeros((0, 3), dtype=np.int64)
        best[0] = best_root
        y = y_plain
        for _ in range(rounds):
            y = run(y, (0.003, 0.001))
        out["plain_same_iterations"] = scale * best[0]
    print("plain with the same iterations", out["plain_same_iterations"], flush=True)
    return out


def best_first(seconds: float, tolerance: float, seed: int) -> dict:
    p = _problem("medium-1")
    sol = qpmopt.solve_assignment(p.A, p.R, p.B, p.k, n_features=p.n_features, backend="anneal",
                                  time_limit=10, seed=seed)
    sel = np.zeros(p.n_candidates, dtype=bool)
    sel[list(sol.features)] = True
    W, z = evaluate_selection(p, sel, exact=True)
    saved = bb.OPTIMALITY_TOL
    bb.OPTIMALITY_TOL = tolerance  # prune at the tolerance: what "proven within 1%" needs
    try:
        search = bb._Search(p, sel, W, z, time.perf_counter())
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
    finally:
        bb.OPTIMALITY_TOL = saved
    d = np.array(drops)
    every = max(1, len(trace) // 20)
    return {"incumbent": z, "tolerance": tolerance, "seconds": seconds, "trace": trace[::every] + trace[-1:],
            "children": len(d), "drop_median": float(np.median(d)), "drop_quartiles": np.percentile(d, [25, 75]).tolist(),
            "drop_max": float(d.max())}


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bound_directions.json")
    args = ap.parse_args()
    data = {**provenance(), "seed": args.seed, "time_limit": args.time_limit}
    data["gap_sources"] = gap_sources(args.time_limit, args.seed)
    data["triangle_cuts"] = triangle_cuts(rounds=4, per_round=3000)
    data["best_first"] = best_first(120.0, 0.01, args.seed)
    data["cub_star"] = cub_star(args.time_limit, args.seed, enumerate_top=45)
    write_json(args.out, data, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
