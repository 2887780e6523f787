"""Re-measure chosen (instance, backend) rows of a suite result file in place, e.g. after a
change that only affects some backends.  Each row records its own ``created`` time.

    python benchmarks/rerun_rows.py benchmarks/results/presets.json cub:highs imagenet:cpsat
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from qpmopt.bench import BenchSpec, run_benchmark
from qpmopt.instances import PRESETS


def main(path: str, *pairs: str) -> None:
    data = json.loads(Path(path).read_text())
    shared = Path(__file__).resolve().parents[2] / "shared" / "instances"
    sizes = {"medium-1": (5, 30), "cub-1": (5, 50)}
    for pair in pairs:
        inst, backend = pair.split(":")
        spec = (BenchSpec(inst, preset=inst) if inst in PRESETS else
                BenchSpec(inst, path=str(shared / f"{inst}.npz"), k=sizes[inst][0], n_features=sizes[inst][1]))
        row = run_benchmark([spec], [backend], time_limit=data["time_limit"], seed=data.get("seed", 0))["results"][0]
        row["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        data["results"] = [row if (r["instance"], r["backend"]) == (inst, backend) else r for r in data["results"]]
        print(inst, backend, row.get("objective"), row.get("gap"), row.get("wall_time"), flush=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
