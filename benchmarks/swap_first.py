"""Whether ``auto`` should run the swap search before the annealer on a CPU at ImageNet-21k
sizes (its rule: from ``SWAP_FIRST_MIN_CELLS`` cells on): ``auto`` with
``swap_search_first`` forced on and off, at 60 s, one process per run.

    python benchmarks/swap_first.py         (about 10 minutes on 2 cores)

Instances: 5 000 x 4 096 and the ``imagenet21k`` preset (10 000 x 4 096), generated like
``scale.py``'s with ``--seeds`` (default 1 and 2).  Writes results/swap_first.json: per run
the objective, proven gap, wall time and path, and per instance which setting ended higher.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from scale import INSTANCES

from qpmopt.bench import BenchSpec, provenance, run_benchmark
from qpmopt.instances import generate, save_npz
from qpmopt.io import write_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--instances", default="5000x4096,imagenet21k")
    ap.add_argument("--seeds", default="1,2")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "swap_first.json"))
    args = ap.parse_args()
    out: dict = {**provenance(), "time_limit": args.time_limit, "results": [], "comparison": []}
    with tempfile.TemporaryDirectory() as tmp:
        specs = []
        for name in args.instances.split(","):
            preset, n_c, n_f, n_sel, k = INSTANCES[name]
            for seed in (int(s) for s in args.seeds.split(",")):
                t0 = time.perf_counter()
                inst = generate(preset, seed=seed, n_classes=n_c, n_candidates=n_f, n_features=n_sel, k=k)
                path = Path(tmp) / f"{name}-{seed}.npz"
                save_npz(str(path), inst, force=True)
                print(f"{name} seed {seed}: generated in {time.perf_counter() - t0:.1f} s", flush=True)
                for first in (True, False):
                    specs.append(BenchSpec(name=f"{name}/{seed}/{'swap-first' if first else 'anneal-first'}",
                                           path=str(path), k=inst.k, n_features=inst.n_features,
                                           options={"swap_search_first": first}))
        data = run_benchmark(specs, ["auto"], time_limit=args.time_limit,
                             on_result=lambda r: print(f"{r['instance']:>30}: {r.get('objective')} gap {r.get('gap')} "
                                                       f"({r.get('wall_time', 0):.1f} s) {r.get('error', '')}",
                                                       flush=True))
    for r in data["results"]:
        r.pop("features", None)
    out["results"] = data["results"]
    by_name = {r["instance"]: r for r in data["results"]}
    for name in dict.fromkeys(n.rsplit("/", 1)[0] for n in by_name):
        swap, anneal = by_name[f"{name}/swap-first"], by_name[f"{name}/anneal-first"]
        if swap.get("objective") is None or anneal.get("objective") is None:
            continue
        diff = (anneal["objective"] - swap["objective"]) / max(1.0, abs(swap["objective"]))
        out["comparison"].append({"instance": name, "swap_first": swap["objective"], "anneal_first": anneal["objective"],
                                  "anneal_first_minus_swap_first": diff,
                                  "gaps": [swap.get("gap"), anneal.get("gap")]})
        print(out["comparison"][-1], flush=True)
    write_json(args.out, out, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
