"""The README's demo table: runs ``qpmopt demo`` (seed 0, default settings), records its
report with provenance in results/demo.json, and rewrites the table between the
``<!-- demo-table:start -->`` and ``<!-- demo-table:end -->`` markers of README.md.

    python benchmarks/demo_report.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from qpmopt.bench import markdown_table, provenance, write_marked_block
from qpmopt.io import write_json
from qpmopt.torch.demo import run_demo

ROOT = Path(__file__).resolve().parents[1]
METRICS = [("test accuracy", "accuracy", True), ("Class-Independence", "class_independence", False),
           ("Contrastiveness", "contrastiveness", False), ("SID@5", "sid_at_k", False),
           ("Correlation (lower is better)", "correlation", False)]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = run_demo(tmp, seed=0, progress=False)
    data = {**provenance(), "report": report}
    write_json(ROOT / "benchmarks" / "results" / "demo.json", data, force=True)
    s = report["settings"]
    rows = [[label, f"{100 * report['dense'][key]:.2f}%" if pct else f"{report['dense'][key]:.3f}",
             f"{100 * report['qpm'][key]:.2f}%" if pct else f"{report['qpm'][key]:.3f}"] for label, key, pct in METRICS]
    table = markdown_table(["metric", "dense", f"QPM ({s['n_features']} features, {s['k']} per class)"], rows)
    commit = (data["commit"] or "unknown")[:10] + (" (dirty)" if data["dirty"] else "")
    block = write_marked_block(
        ROOT / "README.md", "demo-table",
        f"{table}\n\n`python benchmarks/demo_report.py` (seed {s['seed']}, {report['wall_time_s']:.0f} s) at commit "
        f"{commit}, {data['created'][:10]}, on {data['machine'].get('cpu', '?')}, {data['machine'].get('cpu_count')} "
        "cores; report: [benchmarks/results/demo.json](benchmarks/results/demo.json).")
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
