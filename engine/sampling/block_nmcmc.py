"""Block neural MCMC: re-paint window-shaped blocks of a (larger) lattice given all other sites, and accept with
the exact Metropolis-Hastings ratio of that painting move (ALGORITHMS.md §3.6 for the painting walk).

The move. A block B (``block`` sites per axis, at most the model's window) sits at a fixed place inside a window
of the model's cell (centred); the window is put on the torus so that B starts at a uniformly random site
(``positions="random"``), at the next place of a shifted tiling (``"tiled"``), or B is one of a randomly shifted
sub-lattice of blocks far enough apart not to see each other (``"parallel"``, below). Every window site outside B
is a known token taken from the current state; the block's sites are drawn one after another with the painting walk
(:func:`.painting._walk`, one view) in an order drawn uniformly and independently of the state. The proposal is

    q_sigma(x'_B | x_rest) = prod_t p(x'_{b_t} | x_rest in the window, x'_{b_<t}),

and for a Z2-symmetrised model the component aligned with the context: q_+(x'_B | x_rest, mu) when the window's
known spins sum to >= 0, else q_+(-x'_B | -x_rest, -mu). The choice reads x_rest only, which the move leaves alone,
so the reverse move makes the same one; it is what the surroundings ask for (a gauge-trained component holds one
ordered state) and costs half of scoring the mixture.

Why it is exact. Position and order are auxiliary choices drawn independently of the state, so the update is a
mixture of kernels indexed by (position, sigma); each is a Metropolis-Hastings kernel with proposal q_sigma(. |
x_rest) on the block's 2^|B| states, accepted with

    min(1, f(x') q_sigma(x_B | x_rest) / (f(x) q_sigma(x'_B | x_rest))),

where the reverse term scores the current block values along the SAME order and context (teacher forcing; the
context x_rest is unchanged by the move). Each such kernel is reversible with respect to f, hence so is the mixture,
at any lattice size. Re-drawing the order from the state, or scoring the reverse move along another order, would
break this. A tiled sweep composes such kernels in a fixed sequence: f stays invariant (not reversible). Parallel
blocks are placed so that no block lies in another's window or shares an energy term with it (checked on the flip
tables when the layout is built): their kernels then read and write disjoint variables, commute, and their product
- every block proposed and accepted or rejected on its own, all at once - is reversible too. That batches the
network over the blocks of a chain, which is what makes large lattices affordable. The f ratio comes from the flip
tables (:mod:`..montecarlo.flips`): the changed block sites are flipped one at a time, so a proposal costs O(|B|)
model passes and table look-ups, independent of the lattice.
"""

from __future__ import annotations

import numpy as np
import torch

from ..devices import generator_on
from ..errors import LatthermError
from ..lattices import Lattice, parse_size
from ..models.base import AutoregressiveModel
from ..montecarlo.metropolis import SpinChains
from .painting import _walk
from .plan import PaintPlan, PaintStep

