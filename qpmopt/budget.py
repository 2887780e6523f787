"""Time budgets the backends' phases share.

The promise (README, "Time limits"): a call with ``time_limit=T`` returns within
``T + late_allowance(T)`` seconds with its best verified answer.  Each phase is given a
deadline and checks a clock between units of work whose cost it has measured (one greedy
step, one swap iteration, one exact assignment), so it can stop before a unit that would
not fit.  The one thing that cannot be cut short is the first feasible answer; when even
that cannot fit, :func:`check_first_answer` raises :class:`TimeLimitTooShortError` up front
instead of overrunning.

Every function takes the clock from :class:`~qpmopt.backends.base.SolverConfig`, so tests
drive the phases with a fake one and count steps instead of timing them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from qpmopt.problem import Problem, ProblemError

if TYPE_CHECKING:
    from qpmopt.backends.base import SolverConfig

__all__ = ["TimeLimitTooShortError", "late_allowance", "first_answer_seconds", "check_first_answer",
           "fallback_deadline", "PASSES_PER_FIRST_ANSWER", "FALLBACK_SHARE"]

#: Share of the time limit the exact assignment of a backend's start (its fallback answer)
#: may use: at 20 000 classes its exact matching rounds take tens of seconds, one round and
#: the repair a few.
FALLBACK_SHARE = 0.1

#: A first answer (greedy start and its exact assignment) costs about this many passes over
#: ``A`` (one pass: a column sum).  Measured on the imagenet21k preset on a 2-core CPU
#: (benchmarks/results/scale.json records the phases); generous, so that the check errs on
#: the side of trying.
PASSES_PER_FIRST_ANSWER = 200


class TimeLimitTooShortError(ProblemError):
    """The time limit cannot fit even a first feasible answer; the message says how long one
    would take on this machine."""


def fallback_deadline(config: SolverConfig) -> float | None:
    """Deadline (a ``config.clock()`` value) for the exact assignment of a backend's start:
    :data:`FALLBACK_SHARE` of the limit from now, never past the limit; ``None`` without
    one."""
    if config.time_limit is None:
        return None
    return min(config.deadline(), config.clock() + FALLBACK_SHARE * config.time_limit)


def late_allowance(time_limit: float) -> float:
    """How far past ``time_limit`` a backend may return: ``max(2 s, 10%)``."""
    return max(2.0, 0.1 * time_limit)


def first_answer_seconds(problem: Problem) -> float:
    """Estimated seconds for a first feasible answer on this machine: one pass over ``A``,
    timed on the real clock (it measures the machine, not a deadline), times
    :data:`PASSES_PER_FIRST_ANSWER`."""
    t0 = time.perf_counter()
    problem.A.sum(axis=0)
    return max(time.perf_counter() - t0, 1e-9) * PASSES_PER_FIRST_ANSWER


def check_first_answer(problem: Problem, start_time: float, time_limit: float | None,
                       clock: Callable[[], float] = time.perf_counter, estimate: float | None = None) -> None:
    """Raise :class:`TimeLimitTooShortError` when the time left until ``start_time +
    time_limit + late_allowance`` cannot hold a first feasible answer (``estimate``
    seconds, default :func:`first_answer_seconds`); ``clock`` reads the time spent since
    ``start_time``.  Without a time limit it does nothing."""
    if time_limit is None:
        return
    need = first_answer_seconds(problem) if estimate is None else estimate
    spent = clock() - start_time
    if spent + need > time_limit + late_allowance(time_limit):
        size = f"{problem.n_classes} classes x {problem.n_candidates} candidates"
        raise TimeLimitTooShortError(
            f"time_limit: {time_limit:g} s cannot hold a first feasible answer at {size}: "
            f"{spent:.1f} s were spent before solving (validation, set-up) and a greedy start with its exact "
            f"assignment needs about {need:.1f} s more on this machine; give time_limit >= "
            f"{int(np.ceil(spent + need)) + 1} s, or None")
