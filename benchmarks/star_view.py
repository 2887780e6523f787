"""The search view with a star of shared pairs searched as one class
(``qpmopt.search.search_view``), against the classes kept apart, under the same rules.

    python benchmarks/star_view.py          (about 8 minutes on 2 cores)

Writes results/star_view.json with two parts:

- ``tiny``: 40 random stars of 4 leaves (5 classes, 12 features, 6 selected, k = 3, each
  leaf sharing 2 features with the hub), the ``localsearch`` backend with every costly
  star collapsed (``MIN_COLLAPSED_LEAVES = 1``) and with none, against the ``bruteforce``
  optimum under the rules.
- ``scale``: ``auto`` at ``--time-limit`` seconds with CHiQPM's pairs
  (``similar_class_pairs(A, 0.5)``) on medium-1, cub-1 and the imagenet preset, with the
  default threshold and with no star collapsed; every answer re-verified with its rules.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import reference

import qpmopt
import qpmopt.search.neighbourhood as neighbourhood
from qpmopt.bench import provenance
from qpmopt.bounds import costly_stars
from qpmopt.evaluate import verify
from qpmopt.io import write_json
from qpmopt.matrices import similar_class_pairs

ROOT = Path(__file__).resolve().parents[1]
NEVER = 10**9  # no star has this many leaves


def _tiny_instance(seed: int) -> tuple[np.ndarray, dict]:
    """A hub that likes features 0-2, leaves that like them less and have three strong
    features of their own each: the rule makes each leaf use two of the hub's."""
    rng = np.random.default_rng(seed)
    A = rng.uniform(-0.1, 0.2, size=(5, 12))
    A[0, :3] += 0.7
    A[1:, :3] += rng.uniform(0.2, 0.4, size=(4, 3))
    for c in range(1, 5):
        A[c, rng.choice(np.arange(3, 12), 3, replace=False)] += rng.uniform(0.5, 0.8, size=3)
    return A, {"shared_pairs": [(0, 1), (0, 2), (0, 3), (0, 4)]}


def _solve(A, R, B, k, n_sel, rules, backend, threshold, time_limit=None, seed=0):
    neighbourhood.MIN_COLLAPSED_LEAVES = threshold
    sol = qpmopt.solve_assignment(A, R, B, k, n_features=n_sel, constraints=rules, backend=backend,
                                  time_limit=time_limit, seed=seed)
    if sol.objective is not None:  # an answer that breaks a rule raises here
        p = qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel, constraints=rules)
        mask = np.zeros(p.n_candidates, dtype=bool)
        mask[sol.features] = True
        verify(p, mask, sol.assignment)
    return sol


def tiny(count: int) -> dict:
    rows = []
    for seed in range(count):
        A, rules = _tiny_instance(seed)
        optimum = _solve(A, None, None, 3, 6, rules, "bruteforce", NEVER).objective
        collapsed = _solve(A, None, None, 3, 6, rules, "localsearch", 1).objective
        apart = _solve(A, None, None, 3, 6, rules, "localsearch", NEVER).objective
        rows.append({"seed": seed, "optimum": optimum, "collapsed": collapsed, "apart": apart})
    out = {"instances": count,
           "collapsed_at_optimum": sum(abs(r["collapsed"] - r["optimum"]) <= 1e-9 for r in rows),
           "apart_at_optimum": sum(abs(r["apart"] - r["optimum"]) <= 1e-9 for r in rows), "rows": rows}
    print({key: value for key, value in out.items() if key != "rows"}, flush=True)
    return out


def scale(time_limit: float, seed: int, default: int) -> list[dict]:
    rows = []
    for name in ("medium-1", "cub-1", "imagenet"):
        if name == "imagenet":
            inst = qpmopt.instances.generate("imagenet", seed=reference.PRESET_SEED)
            (A, R, B), k, n_sel = inst.arrays(), inst.k, inst.n_features
        else:
            k, n_sel, _ = reference.REFERENCE[name]
            A, R, B = reference.load(name)
        rules = {"shared_pairs": similar_class_pairs(A, 0.5)}
        p = qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel, constraints=rules)
        stars = [int(leaves.size) for _, leaves in costly_stars(p) if leaves.size >= default]
        row = {"instance": name, "pairs": len(rules["shared_pairs"]), "collapsed_star_leaves": stars}
        for label, threshold in (("collapsed", default), ("apart", NEVER)):
            sol = _solve(A, R, B, k, n_sel, rules, "auto", threshold, time_limit, seed)
            row[label] = {"objective": sol.objective, "bound": sol.bound, "status": sol.status,
                          "wall_time": sol.wall_time}
        print(row, flush=True)
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=40)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "star_view.json")
    args = ap.parse_args()
    default = neighbourhood.MIN_COLLAPSED_LEAVES
    data = {**provenance(), "seed": args.seed, "time_limit": args.time_limit, "min_collapsed_leaves": default}
    data["tiny"] = tiny(args.count)
    data["scale"] = scale(args.time_limit, args.seed, default)
    neighbourhood.MIN_COLLAPSED_LEAVES = default
    write_json(args.out, data, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
