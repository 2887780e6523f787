"""How long :func:`qpmopt.to_pyomo` takes to build the model, and how much memory the model
holds, at the ``medium``, ``cub`` and ``imagenet`` presets (lazy uniqueness, as ``auto``
picks there).  Each preset is built in a fresh process, so that one's memory does not count
towards the next; memory is the growth of the resident set across the build.  Writes
``benchmarks/results/pyomo_build.json`` and the README table between the
``<!-- pyomo-build:start -->`` and ``<!-- pyomo-build:end -->`` markers.

    python benchmarks/pyomo_build.py [--presets medium cub imagenet] [--out PATH] [--force]
    python benchmarks/pyomo_build.py --readme      (only the README table, from the file)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build_one(preset: str, max_gb: float) -> dict:
    import resource

    import psutil

    # A cap on the address space turns a model too large for this machine into a MemoryError
    # in this process, instead of swapping the machine.
    cap = int(max_gb * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    from reference import PRESET_SEED

    import qpmopt
    from qpmopt.instances import generate

    inst = generate(preset, seed=PRESET_SEED)
    import pyomo.environ  # noqa: F401  (its import is not the model's cost)

    process = psutil.Process()
    before = process.memory_info().rss
    start = time.perf_counter()
    m = qpmopt.to_pyomo(*inst.arrays(), inst.k, n_features=inst.n_features, uniqueness="lazy")
    seconds = time.perf_counter() - start
    grown = process.memory_info().rss - before
    n_c, n_f = inst.A.shape
    return {"preset": preset, "n_classes": n_c, "n_candidates": n_f, "k": inst.k, "n_features": inst.n_features,
            "uniqueness": m.qpm_uniqueness, "seconds": seconds, "memory_mb": grown / 2**20,
            "variables": sum(len(v) for v in m.component_objects(pyomo.environ.Var)),
            "constraints": sum(len(c) for c in m.component_objects(pyomo.environ.Constraint))}


def write_readme(path: Path) -> None:
    from qpmopt.bench import markdown_table, write_marked_block

    data = json.loads(path.read_text())
    rows = []
    for r in data["rows"]:
        if "error" in r:
            rows.append([r["preset"], "-", "-", "-", "-", str(r["error"])])
            continue
        rows.append([r["preset"], f"{r['n_classes']} x {r['n_candidates']}", f"{r['variables']:,}",
                     f"{r['constraints']:,}", f"{r['seconds']:.1f} s", f"{r['memory_mb']:,.0f} MB"])
    table = markdown_table(["preset", "classes x candidates", "variables", "constraints", "build", "memory"], rows)
    commit = (data["commit"] or "unknown")[:10] + (" (dirty)" if data["dirty"] else "")
    block = write_marked_block(
        ROOT / "README.md", "pyomo-build",
        f"Building the model (`uniqueness=\"lazy\"`), each preset in a fresh process:\n\n{table}\n\n"
        f"`python benchmarks/pyomo_build.py` at commit {commit}, {data['created'][:10]}, on "
        f"{data['machine'].get('cpu', '?')}, {data['machine'].get('cpu_count')} cores; "
        "[benchmarks/results/pyomo_build.json](benchmarks/results/pyomo_build.json).")
    print(block)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["medium", "cub", "imagenet"])
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--max-gb", type=float, default=18.0, help="address-space cap of each build process")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds each build may take")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "pyomo_build.json")
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--readme", action="store_true", help="only rewrite the README table from --out")
    args = ap.parse_args()
    if args.readme:
        write_readme(args.out)
        return 0
    if args.one:
        print(json.dumps(build_one(args.one, args.max_gb)))
        return 0
    from qpmopt.bench import provenance
    from qpmopt.io import write_json

    if args.out.exists() and not args.force:
        print(f"--out: {args.out} exists; pass --force to overwrite", file=sys.stderr)
        return 2
    rows = []
    for preset in args.presets:
        try:
            done = subprocess.run([sys.executable, __file__, "--one", preset, "--max-gb", str(args.max_gb)],
                                  capture_output=True, text=True, cwd=Path(__file__).parent, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            rows.append({"preset": preset, "error": f"not built within {args.timeout:.0f} s"})
            print(f"{preset}: not built within {args.timeout:.0f} s", flush=True)
            continue
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            rows.append({"preset": preset, "error": f"{last} (address space capped at {args.max_gb} GB)"})
            print(f"{preset}: failed: {done.stderr.strip()[-500:]}", flush=True)
            continue
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{preset}: {row['variables']} variables, {row['constraints']} constraints, "
              f"{row['seconds']:.1f} s, {row['memory_mb']:.0f} MB", flush=True)
    write_json(args.out, {**provenance(), "rows": rows}, force=True)
    print(f"wrote {args.out}")
    write_readme(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
