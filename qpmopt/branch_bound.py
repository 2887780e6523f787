"""Branch and bound over the selection ``s``, bounded by the semidefinite relaxation.

Why: the LP relaxations MILP solvers start from barely see the redundancy term, and the
semidefinite bound of :mod:`qpmopt.sdp_bound` alone stops a few per cent above the optimum
(small-1: 18.54 against 18.159).  Fixing features in and out closes that gap.  A node fixes
some features in (``s_f = 1``, one more multiplier in the dual) and some out (their rows
and columns removed); its bound is the same closed-form dual function, minimised from the
parent's multipliers.  Every bound is certified (an exact dual value plus a floating-point
margin), so a pruned node provably holds nothing better than the incumbent.

A node is pruned when its bound is at most the incumbent plus
:data:`~qpmopt.solution.OPTIMALITY_TOL` (relative), or plus the caller's ``gap_limit``
where that is larger (the closed tree then proves the incumbent within that gap, not
optimal).  When few selections remain under it
(:data:`ENUMERATE_MAX`), they are scored one by one: first the value under each class's
top-k without uniqueness or rules (an upper bound), then the exact assignment (uniqueness
and rules honoured, proven best) only where that beats the incumbent.  The search is depth
first within a dive of :data:`NODES_PER_TASK` nodes, each dive starting from the open node
with the largest bound (so that the bound reported at a time limit, the largest over the
open nodes, falls as the search goes on; see the constant for what was measured).  The
branching feature is chosen by estimating both children's bounds
(``_Search._branch_feature``), the side its relaxed ``s`` leans to searched first.

With ``workers > 1``, once the root is branched, worker processes take open nodes from one
queue, largest bound first, search a dive each and hand back what they left open; each
task starts with the best answer known then.  The proven optimum is the same as with one worker; the node
counts, and which of several equally good selections is returned, may differ from run to
run.

Rules: included and excluded features are fixed at the root; stars of shared pairs are
bounded together as in :mod:`qpmopt.sdp_bound`; the other rules are dropped by the bound
(it stays valid) and honoured by the exact assignment of every scored selection.
"""

from __future__ import annotations

import heapq
import math
import multiprocessing
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from qpmopt.bounds import simple_upper_bound
from qpmopt.problem import Problem
from qpmopt.sdp_bound import _Dual, _scale, _stars, _Stop
from qpmopt.search import evaluate_selection, relaxed_value
from qpmopt.solution import OPTIMALITY_TOL, bound_within_gap, proves_optimal
from qpmopt.threads import single_threaded_blas

__all__ = ["ENUMERATE_MAX", "BranchAndBoundResult", "branch_and_bound"]

#: A node with at most this many selections left is scored selection by selection.
ENUMERATE_MAX = 200

#: Smoothing levels (see :mod:`qpmopt.sdp_bound`) and optimiser iterations per level, at
#: the root and at the other nodes.  Tuned on small-1: a longer root gives every node
#: better multipliers to start from (300 root iterations: 136 nodes; 150: 194); more or
#: fewer at the nodes cost more time (60: 244 nodes, 150: 156 nodes but longer ones).
ROOT_TAUS = (0.01, 0.003, 0.001)
ROOT_ITERATIONS = 300
NODE_TAUS = (0.001,)
NODE_ITERATIONS = 100

#: Branching candidates of each kind (see ``_Search._branch_feature``), and the values of
#: a new "in" multiplier tried when estimating a child's bound (scaled units; the dual
#: function falls along negative values when the feature's relaxed ``s`` is below one).
BRANCH_CANDIDATES = 4
_PHI_TRIALS = (-0.003, -0.01, -0.03, -0.1, -0.3)

