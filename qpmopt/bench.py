"""Benchmark runner: every backend on every instance, one process per run.

A separate process per run means one crash or memory blow-up cannot take the others down,
and its peak resident memory can be read on its own.  Every solution is verified again
here, independently of the solve.  Results are JSON with machine metadata (pyperf-like).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import platform
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BenchSpec", "run_benchmark", "machine_info", "provenance", "load_results", "compare_rows", "result_rows",
           "markdown_table", "RESULT_COLUMNS"]


@dataclass(frozen=True)
class BenchSpec:
    """One instance to run: a preset (generated with ``seed``) or a ``.npz`` path."""

    name: str
    preset: str | None = None
    path: str | None = None
    seed: int = 1
    k: int | None = None
    n_features: int | None = None
    constraints: dict[str, Any] | None = None  # steering rules (the keys of qpmopt.Constraints)
    options: dict[str, Any] | None = None  # backend options for every run of this spec


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10, cwd=Path.cwd())
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance() -> dict[str, Any]:
    """Where a result comes from: ``commit`` (of the git checkout in the working
    directory, ``None`` outside one), ``dirty`` (uncommitted changes to tracked files other
    than those the benchmarks write as they go: benchmarks/results, benchmarks/RESULTS.md
    and README.md), ``created``
    (local time, ISO 8601) and ``machine`` (:func:`machine_info`)."""
    if os.environ.get("QPMOPT_SOURCE_COMMIT"):
        # A copy of a checkout on another machine, whose .git (if any) may not match the
        # files: the caller names the commit it copied; whether that was dirty is unknown.
        return {"commit": os.environ["QPMOPT_SOURCE_COMMIT"], "dirty": None,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine_info()}
    commit = _git("rev-parse", "HEAD")
    # Pathspecs from the top of the checkout: the scripts run from benchmarks/, where a
    # relative ":!benchmarks/results" would exclude nothing.
    status = _git("status", "--porcelain", "--untracked-files=no", "--", ":(top)", ":(top,exclude)benchmarks/results",
                  ":(top,exclude)benchmarks/RESULTS.md", ":(top,exclude)README.md") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine_info()}


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory, GPU and library versions."""
    import importlib.metadata as md

    import psutil

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    for dist in ("qpmopt", "numpy", "torch", "highspy", "ortools", "pyomo"):
        try:
            info[f"{dist}_version"] = md.version(dist)
        except md.PackageNotFoundError:
            info[f"{dist}_version"] = None
    try:
        import torch

        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except Exception:
        info["gpu"] = None
    return info


def _load_spec(spec: BenchSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    if spec.path is not None:
        from qpmopt.io import load_arrays

        arr = load_arrays(spec.path)
        k = spec.k or arr.get("k")
        n = spec.n_features or arr.get("n_features")
        if k is None or n is None:
            raise ValueError(f"{spec.path}: give k and n_features for this file")
        return arr["A"], arr["R"], arr["B"], int(k), int(n)
    from qpmopt.instances import generate

    inst = generate(spec.preset, seed=spec.seed)
    return inst.A, inst.R, inst.B, spec.k or inst.k, spec.n_features or inst.n_features


def _child(spec: BenchSpec, backend: str, time_limit: float, seed: int, gap_limit: float, conn: Any) -> None:
    try:
        import qpmopt
        from qpmopt.evaluate import verify

        A, R, B, k, n = _load_spec(spec)
        t0 = time.perf_counter()
        sol = qpmopt.solve_assignment(A, R, B, k, n_features=n, backend=backend, time_limit=time_limit, seed=seed,
                                      constraints=spec.constraints, gap_limit=gap_limit, options=spec.options)
        wall = time.perf_counter() - t0
        row: dict[str, Any] = {"status": sol.status.value, "termination": sol.termination.value}
        if sol.assignment is not None:
            problem = qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n, constraints=spec.constraints)
            terms = verify(problem, sol.selection, sol.assignment)  # independent re-check, rules included
            row.update(objective=terms.total, terms=terms.as_dict(), features=sol.features.tolist())
        row.update(
            bound=sol.bound,
            gap=sol.gap,
            wall_time=wall,
            overshoot=max(0.0, wall - time_limit),
            time_to_first=sol.history[0][0] if sol.history else None,
            time_to_best=sol.history[-1][0] if sol.history else None,
            info=json.loads(json.dumps(sol.to_dict()["info"])),
        )
    except BaseException as exc:  # reported, not raised: the parent records the failure
        row = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    row["peak_memory_mb"] = _peak_memory_mb()
    conn.send(row)
    conn.close()


