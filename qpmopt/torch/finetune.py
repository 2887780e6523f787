"""A small fine-tuning loop for users without their own (SGD with momentum, step schedule)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from qpmopt.torch.features import find_qpm_head
from qpmopt.torch.losses import FeatureDiversityLoss, FeatureMapHook

__all__ = ["fine_tune"]


def fine_tune(
    model: nn.Module,
    loader: Iterable[Any],
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    step_size: int | None = None,
    gamma: float = 0.1,
    diversity_weight: float = 0.2,
    device: torch.device | str | None = None,
    progress: bool = True,
) -> list[float]:
    """Fine-tune ``model`` (typically with a QPM head installed) on ``loader``.

    Cross-entropy plus, when a :class:`QPMHead` is installed and ``diversity_weight > 0``,
    the :class:`FeatureDiversityLoss`.  SGD with momentum; the learning rate is multiplied
    by ``gamma`` every ``step_size`` epochs (default: half the epochs).  Works unchanged on a
    ``DistributedDataParallel``-wrapped model (gradients are averaged by DDP).

    Returns the mean loss of every epoch.
    """
    from tqdm.auto import tqdm

    if device is None:
        device = next(model.parameters()).device
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=step_size or max(1, epochs // 2), gamma=gamma)
    head = find_qpm_head(model)
    div = FeatureDiversityLoss(head, diversity_weight) if head is not None and diversity_weight > 0 else None
    hook = FeatureMapHook(model) if div is not None else None
    ce = nn.CrossEntropyLoss()
    history: list[float] = []
    model.train()
    try:
        for epoch in range(epochs):
            total, batches = 0.0, 0
            bar = tqdm(loader, desc=f"fine-tune {epoch + 1}/{epochs}", disable=not progress, leave=False)
            for images, labels in bar:
                images, labels = images.to(device), labels.to(device)
                logits = model(images)
                loss = ce(logits, labels)
                if div is not None and hook is not None and hook.maps is not None:
                    loss = loss + div(hook.maps, logits)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
                batches += 1
            sched.step()
            history.append(total / max(1, batches))
    finally:
        if hook is not None:
            hook.close()
    return history
