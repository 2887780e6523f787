"""QPM's feature diversity loss and the hook that gives it the feature maps."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from qpmopt.torch.features import MAP_LAYOUTS, FeatureTap

__all__ = ["FeatureMapHook", "FeatureDiversityLoss", "map_diversity"]


def map_diversity(maps: torch.Tensor, scales: torch.Tensor | None = None) -> torch.Tensor:
    """Per sample: ``sum_hw max_l (scale_l * softmax_hw(M_l)) / k``.

    ``maps (N, k, H, W)``, ``scales (N, k)`` or None (all ones).  Returns ``(N,)`` in
    ``[1/(k*H*W)... , 1]``: 1 when the k maps peak sharply at different places, ``1/k``
    when they are identical peaks.
    """
    n, k = maps.shape[:2]
    soft = torch.softmax(maps.reshape(n, k, -1), dim=2)
    if scales is not None:
        soft = soft * scales[:, :, None]
    return soft.amax(dim=1).sum(dim=1) / k


class FeatureMapHook:
    """Records the feature maps ``(N, n_f, H, W)`` of every forward pass, keeping the graph
    so that a loss can use them (found as :class:`~qpmopt.torch.features.FeatureTap` finds
    them: CNN maps, or transformer tokens on their grid).  Use as a context manager or call
    :meth:`close`."""

    def __init__(self, model: nn.Module) -> None:
        self._tap = FeatureTap(model, keep_maps=True).__enter__()

    @property
    def maps(self) -> torch.Tensor | None:
        return self._tap.maps

    @property
    def map_source(self) -> str | None:
        """Where the maps come from (module name and layout), once a forward pass ran."""
        return self._tap.map_source

    def require_maps(self) -> torch.Tensor:
        """The maps of the last forward pass; raises ``ValueError`` naming what was looked
        for when the model has none."""
        if self._tap.maps is None:
            raise ValueError(
                f"model: no feature maps found before the classifier {self._tap.classifier_name!r} (looked for "
                f"{'; '.join(MAP_LAYOUTS)} with as many channels as the classifier's input); pass "
                "diversity_weight=0 or give the model such a layer")
        return self._tap.maps

    def begin(self) -> None:
        self._tap.begin()

    def close(self) -> None:
        self._tap.__exit__(None, None, None)

    def __enter__(self) -> FeatureMapHook:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class FeatureDiversityLoss(nn.Module):
    """Rewards the k feature maps used by the predicted class for peaking at different places.

    ``loss = -weight * mean_N map_diversity(maps of the predicted class's features,
    scales)`` with ``scale_l = max(M_l) / max_l' max(M_l')`` (clamped at 0), so that weak
    maps count less.  Add it to the classification loss during fine-tuning.
    """

    def __init__(self, head: nn.Module, weight: float = 0.2) -> None:
        super().__init__()
        self.head = head
        self.weight = weight

    def forward(self, maps: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """``maps (N, n_f, H, W)`` (all backbone maps), ``logits (N, n_c)``."""
        pred = logits.argmax(dim=1)
        rows = self.head.weight[pred]  # (N, n_sel)
        k = int(rows[0].sum().item())
        pos = torch.topk(rows, k, dim=1).indices  # positions of the class's features
        feats = self.head.feature_idx[pos]  # (N, k)
        picked = torch.gather(maps, 1, feats[:, :, None, None].expand(-1, -1, *maps.shape[2:]))
        peak = picked.flatten(2).amax(dim=2).clamp(min=0)
        scales = peak / peak.amax(dim=1, keepdim=True).clamp(min=1e-12)
        return -self.weight * map_diversity(picked, scales).mean()
