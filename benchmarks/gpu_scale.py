"""Issue 12's GPU check, one short run on whatever CUDA card is present:

- cub-1: time to its best known objective, 8 chains against the GPU default
  (:func:`qpmopt.backends.anneal.default_chains`), steps per second;
- the imagenet preset: time to beat ``localsearch`` (run in the same process, CPU);
- imagenet21k (10 000 x 4 096): ``localsearch``, ``anneal`` and ``auto`` at a 60 s limit;
- the annealer's seconds per step against ``n_c * n_f`` on the card.

    QPMOPT_SHARED_INSTANCES=<folder with cub-1.npz> python benchmarks/gpu_scale.py --out results/gpu_scale.json

Exits 2 without a CUDA device (nothing is recorded then).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import reference
import torch

import qpmopt
from qpmopt.backends.anneal import default_chains
from qpmopt.bench import machine_info, provenance
from qpmopt.instances import generate
from qpmopt.problem import Problem

ROOT = Path(__file__).resolve().parents[1]


def _run(out: dict, row: dict, key: str = "runs") -> None:
    """Record a row and rewrite the file at once: a run cut short keeps what it measured."""
    out[key].append(row)
    print(json.dumps(row), flush=True)
    Path(out["path"]).write_text(json.dumps({k: v for k, v in out.items() if k != "path"}, indent=2))


def _anneal(arrays, k, n, limit, seed, chains=None, target=None) -> dict:
    torch.cuda.synchronize()
    opts = {"device": "cuda"} if chains is None else {"device": "cuda", "num_chains": chains}
    s = qpmopt.solve_assignment(*arrays, k, n_features=n, backend="anneal", time_limit=limit, seed=seed, options=opts)
    hit = None if target is None else next((t for t, v in s.history if v >= target - 1e-9), None)
    return {"backend": "anneal", "seed": seed, "chains": s.info["chains"], "objective": s.objective,
            "target": target, "time_to_target": hit, "steps": s.info["steps"], "wall_time": s.wall_time,
            "steps_per_second": s.info["steps"] / max(1e-9, s.info["loop_seconds"]), "time_limit": limit}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpu_scale.json"))
    ap.add_argument("--big-limit", type=float, default=60.0)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure", file=sys.stderr)
        return 2
    out = {**provenance(), "machine": machine_info(), "runs": [], "anneal_steps": [], "path": args.out}
    if reference.path("cub-1").exists():
        k, n_sel, best = reference.REFERENCE["cub-1"]
        arrays = reference.load("cub-1")
        for chains in (8, None):
            for seed in (0, 1):
                _run(out, {"instance": "cub-1", **_anneal(arrays, k, n_sel, 5.0, seed, chains, best)})
    inst = generate("imagenet", seed=1)
    base = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="localsearch")
    _run(out, {"instance": "imagenet", "backend": "localsearch", "objective": base.objective,
               "wall_time": base.wall_time})
    for seed in (0, 1):
        _run(out, {"instance": "imagenet", **_anneal(inst.arrays(), inst.k, inst.n_features, 10.0, seed,
                                                     target=base.objective + 1e-9)})
    t0 = time.perf_counter()
    big = generate("imagenet21k", seed=1)
    gen_seconds = time.perf_counter() - t0
    for backend in ("localsearch", "anneal", "auto"):
        s = qpmopt.solve_assignment(*big.arrays(), big.k, n_features=big.n_features, backend=backend,
                                    time_limit=args.big_limit)
        _run(out, {"instance": "imagenet21k", "backend": backend, "objective": s.objective, "wall_time": s.wall_time,
                   "time_limit": args.big_limit, "overshoot": max(0.0, s.wall_time - args.big_limit),
                   "termination": s.termination.value, "generate_seconds": gen_seconds,
                   "steps": s.info.get("steps"), "chains": s.info.get("chains"), "auto_path": s.info.get("auto_path"),
                   "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20})
    for n_c, n_f in [(200, 2048), (1000, 2048), (5000, 4096), (10000, 4096), (20000, 2048)]:
        g = generate(None, seed=1, n_classes=n_c, n_candidates=n_f, n_features=100 if n_c > 1000 else 50, k=5)
        p = Problem.from_arrays(*g.arrays(), k=g.k, n_features=g.n_features)
        for chains in (8, default_chains(p, "cuda")):
            s = qpmopt.solve_assignment(*g.arrays(), g.k, n_features=g.n_features, backend="anneal",
                                        options={"device": "cuda", "max_steps": 48, "polish": False,
                                                 "num_chains": chains})
            per = s.info["loop_seconds"] / s.info["steps"]
            row = {"n_classes": n_c, "n_candidates": n_f, "cells": n_c * n_f, "chains": chains,
                   "seconds_per_step": per, "ns_per_cell_step": 1e9 * per / (n_c * n_f),
                   "chain_steps_per_second": chains / per}
            _run(out, row, "anneal_steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
