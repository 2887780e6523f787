"""How QPM builds ``A``, ``R`` and ``B`` (docs/problem.md), on numpy arrays.

The torch adapter streams a data set into the sufficient statistics used here; the
instance generator calls the same functions on simulated statistics, so both build their
matrices one way.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

__all__ = [
    "pearson_similarity",
    "redundancy_from_similarity",
    "threshold_redundancy",
    "locality_bias",
    "clip_to_main_cluster",
    "QPM_BIAS_SCALE",
    "qpm_similarity_scale",
    "similar_class_pairs",
]


def pearson_similarity(class_sums: np.ndarray, class_counts: np.ndarray, total_sumsq: np.ndarray) -> np.ndarray:
    """Pearson correlation of every feature with every class indicator, divided by its max |.|.

    Args:
        class_sums: ``(n_c, n_f)`` sum of each feature's pooled activation over each class.
        class_counts: ``(n_c,)`` samples per class.
        total_sumsq: ``(n_f,)`` sum of squared activations over all samples.

    Returns:
        ``A`` of shape ``(n_c, n_f)`` with ``max |A| = 1``.

    With ``p_c`` the class share, ``corr = p_c (mean_c - mean) / sqrt(p_c (1 - p_c) var)``.
    """
    counts = np.asarray(class_counts, dtype=np.float64)
    n = counts.sum()
    if np.any(counts <= 0) or np.any(counts >= n):
        raise ValueError("class_counts: every class needs at least one sample and not all of them")
    mean = class_sums.sum(axis=0) / n
    var = total_sumsq / n - mean**2
    sd = np.sqrt(np.maximum(var, 1e-12))
    p = counts / n
    class_mean = class_sums / counts[:, None]
    corr = p[:, None] * (class_mean - mean[None, :]) / np.sqrt(p * (1 - p))[:, None] / sd[None, :]
    peak = np.abs(corr).max()
    return corr / peak if peak > 0 else corr


def redundancy_from_similarity(A: np.ndarray, *, normalise: Literal["qpm", "offdiagonal"] = "qpm") -> np.ndarray:
    """Cosine similarity of the feature profiles (columns of ``A``), divided by its largest
    absolute value, zero diagonal, negatives set to zero.  ``(n_f, n_f)``.

    Args:
        normalise: ``"qpm"`` (the reference) takes the largest value *with* the diagonal,
            which is 1 for any non-zero profile, so the values stay plain cosine
            similarities.  ``"offdiagonal"`` takes it without the diagonal (the largest
            pair then has redundancy 1); the instance generator keeps it so that the
            benchmark presets stay the instances earlier results were measured on.
    """
    if normalise not in ("qpm", "offdiagonal"):
        raise ValueError(f"normalise: expected 'qpm' or 'offdiagonal', got {normalise!r}")
    norms = np.linalg.norm(A, axis=0)
    unit = A / np.maximum(norms, 1e-12)[None, :]
    R = unit.T @ unit
    if normalise == "offdiagonal":
        np.fill_diagonal(R, 0.0)
    peak = np.abs(R).max()
    if peak > 0:
        R = R / peak
    np.fill_diagonal(R, 0.0)
    return np.maximum(R, 0.0)


def _greedy_independent(R: np.ndarray, threshold: float, order: np.ndarray, need: int) -> bool:
    chosen: list[int] = []
    for f in order:
        if not chosen or np.all(R[f, chosen] <= threshold):
            chosen.append(int(f))
            if len(chosen) >= need:
                return True
    return False


def threshold_redundancy(R: np.ndarray, n_select: int, relevance: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """QPM's thresholding: penalise only pairs above the smallest threshold ``t`` at which
    ``n_select`` mutually non-redundant features (pairwise ``R <= t``) still exist.

    Existence is certified greedily, taking features by decreasing ``relevance`` (default:
    their largest redundancy is smallest first).  Kept values are mapped to ``(0, 1]`` by
    ``(R - t) / (max R - t)``, which keeps the penalty continuous at the threshold.

    Returns ``(R_thresholded, t)``.
    """
    order = np.argsort(-relevance) if relevance is not None else np.argsort(R.max(axis=1))
    values = np.unique(R[np.triu_indices_from(R, k=1)])
    lo, hi = 0, values.size - 1
    while lo < hi:  # smallest index whose value admits an independent set
        mid = (lo + hi) // 2
        if _greedy_independent(R, values[mid], order, n_select):
            hi = mid
        else:
            lo = mid + 1
    t = float(values[lo]) if values.size else 0.0
    top = float(R.max())
    out = np.where(R > t, (R - t) / max(top - t, 1e-12), 0.0)
    np.fill_diagonal(out, 0.0)
    return out, t


#: the reference's largest magnitude of B: sqrt(10) * 0.1
QPM_BIAS_SCALE = float(np.sqrt(10.0) * 0.1)


def mean_shift_labels_1d(values: np.ndarray, bandwidth: float, max_iter: int = 300) -> np.ndarray:
    """Cluster labels ``(n,)`` of scikit-learn's ``MeanShift(bandwidth=bandwidth).fit``
    on one-dimensional ``values``, for every point at once.

    The same algorithm: every point seeds a flat-kernel mean shift (the mean of the values
    within ``bandwidth``, until it moves by at most ``1e-3 * bandwidth`` or after
    ``max_iter`` iterations); the converged means, ranked by how many values they hold
    (then by value, descending), are thinned so that no two lie within ``bandwidth``; each
    value takes the label of its nearest mean.  In one dimension a neighbourhood is an
    interval of the sorted values, so a prefix sum gives every seed's mean in one step:
    ``O(n log n)`` per iteration instead of scikit-learn's neighbour queries (at 2 048
    values it was the bulk of building ``B``).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    n = x.size
    xs = np.sort(x)
    prefix = np.concatenate([[0.0], np.cumsum(xs)])
    means = x.copy()
    held = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    stop = 1e-3 * bandwidth
    completed = 0
    while active.size:
        m = means[active]
        lo = np.searchsorted(xs, m - bandwidth, side="left")
        hi = np.searchsorted(xs, m + bandwidth, side="right")
        count = hi - lo
        empty = count == 0
        held[active[empty]] = 0
        live = active[~empty]
        new = (prefix[hi[~empty]] - prefix[lo[~empty]]) / count[~empty]
        moved = np.abs(new - means[live])
        means[live] = new
        held[live] = count[~empty]
        done = (moved <= stop) | (completed == max_iter)
        active = live[~done]
        completed += 1
    intensity: dict[float, int] = {}
    for centre, size in zip(means.tolist(), held.tolist()):
        if size:
            intensity[centre] = size
    if not intensity:
        raise ValueError(f"bandwidth: no value lies within {bandwidth} of a seed")
    ranked = sorted(intensity.items(), key=lambda item: (item[1], item[0]), reverse=True)
    centres = np.array([c for c, _ in ranked])
    unique = np.ones(centres.size, dtype=bool)
    for i, centre in enumerate(centres):
        if unique[i]:
            unique[np.abs(centres - centre) <= bandwidth] = False
            unique[i] = True
    kept = centres[unique]
    return np.argmin(np.abs(x[:, None] - kept[None, :]), axis=1)


