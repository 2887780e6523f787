"""Regenerate the README's performance table from benchmarks/results/*.json.

    python benchmarks/make_table.py

Writes benchmarks/RESULTS.md (every row) and replaces the block between the
``<!-- perf-table:start -->`` and ``<!-- perf-table:end -->`` markers in README.md (the
CUB-scale rows).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FILES = ["presets.json", "shared-medium-1.json", "shared-cub-1.json"]


def fmt(v, digits=6):
    if v is None:
        return "-"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def rows(data):
    out = []
    for r in data["results"]:
        gap = r.get("gap")
        status = r.get("status")
        if status == "error":
            status = f"error: {r.get('error', '')[:60]}"
        out.append(
            f"| {r['instance']} | {r['backend']} | {fmt(r.get('objective'), 8)} | {fmt(r.get('bound'), 8)} | "
            f"{'-' if gap is None else f'{100 * gap:.2f}%'} | {fmt(r.get('time_to_best'), 3)} | "
            f"{fmt(r.get('wall_time'), 3)} | {fmt(r.get('overshoot'), 2)} | {fmt(r.get('peak_memory_mb'), 4)} | "
            f"{status} |"
        )
    return out


HEADER = ("| instance | backend | objective | bound | gap | time to best (s) | wall (s) | overshoot (s) | "
          "peak MB | status |\n|---|---|---|---|---|---|---|---|---|---|")


def main() -> None:
    sections, cub_rows, machine = [], [], None
    for name in FILES:
        path = RESULTS / name
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        machine = data["machine"]
        body = rows(data)
        sections.append(f"### {name} (time limit {data['time_limit']} s, {data['created']})\n\n{HEADER}\n" + "\n".join(body))
        cub_rows += [line for line in body if line.startswith(("| cub |", "| cub-1 |"))]
    m = machine or {}
    desc = (f"{m.get('cpu', m.get('processor', '?'))}, {m.get('cpu_count')} cores, {m.get('memory_gb')} GB, "
            f"GPU: {m.get('gpu') or 'none'}; torch {m.get('torch_version')}, highspy {m.get('highspy_version')}, "
            f"ortools {m.get('ortools_version')}")
    (ROOT / "benchmarks" / "RESULTS.md").write_text(
        "# Benchmark results\n\nMade by `bash benchmarks/run_suite.sh` on: " + desc + "\n\n" + "\n\n".join(sections) + "\n")
    readme = ROOT / "README.md"
    text = readme.read_text()
    table = (f"<!-- perf-table:start -->\n{HEADER}\n" + "\n".join(cub_rows) +
             f"\n\nMachine: {desc}. All rows: [benchmarks/RESULTS.md](benchmarks/RESULTS.md).\n<!-- perf-table:end -->")
    if "<!-- perf-table:start -->" in text:
        text = re.sub(r"<!-- perf-table:start -->.*?<!-- perf-table:end -->", lambda _: table, text, flags=re.S)
        readme.write_text(text)
    print(f"wrote benchmarks/RESULTS.md ({sum(len(s.splitlines()) for s in sections)} lines)")


if __name__ == "__main__":
    main()
