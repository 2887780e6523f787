"""Pictures of the global explanation: the class-feature assignment, and for two classes
the feature maps they share and the ones that tell them apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from qpmopt.torch.features import FeatureTap
from qpmopt.torch.head import QPMHead

__all__ = ["plot_assignment", "plot_class_pair", "most_similar_classes"]


def _figure(**kwargs: Any) -> Any:
    # A bare Figure draws to files through its own canvas: no pyplot, so the user's
    # process keeps its backend and no window state is created.
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def plot_assignment(head: QPMHead, path: str | Path, class_names: list[str] | None = None) -> Path:
    """Heat map of which selected feature (columns) each class (rows) uses; PNG."""
    W = head.weight.detach().cpu().numpy()
    order = np.lexsort(W[::-1])[::-1]  # group features used by the same classes
    fig = _figure(figsize=(max(4, 0.35 * W.shape[1] + 1.5), max(3, 0.35 * W.shape[0] + 1)))
    ax = fig.subplots()
    ax.imshow(W[:, order], cmap="Greys", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(W.shape[1]), [str(f) for f in head.feature_idx.cpu().numpy()[order]], rotation=90, fontsize=7)
    names = class_names or [str(c) for c in range(W.shape[0])]
    ax.set_yticks(range(W.shape[0]), names, fontsize=8)
    ax.set_xlabel("selected backbone feature")
    ax.set_ylabel("class")
    ax.set_title(f"QPM assignment: {head.k} of {W.shape[1]} features per class")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path


def most_similar_classes(head: QPMHead) -> tuple[int, int]:
    """The pair of classes sharing the most features (ties: lowest indices)."""
    W = head.weight.detach().cpu().numpy()
    shared = W @ W.T
    np.fill_diagonal(shared, -1)
    a, b = np.unravel_index(int(np.argmax(shared)), shared.shape)
    return int(min(a, b)), int(max(a, b))


def plot_class_pair(
    model: torch.nn.Module,
    head: QPMHead,
    image_a: torch.Tensor,
    image_b: torch.Tensor,
    a: int,
    b: int,
    path: str | Path,
    class_names: list[str] | None = None,
) -> Path:
    """For one image of class ``a`` and one of ``b``: the image, then the maps of the
    features the classes share and of those only one of them uses; PNG."""
    names = class_names or [str(c) for c in range(head.n_classes)]
    cmp = head.compare_classes(a, b)
    columns = [("shared", f) for f in cmp["shared"]] + [(f"only {names[a]}", f) for f in cmp[f"only_{a}"]]
    columns += [(f"only {names[b]}", f) for f in cmp[f"only_{b}"]]
    device = head.weight.device
    was = model.training
    model.eval()
    with FeatureTap(model) as tap, torch.no_grad():
        model(torch.stack([image_a, image_b]).to(device))
        if tap.maps is None:
            raise ValueError("model: no feature maps found to draw (see qpmopt.torch.features.MAP_LAYOUTS)")
        maps = tap.maps.float().cpu().numpy()
    model.train(was)
    fig = _figure(figsize=(1.6 * (len(columns) + 1), 3.6))
    axes = fig.subplots(2, len(columns) + 1, squeeze=False)
    for row, (img, c) in enumerate(((image_a, a), (image_b, b))):
        pixels = img.detach().float().cpu()
        if pixels.ndim == 3 and pixels.shape[0] == 3:  # RGB: channels last, scaled to [0, 1]
            pixels = pixels.permute(1, 2, 0)
            pixels = (pixels - pixels.min()) / (pixels.max() - pixels.min()).clamp(min=1e-12)
        axes[row, 0].imshow(pixels.squeeze().numpy(), cmap="gray")
        axes[row, 0].set_title(f"class {names[c]}", fontsize=8)
        for col, (kind, f) in enumerate(columns, start=1):
            axes[row, col].imshow(maps[row, f], cmap="magma")
            if row == 0:
                axes[row, col].set_title(f"{kind}\nfeature {f}", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"classes {names[a]} and {names[b]}: shared and separating feature maps", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    return path