POSITIONS = ("parallel", "random", "tiled")


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

    ``propose(spins)`` returns, per chain and block, the block's target sites, the proposed values and the exact
    forward and reverse log q of the move (see the module docstring). ``partners``: per lattice site the sites its
    flip energy reads (:meth:`FlipTables.partners`); without them ``positions="parallel"`` proposes one block at a
    time."""

    def __init__(self, model: AutoregressiveModel, cell: Lattice, lattice: Lattice, block, positions: str = "random",
                 chunk_rows: int = 8192, partners: list | None = None):
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
        self.layout = np.zeros((1, lattice.dim), dtype=np.int64)  # block corners proposed together (shift 0)
        if positions == "parallel" and partners is not None:  # without a polynomial: one block at a time
            self.layout = self._parallel_layout(offset, partners)

    def _parallel_layout(self, offset: np.ndarray, partners: list) -> np.ndarray:
        """(M, dim) corners of the most blocks that can move at once: per axis n = L // s corners spread evenly,
        with the spacing s growing from the window's reach until no block lies in another's window or shares an
        energy term with it (checked here, site by site)."""
        lsize, wsize = np.array(self.lattice.size), np.array(self.cell.size)
        b = np.array(self.size)
        s = np.maximum(np.maximum(wsize - offset, b + offset), b + 1)
        while True:
            n = np.maximum(1, lsize // s)
            axes = [(np.arange(k) * L) // k for k, L in zip(n, lsize)]
            corners = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(lsize))
            if len(corners) == 1 or self._independent(corners, partners):
                return corners
            s = s + 1

    def _independent(self, corners: np.ndarray, partners: list) -> bool:
        """No block's sites in another block's window or flip-energy partners."""
        win = self.window_sites(torch.as_tensor(corners)).numpy()  # (M, Nw)
        blocks = win[:, self.block_local]
        owner = np.full(self.lattice.n_sites, -1)
        for m, sites in enumerate(blocks):
            owner[sites] = m
        for m in range(len(corners)):
            seen = np.concatenate([win[m]] + [partners[i] for i in blocks[m]])
            if np.any((owner[seen] != -1) & (owner[seen] != m)):
                return False
        return True

    @property
    def blocks_per_proposal(self) -> int:
        """Blocks of one chain proposed at once (1 unless positions is "parallel")."""
        return len(self.layout)

    @property
    def rounds_per_sweep(self) -> int:
        """Proposal rounds per chain that touch every site once on average (random, parallel) or cover the torus
        (tiled)."""
        if self.positions == "tiled":
            return len(self.tiles)
        return max(1, -(-self.lattice.n_sites // (self.n_block * self.blocks_per_proposal)))

    @property
    def proposals_per_sweep(self) -> int:
        """Block proposals per chain and sweep."""
        return self.rounds_per_sweep * self.blocks_per_proposal

    def corners(self, n_chains: int, k: int, shift: torch.Tensor | None, generator=None) -> torch.Tensor:
        """(n_chains, M, dim) grid corners of the blocks of round ``k`` of a sweep: uniform sites, tile k moved by
        the sweep's per-chain random ``shift``, or the parallel layout moved to a uniform site."""
        if self.positions == "tiled":
            return (torch.as_tensor(self.tiles[k % len(self.tiles)])[None] + shift)[:, None]
        site = torch.randint(0, self.lattice.n_sites, (n_chains,), generator=generator)
        return self._grid[site][:, None] + torch.as_tensor(self.layout)[None]

    def window_sites(self, corners: torch.Tensor) -> torch.Tensor:
        """(..., Nw) target indices of the windows (model site order) of block corners (..., dim)."""
        g = torch.remainder(corners[..., None, :] + self._window, self._sizes)
        idx = torch.zeros(g.shape[:-1], dtype=torch.long)
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

    def flipped(self, context: torch.Tensor) -> torch.Tensor:
        """(C,) bool: rows whose proposal is the flipped Z2 component (the window's known spins sum to < 0; never
        for a model without the symmetry)."""
        if not self.conditionals.symmetric:
            return torch.zeros(context.shape[0], dtype=torch.bool, device=context.device)
        return (context == 1).sum(1) > (context == 2).sum(1)

    def _component(self, context: torch.Tensor, mu: torch.Tensor):
        """(tokens -> the chosen component's tokens, its own inverse; the component's mu) for the rows' contexts."""
        flip = self.flipped(context)
        sign = torch.where(flip.cpu(), -1.0, 1.0).to(torch.float64)
        return (lambda t: torch.where(flip[:, None], _flip_tokens(t), t)), mu * sign

    def log_q(self, context, truth, key, T, mu) -> torch.Tensor:
        """log q(block = truth | context) of the proposal: the component :meth:`flipped` picks from the context."""
        to_c, mu_c = self._component(context, mu)
        return self.score(to_c(context), to_c(truth), key, T, mu_c)

    @torch.no_grad()
    def propose(self, spins: torch.Tensor, T: torch.Tensor, mu: torch.Tensor, corners: torch.Tensor,
                generator=None, key: torch.Tensor | None = None):
        """For spins (C, N) and block corners (C, dim) or (C, M, dim): (block target sites (C, [M,] b), proposed
        spins (C, [M,] b) float32, log q forward (C, [M]), log q reverse (C, [M])), float64 log q on the CPU.
        ``key`` (C * M, Nw): the order (default uniform noise drawn here, independently of the state)."""
        dev = self.device
        gen = generator_on(generator, dev)
        one = corners.ndim == 2
        corners = corners[:, None] if one else corners
        C, M = corners.shape[:2]
        win = self.window_sites(corners)  # (C, M, Nw)
        Nw = win.shape[-1]
        blk = torch.as_tensor(self.block_local)
        current = ((spins.gather(1, win.reshape(C, M * Nw)) > 0).to(torch.long) + 1).reshape(C * M, Nw).to(dev)
        context = current.clone()
        context[:, blk.to(dev)] = 0
        if key is None:
            key = torch.rand(C * M, Nw, generator=gen, device=dev if gen is None else gen.device)
        key = key.to(dev).to(torch.float64)
        T = T.to(torch.float64).repeat_interleave(M)
        mu = mu.to(torch.float64).repeat_interleave(M)
        to_c, mu_c = self._component(context, mu)
        tokens = to_c(context)  # the chosen component's context, filled in by the walk
        fwd = _walk(self.plan, T.to(dev), mu_c.to(dev), tokens, key, generator=gen)[0]
        proposed = to_c(tokens)
        rev = self.log_q(context, current, key, T, mu)
        new = (2 * proposed[:, blk.to(dev)] - 3).to(torch.float32).cpu().reshape(C, M, -1)
        out = win[..., blk], new, fwd.cpu().reshape(C, M), rev.cpu().reshape(C, M)
        return tuple(v[:, 0] for v in out) if one else out


