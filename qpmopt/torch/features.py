"""Streaming collection of the statistics QPM needs, in one pass over a DataLoader.

Nothing of size ``n_samples * n_f * H * W`` is ever kept: per batch we add to per-class
sums of the pooled features (for ``A``), the overall first and second moments (for the
head's standardisation), and per-feature locality statistics of the maps (for ``B``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["FeatureStats", "collect_features", "find_feature_modules", "find_qpm_head", "unwrap_parallel", "FeatureTap",
           "logits_of", "MAP_LAYOUTS"]


@dataclass
class FeatureStats:
    """Sufficient statistics of the pooled features and their maps (numpy, float64).

    Attributes:
        class_sums: ``(n_c, n_f)`` sum of pooled features per class.
        class_counts: ``(n_c,)`` samples per class.
        total_sumsq: ``(n_f,)`` sum of squared pooled features.
        locality: ``(n_f,)`` mean over samples of the peak of the spatially softmaxed map,
            each sample weighted by the feature's share of its pooled activation
            (``pooled[n, f] / pooled[n].sum()``, as QPM's reference does), or None.
        border: ``(n_f,)`` the same weighted mean of "the map's maximum lies on the
            border", or None.
    """

    class_sums: np.ndarray
    class_counts: np.ndarray
    total_sumsq: np.ndarray
    locality: np.ndarray | None
    border: np.ndarray | None

    @property
    def n_samples(self) -> int:
        return int(self.class_counts.sum())

    @property
    def mean(self) -> np.ndarray:
        return self.class_sums.sum(axis=0) / self.n_samples

    @property
    def std(self) -> np.ndarray:
        var = self.total_sumsq / self.n_samples - self.mean**2
        return np.sqrt(np.maximum(var, 1e-12))


def unwrap_parallel(model: nn.Module) -> nn.Module:
    """The user's model inside ``DistributedDataParallel`` / ``DataParallel`` (which keep
    it in ``.module``), else ``model`` itself."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def find_qpm_head(model: nn.Module) -> nn.Module | None:
    """The installed QPM head (the last module marked ``is_qpm_head``), or ``None``."""
    heads = [m for m in model.modules() if getattr(m, "is_qpm_head", False)]
    return heads[-1] if heads else None


def find_feature_modules(model: nn.Module) -> tuple[str, nn.Module, nn.Module | None]:
    """Locate the classifier (last linear layer) and the pooling module before it.

    Follows timm's ``get_classifier()`` when present, else takes the last ``nn.Linear``
    (torchvision's ``fc``/``classifier``).  The pooling module is the last adaptive or
    average pooling layer; its *input* are the feature maps.  Returns
    ``(classifier_name, classifier, pool_or_None)``.
    """
    classifier = find_qpm_head(model)  # an installed QPM head is the classifier now
    if classifier is None and hasattr(model, "get_classifier"):
        cand = model.get_classifier()
        if isinstance(cand, nn.Linear):
            classifier = cand
    names = {m: n for n, m in model.named_modules()}
    if classifier is None:
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if not linears:  # pragma: no cover - message path
            raise ValueError("model: no nn.Linear classifier found; pass feature_fn to say how to get features")
        classifier = linears[-1]
    pools = [m for m in model.modules() if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AvgPool2d, nn.AdaptiveMaxPool2d))]
    return names[classifier], classifier, (pools[-1] if pools else None)


def logits_of(output: Any) -> torch.Tensor:
    """The logits of a model's output: the tensor itself, or the ``.logits`` of a Hugging
    Face output object."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    raise TypeError(f"model: returned a {type(output).__name__}, neither a tensor nor an object with .logits")


def _first_tensor(output: Any) -> torch.Tensor | None:
    """The first tensor of a module's output (tensors, tuples, Hugging Face outputs)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        output = list(output.values())
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    return None


#: The spatial layouts :class:`FeatureTap` recognises, for its error messages.
MAP_LAYOUTS = ("(N, C, H, W) maps with H*W > 1", "(N, H, W, C) maps (Swin)",
               "(N, T, C) tokens whose last T - p form a square grid, p <= 8 class/register tokens (ViT, DINOv2)")


