"""The semidefinite bound with its dense kernels on one BLAS thread (as qpmopt runs it) and
on the BLAS library's default threads: the same schedule on small-1 (full) and medium-1
(40 iterations per smoothing level), timed in one process, alternating.

    python benchmarks/blas_threads.py       (about 2 minutes on 2 cores)

Writes results/blas_threads.json.
"""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from unittest import mock

import reference
from threadpoolctl import threadpool_info

import qpmopt
import qpmopt.sdp_bound as sdp_bound
from qpmopt.bench import provenance
from qpmopt.io import write_json

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    rows = []
    blas = [{k: lib.get(k) for k in ("internal_api", "version", "num_threads")} for lib in threadpool_info()
            if lib["user_api"] == "blas"]
    for name, iterations in (("small-1", 150), ("medium-1", 40)):
        k, n_sel, _ = reference.REFERENCE[name]
        problem = qpmopt.Problem.from_arrays(*reference.load(name), k=k, n_features=n_sel)
        for repeat in range(2):
            for mode in ("one thread", "library default"):
                patch = (contextlib.nullcontext() if mode == "one thread"
                         else mock.patch.object(sdp_bound, "single_threaded_blas", contextlib.nullcontext))
                with patch:
                    t0 = time.perf_counter()
                    res = sdp_bound.sdp_upper_bound(problem, iterations_per_stage=iterations)
                    seconds = time.perf_counter() - t0
                rows.append({"instance": name, "iterations_per_stage": iterations, "mode": mode, "repeat": repeat,
                             "seconds": seconds, "evaluations": res.evaluations, "bound": res.value})
                print(rows[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "blas_threads.json"
    write_json(out, {**provenance(), "blas": blas, "rows": rows}, force=True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
