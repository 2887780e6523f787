"""``A, R, B`` from :class:`~qpmopt.torch.features.FeatureStats`, as QPM builds them.

The maths lives in :mod:`qpmopt.matrices` (numpy) and is shared with the instance
generator; this module only wires the statistics in.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from qpmopt.matrices import (
    QPM_BIAS_SCALE,
    locality_bias,
    pearson_similarity,
    qpm_similarity_scale,
    redundancy_from_similarity,
    threshold_redundancy,
)
from qpmopt.torch.features import FeatureStats

__all__ = ["build_matrices"]


def build_matrices(
    stats: FeatureStats,
    *,
    k: int = 5,
    n_features: int = 50,
    qpm_scale: bool = True,
    threshold: bool = True,
    bias: bool = True,
    bias_max: float = QPM_BIAS_SCALE,
    bias_method: Literal["qpm", "robust"] = "qpm",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build ``A (n_c, n_f)``, ``R (n_f, n_f)``, ``B (n_f,)`` from collected statistics.

    Args:
        k, n_features: the problem's sizes (used by the scaling and the R threshold).
        qpm_scale: multiply ``A`` by QPM's ``1000 / (k n_c)`` (1 for 200 classes, k=5), so
            that the terms keep the reference code's relative weights at any class count.
        threshold: penalise only redundancy above QPM's threshold (see
            :func:`qpmopt.matrices.threshold_redundancy`); else the full clipped cosine.
        bias: compute ``B`` from the maps' locality (zeros when no maps were collected).
        bias_max: largest magnitude of ``B`` (the reference's ``sqrt(10) * 0.1``).
        bias_method: ``"qpm"`` (the reference construction) or ``"robust"`` (a simpler
            one); see :func:`qpmopt.matrices.locality_bias`.
    """
    A = pearson_similarity(stats.class_sums, stats.class_counts, stats.total_sumsq)
    R = redundancy_from_similarity(A)  # computed on the unscaled profiles, like QPM
    if threshold:
        R, _ = threshold_redundancy(R, n_features, relevance=np.abs(A).max(axis=0))
    if qpm_scale:
        A = A * qpm_similarity_scale(A.shape[0], k)
    if bias and stats.locality is not None and stats.border is not None:
        B = locality_bias(stats.locality, stats.border, max_abs=bias_max, method=bias_method)
    else:
        B = np.zeros(A.shape[1])
    return A, R, B
