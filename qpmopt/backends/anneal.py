"""Batched simulated annealing in PyTorch (GPU when present, else CPU).

Every chain holds a selection.  One step evaluates *all* swaps of every chain at once,
incrementally (docs/problem.md, "Structure the algorithms use"): from each class's k-th and (k+1)-th best
selected value, the change of ``Z_A`` for dropping ``o`` and adding ``i`` is

    sum_c M[c,o] * (max(next_c, A[c,i]) - A[c,o]) + (1 - M[c,o]) * max(0, A[c,i] - kth_c)

with ``M`` the top-k membership; that is one batched matrix product.  The redundancy
change is ``red[o] - red[i] + R[o,i]`` with ``red = R @ s`` kept up to date per swap.

The move is drawn from ``softmax(delta / T)`` over all swaps (Gumbel-max: rejection-free
annealing, so no step is wasted on rejected proposals); a short tabu tenure forbids undoing
a swap at once, so that at low temperature a chain walks along plateaus instead of
oscillating; a chain that has not improved for a while restarts from its best state with a
random perturbation.  The search runs on the *relaxed* value (uniqueness ignored); each
chain's best selection then gets its exact assignment with uniqueness (``search.py``) and
the best verified one is returned.

Memory: ``A`` and ``R`` once on the device, ``chains * n_f`` state and per step
``chunk * n_c * n_f`` temporaries, the chunk of chains being sized to ``max_temp_mb``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import Field

from qpmopt.backends.base import Backend, BackendOptions, Capabilities, OptionsError, ProblemTooLargeError, SolverConfig
from qpmopt.budget import check_first_answer, fallback_deadline
from qpmopt.problem import Problem
from qpmopt.search import (
    best_assignment,
    evaluate_selection,
    greedy_selection,
    local_search,
    movable_features,
    relaxed_value,
    search_view,
    unique_polish,
)
from qpmopt.solution import BackendResult, Termination


def default_chains(problem: Problem, device_type: str, temp_mb: float | None = None) -> int:
    """Chains when ``num_chains`` is not given: 8 on a CPU; on a GPU as many as one batch of
    per-step temporaries holds (``max_temp_mb``, 1 GB by default), between 8 and 128, so
    that a step's kernels fill the card rather than wait on their launches."""
    if device_type == "cpu":
        return 8
    temp_bytes = _temp_mb(temp_mb, device_type) * 2**20
    fit = int(temp_bytes // (3 * 4 * problem.n_classes * problem.n_candidates))
    return int(min(128, max(8, fit)))


def _temp_mb(max_temp_mb: float | None, device_type: str) -> float:
    """The cap of per-step temporaries: ``max_temp_mb``, else 8 MB on a CPU (the cache) and
    1 GB on a GPU."""
    if max_temp_mb is not None:
        return max_temp_mb
    return 8.0 if device_type == "cpu" else 1024.0


def default_steps(problem: Problem) -> int:
    """Step budget used when no time limit is given (the run is then reproducible per seed).

    2 000 steps at CUB scale, more for smaller instances whose steps are cheap, fewer for
    larger ones so that the work stays about constant (ImageNet scale: about 900 steps).
    """
    work = problem.n_classes * problem.n_candidates
    ratio = (200 * 2048) / max(1, work)
    return int(min(6000, max(600, 2000 * ratio**0.5)))


class AnnealOptions(BackendOptions):
    """Options of ``anneal``."""

    num_chains: int | None = Field(None, ge=1)  # None: default_chains() (8 on a CPU, more on a GPU)
    device: str | None = None  # None: "cuda" when available, else "cpu"
    dtype: Literal["float32", "float64"] = "float32"
    max_steps: int | None = Field(None, ge=1)  # step budget; None: default_steps() without a time limit
    t_start: float | None = None  # None: calibrated from the first step's deltas
    t_end_ratio: float = 1e-3  # final temperature relative to t_start
    cycles: int = Field(1, ge=1)  # temperature cycles (reheats) over the budget
    tabu_tenure: int | None = None  # None: about n_features / 4
    patience: int | None = None  # steps without improvement before a perturbation
    perturb_swaps: int | None = None  # random swaps per perturbation (None: ~n_features/10)
    pool_size: int | None = 256  # entering candidates per chain between refreshes (None: all)
    refresh: int = 8  # steps between full evaluations that refresh the pool
    initial_states: Any = None  # (chains, n_f) bool masks or list of index arrays
    max_temp_mb: float | None = None  # cap of per-step temporaries (None: 8 MB on CPU, for the cache; 1 GB on GPU)
    polish: bool = True  # finish each chain's best with numpy best-improvement swaps


@dataclass
class _Schedule:
    """When the annealing loop stops and how far along its temperature schedule it is.

    With a step budget (``max_steps``, or :func:`default_steps` without a time limit) the
    schedule follows the step count, so a run is reproducible.  Under a time limit alone
    it follows the clock; a small instance stops after three default budgets all the same
    (its schedule completes), larger ones use all of the time.
    """

    total_steps: int | None
    step_cap: int | None
    anneal_deadline: float | None
    hard_deadline: float | None
    loop_start: float
    explicit_budget: bool

    @classmethod
    def make(cls, problem: Problem, config: SolverConfig, options: AnnealOptions,
             assign_seconds: float = 0.0) -> _Schedule:
        """``assign_seconds``: what one exact assignment took; the loop leaves room for a
        few after it (the polish and the final assignments), at least 15% of the limit."""
        total = options.max_steps or (default_steps(problem) if config.time_limit is None else None)
        small = problem.n_classes * problem.n_candidates <= 100_000
        cap = total if total is not None else (3 * default_steps(problem) if small else None)
        if config.time_limit is not None:
            T = config.time_limit
            reserve = min(0.6 * T, max(0.15 * T, 3.0 * assign_seconds))
            anneal_deadline = config.start_time + T - reserve
            hard_deadline = config.start_time + T
        else:
            anneal_deadline = hard_deadline = None
        return cls(total, cap, anneal_deadline, hard_deadline, config.clock(), options.max_steps is not None)

    def stop(self, step: int, now: float, step_seconds: float = 0.0) -> Termination | None:
        """Why the loop ends before ``step`` (``step_seconds``: the longest step so far, so
        that no step starts that would end past the deadline), or ``None`` to go on."""
        if self.step_cap is not None and step >= self.step_cap:
            return Termination.ITERATION_LIMIT if self.explicit_budget else Termination.CONVERGED
        if self.anneal_deadline is not None and now + step_seconds >= self.anneal_deadline:
            return Termination.TIME_LIMIT
        return None

    def fraction(self, step: int, now: float) -> float:
        """Progress through the schedule in ``[0, 1)``."""
        if self.total_steps is not None:
            return step / self.total_steps
        frac = (now - self.loop_start) / max(1e-9, self.anneal_deadline - self.loop_start)
        if self.step_cap is not None:
            frac = max(frac, step / self.step_cap)
        return frac


@dataclass
class _StepParams:
    """What every step reads: the arrays on the device and the move parameters."""

    A: Any  # (n_c, n_f)
    R: Any  # (n_f, n_f)
    B: Any  # (n_f,)
    k: int
    chunk: int  # chains per batch of a full evaluation
    pool: int | None  # entering candidates per chain between refreshes
    pool_chunk: int  # chains per batch of a pool evaluation
    tenure: int
    patience: int
    perturb_swaps: int
    frozen: Any  # (n_f,) long: a step beyond any run for features the rules fix, else 0

    @classmethod
    def make(cls, problem: Problem, options: AnnealOptions, device: Any, dtype: Any) -> _StepParams:
        import torch

        n_c, n_f = problem.A.shape
        n_sel = problem.n_features
        temp_mb = _temp_mb(options.max_temp_mb, device.type)
        bytes_per = torch.finfo(dtype).bits / 8
        # One chain's temporaries are a few (n_c, width) arrays; on the CPU small chunks stay
        # in cache and run faster than one large batch (measured on cub-1).
        chunk = max(1, int(temp_mb * 2**20 / (3 * n_c * n_f * bytes_per)))
        pool = options.pool_size if options.pool_size and options.pool_size < n_f - n_sel else None
        pool_chunk = chunk if pool is None else max(1, int(temp_mb * 2**20 / (3 * n_c * pool * bytes_per)))
        return cls(
            A=torch.as_tensor(problem.A, dtype=dtype, device=device),
            R=torch.as_tensor(problem.R, dtype=dtype, device=device),
            B=torch.as_tensor(problem.B, dtype=dtype, device=device),
            k=problem.k,
            chunk=chunk,
            pool=pool,
            pool_chunk=pool_chunk,
            tenure=options.tabu_tenure if options.tabu_tenure is not None else max(2, n_sel // 4),
            patience=options.patience if options.patience is not None else max(50, 4 * n_sel),
            perturb_swaps=options.perturb_swaps if options.perturb_swaps is not None else max(2, n_sel // 10),
            frozen=torch.as_tensor(_fixed_by_rules(problem), device=device).long() * 2**62,
        )


@dataclass
class _Chains:
    """The state of every chain on the device.

    ``sel (C, n_sel)`` selected ids, ``mask (C, n_f)``, ``red (C, n_f) = R @ s``, ``value
    (C,)`` relaxed value (float64), each chain's best value and mask, steps since its best,
    and ``tabu_until (C, n_f)``: the step until which a feature may not move.
    """

    sel: Any
    mask: Any
    red: Any
    value: Any
    best_val: Any
    best_mask: Any
    since_best: Any
    tabu_until: Any

    @classmethod
    def start(cls, problem: Problem, starts: list[np.ndarray], R: Any, frozen: Any) -> _Chains:
        """Chains at ``starts`` (``(n_f,)`` bool masks); ``R`` is the device's copy;
        ``frozen`` the permanent tabu of the features the rules fix."""
        import torch

        C, n_f, device = len(starts), problem.n_candidates, R.device
        sel = torch.as_tensor(np.stack([np.flatnonzero(m) for m in starts]), device=device)
        mask = torch.zeros(C, n_f, dtype=torch.bool, device=device)
        mask.scatter_(1, sel, True)
        value = torch.as_tensor([relaxed_value(problem, m) for m in starts], dtype=torch.float64, device=device)
        return cls(sel=sel, mask=mask, red=R[sel].sum(dim=1), value=value, best_val=value.clone(),
                   best_mask=mask.clone(), since_best=torch.zeros(C, dtype=torch.long, device=device),
                   tabu_until=frozen[None, :].repeat(C, 1))

    def resync(self, problem: Problem, R: Any) -> None:
        """Recompute the incrementally updated sums from scratch."""
        import torch

        self.red = R[self.sel].sum(dim=1)
        self.value = torch.as_tensor([relaxed_value(problem, m) for m in self.mask.cpu().numpy()],
                                     dtype=torch.float64, device=self.value.device)


def _fixed_by_rules(problem: Problem) -> np.ndarray:
    """``(n_f,)`` bool: features the rules force in or out (they never move)."""
    if problem.rules is None:
        return np.zeros(problem.n_candidates, dtype=bool)
    return problem.rules.fixed_features


class AnnealBackend(Backend):
    name = "anneal"
    required_modules = ("torch",)
    # Deterministic per seed and device under a step budget (max_steps, or no time limit);
    # under a time limit alone the number of steps depends on the machine's speed.
    capabilities = Capabilities(uses_gpu=True, deterministic=True)
    Options = AnnealOptions

    def solve(self, problem: Problem, config: SolverConfig, options: AnnealOptions) -> BackendResult:
        import torch

        device = torch.device(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = getattr(torch, options.dtype)
        gen = torch.Generator(device=device)
        gen.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        if options.num_chains is None:
            options = options.model_copy(update={"num_chains": default_chains(problem, device.type,
                                                                               options.max_temp_mb)})
        self._check_memory(problem, options, device)
        check_first_answer(problem, config.start_time, config.time_limit, config.clock)
        exact, problem = problem, search_view(problem)  # search the view, score on the original
        starts = self._initial_states(problem, config, options, rng)
        if problem.n_features == problem.n_candidates:  # nothing to choose
            W, _ = best_assignment(exact, starts[0])
            return BackendResult(starts[0] if W is not None else None, W, Termination.CONVERGED,
                                 info={"path": "all features selected"})
        # The first start's exact answer: kept if nothing better is found in time, and its
        # cost sizes the room left after the loop.
        clock = config.clock
        t0 = clock()
        W0, z0 = evaluate_selection(exact, starts[0], deadline=fallback_deadline(config), clock=clock)
        fallback = (z0, starts[0], W0) if W0 is not None else (-math.inf, None, None)
        assign_seconds = clock() - t0

        schedule = _Schedule.make(problem, config, options, assign_seconds)
        params = _StepParams.make(problem, options, device, dtype)
        chains = _Chains.start(problem, starts, params.R, params.frozen)
        history: list[tuple[float, float]] = []
        record = float(chains.best_val.max())
        history.append((clock() - config.start_time, record))
        progress = config.progress(self.name)
        progress.note(f"{options.num_chains} chains on {device}; best start {record:.8g}")
        longest_step = 0.0
        interrupted = False
        termination = Termination.CONVERGED
        t_start = options.t_start
        step = 0
        pool_ids = None
        # On a GPU, steps are queued and the host reads results every few steps only.
        sync_every = 1 if device.type == "cpu" else 8
        try:
            while True:
                now = clock()
                stop = schedule.stop(step, now, longest_step)
                if stop is not None:
                    termination = stop
                    break
                if config.stop_requested():
                    interrupted = True
                    break
                delta, pool_ids, full = self._evaluate(chains, params, step, pool_ids, options)
                if t_start is None:
                    t_start = self._calibrate(delta, chains.mask)
                temp = t_start * options.t_end_ratio ** ((schedule.fraction(step, now) * options.cycles) % 1.0)
                self._move(chains, delta, pool_ids, full, temp, step, params, gen)
                if step % sync_every == sync_every - 1:  # reading values waits for the device
                    top = float(chains.best_val.max())
                    if top > record + 1e-9 * max(1.0, abs(record)):
                        record = top
                        history.append((clock() - config.start_time, record))
                    self._restart_stuck(problem, chains, params, rng)
                    progress(lambda s=step, t=temp, r=record: f"step {s + 1}, temperature {t:.3g}, best {r:.8g}")
                if step % 256 == 255:  # re-synchronise incremental sums (float32 drift)
                    chains.resync(problem, params.R)
                step += 1
                longest_step = max(longest_step, clock() - now)
        except KeyboardInterrupt:
            interrupted = True

        loop_seconds = clock() - schedule.loop_start
        best_value, best_sel, best_W, distinct = self._finish(
            problem, exact, chains, config, schedule.hard_deadline, polish=options.polish and not interrupted,
            assign_seconds=assign_seconds)
        if fallback[1] is not None and fallback[0] > best_value:
            best_value, best_sel, best_W = fallback
        if best_value > record + 1e-9 * max(1.0, abs(record)):
            history.append((clock() - config.start_time, best_value))
        term = Termination.INTERRUPTED if interrupted else termination
        progress.note(f"{term} after {step} steps; answer {best_value:.8g}" if best_sel is not None
                      else f"{term} after {step} steps; no selection meets every rule")
        return BackendResult(
            selection=best_sel,
            assignment=best_W,
            termination=term,
            history=history,
            info={"device": str(device), "steps": step, "chains": options.num_chains, "t_start": t_start,
                  "loop_seconds": loop_seconds, "longest_step_seconds": longest_step, "assignment_seconds": assign_seconds,
                  "pool": params.pool, "distinct_final_selections": distinct,
                  **({} if best_sel is not None else {"reason": "no selection found meets every rule"})},
        )

    # ---- one step ----------------------------------------------------------------------
    def _evaluate(self, chains: _Chains, params: _StepParams, step: int, pool_ids: Any, options: AnnealOptions,
                  ) -> tuple[Any, Any, bool]:
        """Swap deltas of every chain: all entering features on a refresh step (which also
        refreshes each chain's pool of the best entering features), else the pool only.
        Returns ``(delta (C, n_sel, width), pool_ids (C, pool) or None, full)``."""
        import torch

        full = params.pool is None or step % options.refresh == 0
        delta = self._swap_deltas(params.A, params.R, params.B, chains.sel, chains.red, params.k,
                                  params.chunk if full else params.pool_chunk, None if full else pool_ids)
        if full and params.pool is not None:
            best_in = delta.amax(dim=1).masked_fill(chains.mask | (params.frozen > 0), -math.inf)
            pool_ids = torch.topk(best_in, params.pool, dim=1).indices  # (C, pool)
        return delta, pool_ids, full

    @staticmethod
    def _move(chains: _Chains, delta: Any, pool_ids: Any, full: bool, temp: float, step: int, params: _StepParams,
              gen: Any) -> None:
        """Draw one swap per chain from ``softmax(delta / temp)`` (Gumbel-max) among the
        moves the tabu list allows, apply it, and update each chain's best."""
        import torch

        C = chains.sel.shape[0]
        frozen = chains.tabu_until > step  # (C, n_f)
        in_blocked = (chains.mask | frozen) if full else torch.gather(chains.mask | frozen, 1, pool_ids)
        out_frozen = torch.gather(frozen, 1, chains.sel)  # (C, n_sel)
        delta = delta.masked_fill(in_blocked[:, None, :] | out_frozen[:, :, None], -math.inf)
        u = torch.rand(delta.shape, generator=gen, device=delta.device, dtype=delta.dtype).clamp_(1e-12, 1.0)
        flat = (delta / temp - torch.log(-torch.log(u))).reshape(C, -1).argmax(dim=1)
        width = delta.shape[2]
        out_pos = flat // width
        in_col = flat % width
        entering = in_col if full else pool_ids.gather(1, in_col[:, None]).squeeze(1)
        gain = delta.reshape(C, -1).gather(1, flat[:, None]).squeeze(1)
        # Written for every chain at once, without boolean indexing: on a GPU each step then
        # queues its kernels without waiting for the device (no host synchronisation).
        movable = torch.isfinite(gain)  # a chain with every move tabu stays put
        leaving = chains.sel.gather(1, out_pos[:, None]).squeeze(1)
        entering = torch.where(movable, entering, leaving)
        chains.sel.scatter_(1, out_pos[:, None], entering[:, None])
        chains.mask.scatter_(1, leaving[:, None], ~movable[:, None])
        chains.mask.scatter_(1, entering[:, None], True)
        chains.red += torch.where(movable[:, None], params.R[entering] - params.R[leaving], 0.0)
        chains.value += torch.where(movable, gain, 0.0).to(torch.float64)
        until = torch.full_like(leaving, step + params.tenure)
        old_out = chains.tabu_until.gather(1, leaving[:, None]).squeeze(1)
        chains.tabu_until.scatter_(1, leaving[:, None], torch.where(movable, until, old_out)[:, None])
        old_in = chains.tabu_until.gather(1, entering[:, None]).squeeze(1)
        chains.tabu_until.scatter_(1, entering[:, None], torch.where(movable, until, old_in)[:, None])
        improved = chains.value > chains.best_val + 1e-9 * chains.best_val.abs().clamp(min=1.0)
        chains.best_val = torch.where(improved, chains.value, chains.best_val)
        chains.best_mask = torch.where(improved[:, None], chains.mask, chains.best_mask)
        chains.since_best = torch.where(improved, torch.zeros_like(chains.since_best), chains.since_best + 1)

    def _restart_stuck(self, problem: Problem, chains: _Chains, params: _StepParams, rng: np.random.Generator) -> None:
        """A chain without improvement for ``patience`` steps restarts from a random
        perturbation of its best state."""
        import torch

        stuck = chains.since_best >= params.patience
        if not bool(stuck.any()):
            return
        device = chains.mask.device
        for c in torch.nonzero(stuck).flatten().tolist():
            m = self._perturb(problem, chains.best_mask[c].cpu().numpy(), params.perturb_swaps, rng)
            chains.mask[c] = torch.as_tensor(m, device=device)
            chains.sel[c] = torch.as_tensor(np.flatnonzero(m), device=device)
            chains.red[c] = params.R[chains.sel[c]].sum(dim=0)
            chains.value[c] = relaxed_value(problem, m)
            chains.since_best[c] = 0
            chains.tabu_until[c] = params.frozen

    @staticmethod
    def _finish(problem: Problem, exact: Problem, chains: _Chains, config: SolverConfig,
                hard_deadline: float | None, *, polish: bool, assign_seconds: float = 0.0,
                ) -> tuple[float, np.ndarray | None, np.ndarray | None, int]:
        """Each chain's best selection, polished on the search view ``problem`` (swaps on
        the relaxed value, then on the exact objective where classes collide) and exactly
        assigned on ``exact`` (a selection no assignment of which meets the rules is
        dropped); the best of them.  Returns ``(value, selection, assignment, distinct
        selections)``."""
        candidates = {tuple(np.flatnonzero(m)) for m in chains.best_mask.cpu().numpy()}
        best: tuple[float, np.ndarray | None, np.ndarray | None] = (-math.inf, None, None)
        # Best relaxed value first: where each exact assignment is costly (shared pairs),
        # the time may not cover them all.
        order = sorted(candidates, key=lambda idx: -relaxed_value(problem, np.isin(np.arange(problem.n_candidates), idx)))
        clock = config.clock
        # The polish stops early enough for the exact assignment after it.
        polish_deadline = None if hard_deadline is None else hard_deadline - 1.5 * assign_seconds
        for idx in order:
            if (best[1] is not None and hard_deadline is not None
                    and clock() + 1.5 * assign_seconds >= hard_deadline):
                break
            m = np.zeros(problem.n_candidates, dtype=bool)
            m[list(idx)] = True
            if polish and (polish_deadline is None or clock() < polish_deadline):
                m = local_search(problem, m, deadline=polish_deadline, should_stop=config.should_stop,
                                 clock=clock).selection
                m = unique_polish(problem, m, deadline=polish_deadline, clock=clock)
            # The first answer gets the time it needs: returning none would waste the run.
            W, z = evaluate_selection(exact, m, deadline=hard_deadline, clock=clock)
            if W is not None and z > best[0]:
                best = (z, m, W)
        return best[0], best[1], best[2], len(candidates)

    # ---- pieces ----------------------------------------------------------------------
    @staticmethod
    def memory_estimate(problem: Problem, options: AnnealOptions, device_type: str) -> float:
        """Bytes the annealer holds on its device: ``A`` and ``R`` in ``options.dtype``, the
        chains' state (``(C, n_sel, n_f)`` deltas, ``(C, n_f)`` masks, sums and tabu
        steps) and one batch of per-step temporaries (``max_temp_mb``)."""
        b = 4 if options.dtype == "float32" else 8
        n_c, n_f, n_sel = problem.n_classes, problem.n_candidates, problem.n_features
        C = options.num_chains or default_chains(problem, device_type, options.max_temp_mb)
        temp_mb = _temp_mb(options.max_temp_mb, device_type)
        return b * (n_c * n_f + n_f * n_f + 3 * C * n_sel * n_f) + 24 * C * n_f + temp_mb * 2**20

    @staticmethod
    def _check_memory(problem: Problem, options: AnnealOptions, device: Any) -> None:
        """Refuse up front, with a clear error, a run that needs more than 80% of the free
        memory (:meth:`memory_estimate`)."""
        import psutil
        import torch

        need = AnnealBackend.memory_estimate(problem, options, device.type)
        if device.type == "cuda":
            free = torch.cuda.mem_get_info(device)[0]
        else:
            free = psutil.virtual_memory().available
        if need > 0.8 * free:
            raise ProblemTooLargeError(
                f"anneal: needs about {need / 2**30:.1f} GiB on {device}, {free / 2**30:.1f} GiB free; "
                "use fewer num_chains, a smaller max_temp_mb, or dtype='float32'"
            )

    @staticmethod
    def _swap_deltas(A: Any, R: Any, Bv: Any, sel: Any, red: Any, k: int, chunk: int, cand: Any = None) -> Any:
        """Relaxed objective change of swaps of every chain.

        ``sel (C, n_sel)`` selected ids, ``red (C, n_f)`` = R @ s.  With ``cand (C, M)`` only
        those entering features are evaluated.  Returns ``(C, n_sel, M or n_f)``.

        For a class with k-th and (k+1)-th best selected values ``kth >= nxt``:
        ``max(A, nxt) - max(0, A - kth) == clamp(A, nxt, kth)``, so the member part is one
        clamp and the non-member part ``G = sum_c max(0, A - kth)``.
        """
        import torch

        C, n_sel = sel.shape
        width = A.shape[1] if cand is None else cand.shape[1]
        out = torch.empty(C, n_sel, width, dtype=A.dtype, device=A.device)
        At = A.t()  # (n_f, n_c)
        for a in range(0, C, chunk):
            s = sel[a : a + chunk]  # (c, n_sel)
            A_sel = At[s].transpose(1, 2)  # (c, n_c, n_sel)
            top = torch.topk(A_sel, min(k + 1, n_sel), dim=2)
            kth = top.values[:, :, k - 1 : k]  # (c, n_c, 1)
            nxt = top.values[:, :, k : k + 1] if n_sel > k else torch.full_like(kth, -math.inf)
            member = torch.zeros_like(A_sel).scatter_(2, top.indices[:, :, :k], 1.0)  # (c, n_c, n_sel)
            if cand is None:
                A_in = A[None]  # (1, n_c, n_f)
                R_in = R[s]  # (c, n_sel, n_f)
                r_in = red[a : a + chunk]
                b_in = Bv[None, None, :]
            else:
                ci = cand[a : a + chunk]  # (c, M)
                A_in = At[ci].transpose(1, 2)  # (c, n_c, M)
                R_in = torch.gather(R[s], 2, ci[:, None, :].expand(-1, n_sel, -1))
                r_in = torch.gather(red[a : a + chunk], 1, ci)
                b_in = Bv[ci][:, None, :]
            P = torch.clamp(A_in, min=nxt, max=kth)  # (c, n_c, width)
            G = torch.clamp(A_in - kth, min=0.0).sum(dim=1)  # (c, width)
            delta = torch.bmm(member.transpose(1, 2), P)  # (c, n_sel, width)
            delta += G[:, None, :]
            delta -= (member * A_sel).sum(dim=1)[:, :, None]
            r_out = torch.gather(red[a : a + chunk], 1, s)  # (c, n_sel)
            delta += r_out[:, :, None] - r_in[:, None, :] + R_in
            delta += b_in - Bv[s][:, :, None]
            out[a : a + chunk] = delta
        return out

    @staticmethod
    def _calibrate(delta: Any, mask: Any) -> float:
        """Initial temperature: a typical spread among the best moves, so that at the start
        good moves are chosen often but not always."""
        import torch

        d = delta.masked_fill(mask[:, None, :], -math.inf).reshape(delta.shape[0], -1)
        top = torch.topk(d, min(64, d.shape[1]), dim=1).values
        top = top[torch.isfinite(top)]
        if top.numel() < 2:
            return 1.0
        spread = float(top.max() - top.min()) / 4
        return max(spread, 1e-6)

    @staticmethod
    def _perturb(problem: Problem, mask: np.ndarray, swaps: int, rng: np.random.Generator) -> np.ndarray:
        m = mask.copy()
        on, off = movable_features(problem, m)
        swaps = min(swaps, on.size, off.size)
        m[rng.choice(on, swaps, replace=False)] = False
        m[rng.choice(off, swaps, replace=False)] = True
        return m

    @staticmethod
    def _initial_states(
        problem: Problem, config: SolverConfig, options: AnnealOptions, rng: np.random.Generator
    ) -> list[np.ndarray]:
        n_f, n_sel = problem.n_candidates, problem.n_features
        given: list[np.ndarray] = []
        if options.initial_states is not None:
            for i, st in enumerate(options.initial_states):
                arr = np.asarray(st)
                m = np.zeros(n_f, dtype=bool)
                if arr.dtype == bool:
                    if arr.shape != (n_f,):
                        raise OptionsError(f"options: initial_states[{i}] must be a ({n_f},) mask, got {arr.shape}")
                    m = arr.copy()
                else:
                    m[arr.astype(np.int64)] = True
                if m.sum() != n_sel:
                    raise OptionsError(f"options: initial_states[{i}] selects {int(m.sum())} features, expected {n_sel}")
                given.append(m)
        if config.warm_start is not None:
            given.insert(0, config.warm_start.copy())
        greedy = greedy_selection(problem, deadline=config.deadline(), clock=config.clock)
        states = given[: options.num_chains]
        # Remaining chains: the greedy start, then perturbations of it (diverse but good).
        while len(states) < options.num_chains:
            if len(states) == len(given):
                states.append(greedy.copy())
            else:
                states.append(AnnealBackend._perturb(problem, greedy, max(2, n_sel // 3), rng))
        return states
