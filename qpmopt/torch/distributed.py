"""Helpers for ``torch.distributed`` runs (DDP, multi-node).

:func:`~qpmopt.torch.collect_features` and :func:`~qpmopt.torch.interpretability_report`
combine the ranks' shards by themselves.  The solve runs on one rank and
:func:`broadcast_solution` hands its answer to the others: the same statistics and seed
give the same answer without a time limit, but under a time limit the ranks could differ.
"""

from __future__ import annotations

import torch.distributed as dist

from qpmopt.solution import Solution

__all__ = ["broadcast_solution"]


def broadcast_solution(solution: Solution | None, src: int = 0) -> Solution:
    """Rank ``src``'s :class:`~qpmopt.Solution` on every rank (the others pass ``None``).

    Raises:
        RuntimeError: no process group is initialised.
    """
    if not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError("broadcast_solution: no torch.distributed process group is initialised")
    box = [solution if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    if box[0] is None:
        raise RuntimeError(f"broadcast_solution: rank {src} passed no solution")
    return box[0]
