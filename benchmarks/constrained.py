"""Steering rules at scale: ``auto`` with CHiQPM's class pairs (``similar_class_pairs(A,
0.5)``, each sharing exactly ``k - 1`` features) next to the unconstrained run, on
medium-1, cub-1 and the imagenet preset, 60 s each, one process per run; every answer
re-verified with its rules.

    python benchmarks/constrained.py          (about 6 minutes on 2 cores)
    python benchmarks/constrained.py --backends auto,highs --instances medium-1 \
        --out benchmarks/results/constrained-highs.json

Writes results/constrained.json (every backend on every instance, each next to the same
backend's unconstrained run).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import reference

from qpmopt.bench import BenchSpec, run_benchmark
from qpmopt.instances import generate
from qpmopt.io import write_json
from qpmopt.matrices import similar_class_pairs

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "constrained.json")
    ap.add_argument("--backends", default="auto")
    ap.add_argument("--instances", default="medium-1,cub-1,imagenet")
    args = ap.parse_args()
    wanted = args.instances.split(",")
    specs = []
    for name in [n for n in ("medium-1", "cub-1") if n in wanted]:
        k, n_sel, _ = reference.REFERENCE[name]
        A = reference.load(name)[0]
        rules = {"shared_pairs": similar_class_pairs(A, 0.5)}
        specs += [BenchSpec(name=name, path=str(reference.path(name)), k=k, n_features=n_sel),
                  BenchSpec(name=f"{name}+chiqpm", path=str(reference.path(name)), k=k, n_features=n_sel,
                            constraints=rules)]
    if "imagenet" in wanted:
        inst = generate("imagenet", seed=reference.PRESET_SEED)
        rules = {"shared_pairs": similar_class_pairs(inst.A, 0.5)}
        specs += [BenchSpec(name="imagenet", preset="imagenet", seed=reference.PRESET_SEED),
                  BenchSpec(name="imagenet+chiqpm", preset="imagenet", seed=reference.PRESET_SEED, constraints=rules)]
    data = run_benchmark(specs, args.backends.split(","), time_limit=args.time_limit,
                         on_result=lambda r: print(f"{r['instance']:>16} {r['backend']:>6}: {r.get('objective')} "
                                                   f"({r['status']}, {r.get('wall_time', 0):.1f} s)", flush=True))
    pairs = {s.name: len(s.constraints["shared_pairs"]) if s.constraints else 0 for s in specs}
    for row in data["results"]:
        row["shared_pairs"] = pairs[row["instance"]]
    by_name = {(r["instance"], r["backend"]): r for r in data["results"]}
    for (name, backend), ruled in by_name.items():
        free = by_name.get((name.removesuffix("+chiqpm"), backend))
        if name.endswith("+chiqpm") and free and free.get("objective") and ruled.get("objective"):
            ruled["relative_to_unconstrained"] = ruled["objective"] / free["objective"]
    write_json(args.out, data, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
