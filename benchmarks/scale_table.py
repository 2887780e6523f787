"""The README's scale tables from results/scale.json (CPU), the reruns made after it
(results/scale-*.json, which replace their rows) and results/gpu_scale.json (GPU).

    python benchmarks/scale_table.py

Refuses a result file from a dirty tree, so that every number in the README comes from one
recorded run at one commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qpmopt.bench import _fmt, markdown_table, write_marked_block

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _pct(x: float | None, signed: bool = True) -> str:
    if x is None:
        return "-"
    return f"{100 * x:+.3f}%" if signed else f"{100 * x:.2f}%"


def main() -> int:
    cpu = json.loads((RESULTS / "scale.json").read_text())
    if cpu.get("dirty") is not False:
        print("scale.json comes from a dirty tree (or does not say): not copied", file=sys.stderr)
        return 1
    results = list(cpu["results"])
    notes = []
    step_rows, step_source = cpu.get("anneal_steps"), "scale.json"
    # A later run of some backends (results/scale-*.json) replaces their rows, said below;
    # reruns older than scale.json belong to an earlier table and are left out.
    for extra in sorted(RESULTS.glob("scale-*.json")):
        later = json.loads(extra.read_text())
        if later["created"] < cpu["created"]:
            continue
        if later.get("dirty") is not False:
            print(f"{extra.name} comes from a dirty tree: not copied", file=sys.stderr)
            return 1
        if later.get("anneal_steps"):
            step_rows, step_source = later["anneal_steps"], f"{extra.name} (commit {later['commit'][:10]})"
        redone = {(r["instance"], r["backend"]) for r in later["results"]}
        results = [r for r in results if (r["instance"], r["backend"]) not in redone] + later["results"]
        notes.append(f"rows of {', '.join(sorted({b for _, b in redone}))} on "
                     f"{', '.join(sorted({i for i, _ in redone}))} from `results/{extra.name}` "
                     f"(commit {later['commit'][:10]}, {later['created'][:10]})")
    # against localsearch's row for the same instance, whichever file it comes from
    base = {r["instance"]: r.get("objective") for r in results if r["backend"] == "localsearch"}
    for r in results:
        ref, obj = base.get(r["instance"]), r.get("objective")
        r["vs_localsearch"] = None if ref is None or obj is None else (obj - ref) / max(1.0, abs(ref))
    order = {name: i for i, name in enumerate(dict.fromkeys(r["instance"] for r in cpu["results"]))}
    results.sort(key=lambda r: order.get(r["instance"], 99))
    rows = []
    for r in results:
        rows.append([r["instance"], r["backend"], _fmt(r.get("objective"), 8), _pct(r.get("vs_localsearch")),
                     _pct(r.get("gap"), signed=False), _fmt(r.get("wall_time"), 3), _fmt(r.get("overshoot"), 2),
                     _fmt(r.get("peak_memory_mb"), 4),
                     (r.get("info") or {}).get("path") or (r.get("info") or {}).get("auto_path") or "-",
                     r.get("termination") or f"error: {r.get('error')}"])
    m = cpu["machine"]
    body = markdown_table(["instance", "backend", "objective", "vs localsearch", "proven gap", "wall (s)",
                           "overshoot (s)", "peak MB", "path", "termination"], rows)
    body += (f"\n\nOne run of `python benchmarks/scale.py` at commit {cpu['commit'][:10]}, {cpu['created'][:10]}, "
             f"{m.get('cpu', '')}, {m.get('cpu_count', '?')} cores, time limit {cpu['time_limit']:g} s. "
             "Instances generated once per run (seed 1) and loaded from `.npz`, so peak memory is the solve's."
             + "".join(f" The {n}." for n in notes))
    steps = [[f"{r['n_classes']} x {r['n_candidates']}", str(r["cells"]), f"CPU (this machine), 8 chains, {step_source}",
              _fmt(1000 * r["seconds_per_step"], 3), _fmt(r["ns_per_cell_step"], 3)] for r in step_rows or []]
    gpu_path = RESULTS / "gpu_scale.json"
    if gpu_path.exists():
        gpu = json.loads(gpu_path.read_text())
        steps += [[f"{r['n_classes']} x {r['n_candidates']}", str(r["cells"]),
                   f"{gpu['machine'].get('gpu')}, {r['chains']} chains, gpu_scale.json (commit {gpu['commit'][:10]})",
                   _fmt(1000 * r["seconds_per_step"], 3),
                   _fmt(r["ns_per_cell_step"], 3)] for r in gpu["anneal_steps"]]
    body += "\n\n" + markdown_table(["size", "n_c * n_f", "device", "ms per step", "ns per cell and step"], steps)
    write_marked_block(ROOT / "README.md", "scale-table", body)
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
