"""``auto``: pick a strategy from the instance size and what is installed.

- tiny (at most ``bruteforce_limit`` selections): the exhaustive oracle, exact;
- small (the strengthened full MILP has at most ``exact_max_vars`` variables and HiGHS is
  installed): a short annealing run as warm start, then HiGHS on the full model for the
  rest of the time, so the answer is at least as good as the annealer's and comes with a
  proven bound (often optimality);
- everything else: the annealer (GPU when present), whose final step already assigns the
  classes exactly (uniqueness included) and polishes with best-improvement swaps; then a
  few seconds of Lagrangian bounding (:mod:`qpmopt.bounds`) give a proven gap; up to
  :data:`~qpmopt.sdp_bound.SDP_MAX_FEATURES` candidates the annealer gets the first
  ``1 - sdp_share`` of the time and the semidefinite bound (:mod:`qpmopt.sdp_bound`,
  which sees the redundancy term) the rest.

Without a time limit: small instances get ``exact_default_time`` seconds, large ones the
annealer's size-dependent step budget (:func:`qpmopt.backends.anneal.default_steps`,
about 25 s at CUB scale on a 2-core CPU).  ``info["auto_path"]`` says which path was taken.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

from qpmopt.backends._mip import tighten_with_sdp
from qpmopt.backends.base import Backend, Capabilities, SolverConfig, _load_class, get_backend
from qpmopt.bounds import lagrangian_upper_bound
from qpmopt.evaluate import objective_terms
from qpmopt.formulation import Formulation
from qpmopt.problem import Problem
from qpmopt.sdp_bound import sdp_wanted
from qpmopt.solution import BackendResult


@dataclass(frozen=True)
class AutoOptions:
    bruteforce_limit: int = 2_000
    exact_max_vars: int = 20_000
    exact_default_time: float = 30.0
    warm_fraction: float = 0.2  # share of the time given to the annealer before HiGHS
    sdp_bound: bool | None = None  # semidefinite bound after annealing (None: up to SDP_MAX_FEATURES)
    sdp_share: float = 0.5  # share of the time limit it gets


class AutoBackend(Backend):
    name = "auto"
    capabilities = Capabilities(exact=True, proves_bound=True, uses_gpu=True, deterministic=True)
    Options = AutoOptions

    def solve(self, problem: Problem, config: SolverConfig, options: AutoOptions) -> BackendResult:
        if math.comb(problem.n_candidates, problem.n_features) <= options.bruteforce_limit:
            raw = get_backend("bruteforce").solve(problem, config, get_backend("bruteforce").Options())
            raw.info["auto_path"] = "bruteforce"
            return raw
        highs = get_backend("highs") if _available("highs") else None
        if highs is not None and _full_size(problem) <= options.exact_max_vars and _available("anneal"):
            limit = config.time_limit if config.time_limit is not None else options.exact_default_time
            anneal = get_backend("anneal")
            warm_cfg = dataclasses.replace(config, time_limit=options.warm_fraction * limit)
            warm = anneal.solve(problem, warm_cfg, anneal.Options())
            if warm.selection is None or config.stop_requested():
                warm.info["auto_path"] = "anneal"
                return warm
            exact_cfg = dataclasses.replace(config, time_limit=limit, warm_start=warm.selection)
            raw = highs.solve(problem, exact_cfg, highs.Options())
            raw.info["auto_path"] = "anneal+highs"
            raw.history = warm.history + [h for h in raw.history if h[1] > (warm.history[-1][1] if warm.history else -math.inf)]
            return raw
        use_sdp = sdp_wanted(problem, options.sdp_bound,
                             None if config.time_limit is None else options.sdp_share * config.time_limit)
        anneal_config = config
        if use_sdp and config.time_limit is not None:
            anneal_config = dataclasses.replace(config, time_limit=(1.0 - options.sdp_share) * config.time_limit)
        anneal = get_backend("anneal")
        raw = anneal.solve(problem, anneal_config, anneal.Options())
        raw.info["auto_path"] = "anneal"
        if raw.selection is not None and not config.stop_requested():
            # A proven bound so that the user sees how far from optimal the answer can be.
            value = objective_terms(problem, raw.selection, raw.assignment).total
            budget = 3.0 if config.time_limit is None else min(3.0, 0.05 * config.time_limit)
            raw.bound = lagrangian_upper_bound(problem, value, iterations=3000, deadline=time.perf_counter() + budget)
            if use_sdp and not config.stop_requested():
                # Without a time limit it runs its fixed schedule (deterministic, about 20 s
                # at 256 candidates on a 2-core CPU).
                tighten_with_sdp(problem, config, value, raw)
                raw.info["auto_path"] = "anneal+sdp"
        return raw


def _available(name: str) -> bool:
    return bool(_load_class(name)[0].availability())


def _full_size(problem: Problem) -> int:
    """Variables of the full model beyond ``s`` (the formulation decides, not a copy of it)."""
    form = Formulation.build(problem)
    return form.n_w + form.n_y


__all__ = ["AutoBackend", "AutoOptions"]