class FeatureTap:
    """Hooks that record, on every forward pass, the pooled features (the input of the
    classifier) and the feature maps ``(N, C, H, W)`` they come from.  Use as a context
    manager.

    The classifier is found by :func:`find_feature_modules`.  The maps are found on the
    first forward pass: of the modules that ran before the classifier, the last one whose
    output is one of :data:`MAP_LAYOUTS` with ``C`` channels, ``C`` being the classifier's
    input width.  Transformer tokens are reshaped to their grid (class and register tokens
    dropped).  When the classifier reads twice the token width (Hugging Face DINOv2: class
    token and mean patch token side by side), feature ``j`` gets the map of token channel
    ``j mod C/2``.  ``map_source`` says what was found (``None``: no maps; then ``maps`` stays
    ``None`` and ``B`` cannot be built).
    """

    def __init__(self, model: nn.Module, *, keep_maps: bool = True) -> None:
        self.model = unwrap_parallel(model)
        self.classifier_name, self.classifier, _ = find_feature_modules(self.model)
        self.keep_maps = keep_maps
        self.pooled: torch.Tensor | None = None
        self.maps: torch.Tensor | None = None
        self.map_source: str | None = None
        self.probed = False
        self._handles: list[Any] = []
        self._probes: list[Any] = []
        self._seen: list[tuple[str, torch.Tensor]] = []
        self._layout: tuple[Any, ...] | None = None

    def __enter__(self) -> FeatureTap:
        self._handles.append(self.classifier.register_forward_pre_hook(self._grab_pooled))
        if self.keep_maps:
            inside = {id(m) for m in self.classifier.modules()}
            for name, module in self.model.named_modules():
                if name and id(module) not in inside:
                    self._probes.append(module.register_forward_hook(self._recorder(name)))
            self._probes.append(self.model.register_forward_hook(self._finish_probe))
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles + self._probes:
            h.remove()
        self._handles.clear()
        self._probes.clear()
        self._seen.clear()

    def _grab_pooled(self, _m: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        self.pooled = inputs[0].flatten(1)

    def _recorder(self, name: str) -> Any:
        def record(_m: nn.Module, _inputs: Any, output: Any) -> None:
            if self.pooled is None:  # only modules that ran before the classifier
                t = _first_tensor(output)
                if t is not None and t.ndim in (3, 4):
                    self._seen.append((name, t))

        return record

    def _finish_probe(self, *_: Any) -> None:
        for h in self._probes:
            h.remove()
        self._probes.clear()
        self.probed = True
        seen, self._seen = self._seen, []
        if self.pooled is None:
            return
        width = self.pooled.shape[1]
        for name, t in reversed(seen):
            layout = _map_layout(t, width)
            if layout is not None:
                self._layout = layout
                self.map_source = f"{name} {layout[0]}"
                self.maps = _to_maps(t, layout)
                module = self.model.get_submodule(name)
                self._handles.append(module.register_forward_hook(self._grab_maps))
                return

    def _grab_maps(self, _m: nn.Module, _inputs: Any, output: Any) -> None:
        t = _first_tensor(output)
        if t is not None and self._layout is not None:
            self.maps = _to_maps(t, self._layout)

    def begin(self) -> None:
        """Forget the previous batch (call before each forward pass)."""
        self.pooled = None
        if self.probed:
            return
        self.maps = None


def _map_layout(t: torch.Tensor, width: int) -> tuple[Any, ...] | None:
    if t.ndim == 4 and t.shape[1] == width and t.shape[2] * t.shape[3] > 1:
        return ("NCHW",)
    if t.ndim == 4 and t.shape[3] == width and t.shape[1] * t.shape[2] > 1:
        return ("NHWC",)
    if t.ndim == 3 and width % t.shape[2] == 0 and width // t.shape[2] in (1, 2):
        n_tokens = t.shape[1]
        for prefix in range(0, 9):
            side = math.isqrt(max(0, n_tokens - prefix))
            if side > 1 and side * side == n_tokens - prefix:
                return ("tokens", prefix, side, width // t.shape[2])
    return None


def _to_maps(t: torch.Tensor, layout: tuple[Any, ...]) -> torch.Tensor:
    if layout[0] == "NCHW":
        return t
    if layout[0] == "NHWC":
        return t.permute(0, 3, 1, 2)
    _, prefix, side, repeat = layout
    grid = t[:, prefix:, :].reshape(t.shape[0], side, side, t.shape[2]).permute(0, 3, 1, 2)
    return grid.repeat(1, repeat, 1, 1) if repeat > 1 else grid


def _locality_stats(maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sample and feature: peak of the spatially softmaxed map, and whether the
    maximum lies on the border.  ``maps (N, n_f, H, W)`` -> two ``(N, n_f)`` tensors."""
    n, f, h, w = maps.shape
    flat = maps.reshape(n, f, h * w).float()
    peak = torch.softmax(flat, dim=2).amax(dim=2)
    arg = flat.argmax(dim=2)
    row, col = arg // w, arg % w
    on_border = (row == 0) | (row == h - 1) | (col == 0) | (col == w - 1)
    return peak, on_border.float()


def collect_features(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    num_classes: int | None = None,
    feature_fn: Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]] | None = None,
    device: torch.device | str | None = None,
    progress: bool = True,
    max_batches: int | None = None,
    all_reduce: bool | None = None,
) -> FeatureStats:
    """One pass over ``loader`` under ``torch.no_grad()``, accumulating :class:`FeatureStats`.

    Args:
        model: the trained network; put in eval mode for the pass and restored after.
        loader: yields ``(images, labels)``.
        num_classes: defaults to the classifier's ``out_features``.
        feature_fn: ``(model, images) -> (pooled (N, n_f), maps (N, n_f, H, W) or None)``
            for models whose features the hooks cannot find.
        device: defaults to the model's device.
        progress: show a tqdm progress bar.
        all_reduce: under ``torch.distributed`` (the default when a process group is
            initialised), sum the statistics over all ranks, so that every rank, given its
            shard of the data, gets what one process would get over all of it.  Every rank
            must call this, each with at least one batch.
    """
    from tqdm.auto import tqdm

    if device is None:
        try:
            device = next(model.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
    if num_classes is None:
        num_classes = find_feature_modules(model)[1].out_features
    was_training = model.training
    model.eval()
    sums = counts = sumsq = loc = border = None
    tap = FeatureTap(model) if feature_fn is None else None
    try:
        if tap is not None:
            tap.__enter__()
        with torch.no_grad():
            for b, batch in enumerate(tqdm(loader, desc="collecting features", disable=not progress, leave=False)):
                if max_batches is not None and b >= max_batches:
                    break
                images, labels = batch[0].to(device), batch[1].to(device)
                if feature_fn is not None:
                    pooled, maps = feature_fn(model, images)
                else:
                    tap.begin()
                    model(images)
                    pooled, maps = tap.pooled, tap.maps
                    if pooled is None:
                        raise ValueError(f"model: the classifier {tap.classifier_name!r} did not run in forward; "
                                         "pass feature_fn")
                pooled = pooled.double()
                if labels.min() < 0 or labels.max() >= num_classes:
                    raise ValueError(f"loader: labels must lie in [0, {num_classes}), got {int(labels.min())}..{int(labels.max())}")
                if sums is None:
                    n_f = pooled.shape[1]
                    sums = torch.zeros(num_classes, n_f, dtype=torch.float64, device=device)
                    counts = torch.zeros(num_classes, dtype=torch.float64, device=device)
                    sumsq = torch.zeros(n_f, dtype=torch.float64, device=device)
                    if maps is not None:
                        loc = torch.zeros(n_f, dtype=torch.float64, device=device)
                        border = torch.zeros(n_f, dtype=torch.float64, device=device)
                sums.index_add_(0, labels, pooled)
                counts += torch.bincount(labels, minlength=num_classes).double()
                sumsq += (pooled**2).sum(dim=0)
                if maps is not None and loc is not None:
                    peak, on_border = _locality_stats(maps)
                    # Each sample weighs a feature by its share of the pooled activation (QPM's
                    # weighting for ReLU features); magnitudes, so that the signed features of
                    # transformers weigh the same way.
                    magnitude = pooled.abs()
                    share = magnitude / magnitude.sum(dim=1, keepdim=True).clamp(min=1e-12)
                    loc += (peak.double() * share).sum(dim=0)
                    border += (on_border.double() * share).sum(dim=0)
    finally:
        if tap is not None:
            tap.__exit__(None, None, None)
        model.train(was_training)
    if sums is None:
        raise ValueError("loader: yielded no batches")
    if all_reduce is None:
        all_reduce = torch.distributed.is_available() and torch.distributed.is_initialized()
    if all_reduce:
        for t in (sums, counts, sumsq) + ((loc, border) if loc is not None else ()):
            torch.distributed.all_reduce(t)
    if tap is not None and tap.map_source is None:
        warnings.warn(f"collect_features: no feature maps found before the classifier {tap.classifier_name!r} "
                      f"(looked for {'; '.join(MAP_LAYOUTS)}); locality and border are None, so B will be zero. "
                      "Pass feature_fn to give the maps.", stacklevel=2)
    n = counts.sum()
    return FeatureStats(
        class_sums=sums.cpu().numpy(),
        class_counts=counts.cpu().numpy(),
        total_sumsq=sumsq.cpu().numpy(),
        locality=None if loc is None else (loc / n).cpu().numpy(),
        border=None if border is None else (border / n).cpu().numpy(),
    )
