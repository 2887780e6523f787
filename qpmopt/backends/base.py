"""What every backend is: the :class:`Backend` base class, its :class:`Capabilities`, the
:class:`SolverConfig` every backend understands, and the errors a backend raises.

A backend is a class with a ``name``, the modules it needs (checked with
``importlib.util.find_spec``, never imported to list it), its :class:`Capabilities`, an
options model, and one method, :meth:`Backend.solve`.  Which backends exist, and how
third-party ones are found, is :mod:`qpmopt.backends.registry`'s job.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

import numpy as np
import pydantic

from qpmopt.problem import Problem
from qpmopt.progress import Progress
from qpmopt.solution import BackendResult, bound_within_gap, relative_gap

__all__ = [
    "Availability",
    "Backend",
    "BackendOptions",
    "Capabilities",
    "SolverConfig",
    "UnknownBackendError",
    "BackendUnavailableError",
    "OptionsError",
    "ProblemTooLargeError",
]

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

    exact: bool = False  # can prove optimality (and says so only with a proof)
    proves_bound: bool = False  # returns a valid upper bound
    uses_gpu: bool = False  # runs on a GPU when one is present
    # Same inputs, seed and threads give the same answer when no time limit ends the run
    # (a run cut by the clock depends on the machine's speed).
    deterministic: bool = True


@dataclass
class SolverConfig:
    """Options every backend understands.

    Attributes:
        time_limit: seconds, or ``None`` for the backend's own default stopping rule.
        gap_limit: relative gap (:func:`qpmopt.solution.relative_gap`) at which a backend
            that proves bounds may stop with ``Termination.GAP_LIMIT``; 0 asks for a proof
            of optimality.  :meth:`gap_reached` applies it; :meth:`stop_target` is the
            bound it asks for.
        seed: random seed (recorded in the result).
        threads: worker threads, ``None`` for the backend's default.
        verbose: print solver progress (:meth:`progress` for this package's own loops).
        warm_start: ``(n_f,)`` bool mask of a feasible selection to start from.
        should_stop: called often; returning ``True`` interrupts the solve, which then
            returns its best verified solution with ``termination="interrupted"``.
        start_time: ``clock()`` at the start of the solve; time limits count from here so
            that set-up and model building are included.
        clock: the time source of every deadline (``time.perf_counter``; tests pass a
            fake one to count the work each phase does before its deadline).  What runs on
            a timer of its own (a MILP solver, ``bnb``'s worker processes) gets the time
            left on it, in seconds.
    """

    time_limit: float | None = None
    gap_limit: float = 0.0
    seed: int = 0
    threads: int | None = None
    verbose: bool = False
    warm_start: np.ndarray | None = None
    should_stop: Callable[[], bool] | None = None
    start_time: float = dataclasses.field(default_factory=time.perf_counter)
    clock: Callable[[], float] = time.perf_counter

    def deadline(self, default: float | None = None) -> float | None:
        limit = self.time_limit if self.time_limit is not None else default
        return None if limit is None else self.start_time + limit

    def remaining(self, default: float | None = None) -> float | None:
        d = self.deadline(default)
        return None if d is None else max(0.0, d - self.clock())

    def gap_reached(self, objective: float, bound: float | None) -> bool:
        """Whether ``bound`` proves ``objective`` within :attr:`gap_limit` (never with a
        zero limit: a proof of optimality is the solver's to give)."""
        return (self.gap_limit > 0 and bound is not None and math.isfinite(objective)
                and relative_gap(objective, bound) <= self.gap_limit)

    def stop_target(self, objective: float) -> float:
        """The bound at which a search for ``objective``'s proof may stop: the objective
        itself with a zero :attr:`gap_limit`, else the objective plus the gap it allows."""
        return bound_within_gap(objective, self.gap_limit)

    def stop_requested(self) -> bool:
        return self.should_stop is not None and bool(self.should_stop())

    def progress(self, name: str, every: float = 1.0) -> Progress:
        """A :class:`~qpmopt.progress.Progress` for this solve: writes ``[name  t s] ...``
        lines to stderr when ``verbose`` is set (at most one per ``every`` seconds from a
        loop), does nothing otherwise; ``t`` counts from ``start_time``."""
        return Progress(name, self.verbose, start=self.start_time, clock=self.clock, every=every)


class BackendOptions(pydantic.BaseModel):
    """Base of every backend's options (``options=`` of :func:`qpmopt.solve_assignment`).

    A pydantic model: frozen, strict (``"3"`` is not an integer, ``2.0`` is not an
    integer either; an integer is a valid float), unknown keys rejected.  Any failure is an
    :class:`OptionsError` that names each field and what it accepts, also when the model is
    constructed directly.  A subclass declares its fields with defaults and a comment or
    ``Field(description=...)`` saying what each does.
    """

    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", strict=True, arbitrary_types_allowed=True)

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as exc:
            raise OptionsError(describe_options_error(type(self), exc)) from None


def describe_options_error(model: type[pydantic.BaseModel], exc: pydantic.ValidationError) -> str:
    """One line per problem: the field, what was given, what is allowed."""
    known = ", ".join(sorted(model.model_fields)) or "none"
    lines = []
    for err in exc.errors():
        name = ".".join(str(part) for part in err["loc"]) or "options"
        if err["type"] == "extra_forbidden":
            lines.append(f"options: unknown key(s) [{name!r}] for {model.__name__}; known: {known}")
            continue
        field = model.model_fields.get(str(err["loc"][0])) if err["loc"] else None
        allowed = f" (allowed: {_annotation_text(field.annotation)})" if field is not None else ""
        lines.append(f"options: {name}={err.get('input')!r}: {err['msg']}{allowed}")
    return "\n".join(lines)


def _annotation_text(annotation: Any) -> str:
    text = getattr(annotation, "__name__", None) if not getattr(annotation, "__args__", None) else None
    return text or str(annotation).replace("typing.", "")


class _NoOptions(BackendOptions):
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

    def capabilities_for(self, problem: Problem) -> Capabilities:
        """Capabilities on ``problem``: the class attribute, unless the backend takes
        different paths by instance size (``auto``)."""
        return self.capabilities

    @classmethod
    def parse_options(cls, options: dict[str, Any] | Any | None) -> Any:
        """The backend's options from a dict (or an instance of its ``Options``, returned
        as is); unknown keys and wrong types raise :class:`OptionsError`, never ignored."""
        if isinstance(options, cls.Options):
            return options
        if options is not None and not isinstance(options, dict):
            raise OptionsError(f"options: expected a dict or {cls.Options.__name__}, got {type(options).__name__}")
        options = dict(options or {})
        if isinstance(cls.Options, type) and issubclass(cls.Options, pydantic.BaseModel):
            return cls.Options(**options)
        # A plug-in's plain dataclass: unknown keys are still refused.
        known = {f.name: f for f in dataclasses.fields(cls.Options)}
        unknown = sorted(set(options) - set(known))
        if unknown:
            listed = ", ".join(sorted(known)) or "none"
            raise OptionsError(f"options: unknown key(s) {unknown} for backend {cls.name!r}; known: {listed}")
        return cls.Options(**options)

    @abstractmethod
    def solve(self, problem: Problem, config: SolverConfig, options: Any) -> BackendResult:
        """Solve ``problem``; return the raw answer (verified by the caller)."""
