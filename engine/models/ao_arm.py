"""Any-order ARM with an MLP conditional network (ALGORITHMS.md §3; MaM's MLPRes).

Input: one-hot of K+1 classes per site (class 0 = unknown), so the network sees the set of known sites but never
the order inside it. Output: K logits per site; only the logits of the site generated next are read.
log p_sigma(s) needs the N partial configurations along sigma; they are stacked into one (N*B)-row pass, which on
a CPU is much faster than N separate passes.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .any_order import Conditionals, fixed_cell_conditionals, log_prob_along, sample_along
from .base import AutoregressiveModel
from .conditioning import ConditionEmbedding
from .mlp import ResidualStack


class AOARMMLP(AutoregressiveModel):
    kind = "ao-arm"
    any_order = True

    def __init__(self, n_sites: int, n_species: int = 2, hidden: int = 512, layers: int = 4,
                 symmetric: bool = False, T_scale: float = 1.0, mu_scale: float = 1.0, chunk_rows: int = 4096):
        super().__init__(n_sites, n_species, symmetric)
        self.hidden, self.layers = int(hidden), int(layers)
        self.T_scale, self.mu_scale = float(T_scale), float(mu_scale)
        self.chunk_rows = int(chunk_rows)
        self.embed_in = nn.Linear(n_sites * (n_species + 1), hidden)
        self.cond = ConditionEmbedding(hidden, T_scale, mu_scale)
        self.stack = ResidualStack(hidden, layers)
        # output weights laid out per site so one site's K logits can be read without the full N*K product
        self.out_w = nn.Parameter(torch.empty(n_sites, n_species, hidden))
        self.out_b = nn.Parameter(torch.zeros(n_sites, n_species))
        nn.init.normal_(self.out_w, std=0.01)

    def _hparams(self) -> dict:
        return {"kind": self.kind, "arch": self.arch, "n_sites": self.n_sites, "n_species": self.n_species,
                "hidden": self.hidden, "layers": self.layers, "symmetric": self.symmetric,
                "T_scale": self.T_scale, "mu_scale": self.mu_scale}

    def features(self, tokens: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Hidden representation of partial configurations (tokens 0..K) given condition embeddings c."""
        x = F.one_hot(tokens, self.n_species + 1).to(c.dtype).flatten(1)
        h = F.leaky_relu(self.embed_in(x) + c, 0.2)
        return self.stack(h, c)

    def site_logits(self, h: torch.Tensor, site: torch.Tensor) -> torch.Tensor:
        """(R, K) logits of site[r] from hidden rows h (R, H)."""
        return torch.einsum("rkh,rh->rk", self.out_w[site], h) + self.out_b[site]

    def logits(self, tokens: torch.Tensor, T: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """All (B, N, K) conditional logits for partial configurations ``tokens``."""
        h = self.features(tokens, self.cond(T, mu))
        return torch.einsum("skh,bh->bsk", self.out_w, h) + self.out_b

    def zero_readout(self) -> None:
        """Zero the output layer: every conditional starts uniform (AO-MAM's self-consistent initialisation)."""
        with torch.no_grad():
            self.out_w.zero_(), self.out_b.zero_()

    def conditionals(self, lattice=None, period_mode: str | None = None) -> Conditionals:
        """Conditionals on the model's own cell (``lattice``, if given, must have its number of sites; an MLP has
        no RoPE periods)."""
        return fixed_cell_conditionals(self, lattice, self._site_log_probs, self.cond)

    def _site_log_probs(self, tokens, c, site):
        return F.log_softmax(self.site_logits(self.features(tokens, c), site), -1)

    def _sample_path(self, T, mu, ranks, tokens, free, generator=None):
        return sample_along(self._site_log_probs, self.cond(T, mu), ranks, tokens, free, generator)

    def _log_prob_path(self, s, T, mu, ranks):
        return log_prob_along(self._site_log_probs, self.cond(T, mu), s, ranks, self.chunk_rows)
