"""A semidefinite upper bound that sees the redundancy term.

Why it exists: the Lagrangian bound of :mod:`qpmopt.bounds` and the LP relaxations that
MILP solvers start from both let a fractional selection spread over many features, where
pairs cost almost nothing, so they ignore ``Z_R`` almost entirely (on the shared
``medium-1`` instance they stay above 69 against a best known 53.68).  Lifting the
selection to a matrix ``X ~ s s^T`` that must be positive semidefinite forbids that
spreading, and the bound drops to within a few per cent.

The relaxation (uniqueness dropped; every constraint holds at ``X = s s^T`` for a feasible
binary ``s``, so it is a relaxation of the full problem)::

    max  <A, W> + B.s - 1/2 <R, X>
    s.t. M = [[1, s^T], [s, X]] PSD,  trace(M) = 1 + n_sel,
         diag(X) = s,  X 1 = n_sel s,  1.s = n_sel,  X >= 0,
         W <= s,  0 <= W <= 1,  W 1 = k.

No SDP solver is needed.  For *any* multipliers ``y`` of the linear constraints
(``mu >= 0`` for ``W <= s``, ``N >= 0`` for ``X >= 0``, free ones for the equalities), weak
duality gives the closed form

    g(y) = const(y) + sum_c top_k(A[c] - mu[c]) + (1 + n_sel) * lambda_max(C(y)) >= Z*,

because ``max <C, M>`` over PSD ``M`` of fixed trace is the trace times the largest
eigenvalue.  So every evaluation is a certified bound (up to a floating-point margin that
is added), whatever the optimiser did.  The multipliers are found by L-BFGS on a smooth
upper approximation of ``g`` (log-sum-exp of the eigenvalues, softplus in the top-k
dual), with the smoothing lowered in stages; the smallest exact ``g`` seen is returned.

With shared class pairs (CHiQPM's exact and DINO-QPM's at-least mode), the classes of a
star of pairs (:func:`qpmopt.bounds.pair_stars`) are bounded together in the top-k part
by the star formula of :func:`qpmopt.bounds.star_value` instead of each alone: for fixed
multipliers the ``W`` part is then the maximum over assignments that keep the star's rule
(relaxed), still an upper bound, so ``g`` bounds the ruled problem.  Its smooth form uses
softplus for the leaves' positive parts (in the at-least mode for their own values too)
and the same top-k smoothing for the hub set and the leaves' own features.  Other rules
are dropped, which only relaxes.

Cost per evaluation: one symmetric eigendecomposition of size ``n_f + 1`` plus
``O(n_c n_f + n_f^2)``, which is why callers only use it up to :data:`SDP_MAX_FEATURES`
candidate features (benchmarks/results/bound_strength.json records its time).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg
from scipy.optimize import Bounds, minimize
from scipy.special import expit

from qpmopt.bounds import costly_stars, star_value
from qpmopt.problem import Problem
from qpmopt.threads import single_threaded_blas

__all__ = [
    "SDP_MAX_FEATURES",
    "SdpBound",
    "estimated_seconds",
    "sdp_applicable",
    "sdp_dual_value",
    "sdp_multiplier_count",
    "sdp_seconds",
    "sdp_upper_bound",
    "sdp_wanted",
]

#: Above this many candidate features the cubic cost of one eigendecomposition keeps the
#: bound from converging in the time a solve gives it (at 512 and 2 048 candidates it did
#: not beat the Lagrangian bound in that time); callers skip it there.
SDP_MAX_FEATURES = 400

#: Above this many candidates the smoothed function uses only the largest
#: :data:`TOP_EIGENPAIRS` eigenpairs (LAPACK's ``syevr`` on a subset): a full
#: eigendecomposition and the product that rebuilds the primal matrix from it cost about
#: three times as much at 2 048 candidates (benchmarks/results/sdp_scale.json).  The
#: truncated log-sum-exp keeps the largest eigenvalue, so it still lies above the dual
#: function, and the certified value uses that eigenvalue alone, as before.
PARTIAL_EIGEN_ABOVE = SDP_MAX_FEATURES

#: Eigenpairs kept by the truncated smoothing; at the smoothing levels used, eigenvalues
#: further below the largest get weights under ``exp(-20)``.
TOP_EIGENPAIRS = 64

#: Seconds of a full default schedule per second of one evaluation timed up front, both on
#: one BLAS thread: about 700 evaluations, each costing about the up-front one once the
#: optimiser's own work is counted (small-1: 640 in 0.86 s, 0.9 ms up front; medium-1: 711
#: in 12.1 s, 13 to 17 ms up front).  On two threads it was 3 000 and every step several
#: times slower (:mod:`qpmopt.threads`).
_COST_FACTOR = 1000

#: Smoothing stages, in units of the largest matrix entry: large first (an easy, smooth
#: function), then smaller (closer to the exact dual function).  Measured on medium-1.
DEFAULT_SCHEDULE = (0.03, 0.01, 0.003, 0.001)

#: With a deadline, the stages end by time (see :func:`sdp_upper_bound`); this only keeps
#: a stage that makes no progress from running forever without one.
_DEADLINE_MAX_ITERATIONS = 100_000

#: With a deadline, smoothing levels above this one still run ``iterations_per_stage``
#: iterations (bounded by their share of the time): they are smooth and get there in those,
#: and on medium-1 giving them a full share cost the finer levels time (10 s deadline, ad
#: hoc, on a busy machine: 55.24 to 55.39 with equal shares, 55.14 this way).
_TIMED_BELOW = 0.005


@dataclass(frozen=True)
class SdpBound:
    """Result of :func:`sdp_upper_bound`.

    Attributes:
        value: a valid upper bound on the optimum of the full problem (floating-point
            margin included).
        evaluations: dual-function evaluations made.
        seconds: wall time spent.
        stopped: ``"schedule"`` (all stages ran), ``"deadline"``, ``"target"`` (reached
            ``target``) or ``"interrupted"``.
        multipliers: with ``keep_multipliers=True``, the packed multipliers where ``value``
            was certified (``value`` is :func:`sdp_dual_value` of them, so anyone can
            check the certificate again); otherwise ``None``.
    """

    value: float
    evaluations: int
    seconds: float
    stopped: str
    multipliers: np.ndarray | None = field(default=None, repr=False, compare=False)


def sdp_applicable(problem: Problem, seconds: float | None = None) -> bool:
    """Whether :func:`sdp_upper_bound` can pay off: at most :data:`SDP_MAX_FEATURES`
    candidates and, when ``seconds`` is given, :func:`estimated_seconds` within it (a
    bound stopped far from convergence is weaker than the Lagrangian one)."""
    if problem.n_candidates > SDP_MAX_FEATURES or problem.n_features < 2:
        return False
    return seconds is None or estimated_seconds(problem) <= seconds


def sdp_wanted(problem: Problem, option: bool | None, seconds: float | None) -> bool:
    """A backend's ``sdp_bound`` option resolved: ``True``/``False`` as given, ``None``
    as :func:`sdp_applicable` says for the ``seconds`` it would get."""
    return option if option is not None else sdp_applicable(problem, seconds)


#: Largest share of a time limit ``auto`` lets the bound take when its schedule needs more
#: than the configured share: at the sizes where it applies the annealer reaches its answer
#: early (medium-1's best known in about 2 s).
SDP_MAX_SHARE = 0.8

#: How much longer than the time it gets the schedule may be predicted to take, and the
#: bound still run: cut at half it is still far tighter than the Lagrangian bound
#: (medium-1, measured when its schedule took about 45 s on two BLAS threads: 35% above the
#: best known after a third of it, 13% after half, 4.2% after two thirds, 3.2% at the end;
#: the Lagrangian bound 34%), cut at a third it is not.  The prediction itself varies by a
#: fifth from call to call, so a factor near 1 would still decide by chance.
SDP_OVERRUN = 2.0

#: The most time the bound is given, in units of its predicted schedule.  Under a deadline
#: the bound's levels share whatever time it gets, and past a few times the prediction the
#: gain is small (medium-1, benchmarks/results/sdp_deadline.json: 55.22 at 10 s, 54.95 at
#: 25 s, 54.94 at 50 s, against a prediction of about 6 s in sdp_gate.json).  Granting
#: half of a 60 s limit regardless kept HiGHS from proving the medium preset's seeds 1 and
#: 2 inside auto, which it does alone in 24 to 28 s.
SDP_NEED_FACTOR = 2.0


def sdp_seconds(problem: Problem, option: bool | None, time_limit: float, share: float,
                max_share: float | None = None) -> float:
    """Seconds of ``time_limit`` a backend keeps for the bound (``0.0``: none).

    ``option`` is the backend's ``sdp_bound`` option: ``False`` keeps none; otherwise the
    bound gets ``share * time_limit``, raised towards what :func:`estimated_seconds`
    predicts (with a fifth more) up to ``max_share * time_limit`` when ``max_share`` is
    given, and lowered to :data:`SDP_NEED_FACTOR` times the prediction when that is less
    (the rest stays with the solver or the annealer).  With ``option=None`` it is skipped when the problem is too large
    (:data:`SDP_MAX_FEATURES`) or the prediction exceeds the time it gets by more than a
    factor :data:`SDP_OVERRUN`; the bound is valid whenever it stops, so a schedule that
    will be cut short still runs.  (A gate at exactly the share let instances whose
    prediction sat near it get the bound or not by chance: issue 13, 2.9% on medium-1, 29%
    on its twin.)
    """
    if option is False or problem.n_features < 2:
        return 0.0
    if option is None and not sdp_applicable(problem):  # the size check
        return 0.0
    grant = share * time_limit
    need = estimated_seconds(problem)
    if max_share is not None:
        grant = max(grant, min(1.2 * need, max_share * time_limit))
    grant = min(grant, SDP_NEED_FACTOR * need)
    if option is None and need > SDP_OVERRUN * grant:
        return 0.0
    return grant


def estimated_seconds(problem: Problem) -> float:
    """Time the default schedule is expected to take on this machine, from one timed
    evaluation (the faster of two, the first pays for allocations), on one BLAS thread as
    the bound runs."""
    dual, _ = _scaled_dual(problem)
    y = np.zeros(dual.layout.size)
    best = np.inf
    with single_threaded_blas():
        for _ in range(2):
            t0 = time.perf_counter()
            dual.smooth(y, DEFAULT_SCHEDULE[0])
            best = min(best, time.perf_counter() - t0)
    return _COST_FACTOR * best


class _Layout:
    """Packing of the multipliers into one vector (so that L-BFGS sees one variable)."""

    def __init__(self, n_c: int, n_f: int, n_fixed: int = 0) -> None:
        self.n_c, self.n_f = n_c, n_f
        self.iu = np.triu_indices(n_f, 1)
        # phi: multipliers of s_f = 1 for the features a branch-and-bound node fixes in
        names = ("mu", "alpha", "beta", "gamma", "delta", "N", "t", "phi")
        sizes = (n_c * n_f, n_f, n_f, 1, 1, self.iu[0].size, n_c, n_fixed)
        self.slices = {}
        start = 0
        for name, size in zip(names, sizes):
            self.slices[name] = slice(start, start + size)
            start += size
        self.size = start

    def split(self, y: np.ndarray) -> dict[str, np.ndarray]:
        parts = {name: y[sl] for name, sl in self.slices.items()}
        parts["mu"] = parts["mu"].reshape(self.n_c, self.n_f)
        return parts

    def bounds(self) -> Bounds:
        lb = np.full(self.size, -np.inf)
        lb[self.slices["mu"]] = 0.0  # multipliers of inequalities are non-negative
        lb[self.slices["N"]] = 0.0
        return Bounds(lb, np.full(self.size, np.inf))


class _Dual:
    """The dual function ``g`` of the relaxation, exact and smoothed, for scaled arrays."""

    def __init__(self, A: np.ndarray, R: np.ndarray, B: np.ndarray, k: int, n_sel: int,
                 fixed: np.ndarray | None = None, stars: list[tuple[int, np.ndarray]] | None = None,
                 own: int = 0, shared_exact: bool = True, top_eigenpairs: int | None = None) -> None:
        self.A, self.B, self.k, self.n = A, B, k, n_sel
        # None: every eigenpair in the smoothing; an int: only that many of the largest
        self.top_eigenpairs = None if top_eigenpairs is None or top_eigenpairs >= A.shape[1] + 1 else top_eigenpairs
        # Stars of shared class pairs: each leaf takes k - own of its hub's k features and
        # `own` more (in the at-least mode, only their positive parts count); their classes
        # are bounded together (see _w_part).
        self.stars = [] if stars is None else [(int(h), np.asarray(lv, dtype=np.int64)) for h, lv in stars]
        self.own, self.shared_exact = own, shared_exact
        self.half_R = -0.5 * R
        n_c, n_f = A.shape
        # features constrained to s_f = 1 (a node of the branch and bound), as indices
        self.fixed = np.zeros(0, dtype=np.int64) if fixed is None else np.asarray(fixed, dtype=np.int64)
        self.layout = _Layout(n_c, n_f, self.fixed.size)
        self.trace = 1.0 + n_sel
        iu, size = self.layout.iu, n_f + 1
        self._upper = (iu[0] + 1) * size + iu[1] + 1  # flat positions in C of X's upper triangle
        self._lower = (iu[1] + 1) * size + iu[0] + 1
        self._diag = (np.arange(n_f) + 1) * (size + 1)
        self.last_M: np.ndarray | None = None  # the smoothed maximiser at the last smooth() call

    @property
    def last_s(self) -> np.ndarray | None:
        """The selection part of :attr:`last_M`, scaled to ``M[0, 0] = 1``."""
        M = self.last_M
        return None if M is None else M[0, 1:] / max(float(M[0, 0]), 1e-12)

    def matrix(self, p: dict[str, np.ndarray]) -> tuple[np.ndarray, float]:
        """``C(y)`` of size ``(n_f + 1, n_f + 1)`` and the constant term ``const(y)``."""
        n_f, n = self.layout.n_f, self.n
        alpha, beta = p["alpha"], p["beta"]
        gamma, delta = float(p["gamma"][0]), float(p["delta"][0])
        C = np.empty((n_f + 1, n_f + 1))
        X = C[1:, 1:]
        np.add(self.half_R, 0.5 * (beta[:, None] + beta[None, :]), out=X)
        # through precomputed flat positions: indexing with row and column arrays converts
        # them to flat positions on every call (a tenth of a millisecond at 61 rows)
        flat = C.reshape(-1)
        flat[self._upper] += p["N"]
        flat[self._lower] += p["N"]
        flat[self._diag] += alpha
        lin = self.B + p["mu"].sum(axis=0) - alpha - n * beta + gamma  # coefficient of s
        const = -gamma * n - delta
        if self.fixed.size:  # phi_f (1 - s_f)
            lin[self.fixed] -= p["phi"]
            const += float(p["phi"].sum())
        C[0, 1:] = 0.5 * lin
        C[1:, 0] = 0.5 * lin
        C[0, 0] = delta
        return C, const

    def exact(self, y: np.ndarray) -> tuple[float, float]:
        """``g(y)`` and a bound on its floating-point error."""
        p = self.layout.split(y)
        C, const = self.matrix(p)
        lam_max = float(np.linalg.eigvalsh(C)[-1])
        return self._value(const, self._w_part(self.A - p["mu"]), lam_max, C)

    def _w_part(self, reduced: np.ndarray) -> np.ndarray:
        """Per-class maxima of the ``W`` part at reduced values ``A - mu``, ``(n_c,)``: each
        class's top-k, except that a star's classes count together at most the star
        formula of :func:`qpmopt.bounds.star_value` (on its hub's entry) where that is
        less."""
        part = np.sort(reduced, axis=1)[:, -self.k :].sum(axis=1)
        for hub, leaves in self.stars:
            members = np.concatenate([[hub], leaves])
            together = star_value(reduced[hub], reduced[leaves], self.k, self.own, self.shared_exact)
            if together < part[members].sum():
                part[members] = 0.0
                part[hub] = together
        return part

    def _value(self, const: float, topk: np.ndarray, lam_max: float, C: np.ndarray) -> tuple[float, float]:
        # topk: the W part's terms (their absolute values size the rounding margin)
        value = const + float(topk.sum()) + self.trace * lam_max
        # eigvalsh is backward stable: its largest eigenvalue is within a small multiple of
        # eps * ||C|| of the true one; 1e-10 is a wide margin over that and over the sums.
        err = 1e-10 * (self.trace * float(np.linalg.norm(C)) + abs(const) + float(np.abs(topk).sum()) + 1.0)
        return value, err

    def smooth(self, y: np.ndarray, tau: float) -> tuple[float, np.ndarray, float]:
        """A smooth upper approximation of ``g`` (value, gradient) and the exact certified
        ``g(y)`` obtained from the same eigendecomposition."""
        layout, k, n = self.layout, self.k, self.n
        p = layout.split(y)
        C, const = self.matrix(p)
        if self.top_eigenpairs is None:
            lam, U = np.linalg.eigh(C)
        else:
            size = C.shape[0]
            lam, U = scipy.linalg.eigh(C, subset_by_index=[size - self.top_eigenpairs, size - 1], driver="evr",
                                       check_finite=False)
        # tau * logsumexp(lam / tau) >= lam_max (also over the largest eigenvalues alone);
        # its gradient is the PSD matrix U diag(w) U^T.
        shifted = (lam - lam[-1]) / tau
        w = np.exp(shifted)
        total = w.sum()
        lse = lam[-1] + tau * np.log(total)
        M = self.trace * (U * (w / total)) @ U.T  # plays the role of the primal matrix
        # top_k(a) = min_t k t + sum (a - t)_+ ; softplus >= (.)_+ keeps it an upper bound.
        a = self.A - p["mu"]
        z = (a - p["t"][:, None]) / tau
        soft = tau * np.logaddexp(0.0, z)
        Wt = expit(z)  # plays the role of W
        w_value = float(k * p["t"].sum() + soft.sum())
        t_grad = k - Wt.sum(axis=1)
        for hub, leaves in self.stars:
            members = np.concatenate([[hub], leaves])
            w_value += self._smooth_star(a, p["t"], hub, leaves, tau, Wt, t_grad) - float(
                k * p["t"][members].sum() + soft[members].sum())
        value = const + w_value + self.trace * lse

        # The gradient of a Lagrangian dual function is the constraint residual at the
        # maximiser (here: at the smoothed maximiser M, Wt).
        s, X = M[0, 1:], M[1:, 1:]
        g = np.empty(layout.size)
        g[layout.slices["mu"]] = (s[None, :] - Wt).ravel()
        g[layout.slices["alpha"]] = np.diag(X) - s
        g[layout.slices["beta"]] = X.sum(axis=1) - n * s
        g[layout.slices["gamma"]] = s.sum() - n
        g[layout.slices["delta"]] = M[0, 0] - 1.0
        g[layout.slices["N"]] = 2.0 * X[layout.iu]
        g[layout.slices["t"]] = t_grad
        g[layout.slices["phi"]] = 1.0 - s[self.fixed]
        self.last_M = M

        exact, err = self._value(const, self._w_part(a), float(lam[-1]), C)
        return value, g, exact + err

    def _smooth_star(self, a: np.ndarray, t: np.ndarray, hub: int, leaves: np.ndarray, tau: float,
                     Wt: np.ndarray, t_grad: np.ndarray) -> float:
        """A smooth upper approximation of the star formula (softplus for the positive
        parts and, with the hub's ``t`` and the leaves' ``t``, for the top-k of the hub set
        and each leaf's top ``own``); writes the star's rows of ``Wt`` (minus the gradient
        in ``mu``) and of ``t_grad``."""
        k, own = self.k, self.own
        leaf = a[leaves]
        positive = tau * np.logaddexp(0.0, leaf / tau)
        d_positive = expit(leaf / tau)
        zu = (a[hub] + positive.sum(axis=0) - t[hub]) / tau
        su = expit(zu)
        value = k * t[hub] + tau * float(np.logaddexp(0.0, zu).sum())
        Wt[hub] = su
        Wt[leaves] = su[None, :] * d_positive
        t_grad[hub] = k - su.sum()
        t_grad[leaves] = 0.0
        if own:
            # at-least mode: the own values' positive parts (softplus, as above)
            counted, d_counted = (leaf, 1.0) if self.shared_exact else (positive, d_positive)
            zo = (counted - t[leaves][:, None]) / tau
            so = expit(zo)
            value += own * float(t[leaves].sum()) + tau * float(np.logaddexp(0.0, zo).sum())
            Wt[leaves] += so * d_counted
            t_grad[leaves] = own - so.sum(axis=1)
        return float(value)


class _Stop(Exception):
    pass


def _start_t(dual: _Dual, mu: np.ndarray | None = None) -> np.ndarray:
    """The top-k thresholds to start from, at reduced values ``A - mu`` (``A`` when
    ``mu`` is None): each class's k-th value; for a star's hub the k-th of the values its
    hub set is chosen by, for its leaves their own-th value."""
    a = dual.A if mu is None else dual.A - mu
    t = np.sort(a, axis=1)[:, -dual.k].copy()
    for hub, leaves in dual.stars:
        hub_values = a[hub] + np.maximum(a[leaves], 0.0).sum(axis=0)
        t[hub] = np.sort(hub_values)[-dual.k]
        t[leaves] = np.sort(a[leaves], axis=1)[:, -dual.own]
    return t


def sdp_dual_value(problem: Problem, multipliers: np.ndarray) -> float:
    """The certified bound ``g(y)`` for a packed multiplier vector (any values; the
    inequality multipliers are clipped to be non-negative first, as duality requires).

    Exposed so that tests can check weak duality independently of the optimiser.
    ``len(multipliers)`` must be :func:`sdp_multiplier_count` ``(problem)``.
    """
    dual, scale = _scaled_dual(problem)
    y = np.array(multipliers, dtype=np.float64)
    if y.shape != (dual.layout.size,):
        raise ValueError(f"multipliers: expected shape ({dual.layout.size},), got {y.shape}")
    bounds = dual.layout.bounds()
    y = np.maximum(y, bounds.lb)
    value, err = dual.exact(y)
    return scale * (value + err)


def sdp_multiplier_count(problem: Problem) -> int:
    """Length of the packed multiplier vector of :func:`sdp_dual_value`."""
    return _Layout(problem.n_classes, problem.n_candidates).size


def _scale(problem: Problem) -> float:
    """The largest absolute entry of ``A``, ``R`` and ``B`` (1 when all are zero): the dual
    works on the arrays divided by it, so that the smoothing schedule does not depend on
    the caller's units; bounds are scaled back."""
    scale = max(float(np.abs(problem.A).max()), float(np.abs(problem.R).max()), float(np.abs(problem.B).max()))
    return scale if scale > 0 else 1.0


def _scaled_dual(problem: Problem) -> tuple[_Dual, float]:
    scale = _scale(problem)
    A = problem.A / scale
    stars, own = _stars(problem, A)
    # Problem guarantees a zero diagonal of R (the objective ignores it).
    exact = problem.rules is None or problem.rules.shared_exact
    top = TOP_EIGENPAIRS if problem.n_candidates > PARTIAL_EIGEN_ABOVE else None
    return _Dual(A, problem.R / scale, problem.B / scale, problem.k, problem.n_features, stars=stars, own=own,
                 shared_exact=exact, top_eigenpairs=top), scale


def _stars(problem: Problem, A: np.ndarray) -> tuple[list[tuple[int, np.ndarray]], int]:
    """The stars of shared pairs the dual bounds together (those whose rule costs their
    classes value, :func:`qpmopt.bounds.costly_stars`), and the features a leaf takes
    outside its hub's set."""
    stars = costly_stars(problem, A)
    return stars, (problem.k - int(problem.rules.shared_count)) if stars else 0


def sdp_upper_bound(
    problem: Problem,
    *,
    deadline: float | None = None,
    target: float | None = None,
    schedule: tuple[float, ...] = DEFAULT_SCHEDULE,
    iterations_per_stage: int = 150,
    should_stop: Callable[[], bool] | None = None,
    verbose: bool = False,
    start_mu: np.ndarray | None = None,
    keep_multipliers: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> SdpBound:
    """A valid upper bound on ``Z`` from the semidefinite relaxation described above.

    Args:
        problem: the instance; ``A`` is ``(n_c, n_f)``, ``R`` ``(n_f, n_f)``, ``B``
            ``(n_f,)``.  Cost grows as ``n_f^3`` per evaluation (see
            :func:`sdp_applicable`).
        deadline: a ``clock()`` value after which it stops and returns the best bound so
            far (always valid).  With one, the smoothing levels share the time
            left (each ends at its share, or earlier where it converges) instead of
            running ``iterations_per_stage`` iterations each.
        target: stop as soon as the bound is within ``1e-9`` relative of this value (for
            example the incumbent: the bound then proves it optimal).
        schedule: smoothing levels relative to the largest absolute matrix entry; with a
            deadline, three finer levels follow while time remains.
        iterations_per_stage: L-BFGS iterations per smoothing level, without a deadline.
        should_stop: polled before every evaluation; when it returns True (or on Ctrl-C)
            the best bound so far is returned with ``stopped="interrupted"``.
        verbose: print one progress line per smoothing level to stderr.
        start_mu: ``(n_c, n_f)`` multipliers of ``W <= s`` to start from, in the units of
            ``A`` (for example those of :func:`qpmopt.bounds.lagrangian_multipliers`);
            zeros when ``None``.  Any non-negative values keep the bound valid; good ones
            matter above a few hundred candidates, where the schedule's iterations are too
            few to find ``n_c * n_f`` prices from zero.
        keep_multipliers: return the multipliers of the bound in
            :attr:`SdpBound.multipliers` (a copy at every improvement).
        clock: the time source of ``deadline`` and of :attr:`SdpBound.seconds` (a
            backend passes its :attr:`~qpmopt.backends.SolverConfig.clock`).

    Above :data:`PARTIAL_EIGEN_ABOVE` candidates the smoothing uses the largest
    :data:`TOP_EIGENPAIRS` eigenpairs only (the certified value is unchanged).

    Deterministic without a deadline.  Memory: ``O(n_f^2 + n_c n_f)`` floats.  Runs its
    dense kernels on one BLAS thread (:mod:`qpmopt.threads` says why).
    """
    with single_threaded_blas():
        return _sdp_upper_bound(problem, deadline, target, schedule, iterations_per_stage, should_stop, verbose,
                                start_mu, keep_multipliers, clock)


def _sdp_upper_bound(
    problem: Problem,
    deadline: float | None,
    target: float | None,
    schedule: tuple[float, ...],
    iterations_per_stage: int,
    should_stop: Callable[[], bool] | None,
    verbose: bool,
    start_mu: np.ndarray | None,
    keep_multipliers: bool,
    clock: Callable[[], float],
) -> SdpBound:
    t0 = clock()
    dual, scale = _scaled_dual(problem)
    layout = dual.layout
    y = np.zeros(layout.size)
    mu = None
    if start_mu is not None:
        mu = np.asarray(start_mu, dtype=np.float64)
        if mu.shape != problem.A.shape:
            raise ValueError(f"start_mu: expected shape {problem.A.shape} (n_classes, n_features), got {mu.shape}")
        if not np.all(np.isfinite(mu)) or mu.min() < 0:
            raise ValueError("start_mu: expected finite, non-negative multipliers")
        mu = mu / scale
        y[layout.slices["mu"]] = mu.ravel()
    y[layout.slices["t"]] = _start_t(dual, mu)
    best = [np.inf]
    best_y: list[np.ndarray | None] = [None]
    evaluations = [0]
    goal = None if target is None else target / scale
    # With a deadline each stage ends at its share of the time left (``stage_end``); its
    # lowest smoothed point (``stage_best``) starts the next one.
    stage_end = [np.inf]
    stage_best: list = [np.inf, y]

    def fun(v: np.ndarray, tau: float) -> tuple[float, np.ndarray]:
        now = clock()
        if deadline is not None and now > deadline:
            raise _Stop("deadline")
        if now > stage_end[0]:
            raise _Stop("stage")
        if should_stop is not None and should_stop():
            raise _Stop("interrupted")
        value, grad, certified = dual.smooth(v, tau)
        evaluations[0] += 1
        if deadline is not None and value < stage_best[0]:  # only a timed stage needs it
            stage_best[0], stage_best[1] = value, v.copy()
        if certified < best[0]:
            best[0] = certified
            if keep_multipliers:
                best_y[0] = v.copy()
        if goal is not None and best[0] - goal <= 1e-9 * max(1.0, abs(goal)):
            raise _Stop("target")
        return value, grad

    stopped = "schedule"
    bounds = layout.bounds()
    stages = list(schedule)
    if deadline is not None and stages:
        # With a deadline, finer smoothing levels follow the schedule, and the stages share
        # the time instead of a count of iterations: at a fixed count the schedule ended
        # early and left the time unused, while more iterations per level still lowered
        # the bound (medium-1, benchmarks/results/sdp_deadline.json: 55.22 when the fixed
        # levels end after 10 s, 54.95 given 25 s).  A stage that converges early leaves
        # its time to the next ones.
        stages += [stages[-1] * 0.3**i for i in range(1, 4)]
    try:
        for i, tau in enumerate(stages):
            timed = deadline is not None and tau < _TIMED_BELOW
            if deadline is not None:
                now = clock()
                stage_end[0] = now + (deadline - now) / (len(stages) - i)
            stage_best[0] = np.inf
            try:
                res = minimize(fun, y, args=(tau,), jac=True, method="L-BFGS-B", bounds=bounds,
                               options={"maxiter": _DEADLINE_MAX_ITERATIONS if timed else iterations_per_stage,
                                        "maxcor": 5})
                y = res.x
            except _Stop as stop:
                if str(stop) != "stage":
                    raise
                y = stage_best[1]
            if verbose:
                print(f"sdp bound: tau={tau:.2g} bound={scale * best[0]:.8g} evaluations={evaluations[0]} "
                      f"{clock() - t0:.1f}s", file=sys.stderr, flush=True)
    except _Stop as stop:
        stopped = str(stop)
    except KeyboardInterrupt:
        # Like the backends: Ctrl-C ends the work, not the caller's program; what was
        # certified so far is still a bound.
        stopped = "interrupted"
    if not np.isfinite(best[0]):
        # Not even one evaluation fitted before the deadline: y = 0 still gives a bound.
        value, err = dual.exact(y)
        best[0] = value + err
        best_y[0] = y.copy() if keep_multipliers else None
        evaluations[0] += 1
    return SdpBound(value=scale * best[0], evaluations=evaluations[0], seconds=clock() - t0,
                    stopped=stopped, multipliers=best_y[0])