def block_move(chains: SpinChains, sites: torch.Tensor, new: torch.Tensor, log_q_fwd: torch.Tensor,
               log_q_rev: torch.Tensor, beta: torch.Tensor, mu: torch.Tensor, generator=None,
               logu: torch.Tensor | None = None):
    """Apply the proposed block values ``new`` (C, [M,] b) at ``sites`` (C, [M,] b) of ``chains`` and accept or undo
    each block with its Metropolis-Hastings ratio (M blocks per chain must not interact: see the module docstring).
    Delta E is summed over single flips of the changed sites (flip tables), so the cost is O(b). ``logu``: the log
    uniforms of the test (default drawn here; -inf accepts every finite ratio, 0 keeps only ratios >= 1, +inf
    rejects all). Returns (accepted (C, [M]) bool, Delta E (C, [M]) float64, Delta sum s (C, [M]) float64) of the
    accepted moves, and the log acceptance ratio (C, [M]) of every proposal."""
    one = sites.ndim == 2
    if one:
        sites, new = sites[:, None], new[:, None]
        log_q_fwd, log_q_rev = log_q_fwd[:, None], log_q_rev[:, None]
        logu = None if logu is None else logu[:, None]
    C, M, b = sites.shape
    s = chains.s
    flat = sites.reshape(C, M * b)
    old = s.gather(1, flat).reshape(C, M, b)
    dE = torch.zeros(C, M, dtype=torch.float64)
    for k in range(b):
        i = sites[..., k]
        changed = s.gather(1, i) != new[..., k]
        if bool(changed.any()):
            d = chains.tables.delta(s, i)
            dE += torch.where(changed, d, torch.zeros_like(dE))
            s.scatter_(1, i, new[..., k].to(s.dtype))
    dsum = (new.to(torch.float64) - old.to(torch.float64)).sum(-1)
    log_alpha = -beta[:, None] * (dE - mu[:, None] * dsum) + log_q_rev - log_q_fwd
    if logu is None:
        logu = torch.rand(C, M, generator=generator, dtype=torch.float64).log()
    acc = logu < log_alpha
    if not bool(acc.all()):
        s.scatter_(1, flat, torch.where(acc[..., None], new.to(s.dtype), old).reshape(C, M * b))
    zero = torch.zeros_like(dE)
    out = acc, torch.where(acc, dE, zero), torch.where(acc, dsum, zero), log_alpha
    return tuple(v[:, 0] for v in out) if one else out


__all__ = ["POSITIONS", "BlockProposer", "block_move", "parse_block"]
