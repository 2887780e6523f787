"""Batched simulated annealing in PyTorch (GPU when present, else CPU).

Every chain holds a selection.  One step evaluates *all* swaps of every chain at once,
incrementally (PROBLEM.md, "Useful structure"): from each class's k-th and (k+1)-th best
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
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from qpmopt.backends.base import Backend, Capabilities, OptionsError, SolverConfig
from qpmopt.problem import Problem
from qpmopt.search import best_assignment, greedy_selection, local_search, relaxed_value
from qpmopt.solution import BackendResult, Termination


def default_time_budget(problem: Problem) -> float:
    """Seconds spent without a time limit: grows with the instance, 30 s at CUB scale and
    capped at 45 s so a CUB-scale solve stays under a minute on a laptop CPU."""
    work = problem.n_classes * problem.n_candidates * problem.n_features
    return float(min(45.0, max(1.0, 30.0 * work / (200 * 2048 * 50))))


@dataclass(frozen=True)
class AnnealOptions:
    num_chains: int = 8
    device: str | None = None  # None: "cuda" when available, else "cpu"
    dtype: str = "float32"
    t_start: float | None = None  # None: calibrated from the first step's deltas
    t_end_ratio: float = 1e-3  # final temperature relative to t_start
    cycles: int = 4  # temperature cycles (reheats) over the time budget
    tabu_tenure: int | None = None  # None: about n_features / 4
    patience: int | None = None  # steps without improvement before a perturbation
    perturb_swaps: int | None = None  # random swaps per perturbation (None: ~n_features/10)
    max_steps: int | None = None  # stop after this many steps (None: time budget only)
    initial_states: Any = None  # (chains, n_f) bool masks or list of index arrays
    max_temp_mb: float | None = None  # cap of per-step temporaries (None: 8 MB on CPU, for the cache; 1 GB on GPU)
    polish: bool = True  # finish each chain's best with numpy best-improvement swaps

    def __post_init__(self) -> None:
        if not isinstance(self.num_chains, int) or self.num_chains < 1:
            raise OptionsError(f"options: num_chains must be a positive integer, got {self.num_chains!r}")
        if self.dtype not in ("float32", "float64"):
            raise OptionsError(f"options: dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.cycles < 1:
            raise OptionsError(f"options: cycles must be >= 1, got {self.cycles!r}")


class AnnealBackend(Backend):
    name = "anneal"
    required_modules = ("torch",)
    capabilities = Capabilities(uses_gpu=True, deterministic=True)
    Options = AnnealOptions

    def solve(self, problem: Problem, config: SolverConfig, options: AnnealOptions) -> BackendResult:
        import torch

        t0 = config.start_time
        device = torch.device(options.device or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = getattr(torch, options.dtype)
        gen = torch.Generator(device=device)
        gen.manual_seed(config.seed)
        rng = np.random.default_rng(config.seed)
        budget = config.time_limit if config.time_limit is not None else default_time_budget(problem)
        # Leave room for the exact assignment and the polish after the annealing loop.
        anneal_deadline = t0 + 0.85 * budget
        hard_deadline = t0 + budget

        n_c, n_f = problem.A.shape
        n_sel, k = problem.n_features, problem.k
        C = options.num_chains
        history: list[tuple[float, float]] = []
        interrupted = False

        starts = self._initial_states(problem, config, options, rng)
        if n_sel == n_f:  # nothing to choose
            best_sel = starts[0]
            W, _ = best_assignment(problem, best_sel)
            return BackendResult(best_sel, W, Termination.CONVERGED, info={"path": "all features selected"})

        A = torch.as_tensor(problem.A, dtype=dtype, device=device)  # (n_c, n_f)
        R = torch.as_tensor(problem.R, dtype=dtype, device=device)  # (n_f, n_f)
        Bv = torch.as_tensor(problem.B, dtype=dtype, device=device)  # (n_f,)
        sel = torch.as_tensor(np.stack([np.flatnonzero(m) for m in starts]), device=device)  # (C, n_sel)
        mask = torch.zeros(C, n_f, dtype=torch.bool, device=device)
        mask.scatter_(1, sel, True)
        red = R[sel].sum(dim=1)  # (C, n_f): R @ s per chain

        temp_mb = options.max_temp_mb if options.max_temp_mb is not None else (8.0 if device.type == "cpu" else 1024.0)
        # One chain's temporaries are about four (n_c, n_f) arrays; on the CPU small chunks
        # stay in cache and run faster than one big batch (measured on cub-1).
        chunk = max(1, int(temp_mb * 2**20 / (4 * n_c * n_f * torch.finfo(dtype).bits / 8)))
        tenure = options.tabu_tenure if options.tabu_tenure is not None else max(2, n_sel // 4)
        patience = options.patience if options.patience is not None else max(50, 4 * n_sel)
        n_perturb = options.perturb_swaps if options.perturb_swaps is not None else max(2, n_sel // 10)
        tabu_until = torch.zeros(C, n_f, dtype=torch.long, device=device)  # step until which f is frozen
        chain_ids = torch.arange(C, device=device)

        value = torch.as_tensor([relaxed_value(problem, m) for m in starts], dtype=torch.float64, device=device)
        best_val = value.clone()
        best_mask = mask.clone()
        since_best = torch.zeros(C, dtype=torch.long, device=device)
        t_start = options.t_start
        step = 0
        termination = Termination.TIME_LIMIT if config.time_limit is not None else Termination.CONVERGED
        record = float(best_val.max())
        history.append((time.perf_counter() - t0, record))
        loop_start = time.perf_counter()
        try:
            while True:
                now = time.perf_counter()
                if now >= anneal_deadline:
                    break
                if options.max_steps is not None and step >= options.max_steps:
                    termination = Termination.ITERATION_LIMIT
                    break
                if config.stop_requested():
                    interrupted = True
                    break
                delta = self._swap_deltas(A, R, Bv, sel, mask, red, k, chunk)  # (C, n_sel, n_f)
                if t_start is None:
                    t_start = self._calibrate(delta, mask)
                # Temperature: geometric decay within each cycle of the time budget.
                frac = (now - loop_start) / max(1e-9, anneal_deadline - loop_start)
                phase = (frac * options.cycles) % 1.0
                temp = t_start * options.t_end_ratio**phase
                # Forbid tabu moves: frozen leaving or entering features.
                frozen = tabu_until > step  # (C, n_f)
                frozen_out = torch.gather(frozen, 1, sel)  # (C, n_sel)
                delta = delta.masked_fill(mask[:, None, :] | frozen[:, None, :] | frozen_out[:, :, None], -math.inf)
                u = torch.rand(delta.shape, generator=gen, device=device, dtype=dtype).clamp_(1e-12, 1.0)
                score = delta / temp - torch.log(-torch.log(u))
                flat = score.reshape(C, -1).argmax(dim=1)
                o_pos = flat // n_f
                i_new = flat % n_f
                gain = delta.reshape(C, -1).gather(1, flat[:, None]).squeeze(1)
                ok = torch.isfinite(gain)  # a chain with every move tabu stays put
                o_old = sel.gather(1, o_pos[:, None]).squeeze(1)
                rows = chain_ids[ok]
                if rows.numel():
                    oo, ii = o_old[ok], i_new[ok]
                    sel[rows, o_pos[ok]] = ii
                    mask[rows, oo] = False
                    mask[rows, ii] = True
                    red[rows] += R[ii] - R[oo]
                    value[rows] += gain[ok].to(torch.float64)
                    tabu_until[rows, oo] = step + tenure
                    tabu_until[rows, ii] = step + tenure
                improved = value > best_val + 1e-9 * best_val.abs().clamp(min=1.0)
                best_val = torch.where(improved, value, best_val)
                best_mask[improved] = mask[improved]
                since_best = torch.where(improved, torch.zeros_like(since_best), since_best + 1)
                if float(best_val.max()) > record + 1e-12:
                    record = float(best_val.max())
                    history.append((time.perf_counter() - t0, record))
                stuck = since_best >= patience
                if bool(stuck.any()):
                    for c in torch.nonzero(stuck).flatten().tolist():
                        m = self._perturb(best_mask[c].cpu().numpy(), n_perturb, rng)
                        mask[c] = torch.as_tensor(m, device=device)
                        sel[c] = torch.as_tensor(np.flatnonzero(m), device=device)
                        red[c] = R[sel[c]].sum(dim=0)
                        value[c] = relaxed_value(problem, m)
                        since_best[c] = 0
                        tabu_until[c] = 0
                # Re-synchronise the incremental sums now and then (float32 drift).
                if step % 256 == 255:
                    red = R[sel].sum(dim=1)
                step += 1
        except KeyboardInterrupt:
            interrupted = True

        # Final: exact assignment (with uniqueness) of each chain's best, polished.
        candidates = {tuple(np.flatnonzero(m)) for m in best_mask.cpu().numpy()}
        best = (-math.inf, None, None)
        for idx in sorted(candidates):
            m = np.zeros(n_f, dtype=bool)
            m[list(idx)] = True
            if options.polish and not interrupted and time.perf_counter() < hard_deadline:
                m = local_search(problem, m, deadline=hard_deadline, should_stop=config.should_stop).selection
            W, z_a = best_assignment(problem, m)
            ix = np.flatnonzero(m)
            z = z_a - 0.5 * float(problem.R[np.ix_(ix, ix)].sum()) + float(problem.B[ix].sum())
            if z > best[0]:
                best = (z, m, W)
        if best[0] > record + 1e-12:
            history.append((time.perf_counter() - t0, best[0]))
        if interrupted:
            termination = Termination.INTERRUPTED
        return BackendResult(
            selection=best[1],
            assignment=best[2],
            termination=termination,
            history=history,
            info={
                "device": str(device),
                "steps": step,
                "chains": C,
                "t_start": t_start,
                "distinct_final_selections": len(candidates),
            },
        )

    # ---- pieces ----------------------------------------------------------------------
    @staticmethod
    def _swap_deltas(A: Any, R: Any, Bv: Any, sel: Any, mask: Any, red: Any, k: int, chunk: int) -> Any:
        """``(C, n_sel, n_f)`` relaxed objective change of every swap of every chain."""
        import torch

        C, n_sel = sel.shape
        n_f = A.shape[1]
        out = torch.empty(C, n_sel, n_f, dtype=A.dtype, device=A.device)
        At = A.t()  # (n_f, n_c)
        for a in range(0, C, chunk):
            s = sel[a : a + chunk]  # (c, n_sel)
            A_sel = At[s].transpose(1, 2)  # (c, n_c, n_sel)
            top = torch.topk(A_sel, min(k + 1, n_sel), dim=2)
            kth = top.values[:, :, k - 1]  # (c, n_c)
            if n_sel > k:
                nxt = top.values[:, :, k]
            else:
                nxt = torch.full_like(kth, -math.inf)
            member = torch.zeros_like(A_sel).scatter_(2, top.indices[:, :, :k], 1.0)  # (c, n_c, n_sel)
            gain_other = torch.clamp(A[None] - kth[:, :, None], min=0.0)  # (c, n_c, n_f)
            gain_member = torch.maximum(A[None], nxt[:, :, None])
            delta_a = torch.bmm(member.transpose(1, 2), gain_member - gain_other)  # (c, n_sel, n_f)
            delta_a += gain_other.sum(dim=1)[:, None, :]
            delta_a -= (member * A_sel).sum(dim=1)[:, :, None]
            r = red[a : a + chunk]
            r_out = torch.gather(r, 1, s)  # (c, n_sel)
            delta_r = r_out[:, :, None] - r[:, None, :] + R[s]  # R[s]: (c, n_sel, n_f)
            delta_b = Bv[None, None, :] - Bv[s][:, :, None]
            out[a : a + chunk] = delta_a + delta_r + delta_b
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
    def _perturb(mask: np.ndarray, swaps: int, rng: np.random.Generator) -> np.ndarray:
        m = mask.copy()
        on, off = np.flatnonzero(m), np.flatnonzero(~m)
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
        greedy = greedy_selection(problem)
        states = given[: options.num_chains]
        # Remaining chains: the greedy start, then perturbations of it (diverse but good).
        while len(states) < options.num_chains:
            if len(states) == len(given):
                states.append(greedy.copy())
            else:
                states.append(AnnealBackend._perturb(greedy, max(2, n_sel // 3), rng))
        return states
