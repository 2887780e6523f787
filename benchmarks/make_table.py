"""Regenerate the README's performance table and benchmarks/RESULTS.md from the result
files of one suite run (python benchmarks/run_suite.py).

    python benchmarks/make_table.py

Refuses files that come from different commits or from a dirty tree, so that the table is
always one run of one version of the code.
"""

from __future__ import annotations

import sys
from pathlib import Path

from qpmopt.bench import RESULT_COLUMNS, load_results, markdown_table, result_rows, write_marked_block

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FILES = ["presets.json", "shared-medium-1.json", "shared-cub-1.json"]
README_INSTANCES = ("cub", "cub-1")


def describe(machine: dict) -> str:
    return (f"{machine.get('cpu', machine.get('processor', '?'))}, {machine.get('cpu_count')} cores, "
            f"{machine.get('memory_gb')} GB, GPU: {machine.get('gpu') or 'none'}; torch {machine.get('torch_version')}, "
            f"highspy {machine.get('highspy_version')}, ortools {machine.get('ortools_version')}")


def main() -> int:
    runs = [(name, load_results(RESULTS / name)) for name in FILES if (RESULTS / name).exists()]
    commits = {(data.get("commit"), data.get("dirty")) for _, data in runs}
    if len(commits) != 1 or any(dirty is not False for _, dirty in commits):
        print(f"refusing: the result files come from {sorted(map(str, commits))}; rerun python benchmarks/run_suite.py "
              "on a clean checkout", file=sys.stderr)
        return 1
    (commit, _), = commits
    sections, readme_rows = [], []
    for name, data in runs:
        rows = result_rows(data)
        sections.append(f"### {name} (time limit {data['time_limit']} s, {data['created']})\n\n"
                        + markdown_table(RESULT_COLUMNS, rows))
        readme_rows += [row for row in rows if row[0] in README_INSTANCES]
    source = f"commit {commit[:10]}, {runs[0][1]['created'][:10]}, {describe(runs[0][1]['machine'])}"
    (ROOT / "benchmarks" / "RESULTS.md").write_text(
        "# Benchmark results\n\nMade by `python benchmarks/run_suite.py` at " + source + ".\n\n"
        + "\n\n".join(sections) + "\n")
    write_marked_block(ROOT / "README.md", "perf-table",
                       f"{markdown_table(RESULT_COLUMNS, readme_rows)}\n\nOne run of `python benchmarks/run_suite.py` "
                       f"at {source}. All rows: [benchmarks/RESULTS.md](benchmarks/RESULTS.md).")
    print(f"wrote benchmarks/RESULTS.md and the README table from {len(runs)} files at {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
