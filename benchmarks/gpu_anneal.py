"""GPU check for the annealer (issue 4): time to the best known objective on cub-1 and to
beat the baseline on the imagenet preset, on whatever CUDA card is present.

    python benchmarks/gpu_anneal.py --out benchmarks/results/gpu_anneal.json

Targets: cub-1 best known (289.12512) under 2 s; imagenet preset under 10 s.  Runs the CPU
baseline in the same process so that the ratio is measured on one machine.  Exits 2 when
no CUDA device is present (nothing is recorded then).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import reference
import torch

import qpmopt
from qpmopt.bench import provenance
from qpmopt.instances import generate

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_anneal.json"))
    ap.add_argument("--chains", type=int, default=64)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure", file=sys.stderr)
        return 2
    out = {**provenance(), "runs": []}
    cases = []
    if reference.path("cub-1").exists():
        k, n_sel, best_known = reference.REFERENCE["cub-1"]
        cases.append(("cub-1", reference.load("cub-1"), k, n_sel, best_known, 10.0))
    inst = generate("imagenet", seed=1)
    base = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="localsearch")
    cases.append(("imagenet-preset", inst.arrays(), inst.k, inst.n_features, base.objective + 1e-9, 30.0))
    for name, arrays, k, n, target, limit in cases:
        for seed in range(3):
            torch.cuda.synchronize()
            s = qpmopt.solve_assignment(*arrays, k, n_features=n, backend="anneal", time_limit=limit, seed=seed,
                                        options={"device": "cuda", "num_chains": args.chains})
            hit = next((t for t, v in s.history if v >= target), None)
            row = {"instance": name, "seed": seed, "objective": s.objective, "target": target,
                   "time_to_target": hit, "steps": s.info["steps"], "wall_time": s.wall_time,
                   "steps_per_second": s.info["steps"] / s.wall_time, "features": s.features.tolist()}
            out["runs"].append(row)
            print(json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