#: Nodes bounded per dive: depth first from one open node, then the open node with the
#: largest bound is taken next.  Why dives: the subtrees differ in size by orders of
#: magnitude, and short tasks from one shared queue keep every worker busy to the end
#: (handing out whole subtrees left one process idle for seconds).  Why the largest bound
#: next: depth first alone keeps a node near the root open, so the bound reported at a time
#: limit stays the root's however long it runs (medium-1 at 1% tolerance: still the root's
#: after 300 s); taking the largest first lowers it as it goes (there from 55.34 to 54.99
#: in 73 nodes, benchmarks/results/bound_directions.json).
NODES_PER_TASK = 8


@dataclass
class BranchAndBoundResult:
    """What :func:`branch_and_bound` ends with.

    Attributes:
        selection: ``(n_f,)`` bool, the best selection found (``None`` if none).
        assignment: ``(n_c, n_f)`` bool, its exact best assignment.
        value: its objective (``-inf`` when none).
        bound: a proven upper bound on the optimum; when ``proven``, at most ``value``
            plus the tolerance.
        proven: every node was pruned or scored, so ``selection`` is optimal (with a
            ``gap_limit``, only where ``bound`` also meets ``value``).
        infeasible: every node was pruned or scored and no selection meets the rules.
        nodes: nodes bounded; ``enumerated``: selections given the exact assignment at
            small nodes.
        stopped: ``"done"`` (the tree is closed: optimal, or within ``gap_limit``),
            ``"deadline"``, ``"node_limit"`` or ``"interrupted"``.
        history: ``(seconds, objective)`` of each improvement.
    """

    selection: np.ndarray | None
    assignment: np.ndarray | None
    value: float
    bound: float
    proven: bool
    infeasible: bool
    nodes: int
    enumerated: int
    stopped: str
    history: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class _Node:
    include: np.ndarray  # (n_f,) bool: fixed in
    exclude: np.ndarray  # (n_f,) bool: fixed out
    y: dict[str, np.ndarray]  # multipliers over all features (the warm start)
    parent_bound: float
    depth: int = 0


class _OpenNodes:
    """Open nodes, taken largest bound first (ties: first in, first out)."""

    def __init__(self, nodes: list[_Node] | None = None) -> None:
        self._heap: list[tuple[float, int, _Node]] = []
        self._count = 0
        for node in nodes or []:
            self.push(node)

    def push(self, node: _Node) -> None:
        heapq.heappush(self._heap, (-node.parent_bound, self._count, node))
        self._count += 1

    def pop(self) -> _Node:
        return heapq.heappop(self._heap)[2]

    def __len__(self) -> int:
        return len(self._heap)

    def bounds(self) -> list[float]:
        return [-key for key, _, _ in self._heap]


def _zero_multipliers(A: np.ndarray, k: int) -> dict[str, np.ndarray]:
    n_c, n_f = A.shape
    return {"mu": np.zeros((n_c, n_f)), "alpha": np.zeros(n_f), "beta": np.zeros(n_f), "gamma": np.zeros(1),
            "delta": np.zeros(1), "N": np.zeros((n_f, n_f)), "t": np.sort(A, axis=1)[:, -k].copy(),
            "phi": np.zeros(n_f)}


