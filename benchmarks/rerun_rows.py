"""Re-measure chosen (instance, backend) rows of a suite result file in place, e.g. after a
change that only affects some backends.  Each row records its own ``created`` time.

    python benchmarks/rerun_rows.py benchmarks/results/presets.json cub:highs imagenet:cpsat
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import reference

from qpmopt.bench import BenchSpec, run_benchmark
from qpmopt.instances import PRESETS


def main(path: str, *pairs: str) -> None:
    data = json.loads(Path(path).read_text())
    for pair in pairs:
        inst, backend = pair.split(":")
        if inst in PRESETS:
            spec = BenchSpec(inst, preset=inst)
        else:
            k, n_sel, _ = reference.REFERENCE[inst]
            spec = BenchSpec(inst, path=str(reference.path(inst)), k=k, n_features=n_sel)
        row = run_benchmark([spec], [backend], time_limit=data["time_limit"], seed=data.get("seed", 0))["results"][0]
        row["created"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        data["results"] = [row if (r["instance"], r["backend"]) == (inst, backend) else r for r in data["results"]]
        print(inst, backend, row.get("objective"), row.get("gap"), row.get("wall_time"), flush=True)
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
