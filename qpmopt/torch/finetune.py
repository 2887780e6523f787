"""A small fine-tuning loop for users without their own (SGD with momentum, step schedule)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from qpmopt.torch.features import FeatureTap, find_qpm_head, logits_of
from qpmopt.torch.losses import FeatureDiversityLoss, FeatureMapHook

__all__ = ["fine_tune", "recalibrate_batch_norm", "restandardise_head"]


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
    recalibrate_bn: bool = True,
    max_grad_norm: float | None = 1.0,
    restandardise: bool = True,
) -> list[float]:
    """Fine-tune ``model`` (typically with a QPM head installed) on ``loader``.

    Cross-entropy plus, when a :class:`QPMHead` is installed and ``diversity_weight > 0``,
    the :class:`FeatureDiversityLoss`.  SGD with momentum; the learning rate is multiplied
    by ``gamma`` every ``step_size`` epochs (default: half the epochs).  Works unchanged on a
    ``DistributedDataParallel``-wrapped model (gradients are averaged by DDP).

    Batch normalisation: training runs in train mode (batch statistics), while the running
    statistics that eval mode uses trail the changing weights; after a few epochs at a high
    learning rate they no longer describe the features, and eval accuracy can fall to chance
    while the training loss is low.  With ``recalibrate_bn`` (default) one more pass over
    ``loader`` without gradients recomputes them for the final weights.  The head's own
    standardisation (``mean``, ``std``) stays as measured on the dense model, as QPM keeps it.

    Before the first step (``restandardise``), one pass without gradients in train mode
    sets the head's ``mean`` and ``std`` to the selected features' statistics as training
    sees them (:func:`restandardise_head`).  The head's statistics come from
    :func:`collect_features`, in eval mode, where batch norm uses its running statistics;
    for a network whose running statistics do not describe the data (too little training,
    random weights) the features training sees differ from those by orders of magnitude,
    and the first losses explode.  For a well-trained network the two nearly agree.

    Args:
        loader: yields ``(images, labels)``.
        recalibrate_bn: recompute batch-norm running statistics after the last epoch.
        max_grad_norm: clip the gradients' global norm to this (``None``: no clipping).
        restandardise: re-measure the head's mean and std in train mode first.

    Returns:
        The mean loss of every epoch.

    Raises:
        FloatingPointError: the loss became NaN or infinite (the message gives the epoch
            and batch; lower ``lr``).
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
    was_training = model.training
    if restandardise and head is not None:
        restandardise_head(model, loader, device=device)
    model.train()
    try:
        for epoch in range(epochs):
            total, batches = 0.0, 0
            bar = tqdm(loader, desc=f"fine-tune {epoch + 1}/{epochs}", disable=not progress, leave=False)
            for images, labels in bar:
                images, labels = images.to(device), labels.to(device)
                if hook is not None:
                    hook.begin()
                logits = logits_of(model(images))
                loss = ce(logits, labels)
                if div is not None and hook is not None:
                    loss = loss + div(hook.require_maps(), logits)
                opt.zero_grad(set_to_none=True)
                if not torch.isfinite(loss):
                    raise FloatingPointError(
                        f"fine_tune: the loss is {float(loss.detach())} at epoch {epoch + 1}, batch {batches + 1} (lr={lr}); "
                        "lower lr, or check the head's statistics (QPMHead.std)")
                loss.backward()
                if max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
                opt.step()
                total += float(loss.detach())
                batches += 1
            sched.step()
            history.append(total / max(1, batches))
    finally:
        if hook is not None:
            hook.close()
    if recalibrate_bn:
        recalibrate_batch_norm(model, loader, device=device)
    model.train(was_training)
    return history


def restandardise_head(model: nn.Module, loader: Iterable[Any], *, device: Any = None) -> bool:
    """Set the installed :class:`~qpmopt.torch.QPMHead`'s ``mean`` and ``std`` (and its
    floors) to the statistics of the selected features over ``loader`` with the model in
    train mode, without gradients and without touching batch-norm running statistics.
    Under ``torch.distributed`` the statistics are summed over the ranks.  Returns whether
    a head was found."""
    head = find_qpm_head(model)
    if head is None:
        return False
    if device is None:
        device = next(model.parameters()).device
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(bn, bn.momentum, None if bn.num_batches_tracked is None else bn.num_batches_tracked.clone())
             for bn in norms]
    for bn in norms:
        bn.momentum = 0.0  # running statistics unchanged by these forwards
    idx = head.feature_idx
    total = torch.zeros(idx.numel(), dtype=torch.float64, device=device)
    squares = torch.zeros_like(total)
    count = torch.zeros((), dtype=torch.float64, device=device)
    was_training = model.training
    model.train()
    try:
        with FeatureTap(model, keep_maps=False) as tap, torch.no_grad():
            for images, *_ in loader:
                tap.begin()
                model(images.to(device))
                x = tap.pooled[:, idx].double()
                total += x.sum(dim=0)
                squares += (x**2).sum(dim=0)
                count += x.shape[0]
    finally:
        for bn, momentum, tracked in saved:
            bn.momentum = momentum
            if tracked is not None:
                bn.num_batches_tracked.copy_(tracked)
        model.train(was_training)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for t in (total, squares, count):
            torch.distributed.all_reduce(t)
    mean = total / count
    head.set_statistics(mean, (squares / count - mean**2).clamp(min=1e-24).sqrt())
    return True


def recalibrate_batch_norm(model: nn.Module, loader: Iterable[Any], *, device: Any = None) -> bool:
    """Recompute the running statistics of every batch-norm layer of ``model`` over
    ``loader`` (``(images, labels)`` batches), as a cumulative average, without gradients.
    The model's train/eval mode is left as it was; returns whether it had a batch-norm
    layer."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return False
    if device is None:
        device = next(model.parameters()).device
    was_training = model.training
    momenta = {}
    for bn in norms:
        bn.reset_running_stats()
        momenta[bn] = bn.momentum
        bn.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    with torch.no_grad():
        for images, *_ in loader:
            model(images.to(device))
    for bn, momentum in momenta.items():
        bn.momentum = momentum
    model.train(was_training)
    return True
