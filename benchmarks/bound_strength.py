"""How tight each upper bound is, side by side, in one process: the simple bound, the
Lagrangian bound (``W <= s`` relaxed) and the semidefinite bound, on the shared
``medium-1`` and the ``small`` and ``medium`` presets.  The gap is measured against the
best objective the annealer finds (20 s).  Writes ``benchmarks/results/bound_strength.json``
with the machine description.

With ``--pairs``, the same on ``medium-1`` and the ``small`` preset under CHiQPM's pairs
(``similar_class_pairs(A, 0.5)``, exactly ``k - 1`` shared): the simple bound ignores them,
the Lagrangian and semidefinite bounds count stars of pairs together; the objective is
the annealer's rule-abiding answer.  Writes ``results/bound_strength-pairs.json``.

    python benchmarks/bound_strength.py [--pairs] [--out PATH] [--force]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import reference

import qpmopt
from qpmopt.bench import provenance
from qpmopt.bounds import lagrangian_upper_bound, simple_upper_bound
from qpmopt.instances import generate
from qpmopt.io import write_json
from qpmopt.matrices import similar_class_pairs
from qpmopt.sdp_bound import sdp_upper_bound

ROOT = Path(__file__).resolve().parents[1]


def instances(presets=("small", "medium")):
    k, n_sel, _ = reference.REFERENCE["medium-1"]
    yield "medium-1", reference.load("medium-1"), k, n_sel
    for preset in presets:
        inst = generate(preset, seed=reference.PRESET_SEED)
        yield preset, inst.arrays(), inst.k, inst.n_features


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", action="store_true", help="CHiQPM's pairs on medium-1 and the small preset")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    if args.out is None:
        name = "bound_strength-pairs.json" if args.pairs else "bound_strength.json"
        args.out = ROOT / "benchmarks" / "results" / name
    if args.out.exists() and not args.force:
        print(f"--out: {args.out} exists; pass --force to overwrite", file=sys.stderr)
        return 2
    rows = []
    for name, (A, R, B), k, n_sel in instances(("small",) if args.pairs else ("small", "medium")):
        rules = {"shared_pairs": similar_class_pairs(A, 0.5)} if args.pairs else None
        if rules:
            name += "+chiqpm"
        problem = qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel, constraints=rules)
        best = qpmopt.solve_assignment(A, R, B, k, n_features=n_sel, constraints=rules, backend="anneal",
                                       time_limit=20, seed=0)
        z = best.objective
        t = time.perf_counter()
        simple = simple_upper_bound(problem)
        lag = lagrangian_upper_bound(problem, z, iterations=3000)
        t_lag = time.perf_counter() - t
        sdp = sdp_upper_bound(problem)
        row = {"instance": name, "objective": z, "simple": simple, "lagrangian": lag, "lagrangian_seconds": t_lag,
               "sdp": sdp.value, "sdp_seconds": sdp.seconds, "sdp_evaluations": sdp.evaluations}
        for key in ("simple", "lagrangian", "sdp"):
            row[f"{key}_gap"] = (row[key] - z) / max(1.0, abs(z))
        if rules:
            row["pairs"] = len(rules["shared_pairs"])
        rows.append(row)
        print(f"{name}: objective {z:.5f}; simple {simple:.4f} ({row['simple_gap']:.1%}); "
              f"Lagrangian {lag:.4f} ({row['lagrangian_gap']:.1%}, {t_lag:.1f} s); "
              f"SDP {sdp.value:.4f} ({row['sdp_gap']:.1%}, {sdp.seconds:.1f} s, {sdp.evaluations} evaluations)",
              flush=True)
    write_json(args.out, {**provenance(), "rows": rows}, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
