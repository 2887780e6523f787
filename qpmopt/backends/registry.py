"""Which backends exist: the built-in ones by import path, third-party ones through the
entry-point group ``qpmopt.backends`` (value: ``"package.module:BackendClass"``).

Listing backends imports no solver library: availability is checked with
``importlib.util.find_spec`` on each backend's ``required_modules``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from dataclasses import dataclass

from qpmopt.backends.base import Availability, Backend, BackendUnavailableError, Capabilities, UnknownBackendError

__all__ = ["ENTRY_POINT_GROUP", "BackendInfo", "available_backends", "backend_class", "backend_names", "get_backend"]

ENTRY_POINT_GROUP = "qpmopt.backends"

_BUILTIN: dict[str, str] = {
    "bruteforce": "qpmopt.backends.bruteforce:BruteForceBackend",
    "localsearch": "qpmopt.backends.localsearch:LocalSearchBackend",
    "anneal": "qpmopt.backends.anneal:AnnealBackend",
    "highs": "qpmopt.backends.highs:HighsBackend",
    "cpsat": "qpmopt.backends.cpsat:CpSatBackend",
    "pyomo": "qpmopt.backends.pyomo_solver:PyomoBackend",
    "bnb": "qpmopt.backends.bnb:BranchAndBoundBackend",
    "auto": "qpmopt.backends.auto:AutoBackend",
}


@dataclass(frozen=True)
class BackendInfo:
    """One row of :func:`available_backends`."""

    name: str
    available: Availability
    version: str | None
    capabilities: Capabilities
    source: str  # "builtin" or the entry point's distribution


def _entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    try:
        eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # a broken third-party metadata file must not break the registry
        return {}
    return {ep.name: ep for ep in eps}


def _load_class(name: str) -> tuple[type[Backend], str]:
    if name in _BUILTIN:
        module, attr = _BUILTIN[name].split(":")
        return getattr(importlib.import_module(module), attr), "builtin"
    eps = _entry_points()
    if name in eps:
        ep = eps[name]
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Backend)):
            raise UnknownBackendError(f"backend: entry point {name!r} does not name a qpmopt Backend subclass")
        dist = getattr(ep, "dist", None)
        return cls, (dist.name if dist is not None else "entry point")
    known = sorted(set(_BUILTIN) | set(eps))
    raise UnknownBackendError(f"backend: unknown backend {name!r}; known backends: {', '.join(known)}")


def backend_names() -> list[str]:
    """Names of every registered backend (built-in first, then entry points)."""
    return list(_BUILTIN) + sorted(set(_entry_points()) - set(_BUILTIN))


def get_backend(backend: str | Backend) -> Backend:
    """Backend instance from a name or an instance; raises if unknown or unavailable."""
    if isinstance(backend, Backend):
        return backend
    if not isinstance(backend, str):
        raise UnknownBackendError(f"backend: expected a backend name or a Backend instance, got {type(backend).__name__}")
    cls, _ = _load_class(backend)
    avail = cls.availability()
    if not avail:
        raise BackendUnavailableError(
            f"backend: {backend!r} is not usable ({avail.value}); it needs the module(s) {', '.join(cls.required_modules)}"
        )
    return cls()


def available_backends() -> list[BackendInfo]:
    """Every registered backend with its availability, version and capabilities."""
    out = []
    for name in backend_names():
        try:
            cls, source = _load_class(name)
        except Exception as exc:  # a plugin that fails to import is reported, not raised
            out.append(BackendInfo(name, Availability.BROKEN, None, Capabilities(), f"error: {exc}"))
            continue
        avail = cls.availability()
        out.append(BackendInfo(name, avail, cls.version() if avail else None, cls.capabilities, source))
    return out


def backend_class(name: str) -> type[Backend]:
    """The class registered under ``name`` (imports its module, not its solver library)."""
    return _load_class(name)[0]