def clip_to_main_cluster(values: np.ndarray, scale: float = QPM_BIAS_SCALE) -> np.ndarray:
    """The reference's outlier handling of a per-feature score ``(n_f,)``.

    The values are clustered in one dimension by mean shift (scikit-learn's
    ``MeanShift`` with its estimated bandwidth, computed by :func:`mean_shift_labels_1d`,
    which gives the same labels in a fraction of the time); a value outside the range ``[low, high]``
    of the most populous cluster gets that end's magnitude with its own sign (which is a
    clip whenever the value and the end share their sign).  The result is centred on its
    mean and scaled to a largest magnitude of ``scale``.  When most values are equal the
    estimated bandwidth is zero and mean shift cannot run; then nothing is clipped.
    """
    from sklearn.cluster import estimate_bandwidth

    v = np.asarray(values, dtype=np.float64).copy()
    bandwidth = estimate_bandwidth(v.reshape(-1, 1)) if v.size > 1 else 0.0
    if bandwidth > 0:
        labels = mean_shift_labels_1d(v, bandwidth)
        ids, sizes = np.unique(labels, return_counts=True)
        main = v[labels == ids[np.argmax(sizes)]]  # first of the largest on ties
    else:
        main = v
    low, high = main.min(), main.max()
    below, above = v < low, v > high
    v[below] = abs(low) * np.sign(v[below])
    v[above] = abs(high) * np.sign(v[above])
    v -= v.mean()
    peak = np.abs(v).max()
    return v * (scale / peak) if peak > 0 else v


