"""Save a QPM model and load it into a freshly built model of the same architecture."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from qpmopt.solution import Solution
from qpmopt.torch.features import find_feature_modules, unwrap_parallel
from qpmopt.torch.head import QPMHead, find_installed_head, put_head

__all__ = ["save_qpm_model", "load_qpm_model", "FORMAT"]

#: Written into every file; :func:`load_qpm_model` refuses other formats.
FORMAT = "qpmopt-qpm-model/1"


def save_qpm_model(model: nn.Module, path: str | Path, solution: Solution | None = None) -> None:
    """Write what a QPM model needs to ``path``: the whole state dict (backbone and head
    buffers), where the head sits, and the solution (``solution``, else the one
    :func:`~qpmopt.torch.install_head` attached to the head, if any).

    Raises:
        RuntimeError: ``model`` has no QPM head installed.
    """
    target = unwrap_parallel(model)
    name, head = find_installed_head(target)
    solution = solution if solution is not None else getattr(head, "solution", None)
    payload = {
        "format": FORMAT,
        "head_module": name,
        "state_dict": target.state_dict(),
        "solution": None if solution is None else solution.to_dict(),
    }
    torch.save(payload, Path(path))


def load_qpm_model(model: nn.Module, path: str | Path, *, map_location: Any = None) -> tuple[QPMHead, Solution | None]:
    """Load a file of :func:`save_qpm_model` into ``model``, a freshly built model of the
    same architecture (its last linear layer still in place): installs the saved head where
    it was and loads every weight and buffer, so that the logits equal the saved model's.

    Returns ``(head, solution)`` (``solution`` is ``None`` when none was saved).

    Raises:
        ValueError: the file is not a QPM model, or the architecture does not match (the
            message says where).
    """
    payload = torch.load(Path(path), map_location=map_location or "cpu", weights_only=True)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"path: {path} is not a qpmopt QPM model (format {FORMAT!r})")
    target = unwrap_parallel(model)
    name = payload["head_module"]
    state = payload["state_dict"]
    prefix = f"{name}." if name else ""
    head_state = {key[len(prefix):]: value for key, value in state.items() if key.startswith(prefix)}
    try:
        current = target.get_submodule(name)
    except AttributeError:
        raise ValueError(f"model: has no module {name!r}, where the saved head sits") from None
    if not isinstance(current, (nn.Linear, QPMHead)):
        raise ValueError(f"model: module {name!r} is a {type(current).__name__}, expected the final nn.Linear")
    head = QPMHead.from_state_dict(head_state)
    if isinstance(current, nn.Linear):
        found, _, _ = find_feature_modules(target)
        if found != name:
            raise ValueError(f"model: its last linear layer is {found!r}, the saved head replaced {name!r}")
        if current.in_features <= int(head.feature_idx.max()):
            raise ValueError(f"model: {name!r} takes {current.in_features} features, the head uses feature "
                             f"{int(head.feature_idx.max())}")
    put_head(target, name, head.to(next(target.parameters()).device))
    missing, unexpected = target.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"model: its architecture differs from the saved one: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    solution = None if payload["solution"] is None else Solution.from_dict(payload["solution"])
    if solution is not None:
        head.solution = solution
    return head, solution
