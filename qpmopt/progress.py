"""Progress lines for long solves (``verbose=True``).

Why a helper: every backend of this package (and any plug-in, through
:meth:`qpmopt.SolverConfig.progress`) reports in the same shape, ``[name   12.3s] text``
on stderr, and at most once per ``every`` seconds from inside a loop, so that a solve of
thousands of steps neither floods the terminal nor pays for formatting lines nobody sees.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Writes progress lines when enabled; a no-op otherwise.

    Args:
        name: the prefix of every line (a backend's name).
        enabled: ``False`` makes every call return at once.
        start: ``clock()`` value the elapsed seconds count from (default: now).
        clock: time source, the solve's own (``SolverConfig.clock``).
        every: seconds between two lines from :meth:`__call__` (:meth:`note` always writes).
        stream: where to write (default: ``sys.stderr`` at the time of writing).
    """

    def __init__(self, name: str, enabled: bool, *, start: float | None = None,
                 clock: Callable[[], float] = time.perf_counter, every: float = 1.0,
                 stream: TextIO | None = None) -> None:
        self.name, self.enabled, self.clock, self.every, self.stream = name, bool(enabled), clock, every, stream
        self.start = clock() if start is None else start
        self._last: float | None = None

    def __call__(self, message: str | Callable[[], str]) -> None:
        """Write ``message`` unless a line was written less than ``every`` seconds ago.
        A callable is called only when the line is written (formatting costs nothing
        otherwise)."""
        if not self.enabled:
            return
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            return
        self._write(now, message() if callable(message) else message)

    def note(self, message: str | Callable[[], str]) -> None:
        """Write ``message`` now (phase changes, the final line)."""
        if self.enabled:
            self._write(self.clock(), message() if callable(message) else message)

    def _write(self, now: float, text: str) -> None:
        self._last = now
        stream = self.stream if self.stream is not None else sys.stderr
        print(f"[{self.name} {now - self.start:7.1f}s] {text}", file=stream, flush=True)
