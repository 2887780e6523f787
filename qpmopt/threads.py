"""How many threads the BLAS behind numpy and scipy may use, for small dense kernels.

Why: on a 2-core machine OpenBLAS's default two threads made the semidefinite bound's
eigendecompositions (matrices of 61 to 257 rows) and optimiser steps several times slower
than one thread: at those sizes handing work between threads costs more than the
arithmetic they share (benchmarks/results/blas_threads.json).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["single_threaded_blas"]


@contextlib.contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Within the block, numpy's and scipy's BLAS run on one thread; the previous limits
    come back on exit (also on an exception)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield
