"""Fixed-order ARM: a MADE masked MLP in the VAN style (ALGORITHMS.md §2), in raster order.

Hidden unit k carries a degree m_k in 1..N-1; it sees inputs of sites d <= m_k, and the output of site d sees
units with m_k < d, so one pass on a full configuration gives every conditional (log q costs 1 pass; sampling N).
The condition embedding enters every hidden layer and the output unmasked: it is global, not a site.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..progress import check_interrupt
from .base import AutoregressiveModel, tokens_from_spins
from .conditioning import ConditionEmbedding


class MaskedLinear(nn.Linear):
    """The mask follows from the hyper-parameters, so it is not saved (it would double a MADE's file); files written
    before that still load, and a stored mask that is not the derived one is refused."""

    def __init__(self, n_in: int, n_out: int, mask: torch.Tensor):
        super().__init__(n_in, n_out)
        self.register_buffer("mask", mask.to(torch.float32), persistent=False)
        with torch.no_grad():  # Xavier correction for the masked-out fan-in (VAN)
            self.weight.mul_(math.sqrt(mask.numel() / max(float(mask.sum()), 1.0)))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        stored = state_dict.pop(prefix + "mask", None)
        if stored is not None and (stored.shape != self.mask.shape or not torch.equal(stored.to(self.mask), self.mask)):
            error_msgs.append(f"{prefix}mask: the stored mask is not this architecture's")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class FOARMMADE(AutoregressiveModel):
    kind = "fo-arm"
    any_order = False

    def __init__(self, n_sites: int, n_species: int = 2, hidden: int = 512, layers: int = 4,
                 symmetric: bool = False, T_scale: float = 1.0, mu_scale: float = 1.0):
        super().__init__(n_sites, n_species, symmetric)
        self.hidden, self.layers = int(hidden), int(layers)
        self.T_scale, self.mu_scale = float(T_scale), float(mu_scale)
        N, K, H = n_sites, n_species, hidden
        d_in = torch.arange(1, N + 1)
        m = torch.arange(H) % max(N - 1, 1) + 1  # hidden degrees 1..N-1, cycled
        first = (m[:, None] >= d_in[None, :]).repeat_interleave(K, 1)  # input is one-hot of K per site
        hid = m[:, None] >= m[None, :]
        out = (d_in[:, None] > m[None, :]).repeat_interleave(K, 0)
        self.inp = MaskedLinear(N * K, H, first)
        self.hid = nn.ModuleList(MaskedLinear(H, H, hid) for _ in range(layers - 1))
        self.out = MaskedLinear(H, N * K, out)
        self.cond = ConditionEmbedding(H, T_scale, mu_scale)
        self.cond_out = nn.Linear(H, N * K)  # lets the first site's marginal depend on (T, mu)
        with torch.no_grad():
            self.out.weight.mul_(0.1)
            self.cond_out.weight.mul_(0.1)

    def _hparams(self) -> dict:
        return {"kind": self.kind, "arch": self.arch, "n_sites": self.n_sites, "n_species": self.n_species,
                "hidden": self.hidden, "layers": self.layers, "symmetric": self.symmetric,
                "T_scale": self.T_scale, "mu_scale": self.mu_scale}

    def logits(self, tokens: torch.Tensor, T: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        """(B, N, K) raster-order conditionals; unknown sites (token 0) are zeros in the one-hot input."""
        c = self.cond(T, mu)
        x = F.one_hot(tokens, self.n_species + 1)[..., 1:].to(c.dtype).flatten(1)
        h = F.leaky_relu(self.inp(x) + c, 0.2)
        for lin in self.hid:
            h = h + F.leaky_relu(lin(h) + c, 0.2)
        return (self.out(h) + self.cond_out(c)).reshape(-1, self.n_sites, self.n_species)

    def _sample_path(self, T, mu, ranks, tokens, free, generator=None):
        if not bool((ranks == torch.arange(self.n_sites, device=ranks.device)).all()):
            raise ValueError("a fixed-order ARM generates in raster order only")
        B, N = tokens.shape
        log_p = torch.zeros(B, dtype=torch.float64, device=tokens.device)
        for i in range(N):
            check_interrupt()
            todo = free[:, i].clone()
            if not bool(todo.any()):
                continue
            logp = F.log_softmax(self.logits(tokens[todo], T[todo], mu[todo])[:, i], -1)
            k = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1)
            tokens[todo, i] = k + 1
            free[todo, i] = False
            log_p[todo] += logp.gather(1, k[:, None]).squeeze(1).to(torch.float64)
        return log_p

    def _log_prob_path(self, s, T, mu, ranks):
        tokens = tokens_from_spins(s)
        logp = F.log_softmax(self.logits(tokens, T, mu), -1)
        return logp.gather(2, (tokens - 1)[..., None]).squeeze(-1).sum(-1)