class _Bounder:
    """The node dual of one problem, on its scaled arrays."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.scale = _scale(problem)
        self.A, self.R, self.B = problem.A / self.scale, problem.R / self.scale, problem.B / self.scale
        self.stars, self.own = _stars(problem, self.A)  # bounded together under shared pairs

    def _restrict(self, include: np.ndarray, exclude: np.ndarray, full: dict[str, np.ndarray],
                  ) -> tuple[np.ndarray, np.ndarray, _Dual, np.ndarray]:
        """The dual of the node (kept features, fixed-in ones among them) and the packed
        multipliers taken from ``full``."""
        keep = np.flatnonzero(~exclude)
        fixed_global = np.flatnonzero(include)
        dual = _Dual(self.A[:, keep], self.R[np.ix_(keep, keep)], self.B[keep], self.problem.k,
                     self.problem.n_features, np.searchsorted(keep, fixed_global), stars=self.stars, own=self.own,
                     shared_exact=self.problem.rules is None or self.problem.rules.shared_exact)
        layout = dual.layout
        y = np.empty(layout.size)
        y[layout.slices["mu"]] = full["mu"][:, keep].ravel()
        y[layout.slices["alpha"]] = full["alpha"][keep]
        y[layout.slices["beta"]] = full["beta"][keep]
        y[layout.slices["gamma"]] = full["gamma"]
        y[layout.slices["delta"]] = full["delta"]
        y[layout.slices["N"]] = full["N"][np.ix_(keep, keep)][layout.iu]
        y[layout.slices["t"]] = full["t"]
        y[layout.slices["phi"]] = full["phi"][fixed_global]
        np.maximum(y, layout.bounds().lb, out=y)  # inequality multipliers stay non-negative
        return keep, fixed_global, dual, y

    def exact_bound(self, include: np.ndarray, exclude: np.ndarray, full: dict[str, np.ndarray]) -> float:
        """The certified bound of a node at the multipliers ``full``, without optimising
        (one eigenvalue computation)."""
        _, _, dual, y = self._restrict(include, exclude, full)
        value, err = dual.exact(y)
        return self.scale * (value + err)

    def bound(self, node: _Node, target: float, iterations: int, taus: tuple[float, ...],
              deadline: float | None, clock: Callable[[], float] = time.perf_counter,
              ) -> tuple[float, np.ndarray, dict[str, np.ndarray]]:
        """``(bound, s, y)``: the node's certified bound, the relaxed ``s`` over all
        features (fixed ones at 0 or 1) and the multipliers over all features.  Stops as
        soon as the bound reaches ``target``, or at ``deadline`` (a ``clock()`` value)."""
        keep, fixed_global, dual, y = self._restrict(node.include, node.exclude, node.y)
        layout, full = dual.layout, node.y
        goal = target / self.scale
        best, last_s, last_y = [np.inf], [None], [y]

        def fun(v: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
            if deadline is not None and clock() > deadline:
                raise _Stop("deadline")
            value, grad, certified = dual.smooth(v, tau)
            best[0] = min(best[0], certified)
            last_s[0] = dual.last_s
            if best[0] <= goal:
                raise _Stop("target")
            return value, grad

        lower = np.isfinite(layout.bounds().lb)
        try:
            for tau in taus:
                _projected_lbfgs(lambda v, tau=tau: fun(v, tau), last_y[0], lower, iterations, last_y)
        except _Stop:
            pass
        if last_s[0] is None:  # not one evaluation fitted: the parent's multipliers still bound it
            value, err = dual.exact(y)  # (made non-negative where they must be by _restrict)
            best[0] = value + err
            last_s[0] = np.full(keep.size, 0.5)
        s = np.zeros(self.problem.n_candidates)
        s[keep] = np.clip(last_s[0], 0.0, 1.0)
        s[fixed_global] = 1.0
        p = layout.split(last_y[0])
        out = {name: arr.copy() for name, arr in full.items()}
        out["mu"][:, keep] = p["mu"]
        out["alpha"][keep] = p["alpha"]
        out["beta"][keep] = p["beta"]
        out["gamma"], out["delta"], out["t"] = p["gamma"].copy(), p["delta"].copy(), p["t"].copy()
        block = out["N"][np.ix_(keep, keep)]
        block[layout.iu] = p["N"]
        out["N"][np.ix_(keep, keep)] = block
        out["phi"][fixed_global] = p["phi"]
        return self.scale * best[0], s, out


def _projected_lbfgs(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], y0: np.ndarray, lower: np.ndarray,
                     iterations: int, keep: list, memory: int = 5) -> None:
    """Minimise ``fun`` (value, gradient) from ``y0``, the entries flagged in ``lower``
    kept non-negative: L-BFGS directions on the entries not held at zero, projection,
    Armijo backtracking.  ``keep[0]`` always holds the last accepted point (``fun`` may
    raise to stop).  Any point gives valid multipliers, so only progress matters, and
    this costs less per step than scipy's L-BFGS-B at these sizes (whose set-up and
    per-iteration work took about half the time of each node)."""
    x = np.where(lower, np.maximum(y0, 0.0), y0)
    keep[0] = x
    f, g = fun(x)
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []
    for _ in range(iterations):
        held = lower & (x <= 0.0) & (g > 0.0)
        q = np.where(held, 0.0, g)
        alphas = []
        for s_i, y_i, r_i in reversed(pairs):
            a = r_i * float(s_i @ q)
            alphas.append(a)
            q -= a * y_i
        if pairs:
            s_i, y_i, _ = pairs[-1]
            q *= float(s_i @ y_i) / float(y_i @ y_i)
        else:  # the first step moves the largest entry by one unit
            q /= max(float(np.abs(q).max()), 1e-12)
        for (s_i, y_i, r_i), a in zip(pairs, reversed(alphas)):
            q += (a - r_i * float(y_i @ q)) * s_i
        d = np.where(held, 0.0, -q)
        if float(g @ d) >= 0.0:  # not a descent direction: forget the curvature pairs
            pairs.clear()
            d = np.where(held, 0.0, -g) / max(float(np.abs(g).max()), 1e-12)
            if float(g @ d) >= 0.0:
                return
        step = 1.0
        for _ in range(20):
            x_new = x + step * d
            x_new = np.where(lower, np.maximum(x_new, 0.0), x_new)
            f_new, g_new = fun(x_new)
            if f_new <= f + 1e-4 * float(g @ (x_new - x)):
                break
            step *= 0.5
        else:
            return
        s_k, y_k = x_new - x, g_new - g
        sy = float(s_k @ y_k)
        if sy > 1e-12 * math.sqrt(float(s_k @ s_k) * float(y_k @ y_k)):
            pairs.append((s_k, y_k, 1.0 / sy))
            if len(pairs) > memory:
                pairs.pop(0)
        x, f, g = x_new, f_new, g_new
        keep[0] = x


def _relaxed_values(problem: Problem, include: np.ndarray, free: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Every way to add ``r`` of ``free`` (indices) to ``include`` (indices):
    ``(selections (m, n_f) bool, values (m,))``, the values under each class's top-k
    without uniqueness or rules (upper bounds on the exact objectives)."""
    combos = np.array(list(combinations(range(free.size), r)), dtype=np.int64).reshape(math.comb(free.size, r), r)
    sel = np.zeros((combos.shape[0], problem.n_candidates), dtype=bool)
    sel[:, include] = True
    if r:
        sel[np.arange(combos.shape[0])[:, None], free[combos]] = True
    return sel, np.array([relaxed_value(problem, row) for row in sel])


