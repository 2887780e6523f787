"""Solve a QPM problem stored in a .npz file (arrays A, R, B) and print the explanation.

    python examples/solve_npz.py problem.npz -k 5 -n 50 --time-limit 30
    python examples/solve_npz.py --demo            (makes a small problem first)
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import qpmopt
from qpmopt.instances import generate, save_npz


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", nargs="?", type=Path, help="a .npz file with A (n_classes, n_f), R, B")
    ap.add_argument("-k", type=int, default=5, help="features per class")
    ap.add_argument("-n", "--n-features", type=int, default=50, help="features selected")
    ap.add_argument("--time-limit", type=float, default=30.0)
    ap.add_argument("--demo", action="store_true", help="solve a generated 'small' problem instead")
    args = ap.parse_args()
    if args.demo:
        inst = generate("small", seed=0)
        args.path = Path(tempfile.mkdtemp()) / "small.npz"
        save_npz(str(args.path), inst)
        args.k, args.n_features = inst.k, inst.n_features
    if args.path is None:
        ap.error("give a .npz file, or --demo")
    data = np.load(args.path)
    sol = qpmopt.solve_assignment(data["A"], data.get("R"), data.get("B"), args.k, n_features=args.n_features,
                                  time_limit=args.time_limit)
    print(sol)
    print(f"objective {sol.objective:.6f} = A {sol.terms['A']:.6f} + R {sol.terms['R']:.6f} + B {sol.terms['B']:.6f}")
    if sol.bound is not None:
        print(f"proven bound {sol.bound:.6f} (gap {sol.gap:.2%})")
    print(f"selected features: {sol.features.tolist()}")
    for c, feats in enumerate(sol.class_features()):
        print(f"class {c}: features {feats}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
