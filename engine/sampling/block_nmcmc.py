"""Block neural MCMC: re-paint one window-shaped block of a (larger) lattice given all other sites, and accept with
the exact Metropolis-Hastings ratio of that painting move (ALGORITHMS.md §3.6 for the painting walk).

The move. A block B (``block`` sites per axis, at most the model's window) sits at a fixed place inside a window
of the model's cell (centred); the window is put on the torus so that B starts at a uniformly random site (or at
the next place of a shifted tiling, ``positions="tiled"``). Every window site outside B is a known token taken
from the current state; the block's sites are drawn one after another with the painting walk
(:func:`.painting._walk`, one view) in an order drawn uniformly and independently of the state. The proposal is

    q_sigma(x'_B | x_rest) = prod_t p(x'_{b_t} | x_rest in the window, x'_{b_<t}),

and for a Z2-symmetrised model the mixture [q_sigma(x'_B | x_rest, mu) + q_sigma(-x'_B | -x_rest, -mu)] / 2.

Why it is exact. Position and order are auxiliary choices drawn independently of the state, so the update is a
mixture of kernels indexed by (position, sigma); each is a Metropolis-Hastings kernel with proposal q_sigma(. |
x_rest) on the block's 2^|B| states, accepted with

    min(1, f(x') q_sigma(x_B | x_rest) / (f(x) q_sigma(x'_B | x_rest))),

where the reverse term scores the current block values along the SAME order and context (teacher forcing; the
context x_rest is unchanged by the move). Each such kernel is reversible with respect to f, hence so is the mixture,
at any lattice size. Re-drawing the order from the state, or scoring the reverse move along another order, would
break this. A tiled sweep composes such kernels in a fixed sequence: f stays invariant (not reversible). The f ratio
comes from the flip tables (:mod:`..montecarlo.flips`): the changed block sites are flipped one at a time, so a
proposal costs O(|B|) model passes and table look-ups, independent of the lattice.
"""

from __future__ import annotations

import numpy as np
import torch

from ..devices import generator_on
from ..errors import LatthermError
from ..lattices import Lattice, parse_size
from ..models.base import AutoregressiveModel, z2_flip, z2_mixture
from ..montecarlo.metropolis import SpinChains
from .painting import _walk
from .plan import PaintPlan, PaintStep

POSITIONS = ("random", "tiled")


def parse_block(block, dim: int) -> tuple[int, ...]:
    """'2x2' / (2, 2) / 2 -> a per-axis block size of ``dim`` axes."""
    if isinstance(block, (int, np.integer)) and not isinstance(block, bool):
        size = (int(block),) * dim
    else:
        size = parse_size(block)
    if len(size) != dim:
        raise LatthermError(f"block {'x'.join(map(str, size))} must have {dim} extents for a {dim}D lattice")
    return size


def _flip_tokens(tokens: torch.Tensor) -> torch.Tensor:
    """The Z2 image of tokens: species 1 <-> 2, unknown (0) stays unknown."""
    return torch.where(tokens > 0, 3 - tokens, tokens)