def _asks_to_stop(should_stop: Callable[[], bool]) -> bool:
    """The caller's ``should_stop``; Ctrl-C raised from it counts as a request too."""
    try:
        return bool(should_stop())
    except KeyboardInterrupt:
        return True


class _Search:
    """Search state: incumbent, counters, the largest bound closed; :meth:`run` searches a
    stack depth first."""

    def __init__(self, problem: Problem, selection: np.ndarray | None, assignment: np.ndarray | None, value: float,
                 t0: float, gap_limit: float = 0.0, clock: Callable[[], float] = time.perf_counter) -> None:
        self.problem = problem
        self.clock = clock  # the time source of every deadline the search is given
        # relative: a node closes when its bound is at most the incumbent plus this much
        self.tolerance = max(OPTIMALITY_TOL, gap_limit)
        self.bounder = _Bounder(problem)
        self.selection, self.assignment, self.value = selection, assignment, value
        self.t0 = t0
        self.history: list[tuple[float, float]] = []
        self.nodes = self.enumerated = 0
        # the largest bound over what left the stack without being searched to the end:
        # pruned nodes, and the selections a deadline kept a small node from scoring
        self.closed_bound = -np.inf
        self.cut_short = False  # a deadline stopped a small node's scoring

    def root(self) -> _Node:
        rules, n_f = self.problem.rules, self.problem.n_candidates
        include = np.zeros(n_f, dtype=bool) if rules is None else rules.select.copy()
        exclude = np.zeros(n_f, dtype=bool) if rules is None else rules.forbid_select.copy()
        return _Node(include, exclude, _zero_multipliers(self.bounder.A, self.problem.k), np.inf)

    def _threshold(self) -> float:
        """The bound at or below which a node closes: the incumbent plus the tolerance
        (``-inf`` before there is one)."""
        return bound_within_gap(self.value, self.tolerance) if np.isfinite(self.value) else -np.inf

    def _closes(self, bound: float) -> bool:
        """Whether a node bounded by ``bound`` holds nothing better than the incumbent."""
        return bool(np.isfinite(self.value)) and bound <= self._threshold()

    def run(self, stack: list[_Node], *, deadline: float | None, node_limit: int | None,
            should_stop: Callable[[], bool] | None, open_target: int | None = None) -> str:
        """Search ``stack`` (last in, first out) until it is empty (``"done"``), or until it
        holds ``open_target`` nodes (``"split"``; nodes are then taken first in, first
        out, so that the open ones are large subtrees), or a limit."""
        while stack:
            if should_stop is not None and _asks_to_stop(should_stop):
                return "interrupted"
            if deadline is not None and self.clock() >= deadline:
                return "deadline"
            if node_limit is not None and self.nodes >= node_limit:
                return "node_limit"
            if open_target is not None and len(stack) >= open_target:
                return "split"
            node = stack.pop(0 if open_target is not None else -1)
            try:
                children = self._expand(node, deadline)
            except KeyboardInterrupt:
                # Ctrl-C ends the search, not the caller's program; the node goes back so
                # that its bound still counts
                stack.append(node)
                return "interrupted"
            stack.extend(children)
            if self.cut_short:
                return "deadline"
        return "done"

    def _expand(self, node: _Node, deadline: float | None) -> list[_Node]:
        """Bound, score or branch one node; its children, the side to search first last."""
        problem = self.problem
        if self._closes(node.parent_bound):  # the incumbent rose since the node was made
            self.closed_bound = max(self.closed_bound, node.parent_bound)
            return []
        free = np.flatnonzero(~node.include & ~node.exclude)
        r = problem.n_features - int(node.include.sum())
        if r < 0 or r > free.size:
            return []  # no selection under this node
        if math.comb(free.size, r) <= ENUMERATE_MAX:
            self._enumerate(np.flatnonzero(node.include), free, r, deadline)
            return []
        self.nodes += 1
        root = node.depth == 0
        bound, s, y = self.bounder.bound(node, self._threshold(), ROOT_ITERATIONS if root else NODE_ITERATIONS,
                                         ROOT_TAUS if root else NODE_TAUS, deadline, self.clock)
        bound = min(bound, node.parent_bound)
        if self._closes(bound):
            self.closed_bound = max(self.closed_bound, bound)
            return []
        f = self._branch_feature(node, s, y, deadline)
        inc, exc = node.include.copy(), node.exclude.copy()
        inc[f] = exc[f] = True
        child_in = _Node(inc, node.exclude, y, bound, node.depth + 1)
        child_out = _Node(node.include, exc, y, bound, node.depth + 1)
        return [child_out, child_in] if s[f] >= 0.5 else [child_in, child_out]

    def _branch_feature(self, node: _Node, s: np.ndarray, y: dict[str, np.ndarray], deadline: float | None) -> int:
        """Which free feature to branch on.

        Candidates: the :data:`BRANCH_CANDIDATES` free features with the largest fractional
        ``s`` and those nearest one half.  Each child's bound is estimated at the node's
        multipliers (the "out" child in one evaluation; the "in" child over a few values of
        its new multiplier), and the feature whose two children both fall furthest below
        the node's bound (the product of the two drops) is taken.  Why: on the ``small``
        preset's seed 0, branching on the feature nearest one half took 2 669 nodes, on the
        one with the largest fractional ``s`` 294, while on small-1 it was the other way
        round (136 against 249); the estimate took 138 and 178.

        Past ``deadline`` it stops estimating and takes the best candidate so far: the
        estimates cost dozens of eigenvalue computations (a tenth of a second at 256
        candidates), and the search ends there anyway.
        """
        free = ~node.include & ~node.exclude
        high = np.argsort(np.where(free & (s < 0.999), -s, np.inf), kind="stable")[:BRANCH_CANDIDATES]
        middle = np.argsort(np.where(free, np.abs(s - 0.5), np.inf), kind="stable")[:BRANCH_CANDIDATES]
        candidates = [int(f) for f in dict.fromkeys([*high.tolist(), *middle.tolist()]) if free[f]]
        here = self.bounder.exact_bound(node.include, node.exclude, y)
        floor = 1e-6 * max(1.0, abs(here))
        best_f, best_score = candidates[0], -np.inf
        for f in candidates:
            if deadline is not None and self.clock() >= deadline:
                break
            exc = node.exclude.copy()
            exc[f] = True
            out = self.bounder.exact_bound(node.include, exc, y)
            inc = node.include.copy()
            inc[f] = True
            tried = dict(y)
            tried["phi"] = y["phi"].copy()
            into = np.inf
            for phi in _PHI_TRIALS:
                tried["phi"][f] = phi
                into = min(into, self.bounder.exact_bound(inc, node.exclude, tried))
            score = max(here - out, floor) * max(here - into, floor)
            if score > best_score:
                best_f, best_score = f, score
        return best_f

    def _enumerate(self, include: np.ndarray, free: np.ndarray, r: int, deadline: float | None) -> None:
        sels, values = _relaxed_values(self.problem, include, free, r)
        for i in np.argsort(-values, kind="stable"):
            if self._closes(values[i]):
                self.closed_bound = max(self.closed_bound, float(values[i]))
                return
            # each exact assignment under shared pairs is a HiGHS solve: a time limit must
            # be able to cut the scoring short (the unscored selections' largest value
            # then bounds the rest)
            if deadline is not None and self.clock() >= deadline:
                self.closed_bound = max(self.closed_bound, float(values[i]))
                self.cut_short = True
                return
            self.enumerated += 1
            W, z = evaluate_selection(self.problem, sels[i], exact=True)
            if W is not None and z > self.value:
                self.selection, self.assignment, self.value = sels[i], W, z
                self.history.append((self.clock() - self.t0, z))


