"""``solve_assignment``: validate, dispatch to a backend, verify, wrap."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from qpmopt.backends.base import Backend, SolverConfig
from qpmopt.backends.registry import get_backend
from qpmopt.evaluate import VerificationError, selection_mask, verify
from qpmopt.problem import InfeasibleProblemError, Problem, ProblemError
from qpmopt.search import best_assignment
from qpmopt.solution import OPTIMALITY_TOL, BackendResult, Solution, Status, Termination, proves_optimal, relative_gap

__all__ = ["solve_assignment", "solve_problem", "OPTIMALITY_TOL"]


def _check_time_limit(time_limit: Any) -> float | None:
    if time_limit is None:
        return None
    if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float, np.integer, np.floating)):
        raise ProblemError(f"time_limit: expected a positive number of seconds or None, got {time_limit!r}")
    if not math.isfinite(float(time_limit)) or time_limit <= 0:
        raise ProblemError(f"time_limit: expected a positive, finite number of seconds, got {time_limit}")
    return float(time_limit)


def _check_gap_limit(gap_limit: Any) -> float:
    if isinstance(gap_limit, bool) or not isinstance(gap_limit, (int, float, np.integer, np.floating)):
        raise ProblemError(f"gap_limit: expected a number in [0, 1), got {gap_limit!r}")
    if not 0.0 <= float(gap_limit) < 1.0:
        raise ProblemError(f"gap_limit: expected a relative gap in [0, 1) (0.01 stops within 1%), got {gap_limit}")
    return float(gap_limit)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ProblemError(f"seed: expected a non-negative integer, got {seed!r}")
    return int(seed)


def _check_warm_start(problem: Problem, warm_start: Any) -> np.ndarray | None:
    if warm_start is None:
        return None
    try:
        mask = selection_mask(np.asarray(warm_start), problem.n_candidates)
    except VerificationError as exc:
        raise ProblemError(f"warm_start: {exc}") from None
    if mask.sum() != problem.n_features:
        raise ProblemError(f"warm_start: expected {problem.n_features} selected features, got {int(mask.sum())}")
    rules = problem.rules
    if rules is not None and ((rules.select & ~mask).any() or (rules.forbid_select & mask).any()):
        raise ProblemError("warm_start: the selection breaks include_features, exclude_features or the features "
                           "of require_pairs")
    return mask


def solve_assignment(
    A: Any,
    R: Any = None,
    B: Any = None,
    k: int = 5,
    *,
    n_features: int = 50,
    unique: bool = True,
    constraints: Any = None,
    backend: str | Backend = "auto",
    time_limit: float | None = None,
    gap_limit: float = 0.0,
    seed: int = 0,
    threads: int | None = None,
    verbose: bool = False,
    warm_start: Any = None,
    should_stop: Callable[[], bool] | None = None,
    options: dict[str, Any] | None = None,
) -> Solution:
    """Select ``n_features`` features and assign ``k`` of them to every class.

    Maximises ``Z = sum A*W - sum_{i<j} R_ij s_i s_j + sum B s`` (see docs/problem.md).

    Args:
        A: ``(n_c, n_f)`` class-feature similarity (rows are classes).
        R: ``(n_f, n_f)`` symmetric redundancy or ``None``; the diagonal is ignored.
        B: ``(n_f,)`` feature bias or ``None``.
        k: features per class.
        n_features: features selected in total (50 in the paper).
        unique: classes must use pairwise different feature sets.
        constraints: steering rules: a :class:`qpmopt.Constraints`, a dict with its keys,
            or ``None`` (see docs/problem.md, "Steering rules").
        backend: a registered name (see :func:`qpmopt.available_backends`) or an instance.
        time_limit: seconds for the whole call, model building included; ``None`` lets the
            backend use its own stopping rule.
        gap_limit: a relative gap (``Solution.gap``'s measure; 0.01 is 1%) at which the
            backends that prove bounds may stop: the answer then has ``termination
            "gap_limit"`` and status ``feasible`` (``optimal`` only where the bound meets
            the objective).  0 (the default) asks for a proof of optimality.  Heuristic
            backends, which prove no bound, ignore it.
        seed: random seed; recorded in the result.  The default makes runs reproducible.
        threads: solver threads (``None``: the backend's default).
        warm_start: feature indices or a ``(n_f,)`` mask of a selection to start from.
        should_stop: polled during the solve; ``True`` stops it with the best solution so far.
        options: backend-specific options; unknown keys raise :class:`OptionsError`.

    Returns:
        A verified :class:`Solution`.

    Raises:
        ProblemError: malformed input (the message names the argument).
        InfeasibleProblemError: no feasible solution exists (decided before solving, or
            proven by an exact backend when the rules contradict each other).
    """
    start = time.perf_counter()
    problem = Problem.from_arrays(A, R, B, k=k, n_features=n_features, unique=unique, constraints=constraints)
    return solve_problem(
        problem, backend=backend, time_limit=time_limit, gap_limit=gap_limit, seed=seed, threads=threads,
        verbose=verbose, warm_start=warm_start, should_stop=should_stop, options=options, _start=start,
    )


def solve_problem(
    problem: Problem,
    *,
    backend: str | Backend = "auto",
    time_limit: float | None = None,
    gap_limit: float = 0.0,
    seed: int = 0,
    threads: int | None = None,
    verbose: bool = False,
    warm_start: Any = None,
    should_stop: Callable[[], bool] | None = None,
    options: dict[str, Any] | None = None,
    _start: float | None = None,
) -> Solution:
    """Like :func:`solve_assignment` for an already validated :class:`Problem`."""
    start = time.perf_counter() if _start is None else _start
    impl = get_backend(backend)
    opts = impl.parse_options(options)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise ProblemError(f"threads: expected a positive integer or None, got {threads!r}")
    config = SolverConfig(
        time_limit=_check_time_limit(time_limit),
        gap_limit=_check_gap_limit(gap_limit),
        seed=_check_seed(seed),
        threads=None if threads is None else int(threads),
        verbose=bool(verbose),
        warm_start=_check_warm_start(problem, warm_start),
        should_stop=should_stop,
        start_time=start,
    )
    raw = impl.solve(problem, config, opts)
    return finalize(problem, raw, impl.name, config.seed, start)


def finalize(problem: Problem, raw: BackendResult, backend_name: str, seed: int, start: float) -> Solution:
    """Verify a backend's raw answer independently and wrap it in a :class:`Solution`."""
    wall = time.perf_counter() - start
    if raw.selection is None:
        if raw.termination is Termination.INFEASIBLE:
            raise InfeasibleProblemError(
                f"backend {backend_name!r} proved that no solution meets every constraint and rule"
                + ("" if problem.constraints is None else f" (rules: {problem.constraints!r})"))
        status = Status.NO_SOLUTION
        return Solution(
            features=np.zeros(0, dtype=np.int64), assignment=None, objective=None, terms=None,
            bound=raw.bound, gap=None, status=status, termination=raw.termination, backend=backend_name,
            wall_time=wall, seed=seed, info=raw.info, history=raw.history, constraints=_recorded_rules(problem),
        )
    selection = np.asarray(raw.selection, dtype=bool)
    assignment = raw.assignment
    if assignment is None:
        assignment, _ = best_assignment(problem, selection)
        if assignment is None:
            raise VerificationError(f"backend {backend_name!r} returned a selection that no assignment can complete "
                                    "under the rules (a bug)")
    try:
        terms = verify(problem, selection, assignment)
    except VerificationError as exc:
        raise VerificationError(f"backend {backend_name!r} returned an infeasible answer (a bug): {exc}") from None
    obj = terms.total
    scale = max(1.0, abs(obj))
    bound = raw.bound
    if bound is not None and bound < obj - 1e-6 * scale:
        raise VerificationError(
            f"backend {backend_name!r} reported bound {bound} below its verified objective {obj} (a bug)"
        )
    proven = raw.proven_optimal or proves_optimal(obj, bound)
    if proven:
        bound = obj if bound is None else max(min(bound, obj + 1e-6 * scale), obj)
    gap = None if bound is None else relative_gap(obj, bound)
    return Solution(
        features=np.flatnonzero(selection).astype(np.int64),
        assignment=np.asarray(assignment, dtype=bool),
        objective=obj,
        terms=terms.as_dict(),
        bound=bound,
        gap=gap,
        status=Status.OPTIMAL if proven else Status.FEASIBLE,
        termination=raw.termination,
        backend=backend_name,
        wall_time=wall,
        seed=seed,
        info=raw.info,
        history=raw.history,
        constraints=_recorded_rules(problem),
    )


def _recorded_rules(problem: Problem) -> dict[str, Any] | None:
    return None if problem.constraints is None else problem.constraints.model_dump()