class BlockProposer:
    """Painting proposals of one block shape on ``lattice`` with ``model``'s conditionals on the window ``cell``.

    ``propose(spins)`` returns, per chain, the block's target sites, the proposed values and the exact forward and
    reverse log q of the move (see the module docstring)."""

    def __init__(self, model: AutoregressiveModel, cell: Lattice, lattice: Lattice, block, positions: str = "random",
                 chunk_rows: int = 8192):
        if not model.any_order:
            raise LatthermError(f"block neural MCMC needs an any-order (ao-arm or ao-mam) model, not a {model.kind}")
        if cell.kind != lattice.kind:
            raise LatthermError(f"a model of a {cell.kind} lattice cannot update a {lattice.kind} lattice")
        if positions not in POSITIONS:
            raise LatthermError(f"unknown block positions {positions!r} (choose from: {', '.join(POSITIONS)})")
        size = parse_block(block, lattice.dim)
        wsize, lsize = tuple(cell.size), tuple(lattice.size)
        label = "x".join(map(str, size))
        if any(b > w for b, w in zip(size, wsize)):
            raise LatthermError(f"block {label} is larger than the model's window {cell.label}")
        if any(b > n for b, n in zip(size, lsize)):
            raise LatthermError(f"block {label} is larger than the {lattice.label} lattice")
        if any(w > n for w, n in zip(wsize, lsize)):
            raise LatthermError(f"the model's window {cell.label} does not fit on the {lattice.label} lattice")
        self.model, self.cell, self.lattice, self.size, self.positions = model, cell, lattice, size, positions
        self.chunk_rows = int(chunk_rows)
        self.conditionals = model.conditionals(cell)
        self.device = self.conditionals.device
        offset = np.array([(w - b) // 2 for w, b in zip(wsize, size)])
        g = cell.grid  # (Nw, dim) window grid in the model's site order
        inside = np.all((g >= offset) & (g < offset + np.array(size)), axis=1)
        self.block_local = np.flatnonzero(inside)  # (b,) window positions of the block, in window site order
        self.window_from_block = g - offset  # window grid relative to the block's first corner
        self.n_block = int(inside.sum())
        mask = ~inside
        self.plan = PaintPlan(cell, mask, np.zeros(cell.n_sites), [PaintStep(self.block_local, [np.arange(cell.n_sites)])],
                              self.conditionals, "windows", wsize, wsize, None)
        # tiling: block corners at multiples of the block size (the last ones overlap on a torus it does not divide)
        axes = [np.arange(0, n, b) for n, b in zip(lsize, size)]
        self.tiles = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, lattice.dim)
        self._grid = torch.as_tensor(lattice.grid)
        self._window = torch.as_tensor(self.window_from_block)
        self._sizes = torch.as_tensor(lsize)

    @property
    def proposals_per_sweep(self) -> int:
        """Block proposals per chain that touch every site once on average (random) or cover the torus (tiled)."""
        if self.positions == "tiled":
            return len(self.tiles)
        return max(1, -(-self.lattice.n_sites // self.n_block))

    def corners(self, n_chains: int, k: int, shift: torch.Tensor | None, generator=None) -> torch.Tensor:
        """(n_chains, dim) grid corners of the blocks of proposal ``k`` of a sweep: uniform sites, or tile k moved
        by the sweep's per-chain random ``shift``."""
        if self.positions == "random":
            site = torch.randint(0, self.lattice.n_sites, (n_chains,), generator=generator)
            return self._grid[site]
        return torch.as_tensor(self.tiles[k % len(self.tiles)])[None] + shift

    def window_sites(self, corners: torch.Tensor) -> torch.Tensor:
        """(C, Nw) target indices of each chain's window (model site order) for block corners (C, dim)."""
        g = torch.remainder(corners[:, None, :] + self._window[None], self._sizes)
        idx = torch.zeros(g.shape[:2], dtype=torch.long)
        for k, n in enumerate(self.lattice.size):
            idx = idx * n + g[..., k]
        return idx

    # ---- log q of a block given its window context ----------------------------------------------------------------
    def _conditions(self, T: torch.Tensor, mu: torch.Tensor):
        return self.conditionals.condition(T.to(self.device), mu.to(self.device))

    def score(self, context: torch.Tensor, truth: torch.Tensor, key: torch.Tensor, T, mu) -> torch.Tensor:
        """Teacher-forced log q_sigma(block = truth | context) (C,) float64 of one Z2 component: ``context`` (C, Nw)
        window tokens (0 on the block), ``truth`` (C, Nw) tokens holding the block values, ``key`` (C, Nw) the
        order (block sites by increasing key, as the walk takes them). All |B| partial windows go through the
        network in stacked passes, the same sum the walk forms one site at a time."""
        cond = self.conditionals
        blk = torch.as_tensor(self.block_local, device=self.device)
        C, b = context.shape[0], blk.numel()
        seq = blk[key[:, blk].argsort(-1)]  # (C, b) block sites in generation order
        rank = torch.empty_like(seq)
        rank.scatter_(1, key[:, blk].argsort(-1), torch.arange(b, device=self.device).expand(C, -1))
        c = self._conditions(T, mu)
        out = torch.zeros(C, dtype=torch.float64, device=self.device)
        per = max(1, self.chunk_rows // max(C, 1))
        for t0 in range(0, b, per):
            ts = torch.arange(t0, min(b, t0 + per), device=self.device)
            x = context[None].repeat(len(ts), 1, 1)  # (S, C, Nw)
            known = rank[None] < ts[:, None, None]  # (S, C, b): block sites generated before step t
            x[:, :, blk] = torch.where(known, truth[:, blk][None], torch.zeros((), dtype=x.dtype, device=self.device))
            site = seq[:, ts].T.reshape(-1)  # (S*C,)
            logp = cond.site_log_probs(x.reshape(-1, x.shape[-1]), c.repeat(len(ts), *([1] * (c.ndim - 1))), site)
            val = truth.repeat(len(ts), 1)[torch.arange(site.numel(), device=self.device), site] - 1
            out += logp.gather(1, val[:, None]).squeeze(1).to(torch.float64).reshape(len(ts), C).sum(0)
        return out

    def log_q(self, context, truth, key, T, mu) -> torch.Tensor:
        """log q(block = truth | context) of the proposal, the Z2 mixture for a symmetric model."""
        lp = self.score(context, truth, key, T, mu)
        if self.conditionals.symmetric:
            lp = z2_mixture(lp, self.score(_flip_tokens(context), _flip_tokens(truth), key, T, -mu),
                            self.conditionals.log_w(T, mu))
        return lp

    @torch.no_grad()
    def propose(self, spins: torch.Tensor, T: torch.Tensor, mu: torch.Tensor, corners: torch.Tensor,
                generator=None, key: torch.Tensor | None = None):
        """For spins (C, N) and block corners (C, dim): (block target sites (C, b), proposed spins (C, b) float32,
        log q forward (C,), log q reverse (C,)), float64 log q on the CPU. ``key`` (C, Nw): the order (default
        uniform noise drawn here, independently of the state)."""
        dev = self.device
        gen = generator_on(generator, dev)
        C = spins.shape[0]
        win = self.window_sites(corners)  # (C, Nw)
        blk = torch.as_tensor(self.block_local)
        current = ((spins.gather(1, win) > 0).to(torch.long) + 1).to(dev)  # (C, Nw) tokens of the current state
        context = current.clone()
        context[:, blk.to(dev)] = 0
        if key is None:
            key = torch.rand(C, self.cell.n_sites, generator=gen, device=dev if gen is None else gen.device)
        key = key.to(dev)
        T, mu = T.to(torch.float64), mu.to(torch.float64)
        sign = torch.ones(C, dtype=torch.float64)
        log_w = None
        if self.conditionals.symmetric:  # draw one Z2 component, then flip
            log_w = self.conditionals.log_w(T, mu)
            sign = torch.where(z2_flip(log_w, C, torch.device("cpu"), generator), -1.0, 1.0).to(torch.float64)
        flip = (sign < 0).to(dev)
        context_c = torch.where(flip[:, None], _flip_tokens(context), context)  # the drawn component's context
        tokens = context_c.clone()
        mu_c = mu * sign
        fwd = _walk(self.plan, T.to(dev), mu_c.to(dev), tokens, key.to(torch.float64), generator=gen)[0]
        if self.conditionals.symmetric:  # the other component of the same proposal, along the same order
            fwd = z2_mixture(fwd, self.score(_flip_tokens(context_c), _flip_tokens(tokens), key, T, -mu_c), log_w,
                             flip)
        proposed = torch.where(flip[:, None], _flip_tokens(tokens), tokens)
        rev = self.log_q(context, current, key, T, mu)
        new = (2 * proposed[:, blk.to(dev)] - 3).to(torch.float32).cpu()
        return win[:, blk], new, fwd.cpu(), rev.cpu()


def block_move(chains: SpinChains, sites: torch.Tensor, new: torch.Tensor, log_q_fwd: torch.Tensor,
               log_q_rev: torch.Tensor, beta: torch.Tensor, mu: torch.Tensor, generator=None,
               logu: torch.Tensor | None = None):
    """Apply the proposed block values ``new`` (C, b) at ``sites`` (C, b) of ``chains`` and accept or undo with the
    Metropolis-Hastings ratio. Delta E is summed over single flips of the changed sites (flip tables), so the cost
    is O(b). ``logu``: the log uniforms of the test (default drawn here; -inf accepts every finite ratio, 0 keeps
    only ratios >= 1, +inf rejects all). Returns (accepted (C,) bool, Delta E (C,) float64, Delta sum s (C,) float64)
    of the accepted moves, and the log acceptance ratio (C,) of every proposal."""
    rows = chains.rows
    old = chains.s[rows[:, None], sites].clone()
    dE = torch.zeros(sites.shape[0], dtype=torch.float64)
    for k in range(sites.shape[1]):
        i = sites[:, k]
        changed = chains.s[rows, i] != new[:, k]
        if bool(changed.any()):
            dE += torch.where(changed, chains.tables.delta(chains.s, i), torch.zeros_like(dE))
            chains.s[rows, i] = new[:, k]
    dsum = (new.to(torch.float64) - old.to(torch.float64)).sum(1)
    log_alpha = -beta * (dE - mu * dsum) + log_q_rev - log_q_fwd
    if logu is None:
        logu = torch.rand(sites.shape[0], generator=generator, dtype=torch.float64).log()
    acc = logu < log_alpha
    back = ~acc
    if bool(back.any()):
        chains.s[rows[back][:, None], sites[back]] = old[back]
    zero = torch.zeros_like(dE)
    return acc, torch.where(acc, dE, zero), torch.where(acc, dsum, zero), log_alpha


__all__ = ["POSITIONS", "BlockProposer", "block_move", "parse_block"]