def branch_and_bound(
    problem: Problem,
    incumbent: np.ndarray | None = None,
    *,
    deadline: float | None = None,
    node_limit: int | None = None,
    workers: int = 1,
    should_stop: Callable[[], bool] | None = None,
    on_progress: Callable[[int, int, float, float], None] | None = None,
    gap_limit: float = 0.0,
    clock: Callable[[], float] = time.perf_counter,
) -> BranchAndBoundResult:
    """Prove a selection optimal (or improve it) by branch and bound over ``s``.

    Args:
        problem: the instance (``A`` ``(n_c, n_f)``, ``R`` ``(n_f, n_f)``, ``B``
            ``(n_f,)``); its rules are honoured (module docstring).  Each node costs
            eigendecompositions of size ``n_f + 1`` and the tree can grow exponentially:
            meant for instances of tens of candidates (small-1's size).
        incumbent: ``(n_f,)`` bool, a selection to start from (a good one prunes far
            more), or ``None``.
        deadline: a ``clock()`` value; the search stops there with the best answer and a
            valid bound (the largest over the open nodes).
        node_limit: nodes bounded at most (``None``: none); with one worker and no
            deadline it makes the answer the same on every machine (with several, tasks
            under way when it is reached finish their few nodes).
        workers: processes searching subtrees (1: this process only).
        on_progress: called after every dive (or worker task) with ``(nodes bounded, open
            nodes, incumbent value, bound)``, the bound as the result would report it then.
        clock: the time source of ``deadline`` and of the history's seconds (a solve
            passes :attr:`~qpmopt.backends.base.SolverConfig.clock`).  Worker processes
            cannot share a caller's clock: each of their tasks gets the time left on it when
            the task is handed out, and counts that on ``time.perf_counter``.

    Returns:
        A :class:`BranchAndBoundResult`.
    """
    t0 = clock()
    selection = assignment = None
    value = -np.inf
    history: list[tuple[float, float]] = []
    if incumbent is not None:
        selection = np.asarray(incumbent, dtype=bool)
        assignment, value = evaluate_selection(problem, selection, exact=True)
        if assignment is None:
            selection = None
        else:
            history.append((clock() - t0, value))
    search = _Search(problem, selection, assignment, value, t0, gap_limit, clock)
    stack = [search.root()]
    # Worker processes are forked: no start-up, and no re-import of the caller's script
    # (which "spawn" and "forkserver" need, and which fails in a script without a main
    # guard).  A fork must not use a solver whose threads it did not inherit: the exact
    # assignment under shared pairs runs HiGHS, so those problems stay in this process.
    parallel = (workers > 1 and "fork" in multiprocessing.get_all_start_methods()
                and (problem.rules is None or not len(problem.rules.shared)))
    with single_threaded_blas():
        if parallel:
            stopped = search.run(stack, deadline=deadline, node_limit=node_limit, should_stop=should_stop,
                                 open_target=workers)
            open_bounds = [node.parent_bound for node in stack]
        else:
            stopped, open_bounds = _best_first(search, stack, deadline, node_limit, should_stop, on_progress)
    nodes, enumerated = search.nodes, search.enumerated
    if stopped == "split":
        stopped, open_bounds, extra = _run_parallel(problem, search, stack, deadline, node_limit, workers,
                                                    should_stop, on_progress)
        nodes += extra[0]
        enumerated += extra[1]
    history += search.history
    bound = max([search.value, search.closed_bound, *open_bounds])
    closed = stopped == "done"
    # a tree closed at a gap limit proves the incumbent optimal only where the bound meets it
    proven = closed and (gap_limit <= OPTIMALITY_TOL or not np.isfinite(search.value)
                         or proves_optimal(search.value, bound))
    if not np.isfinite(bound):  # stopped before the root was bounded
        bound = simple_upper_bound(problem)
    return BranchAndBoundResult(search.selection, search.assignment, search.value, bound,
                                proven and search.selection is not None, closed and search.selection is None,
                                nodes, enumerated, stopped, history)


