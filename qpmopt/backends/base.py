"""Backend protocol, common configuration, availability and the registry.

A backend is a class with a ``name``, the modules it needs (checked with
``importlib.util.find_spec``, never imported to list it), its :class:`Capabilities`, an
options dataclass, and one method, :meth:`Backend.solve`.  Built-in backends are listed
here by import path; third-party ones register through the entry-point group
``qpmopt.backends`` (value: ``"package.module:BackendClass"``).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import numpy as np

from qpmopt.problem import Problem
from qpmopt.solution import BackendResult

__all__ = [
    "Availability",
    "Backend",
    "BackendInfo",
    "Capabilities",
    "SolverConfig",
    "UnknownBackendError",
    "BackendUnavailableError",
    "OptionsError",
    "ProblemTooLargeError",
    "available_backends",
    "get_backend",
    "ENTRY_POINT_GROUP",
]

ENTRY_POINT_GROUP = "qpmopt.backends"

_BUILTIN: dict[str, str] = {
    "bruteforce": "qpmopt.backends.bruteforce:BruteForceBackend",
    "localsearch": "qpmopt.backends.localsearch:LocalSearchBackend",
    "anneal": "qpmopt.backends.anneal:AnnealBackend",
    "highs": "qpmopt.backends.highs:HighsBackend",
    "cpsat": "qpmopt.backends.cpsat:CpSatBackend",
    "auto": "qpmopt.backends.auto:AutoBackend",
}


class UnknownBackendError(ValueError):
    """No backend of that name is registered."""


class BackendUnavailableError(RuntimeError):
    """The backend exists but a module it needs is not installed."""


class OptionsError(ValueError):
    """An option passed to a backend is unknown or of the wrong type."""


class ProblemTooLargeError(ValueError):
    """The backend refuses the instance up front (it would not fit or never finish)."""


class Availability(Enum):
    """Whether a backend can be used; truthy only when it can."""

    AVAILABLE = "available"
    MISSING_MODULE = "missing module"
    BROKEN = "broken"

    def __bool__(self) -> bool:
        return self is Availability.AVAILABLE


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do (class attribute of every backend)."""

    exact: bool = False  # can prove optimality
    proves_bound: bool = False  # returns a valid upper bound
    native_quadratic: bool = False  # handles s_i * s_j without linearisation
    uses_gpu: bool = False  # runs on a GPU when one is present
    deterministic: bool = True  # same inputs, seed and threads give the same answer


@dataclass
class SolverConfig:
    """Options every backend understands.

    Attributes:
        time_limit: seconds, or ``None`` for the backend's own default stopping rule.
        seed: random seed (recorded in the result).
        threads: worker threads, ``None`` for the backend's default.
        verbose: print solver progress.
        warm_start: ``(n_f,)`` bool mask of a feasible selection to start from.
        should_stop: called often; returning ``True`` interrupts the solve, which then
            returns its best verified solution with ``termination="interrupted"``.
        start_time: ``time.perf_counter()`` at the start of the solve; time limits count
            from here so that set-up and model building are included.
    """

    time_limit: float | None = None
    seed: int = 0
    threads: int | None = None
    verbose: bool = False
    warm_start: np.ndarray | None = None
    should_stop: Callable[[], bool] | None = None
    start_time: float = dataclasses.field(default_factory=time.perf_counter)

    def deadline(self, default: float | None = None) -> float | None:
        limit = self.time_limit if self.time_limit is not None else default
        return None if limit is None else self.start_time + limit

    def remaining(self, default: float | None = None) -> float | None:
        d = self.deadline(default)
        return None if d is None else max(0.0, d - time.perf_counter())

    def stop_requested(self) -> bool:
        return self.should_stop is not None and bool(self.should_stop())


@dataclass(frozen=True)
class _NoOptions:
    pass


class Backend(ABC):
    """Base class of every backend: implement :meth:`solve`, declare the class attributes."""

    name: ClassVar[str]
    required_modules: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[Capabilities] = Capabilities()
    Options: ClassVar[type] = _NoOptions
    #: distribution whose version is reported (defaults to the first required module)
    version_distribution: ClassVar[str | None] = None

    @classmethod
    def availability(cls) -> Availability:
        for mod in cls.required_modules:
            try:
                if importlib.util.find_spec(mod) is None:
                    return Availability.MISSING_MODULE
            except (ImportError, ValueError):
                return Availability.BROKEN
        return Availability.AVAILABLE

    @classmethod
    def version(cls) -> str | None:
        dist = cls.version_distribution or (cls.required_modules[0] if cls.required_modules else "qpmopt")
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    @classmethod
    def parse_options(cls, options: dict[str, Any] | None) -> Any:
        """Options dataclass from a dict; unknown keys are an error, never ignored."""
        options = dict(options or {})
        known = {f.name: f for f in dataclasses.fields(cls.Options)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            listed = ", ".join(sorted(known)) or "none"
            raise OptionsError(f"options: unknown key(s) {unknown} for backend {cls.name!r}; known: {listed}")
        return cls.Options(**options)

    @abstractmethod
    def solve(self, problem: Problem, config: SolverConfig, options: Any) -> BackendResult:
        """Solve ``problem``; return the raw answer (verified by the caller)."""


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
