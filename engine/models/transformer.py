"""Any-order ARM with a Transformer conditional network and periodic axial RoPE (ALGORITHMS.md §3, §5, §6).

Input: one token per site (K+1 classes, 0 = unknown) embedded to width W, plus the (T, mu) embedding ADDED to every
token; pre-LN encoder blocks with full (non-causal) attention; RoPE on Q and K per lattice axis; NO absolute position
embedding; a per-token head gives K logits. With the condition added uniformly and only relative (periodic) position
information, the network is exactly translation-equivariant on the torus.

Size. The network has no fixed number of sites: it is built for a lattice *kind* (square 2D, fcc 3D) and remembers
its training cell (``size``), which fixes the RoPE frequency integers and the default n_sites (so checkpoints load
and are checked like any other model). To run on another supercell, take a view::

    big = model.for_lattice(lattice_for("square", "20x20"), period_mode="target")
    big.sample(T, mu, batch)           # n_sites = 400, shares the parameters of ``model``

A view is an :class:`AutoregressiveModel` whose n_sites is the new cell's; it holds no parameters of its own (it is
not meant to be saved: save the underlying model). ``period_mode`` picks the RoPE periods on the new cell:
"trained" keeps the training cell's periods (exact only if the new cell is a multiple of it), "target" recomputes
them from the new cell (see :func:`..rope.rope_periods`). Nothing is mutated, so views of several sizes can coexist.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LatthermError
from ..lattices import Lattice, lattice_for
from .any_order import Conditionals, log_prob_along, sample_along
from .base import AutoregressiveModel
from .conditioning import ConditionEmbedding, condition_features
from .rope import PERIOD_MODES, apply_rope, axial_frequencies, axis_chunk, rope_periods, rope_tables

_LATTICE_DIMS = {"square": 2, "fcc": 3}


class _Block(nn.Module):
    """Pre-LN encoder block: h += Attn(LN h) with RoPE on Q, K; h += FF(LN h)."""

    def __init__(self, width: int, heads: int, ff: int):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.ln2 = nn.LayerNorm(width)
        self.ff = nn.Sequential(nn.Linear(width, ff), nn.GELU(), nn.Linear(ff, width))

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        B, N, W = h.shape
        qkv = self.qkv(self.ln1(h)).view(B, N, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rope(qkv[:2], cos, sin).unbind(0)  # (B, H, N, d_h), q and k rotated in one pass
        v = qkv[2]
        a = F.scaled_dot_product_attention(q, k, v)  # no mask: every site sees every site
        h = h + self.proj(a.transpose(1, 2).reshape(B, N, W))
        return h + self.ff(self.ln2(h))


class TransformerAOARM(AutoregressiveModel):
    """AO-ARM Transformer for one lattice kind; runs on any supercell of that kind (see module docstring)."""

    kind = "ao-arm"
    arch = "transformer"
    any_order = True
    any_size = True

    def __init__(self, n_sites: int | None = None, n_species: int = 2, hidden: int = 64, layers: int = 2,
                 heads: int = 4, ff: int | None = None, symmetric: bool = False, T_scale: float = 1.0,
                 mu_scale: float = 1.0, lattice: str = "square", size=None, period_mode: str = "trained",
                 chunk_rows: int = 2048):
        kind = lattice.kind if isinstance(lattice, Lattice) else str(lattice).lower()
        if kind not in _LATTICE_DIMS:
            raise LatthermError(f"transformer: unknown lattice kind {kind!r} (square, fcc)")
        if size is None and isinstance(lattice, Lattice):
            size = lattice.size
        if size is None:
            # only a square L x L cell can be inferred from its number of sites
            L = math.isqrt(int(n_sites or 0))
            if kind != "square" or L * L != int(n_sites or 0) or L == 0:
                raise LatthermError("transformer: give the training cell (size=...) of the lattice")
            size = (L, L)
        train = lattice_for(kind, list(size))
        if n_sites is not None and int(n_sites) != train.n_sites:
            raise LatthermError(f"transformer: n_sites={n_sites} does not match a {kind} {train.label} cell")
        if period_mode not in PERIOD_MODES:
            raise LatthermError(f"unknown RoPE period mode {period_mode!r} (choose from: {', '.join(PERIOD_MODES)})")
        super().__init__(train.n_sites, n_species, symmetric)
        if hidden % heads:
            raise LatthermError(f"transformer: width {hidden} is not divisible by {heads} heads")
        self.lattice_kind, self.train_size, self.dim = kind, tuple(train.size), train.dim
        self.train_lattice = train
        self.hidden, self.layers, self.heads = int(hidden), int(layers), int(heads)
        self.ff_width = int(ff) if ff else int(hidden)
        self.T_scale, self.mu_scale = float(T_scale), float(mu_scale)
        self.period_mode = period_mode
        self.chunk_rows = int(chunk_rows)
        head_dim = self.hidden // self.heads
        self.rope_pairs = axis_chunk(head_dim, self.dim) // 2  # pairs per axis; remainder channels unrotated
        self.freqs = axial_frequencies(self.train_size, self.rope_pairs)  # (D, pairs) integers, fixed by training
        self.embed = nn.Embedding(n_species + 1, self.hidden)
        self.cond = ConditionEmbedding(self.hidden, T_scale, mu_scale)
        self.blocks = nn.ModuleList(_Block(self.hidden, self.heads, self.ff_width) for _ in range(self.layers))
        self.ln_out = nn.LayerNorm(self.hidden)
        self.head = nn.Linear(self.hidden, n_species)
        self._tables: dict = {}

    def _hparams(self) -> dict:
        return {"kind": self.kind, "arch": self.arch, "n_sites": self.n_sites, "n_species": self.n_species,
                "hidden": self.hidden, "layers": self.layers, "heads": self.heads, "ff": self.ff_width,
                "symmetric": self.symmetric, "T_scale": self.T_scale, "mu_scale": self.mu_scale,
                "lattice": self.lattice_kind, "size": list(self.train_size), "period_mode": self.period_mode}

    # ---- geometry --------------------------------------------------------------------------------------------
    def resolve_lattice(self, lattice=None) -> Lattice:
        """A Lattice of this model's kind from a Lattice, a size ('20x20', (4, 4, 8)) or None (training cell)."""
        if lattice is None:
            return self.train_lattice
        if not isinstance(lattice, Lattice):
            lattice = lattice_for(self.lattice_kind, lattice if isinstance(lattice, str) else list(lattice))
        if lattice.kind != self.lattice_kind or lattice.dim != self.dim:
            raise LatthermError(f"a transformer trained on a {self.lattice_kind} lattice cannot run on a "
                                f"{lattice.kind} {lattice.label} cell")
        return lattice

    def periods(self, lattice=None, period_mode: str | None = None) -> tuple[int, ...]:
        """RoPE periods used on ``lattice`` (raises if "trained" periods do not tile it)."""
        lat = self.resolve_lattice(lattice)
        return rope_periods(self.train_size, lat.size, period_mode or self.period_mode)

    def rope(self, lattice=None, period_mode: str | None = None):
        """cos, sin tables (N, D * pairs) for ``lattice`` in the parameters' dtype and device (cached)."""
        lat = self.resolve_lattice(lattice)
        per = self.periods(lat, period_mode)
        w = self.embed.weight
        key = (lat.kind, lat.size, per, w.dtype, str(w.device))
        if key not in self._tables:
            self._tables[key] = rope_tables(lat.grid, per, self.freqs, dtype=w.dtype, device=w.device)
        return self._tables[key]

    def for_lattice(self, lattice, period_mode: str | None = None) -> "TransformerCellView":
        """This model as an AutoregressiveModel on another supercell (parameters shared, nothing copied)."""
        lat = self.resolve_lattice(lattice)
        self.periods(lat, period_mode)  # fail now, not at the first sample
        return TransformerCellView(self, lat, period_mode or self.period_mode)

    def conditionals(self, lattice=None, period_mode: str | None = None) -> Conditionals:
        """Conditionals on ``lattice`` (a Lattice or size of this model's kind; default the training cell) with the
        RoPE periods of ``period_mode`` (default: the model's); periods that do not tile the cell fail here."""
        lat = self.resolve_lattice(lattice)
        tables = self.rope(lat, period_mode)
        return Conditionals(self._site_log_probs(tables), self.condition, lat.n_sites, self.symmetric,
                            self.embed.weight.device, self.mode_log_weights)

    def zero_readout(self) -> None:
        """Zero the output head: every conditional starts uniform (AO-MAM's self-consistent initialisation)."""
        with torch.no_grad():
            self.head.weight.zero_(), self.head.bias.zero_()

    # ---- network ---------------------------------------------------------------------------------------------
    def condition(self, T: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """(B, W) condition embedding, in the parameters' dtype (so a float64 model stays float64)."""
        w = self.embed.weight
        feats = condition_features(T, mu, self.T_scale, self.mu_scale).to(dtype=w.dtype, device=w.device)
        return self.cond.net(feats)

    def encode(self, tokens: torch.Tensor, c: torch.Tensor, tables) -> torch.Tensor:
        """(B, N, W) final hidden states for tokens (B, N) in 0..K, condition embeddings c (B, W)."""
        cos, sin = tables
        h = self.embed(tokens) + c[:, None, :]
        for blk in self.blocks:
            h = blk(h, cos, sin)
        return self.ln_out(h)

    def logits(self, tokens: torch.Tensor, T, mu, lattice=None, period_mode: str | None = None) -> torch.Tensor:
        """All (B, N, K) conditional logits of partial configurations ``tokens`` on ``lattice`` (default: the
        training cell). T, mu: (B,) tensors or scalars."""
        B = tokens.shape[0]
        T, mu = self._conditions(T, mu, B)
        tables = self.rope(lattice, period_mode)
        if tables[0].shape[0] != tokens.shape[1]:
            raise LatthermError(f"tokens have {tokens.shape[1]} sites but the cell has {tables[0].shape[0]}")
        return self.head(self.encode(tokens, self.condition(T, mu), tables))

    # ---- paths -----------------------------------------------------------------------------------------------
    def _site_log_probs(self, tables):
        """site_log_probs for :mod:`.any_order` on the cell whose RoPE ``tables`` are given."""
        def site_log_probs(tokens, c, site):
            h = self.encode(tokens, c, tables)
            return F.log_softmax(self.head(h[torch.arange(len(site), device=h.device), site]), -1)
        return site_log_probs

    def _path_sample(self, tables, T, mu, ranks, tokens, free, generator=None):
        return sample_along(self._site_log_probs(tables), self.condition(T, mu), ranks, tokens, free, generator)

    def _path_log_prob(self, tables, s, T, mu, ranks):
        return log_prob_along(self._site_log_probs(tables), self.condition(T, mu), s, ranks, self.chunk_rows)

    def _sample_path(self, T, mu, ranks, tokens, free, generator=None):
        return self._path_sample(self.rope(), T, mu, ranks, tokens, free, generator)

    def _log_prob_path(self, s, T, mu, ranks):
        return self._path_log_prob(self.rope(), s, T, mu, ranks)


class TransformerCellView(AutoregressiveModel):
    """A :class:`TransformerAOARM` on a given supercell: sample/log_prob with n_sites = that cell's sites."""

    kind = "ao-arm"
    arch = "transformer"
    any_order = True
    any_size = True

    def __init__(self, net: TransformerAOARM, lattice: Lattice, period_mode: str):
        super().__init__(lattice.n_sites, net.n_species, net.symmetric)
        self.net = net
        self.lattice = lattice
        self.period_mode = period_mode

    def hparams(self) -> dict:
        return self.net.hparams()

    def mode_log_weights(self, T, mu):
        return self.net.mode_log_weights(T, mu)

    @property
    def train_lattice(self) -> Lattice:
        return self.net.train_lattice

    def for_lattice(self, lattice, period_mode: str | None = None) -> "TransformerCellView":
        return self.net.for_lattice(lattice, period_mode or self.period_mode)

    def conditionals(self, lattice=None, period_mode: str | None = None) -> Conditionals:
        """The network's conditionals, by default on this view's cell and periods."""
        return self.net.conditionals(self.lattice if lattice is None else lattice, period_mode or self.period_mode)

    def logits(self, tokens: torch.Tensor, T, mu) -> torch.Tensor:
        return self.net.logits(tokens, T, mu, self.lattice, self.period_mode)

    def _sample_path(self, T, mu, ranks, tokens, free, generator=None):
        return self.net._path_sample(self.net.rope(self.lattice, self.period_mode), T, mu, ranks, tokens, free,
                                     generator)

    def _log_prob_path(self, s, T, mu, ranks):
        return self.net._path_log_prob(self.net.rope(self.lattice, self.period_mode), s, T, mu, ranks)


__all__ = ["TransformerAOARM", "TransformerCellView"]