def _report(on_progress: Callable[[int, int, float, float], None], search: _Search, nodes: int,
            open_bounds: list[float]) -> None:
    on_progress(nodes, len(open_bounds), search.value, max([search.value, search.closed_bound, *open_bounds]))


def _best_first(search: _Search, nodes: list[_Node], deadline: float | None, node_limit: int | None,
                should_stop: Callable[[], bool] | None,
                on_progress: Callable[[int, int, float, float], None] | None = None) -> tuple[str, list[float]]:
    """Search in this process: dives of :data:`NODES_PER_TASK` nodes, each from the open
    node with the largest bound.  Returns ``(stopped, bounds of the nodes left open)``."""
    open_nodes = _OpenNodes(nodes)
    while open_nodes:
        dive_limit = search.nodes + NODES_PER_TASK
        if node_limit is not None:
            dive_limit = min(dive_limit, node_limit)
        stack = [open_nodes.pop()]
        stopped = search.run(stack, deadline=deadline, node_limit=dive_limit, should_stop=should_stop)
        for node in stack:
            open_nodes.push(node)
        if on_progress is not None:
            _report(on_progress, search, search.nodes, open_nodes.bounds())
        dive_ended = stopped == "node_limit" and (node_limit is None or search.nodes < node_limit)
        if stopped != "done" and not dive_ended:
            return stopped, open_nodes.bounds()
    return "done", []


