"""Issue 12's benchmark: every backend at scale under a time limit, one process per run.

    python benchmarks/scale.py                    (about 40 minutes on 2 cores)
    python benchmarks/scale.py --steps-only       (the annealer's per-step table alone)
    python benchmarks/scale.py --instances imagenet21k --backends localsearch,auto --no-steps --out F

Instances: the ``imagenet`` preset (1 000 x 2 048), ``imagenet21k`` (10 000 x 4 096, 100
selected, k = 5), 5 000 x 4 096 and 20 000 x 2 048 (generated like the presets, seed 1),
written once to ``.npz`` so that the recorded peak memory is the solve's (arrays loaded,
not generated).  Per run: wall time, overshoot past the limit, peak resident memory,
objective next to ``localsearch``'s on the same instance, termination.  Then the
annealer's cost per step against ``n_c * n_f`` (fixed step budgets, no time limit).

Writes results/scale.json (with commit, dirty flag, time and machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import qpmopt
from qpmopt.bench import BenchSpec, provenance, run_benchmark
from qpmopt.instances import generate, save_npz
from qpmopt.io import write_json

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["localsearch", "anneal", "auto", "highs", "cpsat", "scip", "pyomo"]
#: name -> (preset or None, n_classes, n_candidates, n_features, k)
INSTANCES = {
    "imagenet": ("imagenet", None, None, None, None),
    "5000x4096": (None, 5000, 4096, 100, 5),
    "imagenet21k": ("imagenet21k", None, None, None, None),
    "20000x2048": (None, 20000, 2048, 100, 5),
}
STEP_SIZES = [(200, 2048), (1000, 2048), (5000, 4096), (10000, 4096), (20000, 2048)]


def make_instances(folder: Path, names: list[str]) -> dict[str, dict]:
    made = {}
    for name in names:
        preset, n_c, n_f, n_sel, k = INSTANCES[name]
        t0 = time.perf_counter()
        inst = generate(preset, seed=1, n_classes=n_c, n_candidates=n_f, n_features=n_sel, k=k)
        seconds = time.perf_counter() - t0
        path = folder / f"{name}.npz"
        save_npz(str(path), inst, force=True)
        made[name] = {"path": str(path), "k": inst.k, "n_features": inst.n_features, "generate_seconds": seconds,
                      "shape": list(inst.A.shape)}
        print(f"{name}: generated in {seconds:.1f} s", flush=True)
    return made


def step_table(steps: int = 24) -> list[dict]:
    """Seconds per annealing step (8 chains, this machine's device) at growing sizes: the
    loop's time over its steps (a fixed budget), start and final assignments excluded."""
    rows = []
    for n_c, n_f in STEP_SIZES:
        inst = generate(None, seed=1, n_classes=n_c, n_candidates=n_f, n_features=100 if n_c > 1000 else 50, k=5)
        # a step budget for the loop; the limit only bounds the exact assignments around it
        sol = qpmopt.solve_assignment(*inst.arrays(), inst.k, n_features=inst.n_features, backend="anneal",
                                      time_limit=60.0, options={"max_steps": steps, "polish": False})
        per = sol.info["loop_seconds"] / sol.info["steps"]
        rows.append({"n_classes": n_c, "n_candidates": n_f, "cells": n_c * n_f, "steps": sol.info["steps"],
                     "seconds_per_step": per, "ns_per_cell_step": 1e9 * per / (n_c * n_f),
                     "device": sol.info["device"], "assignment_seconds": sol.info["assignment_seconds"]})
        print(rows[-1], flush=True)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--instances", default=",".join(INSTANCES))
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--steps-only", action="store_true")
    ap.add_argument("--no-steps", action="store_true", help="skip the per-step table")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "scale.json"))
    args = ap.parse_args()
    out: dict = {**provenance(), "time_limit": args.time_limit}
    if not args.steps_only:
        with tempfile.TemporaryDirectory() as tmp:
            made = make_instances(Path(tmp), args.instances.split(","))
            specs = [BenchSpec(name=n, path=m["path"], k=m["k"], n_features=m["n_features"]) for n, m in made.items()]
            data = run_benchmark(specs, args.backends.split(","), time_limit=args.time_limit,
                                 on_result=lambda r: print(
                                     f"{r['instance']:>12} {r['backend']:>11}: {r.get('objective')} ({r['status']}, "
                                     f"{r.get('wall_time', 0):.1f} s, {r.get('peak_memory_mb', 0):.0f} MB) "
                                     f"{r.get('error', '')}", flush=True))
        base = {r["instance"]: r.get("objective") for r in data["results"] if r["backend"] == "localsearch"}
        for r in data["results"]:
            ref, obj = base.get(r["instance"]), r.get("objective")
            r["vs_localsearch"] = None if ref is None or obj is None else (obj - ref) / max(1.0, abs(ref))
            r.pop("features", None)
        out.update(instances=made, results=data["results"])
        write_json(args.out, out, force=True)  # kept if the step table is cut short
    if not args.no_steps:
        out["anneal_steps"] = step_table()
    write_json(args.out, out, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
