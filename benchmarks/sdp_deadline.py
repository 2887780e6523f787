"""The semidefinite bound under a deadline (issue 13): its value after 10, 25 and 50 s on
``medium-1`` and the ``medium`` preset's seeds 0-2 (50 x 256, 30 selected, k=5), next to
the fixed schedule that a deadline used to run (the default levels and three finer ones,
150 iterations each), which ended early and left the rest of the time unused.  Gaps are
against the annealer's answer at 10 s (seed 0).

    python benchmarks/sdp_deadline.py          (about 8 minutes, one process)

Writes results/sdp_deadline.json.  Run it on a quiet machine: the values under a deadline
depend on how many evaluations fit.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import reference

import qpmopt
from qpmopt.bench import provenance
from qpmopt.instances import generate
from qpmopt.io import write_json
from qpmopt.sdp_bound import DEFAULT_SCHEDULE, sdp_upper_bound
from qpmopt.solution import relative_gap

ROOT = Path(__file__).resolve().parents[1]

#: What a deadline ran before the levels shared the time (sdp_bound's finer levels).
FIXED_SCHEDULE = DEFAULT_SCHEDULE + tuple(DEFAULT_SCHEDULE[-1] * 0.3**i for i in range(1, 4))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deadlines", default="10,25,50")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sdp_deadline.json")
    args = ap.parse_args()
    k, n_sel, _ = reference.REFERENCE["medium-1"]
    problems = {"medium-1": qpmopt.Problem.from_arrays(*reference.load("medium-1"), k=k, n_features=n_sel)}
    for seed in map(int, args.seeds.split(",")):
        inst = generate("medium", seed=seed)
        problems[f"medium/{seed}"] = qpmopt.Problem.from_arrays(*inst.arrays(), k=inst.k, n_features=inst.n_features)
    rows = []
    for name, p in problems.items():
        z = qpmopt.solve_assignment(p.A, p.R, p.B, p.k, n_features=p.n_features, backend="anneal", time_limit=10,
                                    seed=0).objective
        runs = [("fixed schedule", None)] + [(f"deadline {s} s", float(s)) for s in args.deadlines.split(",")]
        for label, seconds in runs:
            if seconds is None:
                res = sdp_upper_bound(p, schedule=FIXED_SCHEDULE)
            else:
                res = sdp_upper_bound(p, deadline=time.perf_counter() + seconds)
            gap = relative_gap(z, res.value)
            rows.append({"instance": name, "run": label, "deadline_seconds": seconds, "objective": z,
                         "bound": res.value, "gap": gap, "seconds": res.seconds, "evaluations": res.evaluations,
                         "stopped": res.stopped})
            print(f"{name:>10} {label:>15}: bound {res.value:.4f} gap {gap:.2%} in {res.seconds:.1f} s "
                  f"({res.evaluations} evaluations, {res.stopped})", flush=True)
    write_json(args.out, {**provenance(), "rows": rows}, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
