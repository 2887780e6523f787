"""The numpy building blocks the heuristics and the exact backends share.

- :mod:`~qpmopt.search.neighbourhood`: relaxed value of a selection, swap deltas;
- :mod:`~qpmopt.search.assignment`: the exact class assignment under uniqueness;
- :mod:`~qpmopt.search.heuristics`: greedy, swap local search, iterated local search, polish.
"""

from qpmopt.search.assignment import best_assignment, evaluate_selection, identical_rows
from qpmopt.search.heuristics import (
    LocalSearchResult,
    greedy_selection,
    greedy_then_swaps,
    iterated_local_search,
    local_search,
    movable_features,
    unique_polish,
)
from qpmopt.search.neighbourhood import relaxed_value, search_view, swap_deltas, topk_stats

__all__ = [
    "best_assignment",
    "evaluate_selection",
    "identical_rows",
    "LocalSearchResult",
    "greedy_selection",
    "greedy_then_swaps",
    "iterated_local_search",
    "local_search",
    "movable_features",
    "search_view",
    "unique_polish",
    "relaxed_value",
    "swap_deltas",
    "topk_stats",
]
