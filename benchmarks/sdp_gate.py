"""The semidefinite bound's time rule (issue 13) on several instances of one family:
``medium-1`` and the ``medium`` preset's seeds 0-2 (50 x 256, 30 selected, k=5).  Per
instance: the predicted schedule (``sdp_bound.estimated_seconds``), the seconds the exact
backends and ``auto`` grant it at 60 s (``sdp_bound.sdp_seconds``), then ``auto`` and
``highs`` at 60 s, one process per run: objective, proven bound and gap.

    python benchmarks/sdp_gate.py          (about 9 minutes on 2 cores)

Writes results/sdp_gate.json.
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
from qpmopt.sdp_bound import SDP_MAX_SHARE, estimated_seconds, sdp_seconds

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--backends", default="auto,highs")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sdp_gate.json")
    args = ap.parse_args()
    k, n_sel, _ = reference.REFERENCE["medium-1"]
    specs = [BenchSpec(name="medium-1", path=str(reference.path("medium-1")), k=k, n_features=n_sel)]
    arrays = {"medium-1": (reference.load("medium-1"), k, n_sel)}
    for seed in map(int, args.seeds.split(",")):
        inst = generate("medium", seed=seed)
        specs.append(BenchSpec(name=f"medium/{seed}", preset="medium", seed=seed))
        arrays[f"medium/{seed}"] = (inst.arrays(), inst.k, inst.n_features)
    gates = {}
    for name, ((A, R, B), k_, n_) in arrays.items():
        problem = qpmopt.Problem.from_arrays(A, R, B, k=k_, n_features=n_)
        gates[name] = {"estimated_seconds": estimated_seconds(problem),
                       "exact_backends_seconds": sdp_seconds(problem, None, args.time_limit, 0.5),
                       "auto_seconds": sdp_seconds(problem, None, args.time_limit, 0.5, max_share=SDP_MAX_SHARE)}
        print(name, gates[name], flush=True)
    data = run_benchmark(specs, args.backends.split(","), time_limit=args.time_limit,
                         on_result=lambda r: print(f"{r['instance']:>10} {r['backend']:>6}: {r.get('objective')} "
                                                   f"bound {r.get('bound')} gap {r.get('gap')}", flush=True))
    for row in data["results"]:
        row["gate"] = gates[row["instance"]]
    write_json(args.out, data, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