def locality_bias(
    locality: np.ndarray,
    border: np.ndarray,
    max_abs: float = QPM_BIAS_SCALE,
    *,
    method: Literal["qpm", "robust"] = "qpm",
) -> np.ndarray:
    """QPM's steering term ``B`` from per-feature map statistics.

    Args:
        locality: ``(n_f,)`` mean peak of the spatially softmaxed maps, each sample
            weighted by the feature's share of its pooled activation (high = local).
        border: ``(n_f,)`` the same weighted mean of "the map's maximum lies on the border".
        max_abs: largest magnitude of the result.
        method: ``"qpm"`` (the reference): both statistics go through
            :func:`clip_to_main_cluster`; features whose (negated, clipped) border score
            falls below zero get the lowest locality value; the combination goes through
            :func:`clip_to_main_cluster` again.  ``"robust"`` is a simpler variant: the
            score ``locality - border`` clipped to median +- 3 scaled MADs, centred on its
            median and scaled to ``max_abs`` (no clustering; the instance generator uses it).
    """
    if method == "qpm":
        loc = clip_to_main_cluster(locality, max_abs)
        edge = clip_to_main_cluster(-np.asarray(border, dtype=np.float64), max_abs)
        combined = np.where(edge >= 0, loc, loc.min())
        return clip_to_main_cluster(combined, max_abs)
    if method != "robust":
        raise ValueError(f"method: expected 'qpm' or 'robust', got {method!r}")
    score = np.asarray(locality, dtype=np.float64) - np.asarray(border, dtype=np.float64)
    med = np.median(score)
    mad = 1.4826 * np.median(np.abs(score - med))
    if mad > 0:
        score = np.clip(score, med - 3 * mad, med + 3 * mad)
    score = score - med
    peak = np.abs(score).max()
    return score * (max_abs / peak) if peak > 0 else score


def similar_class_pairs(A: np.ndarray, rho: float = 0.5) -> list[tuple[int, int]]:
    """CHiQPM's class pairs: the ``int(n_c * rho)`` distinct unordered pairs ``(a, b)``,
    ``a < b``, with the smallest Euclidean distance between rows ``A[a]`` and ``A[b]``; ties
    go to the pair that comes first in index order.

    Pass them as ``Constraints(shared_pairs=...)`` so that similar classes share ``k - 1``
    features.  Takes ``O(n_c^2 n_f)`` time and ``O(n_c^2)`` memory.

    Args:
        A: ``(n_c, n_f)`` class-feature similarity.
        rho: pairs per class, in ``[0, (n_c - 1) / 2]``.
    """
    A = np.asarray(A, dtype=np.float64)
    if A.ndim != 2:
        raise ValueError(f"A: expected a 2-D array (n_classes, n_features), got shape {A.shape}")
    n_c = A.shape[0]
    count = int(n_c * rho)
    if rho < 0 or count > n_c * (n_c - 1) // 2:
        raise ValueError(f"rho: expected 0 <= rho <= (n_classes - 1) / 2 = {(n_c - 1) / 2}, got {rho}")
    sq = (A * A).sum(axis=1)
    dist = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * A @ A.T, 0.0))
    a, b = np.triu_indices(n_c, k=1)  # index order: by a, then b
    order = np.argsort(dist[a, b], kind="stable")[:count]
    return [(int(a[i]), int(b[i])) for i in order]


def qpm_similarity_scale(n_classes: int, k: int) -> float:
    """The reference code's factor on ``Z_A``: ``1000 / (k * n_c)`` (1 for 200 classes, k=5)."""
    return 1000.0 / (k * n_classes)
