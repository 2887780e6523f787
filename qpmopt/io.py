"""Reading problem files and writing results safely (atomic, no silent overwrite)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["InputFileError", "load_arrays", "load_constraints", "write_atomic", "write_json"]


class InputFileError(ValueError):
    """An input file is missing, unreadable, or lacks an array."""


def load_arrays(path: str | os.PathLike) -> dict[str, Any]:
    """Read ``A`` (required), ``R``, ``B`` and optional ``k``/``n_features`` from ``.npz`` or ``.pt``.

    ``.pt`` files must hold a dict of tensors/arrays (loaded with ``weights_only=True``).
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".npz":
            with np.load(p, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        elif suffix == ".pt":
            import torch

            obj = torch.load(p, map_location="cpu", weights_only=True)
            if not isinstance(obj, dict):
                raise InputFileError(f"{p}: expected a dict with keys 'A', 'R', 'B', got {type(obj).__name__}")
            arrays = {key: (val.detach().cpu().numpy() if hasattr(val, "detach") else np.asarray(val)) for key, val in obj.items()}
        else:
            raise InputFileError(f"{p}: unsupported file type {suffix!r}; expected .npz or .pt")
    except InputFileError:
        raise
    except Exception as exc:  # zip errors, pickle refusals, truncated files
        raise InputFileError(f"{p}: cannot read ({type(exc).__name__}: {exc})") from None
    if "A" not in arrays:
        raise InputFileError(f"{p}: missing array 'A' (found: {', '.join(sorted(arrays)) or 'nothing'})")
    out: dict[str, Any] = {"A": arrays["A"], "R": arrays.get("R"), "B": arrays.get("B")}
    for key in ("k", "n_features"):
        if key in arrays:
            out[key] = int(np.asarray(arrays[key]).item())
    return out


def load_constraints(path: str | os.PathLike) -> dict[str, Any]:
    """Read steering rules from a JSON file (an object with the keys of
    :class:`qpmopt.Constraints`); the keys and values are checked when the problem is built."""
    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{p}: no such file")
    try:
        rules = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{p}: cannot read JSON ({exc})") from None
    if not isinstance(rules, dict):
        raise InputFileError(f"{p}: expected a JSON object with the keys of qpmopt.Constraints")
    return rules


def write_atomic(path: str | os.PathLike, data: bytes, *, force: bool = False) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is false.
    """
    p = Path(path)
    if p.exists() and not force:
        raise FileExistsError(f"{p}: exists; pass --force (force=True) to overwrite")
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would surprise whoever reads it next
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any, *, force: bool = False) -> None:
    """Atomic JSON write (indent 2)."""
    write_atomic(path, (json.dumps(obj, indent=2) + "\n").encode(), force=force)
