"""Backends and the public names a plug-in builds on.

A plug-in subclasses :class:`Backend` (any method) or :class:`MipBackend` (a MILP solver:
implement ``solve_model`` and return a :class:`ModelResult`), and registers the class under
the entry-point group :data:`ENTRY_POINT_GROUP`.  See ``backends/README.md``.
"""

from qpmopt.backends.base import (
    Availability,
    Backend,
    BackendOptions,
    BackendUnavailableError,
    Capabilities,
    OptionsError,
    ProblemTooLargeError,
    SolverConfig,
    UnknownBackendError,
)
from qpmopt.backends.mip import Incumbent, MipBackend, MipOptions, ModelResult, watch_solver
from qpmopt.backends.registry import (
    ENTRY_POINT_GROUP,
    BackendInfo,
    available_backends,
    backend_class,
    backend_names,
    get_backend,
)

__all__ = [
    "Availability",
    "Backend",
    "BackendInfo",
    "BackendOptions",
    "BackendUnavailableError",
    "Capabilities",
    "ENTRY_POINT_GROUP",
    "Incumbent",
    "MipBackend",
    "MipOptions",
    "ModelResult",
    "OptionsError",
    "ProblemTooLargeError",
    "SolverConfig",
    "UnknownBackendError",
    "available_backends",
    "backend_class",
    "backend_names",
    "get_backend",
    "watch_solver",
]
