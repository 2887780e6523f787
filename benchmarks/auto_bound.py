"""How much of ``auto``'s time limit its Lagrangian bound gets, and what that buys, where
the semidefinite bound does not apply (more than 400 candidates).

    python benchmarks/auto_bound.py          (about 5 minutes on 2 cores)

For each instance, ``auto`` at ``--time-limit`` (its answer, bound, wall time), then, in
the same run and from the same answer, the Lagrangian bound (``bounds.lagrangian_upper_bound``)
given the share ``auto`` kept for it before the bound took what the annealer leaves
(``backends.auto.lagrangian_share``), and given its full iterations
without a deadline.  Writes results/auto_bound.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import reference

import qpmopt
from qpmopt.backends.auto import lagrangian_share
from qpmopt.bench import provenance
from qpmopt.bounds import lagrangian_iterations, lagrangian_upper_bound, simple_upper_bound
from qpmopt.instances import generate
from qpmopt.io import write_json

ROOT = Path(__file__).resolve().parents[1]


def _instances(names: list[str]):
    for name in names:
        if name in reference.REFERENCE:
            k, n_sel, best = reference.REFERENCE[name]
            A, R, B = reference.load(name)
            yield name, qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel), best
        else:  # a preset, seed 0
            inst = generate(name, seed=0)
            yield f"{name}/0", qpmopt.Problem.from_arrays(inst.A, inst.R, inst.B, k=inst.k,
                                                          n_features=inst.n_features), None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--instances", nargs="+", default=["cub-1", "cub", "imagenet"])
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "auto_bound.json")
    args = ap.parse_args()
    T = args.time_limit
    data = {**provenance(), "time_limit": T, "seed": args.seed, "rows": []}
    for name, p, best_known in _instances(args.instances):
        t0 = time.perf_counter()
        sol = qpmopt.solve_assignment(p.A, p.R, p.B, p.k, n_features=p.n_features, backend="auto", time_limit=T,
                                      seed=args.seed)
        wall = time.perf_counter() - t0
        row = {"instance": name, "best_known": best_known, "objective": sol.objective, "bound": sol.bound,
               "gap": sol.gap, "wall_time": wall, "auto_path": sol.info.get("auto_path")}
        t0 = time.perf_counter()
        simple_upper_bound(p)
        pass_seconds = time.perf_counter() - t0
        for label, seconds in (("old_share", lagrangian_share(T, pass_seconds)), ("converged", None)):
            t0 = time.perf_counter()
            deadline = None if seconds is None else t0 + seconds
            bound = lagrangian_upper_bound(p, sol.objective, iterations=lagrangian_iterations(p), deadline=deadline)
            row[label] = {"bound": bound, "gap": bound / sol.objective - 1, "seconds": time.perf_counter() - t0,
                          "share": seconds}
        print(row, flush=True)
        data["rows"].append(row)
    write_json(args.out, data, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
