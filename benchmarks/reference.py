"""The shared reference instances (``../shared/instances``), once for every benchmark script:
where they are, the parameters they were made for, and their best known objectives (from
``shared/instances/README.md``).  They are read by path, never copied into the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

#: ``../shared/instances`` beside the checkout, or $QPMOPT_SHARED_INSTANCES (for machines
#: that get a copy of the repository alone)
SHARED = Path(os.environ.get("QPMOPT_SHARED_INSTANCES", Path(__file__).resolve().parents[2] / "shared" / "instances"))

#: name -> (k, n_features, best known objective); the one copy every script and doc reads.
#: small-1's is proven optimal; cub-1's was found by the annealer on a 2-core CPU in the
#: suite run at commit 6eb6472 (results/shared-cub-1.json as committed in cae1328, features
#: there; later runs overwrite that file), before that
#: 290.14953 by the annealer on an H100 (results/gpu_anneal.json, cub-1 seed 0), 290.13493
#: by auto on a 2-core CPU and 289.12512 by iterated swap local search.
REFERENCE: dict[str, tuple[int, int, float]] = {
    "small-1": (3, 15, 18.15890),
    "medium-1": (5, 30, 53.68412),
    "cub-1": (5, 50, 290.14970),
}

#: the seed of every generated preset the benchmarks use (the CLI's default too)
PRESET_SEED = 1


def path(name: str) -> Path:
    """Where ``name`` lies (it may be missing on a machine without ``shared/``)."""
    return SHARED / f"{name}.npz"


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A, R, B)`` of a reference instance as float64 (they are stored as float32)."""
    with np.load(path(name)) as d:
        return tuple(d[x].astype(np.float64) for x in "ARB")
