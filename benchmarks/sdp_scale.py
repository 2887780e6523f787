"""The semidefinite bound at CUB scale (2 048 candidates), run to the end of its schedule
with no time limit: how far the relaxation itself goes where the solvers' 60 s cannot take
it (issues 13 and 11).

    python benchmarks/sdp_scale.py          (about 45 minutes on 2 cores)

Writes results/sdp_scale.json with three parts:

- ``evaluation``: seconds of one smoothed evaluation of the dual function on cub-1 with
  every eigenpair and with the largest ``sdp_bound.TOP_EIGENPAIRS`` only (what the bound
  uses above ``PARTIAL_EIGEN_ABOVE`` candidates), best of three, one BLAS thread, and the
  certified values both give at the same multipliers.
- ``bounds``: cub-1 unconstrained and with CHiQPM's pairs (``similar_class_pairs(A,
  0.5)``, exact mode): the Lagrangian bound (with stars under the pairs), then the
  semidefinite bound started from the per-class Lagrangian multipliers
  (``bounds.lagrangian_multipliers``) over the schedule ``--schedule``; unconstrained,
  also its first level alone, started from zero and from those multipliers.  Each row records the value,
  evaluations and seconds, and the trajectory printed per level.
- ``rest``: under the pairs, ``auto`` on the classes outside the pair star alone (same
  ``R`` and ``B``); what any rule-abiding answer can reach is at most the star's bound
  (results/bound_directions.json) plus that sub-problem's optimum.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import reference

import qpmopt
from qpmopt.bench import provenance
from qpmopt.bounds import lagrangian_iterations, lagrangian_multipliers, lagrangian_upper_bound, pair_stars
from qpmopt.io import write_json
from qpmopt.matrices import similar_class_pairs
from qpmopt.sdp_bound import TOP_EIGENPAIRS, _scaled_dual, sdp_upper_bound
from qpmopt.threads import single_threaded_blas

ROOT = Path(__file__).resolve().parents[1]
NAME = "cub-1"


def _problem(pairs: bool) -> qpmopt.Problem:
    k, n_sel, _ = reference.REFERENCE[NAME]
    A, R, B = reference.load(NAME)
    rules = {"shared_pairs": similar_class_pairs(A, 0.5)} if pairs else None
    return qpmopt.Problem.from_arrays(A, R, B, k=k, n_features=n_sel, constraints=rules)


def evaluation() -> dict:
    """One smoothed evaluation, all eigenpairs against the largest few, at multipliers
    that are not trivial (the Lagrangian ones)."""
    p = _problem(False)
    partial, scale = _scaled_dual(p)
    full, _ = _scaled_dual(p)
    full.top_eigenpairs = None  # every eigenpair
    _, mu = lagrangian_multipliers(p, reference.REFERENCE[NAME][2], iterations=300)
    y = np.zeros(partial.layout.size)
    y[partial.layout.slices["mu"]] = (mu / scale).ravel()
    y[partial.layout.slices["gamma"]] = 0.5
    out = {"top_eigenpairs": TOP_EIGENPAIRS}
    with single_threaded_blas():
        for label, dual in (("all", full), ("top", partial)):
            times, certified = [], None
            for _ in range(3):
                t0 = time.perf_counter()
                _, _, certified = dual.smooth(y, 0.001)
                times.append(time.perf_counter() - t0)
            out[f"seconds_{label}"] = min(times)
            out[f"certified_{label}"] = scale * certified
    out["speedup"] = out["seconds_all"] / out["seconds_top"]
    print(out, flush=True)
    return out


def bounds(schedule: tuple[float, ...], iterations: int) -> list[dict]:
    rows = []
    best_known = reference.REFERENCE[NAME][2]
    for pairs in (False, True):
        p = _problem(pairs)
        label = "CHiQPM pairs" if pairs else "none"
        t0 = time.perf_counter()
        lag = lagrangian_upper_bound(p, 0.8 * best_known if pairs else best_known, iterations=lagrangian_iterations(p))
        row = {"instance": NAME, "rules": label, "lagrangian": lag, "lagrangian_seconds": time.perf_counter() - t0}
        t0 = time.perf_counter()
        start_value, mu = lagrangian_multipliers(p, 0.8 * best_known if pairs else best_known,
                                                 iterations=lagrangian_iterations(p))
        row["start_lagrangian"] = start_value
        row["start_seconds"] = time.perf_counter() - t0
        warm = sdp_upper_bound(p, schedule=schedule, iterations_per_stage=iterations, start_mu=mu, verbose=True)
        row.update({"schedule": list(schedule), "iterations_per_stage": iterations, "sdp_warm": warm.value,
                    "sdp_warm_evaluations": warm.evaluations, "sdp_warm_seconds": warm.seconds})
        print(row, flush=True)
        rows.append(row)
        if pairs:
            continue
        cold = sdp_upper_bound(p, schedule=schedule[:1], iterations_per_stage=iterations, verbose=True)
        first = sdp_upper_bound(p, schedule=schedule[:1], iterations_per_stage=iterations, start_mu=mu)
        row.update({"first_level_cold": cold.value, "first_level_cold_evaluations": cold.evaluations,
                    "first_level_warm": first.value, "first_level_warm_evaluations": first.evaluations})
        print(row, flush=True)
    return rows


def rest(time_limit: float, seed: int) -> dict:
    p = _problem(True)
    (hub, leaves), *_ = pair_stars(p)
    star = np.concatenate([[hub], leaves])
    others = np.setdiff1d(np.arange(p.n_classes), star)
    sol = qpmopt.solve_assignment(p.A[others], p.R, p.B, p.k, n_features=p.n_features, backend="auto",
                                  time_limit=time_limit, seed=seed)
    out = {"star_classes": int(star.size), "other_classes": int(others.size), "time_limit": time_limit,
           "auto_objective": sol.objective, "auto_bound": sol.bound, "status": sol.status}
    print(out, flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schedule", default="0.01,0.003,0.001,0.0003,0.0001")
    ap.add_argument("--iterations", type=int, default=250)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "sdp_scale.json")
    args = ap.parse_args()
    schedule = tuple(float(x) for x in args.schedule.split(","))
    data = {**provenance(), "seed": args.seed, "best_known": reference.REFERENCE[NAME][2]}
    data["evaluation"] = evaluation()
    data["rest"] = rest(args.time_limit, args.seed)
    data["bounds"] = bounds(schedule, args.iterations)
    write_json(args.out, data, force=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
