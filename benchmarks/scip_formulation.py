"""SCIP on its native quadratic objective against the linearised formulation, in one
process: the ``scip`` plug-in (``backends/qpmopt-scip``) with ``formulation="linear"`` and
``"quadratic"`` on instances SCIP can finish and on some it cannot, the semidefinite bound
off so that the bound is SCIP's own.  Writes ``benchmarks/results/scip_formulation.json``.

    python benchmarks/scip_formulation.py [--time-limit 60] [--out PATH] [--force]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import reference

import qpmopt
from qpmopt.bench import provenance
from qpmopt.instances import generate
from qpmopt.io import write_json

ROOT = Path(__file__).resolve().parents[1]


def instances():
    for seed in (1, 2, 3):
        inst = generate("small", seed=seed)
        yield f"small seed {seed}", inst.arrays(), inst.k, inst.n_features
    inst = generate(None, n_classes=30, n_candidates=100, n_features=20, k=4, seed=reference.PRESET_SEED)
    yield "30x100 (20, k=4)", inst.arrays(), inst.k, inst.n_features
    inst = generate("medium", seed=reference.PRESET_SEED)
    yield "medium", inst.arrays(), inst.k, inst.n_features
    k, n_sel, _ = reference.REFERENCE["medium-1"]
    yield "medium-1", reference.load("medium-1"), k, n_sel


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scip_formulation.json")
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    if args.out.exists() and not args.force:
        print(f"--out: {args.out} exists; pass --force to overwrite", file=sys.stderr)
        return 2
    rows = []
    for name, (A, R, B), k, n_sel in instances():
        for formulation in ("linear", "quadratic"):
            sol = qpmopt.solve_assignment(A, R, B, k, n_features=n_sel, backend="scip", time_limit=args.time_limit,
                                          seed=0, threads=1, options={"formulation": formulation, "sdp_bound": False})
            row = {"instance": name, "formulation": formulation, "objective": sol.objective, "bound": sol.bound,
                   "gap": sol.gap, "status": str(sol.status), "wall_time": sol.wall_time,
                   "nodes": sol.info.get("last_model", {}).get("nodes"), "path": sol.info.get("path"),
                   "time_limit": args.time_limit}
            rows.append(row)
            print(f"{name:>18} {formulation:>9}: {sol.objective:.5f} bound {sol.bound} gap {sol.gap} "
                  f"{sol.status} {sol.wall_time:.1f} s", flush=True)
    write_json(args.out, {**provenance(), "rows": rows}, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
