"""Instance presets built the way QPM builds its matrices, from a simulated network.

The simulation: classes come in families; a family shares a few latent parts and each
class adds parts of its own, so near-duplicate classes and shared concepts are realistic.
Each backbone feature detects one or two parts (some detect the same part: redundant
features; some detect nothing: noise).  The class-conditional mean of a feature is the
sum of the loadings of the parts the class shows; within-class spread is per feature.
From these moments we compute the exact Pearson correlation with each class indicator
(as for balanced classes), then R and B with :mod:`qpmopt.matrices`: ``R`` normalised
without its diagonal and ``B`` by the ``"robust"`` variant, as when the presets were
first measured, so that results recorded since stay comparable (the torch adapter builds
them the reference's way).  Deterministic per seed.

These presets are easier than the reference instances in ``shared/instances`` (greedy plus
swaps lands within about 0.2% of the annealer at CUB scale, against 2% on ``cub-1``);
benchmarks that measure search quality use those instances too.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from qpmopt.io import write_atomic
from qpmopt.matrices import (
    locality_bias,
    pearson_similarity,
    qpm_similarity_scale,
    redundancy_from_similarity,
    threshold_redundancy,
)

__all__ = ["PRESETS", "Instance", "generate", "save_npz"]

#: name -> (n_classes, n_candidate_features, n_features selected, k)
PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (6, 12, 4, 2),
    "small": (20, 60, 15, 3),
    "medium": (50, 256, 30, 5),
    "cub": (200, 2048, 50, 5),
    "cars": (196, 2048, 50, 5),
    "imagenet": (1000, 2048, 50, 5),
    "imagenet21k": (10000, 4096, 100, 5),
}


@dataclass
class Instance:
    """Arrays in the public convention plus the parameters they were made for."""

    A: np.ndarray  # (n_c, n_f)
    R: np.ndarray  # (n_f, n_f)
    B: np.ndarray  # (n_f,)
    k: int
    n_features: int
    meta: dict[str, Any] = field(default_factory=dict)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.A, self.R, self.B


def generate(
    preset: str | None = "cub",
    *,
    seed: int = 0,
    n_classes: int | None = None,
    n_candidates: int | None = None,
    n_features: int | None = None,
    k: int | None = None,
    family_size: int = 6,
    qpm_scale: bool = False,
) -> Instance:
    """Generate an instance from a preset (sizes may be overridden).

    Args:
        preset: one of :data:`PRESETS` or ``None`` (then every size must be given).
        seed: random seed; the same seed gives the same arrays.
        qpm_scale: multiply ``A`` by QPM's ``1000 / (k n_c)``.  Off by default, like the
            reference instances in ``shared/instances`` (``max |A| = 1``); the factor is 1
            at CUB scale anyway, and at tiny sizes it would drown ``R`` and ``B``.
    """
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"preset: unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    base = PRESETS[preset] if preset else (None, None, None, None)
    n_c = n_classes or base[0]
    n_f = n_candidates or base[1]
    n_sel = n_features or base[2]
    k_ = k or base[3]
    if None in (n_c, n_f, n_sel, k_):
        raise ValueError("generate: give a preset or all of n_classes, n_candidates, n_features, k")
    rng = np.random.default_rng(seed)

    n_fam = max(1, -(-n_c // family_size))
    fam_parts, own_parts = 4, 2
    n_parts = n_fam * fam_parts + n_c * own_parts
    # Parts per class and detectors per feature are few: both matrices are built sparse
    # (dense, their product alone took minutes and gigabytes at ImageNet-21k scale).
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    family = np.arange(n_c) // family_size
    for c in range(n_c):
        fam = family[c] * fam_parts + np.arange(fam_parts)
        # The draws keep the order of the dense version this replaced, so every preset's
        # arrays stay those earlier results were measured on.
        vals.append(rng.uniform(0.6, 1.0, 3))
        cols.append(rng.choice(fam, size=3, replace=False))
        cols.append(n_fam * fam_parts + c * own_parts + np.arange(own_parts))
        vals.append(rng.uniform(0.5, 1.0, own_parts))
        # a few parts borrowed from other families: concepts shared across the hierarchy
        borrowed = rng.integers(0, n_parts, size=2)
        extra = rng.uniform(0.2, 0.6, 2)
        if borrowed[0] == borrowed[1]:  # a dense ``+=`` with a repeated index adds the last value once
            borrowed, extra = borrowed[1:], extra[1:]
        cols.append(borrowed)
        vals.append(extra)
        rows.append(np.full(3 + own_parts + borrowed.size, c))
    # a borrowed part the class already shows adds up, as ``+=`` did
    presence = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                 shape=(n_c, n_parts))

    # Features detect parts; popular parts get several detectors (redundancy).
    popularity = rng.gamma(0.7, size=n_parts)
    popularity /= popularity.sum()
    n_noise = int(0.15 * n_f)
    load_rows: list[np.ndarray] = []
    load_cols: list[np.ndarray] = []
    load_vals: list[np.ndarray] = []
    for f in range(n_f - n_noise):
        parts = rng.choice(n_parts, size=rng.integers(2, 6), replace=False, p=popularity)
        load_rows.append(parts)
        load_cols.append(np.full(parts.size, f))
        load_vals.append(rng.uniform(0.5, 1.5, parts.size))
    loading = sparse.csr_matrix(
        (np.concatenate(load_vals), (np.concatenate(load_rows), np.concatenate(load_cols))), shape=(n_parts, n_f))
    # A few global "styles" (colour, texture, pose) that every feature picks up a little:
    # they correlate feature profiles, which is what makes redundancy matter.
    styles = rng.normal(size=(n_c, 8)) @ np.abs(rng.normal(size=(8, n_f)))
    class_mean = (presence @ loading).toarray()
    styles *= 0.3
    class_mean += styles
    class_mean += rng.normal(0, 0.05, (n_c, n_f))
    del styles
    detects = np.asarray(loading.sum(axis=0)).ravel()
    within_sd = rng.uniform(0.1, 0.3, n_f)
    per_class = 50
    counts = np.full(n_c, per_class, dtype=np.float64)
    sums = class_mean * per_class
    sumsq = (np.einsum("cf,cf->f", class_mean, class_mean) + n_c * within_sd**2) * per_class

    A = pearson_similarity(sums, counts, sumsq)
    if qpm_scale:
        A = A * qpm_similarity_scale(n_c, k_)
    R_raw = redundancy_from_similarity(A, normalise="offdiagonal")
    R, t = threshold_redundancy(R_raw, n_sel, relevance=np.abs(A).max(axis=0))
    localness = rng.beta(2, 2, n_f) + 0.3 * (detects > 0)
    border = rng.beta(1.5, 6, n_f)
    B = locality_bias(localness, border, 0.32, method="robust")
    return Instance(A, R, B, k_, n_sel, {"preset": preset, "seed": seed, "redundancy_threshold": t})


def save_npz(path: str, instance: Instance, *, force: bool = False) -> None:
    """Write ``A``, ``R``, ``B`` (and ``k``, ``n_features``) to an ``.npz`` file, atomically.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is false.
    """
    buf = io.BytesIO()
    np.savez_compressed(buf, A=instance.A, R=instance.R, B=instance.B, k=instance.k, n_features=instance.n_features)
    write_atomic(path, buf.getvalue(), force=force)

