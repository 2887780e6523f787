"""``qpmopt demo``: the whole QPM pipeline on data that ships with scikit-learn.

Handwritten digits (1 797 images, 8x8, upsampled to 32x32), a small CNN with 128 backbone
features, QPM with 20 selected features and 5 per class.  Runs in minutes on a CPU; uses the
GPU when one is present (``device="auto"``).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

import qpmopt
from qpmopt.torch.explain import most_similar_classes, plot_assignment, plot_class_pair
from qpmopt.torch.features import collect_features
from qpmopt.torch.finetune import fine_tune
from qpmopt.torch.head import install_head
from qpmopt.torch.matrices import build_matrices
from qpmopt.torch.metrics import interpretability_report

__all__ = ["DigitsNet", "digits_loaders", "run_demo"]


class DigitsNet(nn.Module):
    """Three conv blocks -> ``n_features`` maps of 8x8 -> global average pool -> linear."""

    def __init__(self, n_features: int = 128, n_classes: int = 10) -> None:
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU())

        self.features = nn.Sequential(block(1, 32), nn.MaxPool2d(2), block(32, 64), nn.MaxPool2d(2), block(64, n_features))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(n_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)).flatten(1))


def digits_loaders(seed: int = 0, batch_size: int = 64, size: int = 32) -> tuple[DataLoader, DataLoader, DataLoader]:
    """``(train, train_eval, test)`` loaders of scikit-learn's digits (75/25 stratified split)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.tensor(digits.target, dtype=torch.long)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.25, random_state=seed, stratify=digits.target)
    gen = torch.Generator().manual_seed(seed)
    train = DataLoader(TensorDataset(x[tr], y[tr]), batch_size=batch_size, shuffle=True, generator=gen)
    train_eval = DataLoader(TensorDataset(x[tr], y[tr]), batch_size=256)
    test = DataLoader(TensorDataset(x[te], y[te]), batch_size=256)
    return train, train_eval, test


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"``: the GPU when one is present, else the CPU; otherwise the device named
    (``"cuda"`` without a GPU is an error that says so)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' asked for, but torch sees no GPU here")
    return dev


def _train_dense(model: nn.Module, loader: DataLoader, epochs: int, progress: bool) -> None:
    from tqdm.auto import tqdm

    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    model.train()
    device = next(model.parameters()).device
    for _ in tqdm(range(epochs), desc="dense training", disable=not progress, leave=False):
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            loss = F.cross_entropy(model(images), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()


def run_demo(
    output_dir: str | Path = "qpmopt-demo",
    *,
    epochs: int | None = None,
    finetune_epochs: int | None = None,
    quick: bool = False,
    seed: int = 0,
    n_features: int = 20,
    k: int = 5,
    echo: Callable[[str], Any] = print,
    progress: bool = True,
    device: str | torch.device = "auto",
) -> dict[str, Any]:
    """Train dense, solve QPM, install the head, fine-tune, compare; write PNGs and a report.

    Returns the report dict (also written to ``output_dir/report.json``).
    """
    torch.manual_seed(seed)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    epochs = epochs if epochs is not None else (3 if quick else 20)
    finetune_epochs = finetune_epochs if finetune_epochs is not None else (1 if quick else 15)
    t0 = time.perf_counter()
    train, train_eval, test = digits_loaders(seed)
    dev = resolve_device(device)
    dense = DigitsNet().to(dev)
    echo(f"[1/5] training the dense model ({epochs} epochs, on {dev}) ...")
    _train_dense(dense, train, epochs, progress)
    dense_report = interpretability_report(dense, test, k=k)
    echo(f"      dense test accuracy {100 * dense_report['accuracy']:.2f}%")

    echo("[2/5] collecting features and building A, R, B ...")
    stats = collect_features(dense, train_eval, progress=progress)
    A, R, B = build_matrices(stats, k=k, n_features=n_features)

    echo(f"[3/5] solving: select {n_features} of {A.shape[1]} features, {k} per class ...")
    sol = qpmopt.solve_assignment(A, R, B, k, n_features=n_features, time_limit=5 if quick else 20, seed=seed)
    echo(f"      {sol}")

    echo(f"[4/5] installing the QPM head and fine-tuning ({finetune_epochs} epochs) ...")
    model = copy.deepcopy(dense)
    head = install_head(model, sol, stats)
    fine_tune(model, train, epochs=finetune_epochs, lr=1e-2, progress=progress)
    qpm_report = interpretability_report(model, test)

    echo("[5/5] writing pictures and the report ...")
    names = [str(c) for c in range(10)]
    plot_assignment(head, out / "assignment.png", names)
    a, b = most_similar_classes(head)
    xs, ys = test.dataset.tensors
    plot_class_pair(model, head, xs[ys == a][0], xs[ys == b][0], a, b, out / "class_pair.png", names)

    report = {
        "dense": dense_report,
        "qpm": qpm_report,
        "solution": {"objective": sol.objective, "bound": sol.bound, "status": sol.status.value,
                     "backend_path": sol.info.get("auto_path"), "features": sol.features.tolist(),
                     "class_features": head.explanation()},
        "settings": {"epochs": epochs, "finetune_epochs": finetune_epochs, "n_features": n_features, "k": k,
                     "seed": seed, "quick": quick, "device": str(dev)},
        "similar_pair": [a, b],
        "wall_time_s": time.perf_counter() - t0,
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    rows = [("accuracy", "accuracy"), ("Class-Independence", "class_independence"),
            ("Contrastiveness", "contrastiveness"), ("SID@5", "sid_at_k"), ("Correlation", "correlation")]
    echo("")
    echo(f"{'metric':<20}{'dense':>10}{'QPM':>10}")
    for label, key in rows:
        scale = 100 if key == "accuracy" else 1
        echo(f"{label:<20}{scale * dense_report[key]:>10.3f}{scale * qpm_report[key]:>10.3f}")
    echo("")
    echo(f"wrote {out / 'assignment.png'}, {out / 'class_pair.png'}, {out / 'report.json'} "
         f"({report['wall_time_s']:.0f} s)")
    return report