def _peak_memory_mb() -> float:
    """This process's peak resident memory: ``VmHWM`` where Linux reports it (it starts
    afresh with the process image), else ``ru_maxrss``, which survives fork and exec and so
    can report a parent's peak."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_benchmark(
    specs: Sequence[BenchSpec],
    backends: Sequence[str],
    *,
    time_limit: float,
    seed: int = 0,
    gap_limit: float = 0.0,
    grace: float = 60.0,
    on_result: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run every backend on every instance, each in a fresh process (``gap_limit`` as in
    :func:`qpmopt.solve_assignment`).

    A run that outlives ``time_limit + grace`` seconds is killed and recorded as such.
    Returns :func:`provenance`'s keys (commit, dirty, created, machine) with
    ``"time_limit"``, ``"seed"``, ``"gap_limit"`` and ``"results"`` (one row per run, each with its commit
    and creation time).
    """
    ctx = mp.get_context("spawn")
    source = provenance()
    results = []
    for spec in specs:
        for backend in backends:
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_child, args=(spec, backend, time_limit, seed, gap_limit, child))
            start = time.perf_counter()
            proc.start()
            child.close()
            row: dict[str, Any]
            if parent.poll(time_limit + grace):
                try:
                    row = parent.recv()
                except EOFError:
                    row = {"status": "error", "error": "worker died (out of memory?)"}
            else:
                row = {"status": "error", "error": f"killed after {time_limit + grace:.0f} s"}
                proc.kill()
            proc.join(5)
            if proc.exitcode not in (0, None) and "error" not in row:
                row = {"status": "error", "error": f"worker exit code {proc.exitcode}"}
            row.update(instance=spec.name, backend=backend, process_time=time.perf_counter() - start,
                       commit=source["commit"], dirty=source["dirty"], created=time.strftime("%Y-%m-%dT%H:%M:%S"))
            results.append(row)
            if on_result is not None:
                on_result(row)
    return {**source, "time_limit": time_limit, "seed": seed, "gap_limit": gap_limit, "results": results}


def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """Read a result file written by :func:`run_benchmark`."""
    data = json.loads(Path(path).read_text())
    if "results" not in data:
        raise ValueError(f"{path}: not a qpmopt benchmark file (no 'results')")
    return data


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1e5 else f"{v:.3e}"
    return str(v)


RESULT_COLUMNS = ["instance", "backend", "objective", "bound", "gap", "time to best (s)", "wall (s)", "overshoot (s)",
                  "peak MB", "status"]


def result_rows(data: dict[str, Any]) -> list[list[str]]:
    """Table rows (strings) of a result file, in :data:`RESULT_COLUMNS` order."""
    rows = []
    for r in data["results"]:
        gap = r.get("gap")
        cells = [r.get("instance"), r.get("backend"), _fmt(r.get("objective"), 7), _fmt(r.get("bound"), 7),
                 "-" if gap is None else f"{100 * gap:.2f}%", _fmt(r.get("time_to_best"), 3),
                 _fmt(r.get("wall_time"), 3), _fmt(r.get("overshoot"), 2), _fmt(r.get("peak_memory_mb"), 4),
                 r.get("status") if r.get("status") != "error" else f"error: {r.get('error')}"]
        rows.append([str(c) for c in cells])
    return rows


def write_marked_block(path: str | Path, name: str, body: str) -> str:
    """Replace the text between ``<!-- name:start -->`` and ``<!-- name:end -->`` in the
    file at ``path`` (a README) with ``body``; returns the new block.

    Raises:
        ValueError: the markers are missing.
    """
    import re

    path = Path(path)
    block = f"<!-- {name}:start -->\n{body}\n<!-- {name}:end -->"
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", flags=re.S)
    text = path.read_text()
    if not pattern.search(text):
        raise ValueError(f"{path}: no <!-- {name}:start --> ... <!-- {name}:end --> markers")
    path.write_text(pattern.sub(lambda _: block, text))
    return block


def markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def compare_rows(old: dict[str, Any], new: dict[str, Any]) -> list[list[str]]:
    """Side-by-side rows per (instance, backend): objectives, times and their ratios (new/old)."""
    index = {(r["instance"], r["backend"]): r for r in old["results"]}
    rows = []
    for r in new["results"]:
        o = index.get((r["instance"], r["backend"]))
        if o is None:
            continue

        def ratio(key: str, o: dict[str, Any] = o, r: dict[str, Any] = r) -> str:
            a, b = o.get(key), r.get(key)
            return f"{b / a:.3f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a else "-"

        rows.append([r["instance"], r["backend"], _fmt(o.get("objective"), 7), _fmt(r.get("objective"), 7),
                     ratio("objective"), _fmt(o.get("wall_time"), 3), _fmt(r.get("wall_time"), 3), ratio("wall_time"),
                     ratio("peak_memory_mb")])
    return rows
