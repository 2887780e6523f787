"""Certified optimality with open-source parts (issue 13): the ``bnb`` backend (branch and
bound with semidefinite bounds) against ``highs`` on small-1 and the ``small`` preset's
seeds (20 x 60, 15 selected, k=3), and ``bnb`` against ``auto``'s annealer path on medium-1,
each run in its own process at the time limit.  Per instance it also records the root
semidefinite bound (``sdp_bound.sdp_upper_bound``, full schedule) next to the optimum, to
show how much of the gap the tree closes.

    python benchmarks/bnb.py              (about 10 minutes on 2 cores)

Writes results/bnb.json.  Time to proof is a row's ``wall_time`` where its status is
``optimal``.  With ``--gap-limit 0.01`` every run may stop once it proves the answer within
1% (``python benchmarks/bnb.py --gap-limit 0.01 --out results/bnb-gap1.json``): the time to
that proof is a row's ``wall_time`` where its termination is ``gap_limit`` or ``optimal``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import reference

import qpmopt
from qpmopt.bench import BenchSpec, run_benchmark
from qpmopt.instances import generate
from qpmopt.io import write_json
from qpmopt.sdp_bound import sdp_upper_bound

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--small-backends", default="bnb,highs")
    ap.add_argument("--medium-backends", default="bnb,auto")
    ap.add_argument("--gap-limit", type=float, default=0.0, help="relative gap at which a run may stop")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bnb.json")
    args = ap.parse_args()
    small, medium = [], []
    roots = {}
    for name in ("small-1", "medium-1"):
        k, n_sel, _ = reference.REFERENCE[name]
        spec = BenchSpec(name=name, path=str(reference.path(name)), k=k, n_features=n_sel)
        (small if name == "small-1" else medium).append(spec)
        A, R, B = reference.load(name)
        roots[name] = qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel)
    for seed in map(int, args.seeds.split(",")):
        inst = generate("small", seed=seed)
        small.append(BenchSpec(name=f"small/{seed}", preset="small", seed=seed))
        roots[f"small/{seed}"] = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    root_bounds = {}
    for name, problem in roots.items():
        sdp = sdp_upper_bound(problem)
        root_bounds[name] = {"value": sdp.value, "seconds": sdp.seconds}
        print(f"{name}: root semidefinite bound {sdp.value:.6f} in {sdp.seconds:.2f} s", flush=True)

    def show(r):
        print(f"{r['instance']:>10} {r['backend']:>6}: {r.get('status')} ({r.get('termination')}) {r.get('objective')} "
              f"bound {r.get('bound')} gap {r.get('gap')} in {r.get('wall_time')}", flush=True)

    data = run_benchmark(small, args.small_backends.split(","), time_limit=args.time_limit, gap_limit=args.gap_limit,
                         on_result=show)
    rest = run_benchmark(medium, args.medium_backends.split(","), time_limit=args.time_limit, gap_limit=args.gap_limit,
                         on_result=show)
    data["results"] += rest["results"]
    for row in data["results"]:
        row["root_sdp_bound"] = root_bounds[row["instance"]]
    write_json(args.out, data, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
