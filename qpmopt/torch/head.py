"""The QPM head: a fixed, sparse, binary final layer on standardised selected features."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from qpmopt.torch.features import FeatureStats, find_feature_modules, unwrap_parallel

__all__ = ["QPMHead", "install_head", "uninstall_head", "find_installed_head", "put_head"]

_REPLACED = "_qpmopt_replaced"

#: The head divides by ``max(std, MIN_RELATIVE_STD * sqrt(mean**2 + std**2))``: a feature
#: that barely varies relative to its size (a transformer's class token after its final
#: LayerNorm, a random-init network's features) would otherwise be scaled up a thousandfold,
#: and the first fine-tuning steps, which move it by more than its spread, blow the logits up.
MIN_RELATIVE_STD = 0.05


class QPMHead(nn.Module):
    """``logits = standardise(x[:, features]) @ W.T`` with ``W`` binary and frozen.

    Buffers: ``feature_idx (n_sel,)`` and ``weight (n_c, n_sel)`` (0/1: which selected
    features each class uses), never trained.  ``mean (n_sel,)`` and ``std (n_sel,)`` start
    as the training-set statistics of the selected features and are parameters that
    fine-tuning adjusts, as in QPM's reference implementation (``trainable_normalisation``;
    ``False`` makes them fixed buffers).  Adjusting them lets fine-tuning set each
    feature's scale and offset without distorting the backbone; the explanation (which
    class uses which feature) never changes.  The forward clamps ``std`` at a tenth of its
    initial value (buffer ``std_floor``), so that a step cannot take it through zero.

    Input: pooled features ``(N, n_f)``; output: logits ``(N, n_c)``.
    """

    is_qpm_head = True  # lets feature discovery treat the head as the classifier

    def __init__(self, feature_idx: Any, weight: Any, mean: Any, std: Any, *,
                 trainable_normalisation: bool = True) -> None:
        super().__init__()
        idx = torch.as_tensor(np.asarray(feature_idx), dtype=torch.long)
        w = torch.as_tensor(np.asarray(weight), dtype=torch.float32)
        if w.ndim != 2 or w.shape[1] != idx.numel():
            raise ValueError(f"weight: expected shape (n_classes, {idx.numel()}), got {tuple(w.shape)}")
        self.register_buffer("feature_idx", idx)
        self.register_buffer("weight", w)
        mean_t = torch.as_tensor(np.asarray(mean), dtype=torch.float32).reshape(-1).clone()
        std_t = torch.as_tensor(np.asarray(std), dtype=torch.float32).reshape(-1).clone()
        self.register_buffer("std_floor", 0.1 * std_t.clamp(min=1e-12))
        if trainable_normalisation:
            self.mean = nn.Parameter(mean_t)
            self.std = nn.Parameter(std_t)
        else:
            self.register_buffer("mean", mean_t)
            self.register_buffer("std", std_t)

    @classmethod
    def from_solution(cls, solution: Any, stats: FeatureStats, *, trainable_normalisation: bool = True) -> QPMHead:
        """Head from a :class:`qpmopt.Solution` and the statistics the matrices came from
        (the standard deviations floored, see :data:`MIN_RELATIVE_STD`)."""
        idx = np.asarray(solution.features)
        head = cls(idx, solution.assignment[:, idx], stats.mean[idx], stats.std[idx],
                   trainable_normalisation=trainable_normalisation)
        head.set_statistics(torch.as_tensor(stats.mean[idx]), torch.as_tensor(stats.std[idx]))
        return head

    def set_statistics(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Set ``mean`` and ``std`` (``(n_sel,)``) of the selected features, ``std`` floored
        at :data:`MIN_RELATIVE_STD` of the feature's root mean square, and ``std_floor`` to a
        tenth of it."""
        mean = mean.to(self.mean.device, torch.float64)
        std = std.to(self.mean.device, torch.float64)
        std = torch.maximum(std, MIN_RELATIVE_STD * (mean**2 + std**2).sqrt())
        with torch.no_grad():
            self.mean.copy_(mean.to(self.mean.dtype))
            self.std.copy_(std.to(self.std.dtype))
            self.std_floor.copy_(0.1 * self.std.clamp(min=1e-12))

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor]) -> QPMHead:
        """Rebuild a head from :meth:`state_dict` alone (shapes come from the tensors)."""
        head = cls(state["feature_idx"].cpu().numpy(), state["weight"].cpu().numpy(),
                   state["mean"].cpu().numpy(), state["std"].cpu().numpy())
        if "std_floor" in state:
            head.std_floor.copy_(state["std_floor"])
        return head.to(state["weight"].device)

    @property
    def n_classes(self) -> int:
        return int(self.weight.shape[0])

    @property
    def out_features(self) -> int:
        """Number of classes (named like ``nn.Linear``'s attribute)."""
        return self.n_classes

    @property
    def k(self) -> int:
        return int(self.weight[0].sum().item())

    def standardise(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, n_f)`` pooled features -> ``(N, n_sel)`` standardised selected features."""
        return (x[:, self.feature_idx] - self.mean) / torch.maximum(self.std, self.std_floor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.standardise(x) @ self.weight.t()

    # ---- the global explanation --------------------------------------------------------
    def class_features(self, c: int) -> list[int]:
        """Backbone feature ids that class ``c`` uses."""
        return self.feature_idx[self.weight[c] > 0].tolist()

    def compare_classes(self, a: int, b: int) -> dict[str, list[int]]:
        """Features two classes share, and the ones that tell them apart."""
        fa, fb = set(self.class_features(a)), set(self.class_features(b))
        return {"shared": sorted(fa & fb), f"only_{a}": sorted(fa - fb), f"only_{b}": sorted(fb - fa)}

    def explanation(self) -> dict[int, list[int]]:
        """``{class: [feature ids]}`` for every class."""
        return {c: self.class_features(c) for c in range(self.n_classes)}

    def extra_repr(self) -> str:
        return f"n_classes={self.n_classes}, n_selected={self.feature_idx.numel()}, k={self.k}"


def _set_submodule(root: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, child, module)


def install_head(model: nn.Module, solution: Any, stats: FeatureStats, *, device: Any = None,
                 trainable_normalisation: bool = True) -> QPMHead:
    """Replace the model's last linear layer with a :class:`QPMHead`, in place.

    The head goes to the device of the layer it replaces (or ``device``).  The old layer
    is kept aside (not as a submodule, so its parameters leave ``model.parameters()``)
    for :func:`uninstall_head`.  Returns the head.
    """
    target = unwrap_parallel(model)
    if getattr(target, _REPLACED, None) is not None:
        raise RuntimeError("model: a QPM head is already installed; call uninstall_head first")
    name, old, _ = find_feature_modules(target)
    if solution.assignment is None:
        raise ValueError(f"solution: holds no assignment (status {solution.status})")
    if solution.assignment.shape[1] != old.in_features:
        raise ValueError(f"solution: has {solution.assignment.shape[1]} features, the layer {name!r} takes {old.in_features}")
    head = QPMHead.from_solution(solution, stats, trainable_normalisation=trainable_normalisation)
    head = head.to(device or old.weight.device)
    head.solution = solution  # what save_qpm_model writes next to the weights
    put_head(target, name, head)
    return head


def put_head(model: nn.Module, name: str, head: QPMHead) -> None:
    """Put ``head`` at submodule ``name`` of ``model`` (not wrapped in DDP), keeping the
    layer it replaces aside for :func:`uninstall_head`; a head already there is replaced."""
    current = model.get_submodule(name)
    saved = getattr(model, _REPLACED, None)
    _set_submodule(model, name, head)
    if saved is None:
        object.__setattr__(model, _REPLACED, (name, current))


def find_installed_head(model: nn.Module) -> tuple[str, QPMHead]:
    """``(name, head)`` of the QPM head installed in ``model``.

    Raises:
        RuntimeError: none is installed.
    """
    target = unwrap_parallel(model)
    for name, module in target.named_modules():
        if isinstance(module, QPMHead):
            return name, module
    raise RuntimeError("model: no QPM head installed (install_head first)")


def uninstall_head(model: nn.Module) -> nn.Module:
    """Put back the layer :func:`install_head` replaced; returns it."""
    target = unwrap_parallel(model)
    saved = getattr(target, _REPLACED, None)
    if saved is None:
        raise RuntimeError("model: no QPM head installed")
    name, old = saved
    _set_submodule(target, name, old)
    object.__delattr__(target, _REPLACED)
    return old