_STOP_EVENT = None  # a worker's view of the caller's interrupt


def _init_worker(event) -> None:
    global _STOP_EVENT
    _STOP_EVENT = event


def _subtree(problem: Problem, nodes: list[_Node], selection: np.ndarray | None, assignment: np.ndarray | None,
             value: float, deadline: float | None, budget: int, gap_limit: float) -> dict:
    """A worker task: search from ``nodes`` for at most ``budget`` bounded nodes; what the
    caller merges, with the nodes left open.  ``deadline`` is a ``time.perf_counter()``
    value (a system-wide monotonic clock, the same in the caller's process)."""
    search = _Search(problem, selection, assignment, value, time.perf_counter(), gap_limit)
    stack = list(nodes)
    event = _STOP_EVENT
    with single_threaded_blas():
        stopped = search.run(stack, deadline=deadline, node_limit=budget,
                             should_stop=None if event is None else event.is_set)
    return {"selection": search.selection, "assignment": search.assignment, "value": search.value,
            "closed_bound": search.closed_bound, "open": stack, "stopped": stopped, "nodes": search.nodes,
            "enumerated": search.enumerated}


def _run_parallel(problem: Problem, search: _Search, stack: list[_Node], deadline: float | None,
                  node_limit: int | None, workers: int, should_stop: Callable[[], bool] | None,
                  on_progress: Callable[[int, int, float, float], None] | None = None,
                  ) -> tuple[str, list[float], tuple[int, int]]:
    """Search ``stack`` with ``workers`` processes: a shared queue of open nodes, tasks of
    at most :data:`NODES_PER_TASK` nodes that hand back what they left open, each started
    with the best answer known then.  Merges into ``search``; returns ``(stopped, bounds
    of the nodes left open, (nodes, enumerated))``."""
    ctx = multiprocessing.get_context("fork")
    event = ctx.Event()
    queue = _OpenNodes(stack)  # largest bound first, as in one process
    stopped = "done"
    counts = [0, 0]
    running: dict = {}
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(event,)) as pool:
        while queue or running:
            halted = stopped != "done" or event.is_set()
            while queue and len(running) < 2 * workers and not halted:
                if node_limit is not None and search.nodes + counts[0] >= node_limit:
                    stopped = "node_limit"
                    break
                now = search.clock()
                if deadline is not None and now >= deadline:
                    stopped = "deadline"
                    break
                # the time left on the caller's clock, counted from here on the workers' own
                task_deadline = None if deadline is None else time.perf_counter() + (deadline - now)
                task = [queue.pop()]
                fut = pool.submit(_subtree, problem, task, search.selection, search.assignment, search.value,
                                  task_deadline, NODES_PER_TASK, search.tolerance)
                running[fut] = task
            if not running:
                break
            try:
                done, _ = wait(running, timeout=0.05, return_when=FIRST_COMPLETED)
            except KeyboardInterrupt:  # the workers got it too and return what they have
                event.set()
                stopped = "interrupted"
                continue
            for fut in done:
                running.pop(fut)
                out = fut.result()
                counts[0] += out["nodes"]
                counts[1] += out["enumerated"]
                if out["selection"] is not None and out["value"] > search.value:
                    search.selection, search.assignment, search.value = out["selection"], out["assignment"], \
                        out["value"]
                    search.history.append((search.clock() - search.t0, out["value"]))
                search.closed_bound = max(search.closed_bound, out["closed_bound"])
                for node in out["open"]:
                    queue.push(node)
                if out["stopped"] in ("deadline", "interrupted"):
                    stopped = out["stopped"]
            if done and on_progress is not None:
                _report(on_progress, search, search.nodes + counts[0],
                        queue.bounds() + [node.parent_bound for task in running.values() for node in task])
            if should_stop is not None and not event.is_set() and _asks_to_stop(should_stop):
                # the running tasks return at their next node with what they have
                event.set()
                stopped = "interrupted"
    return stopped, queue.bounds(), (counts[0], counts[1])
