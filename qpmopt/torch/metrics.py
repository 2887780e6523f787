"""QPM's interpretability metrics (docs/problem.md), on plain arrays, plus a model report.

All functions take numpy arrays or tensors; shapes are in each docstring.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from qpmopt.torch.features import FeatureTap, find_qpm_head, logits_of
from qpmopt.torch.losses import map_diversity

__all__ = [
    "class_independence",
    "contrastiveness",
    "sid_at_k",
    "feature_correlation",
    "structural_grounding",
    "interpretability_report",
]


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def class_independence(activations: Any, labels: Any, n_classes: int) -> float:
    """``1 - mean_f max_c share_c(f)`` where ``share_c(f)`` is class ``c``'s part of feature
    ``f``'s total (min-shifted) activation.

    ``activations (N, F)``, ``labels (N,)``.  A feature that fires for one class only
    scores 0; one spread evenly over ``n`` classes scores ``1 - 1/n``.
    """
    act = _np(activations).astype(np.float64)
    lab = _np(labels).astype(np.int64)
    shifted = act - act.min(axis=0, keepdims=True)
    per_class = np.zeros((n_classes, act.shape[1]))
    np.add.at(per_class, lab, shifted)
    total = per_class.sum(axis=0)
    share = np.where(total > 0, per_class.max(axis=0) / np.maximum(total, 1e-300), 1.0 / n_classes)
    return float(1.0 - share.mean())


def _gaussian_overlap(m1: float, s1: float, m2: float, s2: float, grid: int = 4001) -> float:
    lo = min(m1 - 8 * s1, m2 - 8 * s2)
    hi = max(m1 + 8 * s1, m2 + 8 * s2)
    x = np.linspace(lo, hi, grid)

    def pdf(m: float, s: float) -> np.ndarray:
        return np.exp(-0.5 * ((x - m) / s) ** 2) / (s * np.sqrt(2 * np.pi))

    return float(np.trapezoid(np.minimum(pdf(m1, s1), pdf(m2, s2)), x))


def contrastiveness(activations: Any, *, seed: int = 0) -> float:
    """``1 - mean_f overlap_f``: a two-component Gaussian mixture is fitted to each
    feature's activations and ``overlap`` is the area under the smaller of its two
    component densities (1 when they coincide, 0 when fully separated).

    ``activations (N, F)``.
    """
    from sklearn.mixture import GaussianMixture

    act = _np(activations).astype(np.float64)
    overlaps = []
    for f in range(act.shape[1]):
        x = act[:, f : f + 1]
        if np.ptp(x) <= 1e-12:
            overlaps.append(1.0)  # a constant feature separates nothing
            continue
        gm = GaussianMixture(2, random_state=seed, reg_covar=1e-6 * float(np.var(x)) + 1e-12).fit(x)
        m = gm.means_.ravel()
        s = np.sqrt(gm.covariances_.ravel())
        overlaps.append(_gaussian_overlap(m[0], s[0], m[1], s[1]))
    return float(1.0 - np.mean(overlaps))


def sid_at_k(maps: Any) -> float:
    """SID@k: ``mean_N sum_hw max_l softmax_hw(M_l) / k`` for the ``k`` maps a prediction
    uses.  ``maps (N, k, H, W)``.  1 when the maps peak at k distinct places, ``1/k`` when
    they are the same."""
    t = maps if isinstance(maps, torch.Tensor) else torch.as_tensor(np.asarray(maps))
    return float(map_diversity(t.double()).mean())


def feature_correlation(activations: Any) -> float:
    """Mean over features of the largest cosine similarity to another feature (over
    samples).  ``activations (N, F)``, F >= 2.  Two identical features give 1."""
    act = _np(activations).astype(np.float64)
    unit = act / np.maximum(np.linalg.norm(act, axis=0, keepdims=True), 1e-12)
    cos = unit.T @ unit
    np.fill_diagonal(cos, -np.inf)
    return float(cos.max(axis=1).mean())


def structural_grounding(weight: Any, similarity: Any, *, top_pairs: int | None = None) -> float:
    """How well the class structure of the final layer matches a ground truth.

    The cosine similarity of class rows of ``weight (n_c, F)`` is compared with the
    ground-truth ``similarity (n_c, n_c)`` (values in [0, 1]) on the ``top_pairs`` most
    similar class pairs by ground truth (default ``n_c``):
    ``1 - mean |cos_W - similarity|`` over those pairs.  1 is a perfect match.
    """
    W = _np(weight).astype(np.float64)
    S = _np(similarity).astype(np.float64)
    n = W.shape[0]
    if S.shape != (n, n):
        raise ValueError(f"similarity: expected shape ({n}, {n}), got {S.shape}")
    if S.min() < -1e-9 or S.max() > 1 + 1e-9:
        raise ValueError("similarity: expected values in [0, 1]")
    unit = W / np.maximum(np.linalg.norm(W, axis=1, keepdims=True), 1e-12)
    cos = unit @ unit.T
    iu, ju = np.triu_indices(n, k=1)
    order = np.argsort(-S[iu, ju], kind="stable")[: (top_pairs or n)]
    return float(1.0 - np.mean(np.abs(cos[iu[order], ju[order]] - S[iu[order], ju[order]])))


def interpretability_report(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    k: int = 5,
    class_similarity: Any = None,
    device: Any = None,
    all_reduce: bool | None = None,
) -> dict[str, float]:
    """Accuracy and the metrics above for ``model`` on ``loader``.

    With a :class:`QPMHead` installed the metrics cover the selected features and SID@k
    the maps of the predicted class's ``k`` features; for a dense model they cover every
    feature, and SID@k the ``k`` features of largest weight for the predicted class.
    Under ``torch.distributed`` (``all_reduce``, default: when a process group is
    initialised) each rank passes its shard and every rank gets the report over all of them.
    """
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    pooled, labels, sids = [], [], []
    correct = total = 0
    with FeatureTap(model) as tap, torch.no_grad():
        clf = tap.classifier
        head = find_qpm_head(model)
        for images, y in loader:
            images, y = images.to(device), y.to(device)
            tap.begin()
            logits = logits_of(model(images))
            pred = logits.argmax(dim=1)
            correct += int((pred == y).sum())
            total += int(y.numel())
            x = tap.pooled
            if head is not None:
                pooled.append(head.standardise(x).cpu())
                rows = head.weight[pred]
                kk = int(head.weight[0].sum())
                feats = head.feature_idx[torch.topk(rows, kk, dim=1).indices]
            else:
                pooled.append(x.cpu())
                kk = k
                feats = torch.topk(clf.weight[pred], kk, dim=1).indices
            labels.append(y.cpu())
            if tap.maps is not None:
                m = tap.maps
                picked = torch.gather(m, 1, feats[:, :, None, None].expand(-1, -1, *m.shape[2:]))
                sids.append(map_diversity(picked.double()).cpu())
    model.train(was_training)
    act = torch.cat(pooled).numpy()
    lab = torch.cat(labels).numpy()
    sid_all = torch.cat(sids).numpy() if sids else np.zeros(0)
    if all_reduce is None:
        all_reduce = torch.distributed.is_available() and torch.distributed.is_initialized()
    if all_reduce:  # every rank scores all ranks' samples, as one process would
        gathered: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, (act, lab, sid_all, correct, total))
        act = np.concatenate([g[0] for g in gathered])
        lab = np.concatenate([g[1] for g in gathered])
        sid_all = np.concatenate([g[2] for g in gathered])
        correct, total = sum(g[3] for g in gathered), sum(g[4] for g in gathered)
    n_classes = int(lab.max()) + 1
    if head is not None:
        n_classes = head.n_classes
    else:
        n_classes = clf.out_features
    report = {
        "accuracy": correct / max(1, total),
        "class_independence": class_independence(act, lab, n_classes),
        "contrastiveness": contrastiveness(act),
        "correlation": feature_correlation(act),
        "sid_at_k": float(sid_all.mean()) if sid_all.size else float("nan"),
    }
    if class_similarity is not None:
        weight = head.weight if head is not None else clf.weight
        report["structural_grounding"] = structural_grounding(weight, class_similarity)
    return report
