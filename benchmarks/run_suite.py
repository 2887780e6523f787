"""The benchmark behind the README's performance table: every backend on the presets and
on the shared reference instances, 60 s each, one process per run, then the tables.

    python benchmarks/run_suite.py            (about 30 minutes on 2 cores)

Writes results/presets.json, results/shared-medium-1.json, results/shared-cub-1.json and
runs make_table.py.  Run it on a clean checkout: the tables refuse results of a dirty tree.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from make_table import main as make_table
from reference import PRESET_SEED, REFERENCE, path

from qpmopt.bench import BenchSpec, run_benchmark
from qpmopt.io import write_json

ROOT = Path(__file__).resolve().parents[1]
# scip is the plug-in of backends/qpmopt-scip (pip install ./backends/qpmopt-scip).
BACKENDS = ["localsearch", "anneal", "highs", "cpsat", "scip", "auto"]
PRESETS = ["tiny", "small", "medium", "cub", "imagenet"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args()
    out = ROOT / "benchmarks" / "results"
    runs = {"presets.json": [BenchSpec(name=p, preset=p, seed=PRESET_SEED) for p in PRESETS]}
    for name in ("medium-1", "cub-1"):
        k, n_sel, _ = REFERENCE[name]
        runs[f"shared-{name}.json"] = [BenchSpec(name=name, path=str(path(name)), k=k, n_features=n_sel)]
    for file, specs in runs.items():
        data = run_benchmark(specs, BACKENDS, time_limit=args.time_limit,
                             on_result=lambda r: print(f"{r['instance']:>10} {r['backend']:>11}: {r.get('objective')} "
                                                       f"({r['status']}, {r.get('wall_time', 0):.1f} s)", flush=True))
        write_json(out / file, data, force=True)
    return make_table()


if __name__ == "__main__":
    sys.exit(main())
