"""Any-order marginalization model (AO-MAM; ALGORITHMS.md §4, PAPER Eq. 2): a marginal network beside an AO-ARM.

Two networks with no shared weights, built from the same hyper-parameters:

* ``conditional_net`` (phi): an AO-ARM (:class:`AOARMMLP` or :class:`TransformerAOARM`) giving p_phi(x_j | x_S).
  It draws samples and scores them: :meth:`sample` / :meth:`log_prob` are the conditional net's, so every sample
  carries the *exact* path log-probability that free-energy evaluation and importance sampling need.
* ``marginal_net`` (theta): one pass gives log p_theta(x_S) for any partial lattice (tokens 0 = unknown).

Offset parameterisation (ALGORITHMS.md §4.2, suggestion):

    log p_theta(x_S) = -|S| log K + h_theta(x_S)

with the empty-set target C = 0. The network output h and the conditional net's read-out are zero-initialised, so at
initialisation p_theta and p_phi are uniform and exactly self-consistent (Delta = -|S|logK - logK + (|S|+1)logK = 0),
and nothing
depends on the number of sites N (a Transformer's h is a per-site scalar SUMMED over sites, so it is extensive and
size-consistent). Normalisation is only a soft constraint: training penalises log p_theta(empty; c)^2 per condition,
so report log p_theta as a log-probability only while that value (the "empty_set_drift" metric) stays near 0.

Z2 symmetrisation (``symmetric``, binary systems whose energy is even in s): the model is the mixture
p(x_S) = 1/2 p_c(x_S | mu) + 1/2 p_c(-x_S | -mu) of a component pair (marginal, conditional). A mixture of two
self-consistent components is self-consistent, so training acts on the component (on chains of both
orientations, i.e. at mu and -mu) and every reported log p uses the mixture (:meth:`model_marginal_log_prob`;
sampling and path log p through the base class, exact).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LatthermError
from ..progress import check_interrupt
from .ao_arm import AOARMMLP
from .any_order import Conditionals
from .base import AutoregressiveModel, z2_mixture
from .conditioning import ConditionEmbedding
from .mlp import ResidualStack
from .transformer import TransformerAOARM


class MarginalMLP(nn.Module):
    """h_theta(x_S): residual MLP on the flattened one-hot (K+1 classes per site) plus the condition embedding -> 1."""

    def __init__(self, n_sites: int, n_species: int, hidden: int, layers: int, T_scale: float, mu_scale: float):
        super().__init__()
        self.n_species = int(n_species)
        self.embed_in = nn.Linear(n_sites * (n_species + 1), hidden)
        self.cond = ConditionEmbedding(hidden, T_scale, mu_scale)
        self.stack = ResidualStack(hidden, layers)
        self.head = nn.Linear(hidden, 1)
        nn.init.zeros_(self.head.weight)  # h = 0 at init: uniform and exactly self-consistent
        nn.init.zeros_(self.head.bias)

    def forward(self, tokens: torch.Tensor, T: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        c = self.cond(T, mu)
        x = F.one_hot(tokens, self.n_species + 1).to(c.dtype).flatten(1)
        h = F.leaky_relu(self.embed_in(x) + c, 0.2)
        return self.head(self.stack(h, c)).squeeze(-1)


class MarginalTransformer(TransformerAOARM):
    """h_theta(x_S): the TransformerAOARM encoder (periodic RoPE, condition added to every token) with a per-site
    scalar head SUMMED over sites (extensive, so the same weights serve other cell sizes)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.head = nn.Linear(self.hidden, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, tokens: torch.Tensor, T: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        h = self.encode(tokens, self.condition(T, mu), self.rope())
        return self.head(h).squeeze(-1).sum(-1)


class MarginalizationModel(AutoregressiveModel):
    """AO-MAM: ``marginal_net`` (log p_theta of partial lattices) + ``conditional_net`` (an AO-ARM)."""

    kind = "ao-mam"
    arch = "mlp"
    any_order = True

    def __init__(self, n_sites: int | None = None, n_species: int = 2, hidden: int = 512, layers: int = 4,
                 symmetric: bool = False, T_scale: float = 1.0, mu_scale: float = 1.0, **arch_kw):
        common = dict(n_sites=n_sites, n_species=n_species, hidden=hidden, layers=layers, T_scale=T_scale,
                      mu_scale=mu_scale)
        if self.arch == "transformer":
            cond = TransformerAOARM(**common, **arch_kw)
            marg = MarginalTransformer(**common, **arch_kw)
        else:
            if arch_kw.keys() - {"chunk_rows"}:
                raise LatthermError(f"ao-mam/mlp: unexpected hyper-parameters {sorted(arch_kw)}")
            cond = AOARMMLP(**common, **arch_kw)
            marg = MarginalMLP(cond.n_sites, n_species, hidden, layers, T_scale, mu_scale)
        cond.zero_readout()  # p_phi starts uniform, so the pair is exactly self-consistent at init
        super().__init__(cond.n_sites, n_species, symmetric)
        self.hidden, self.layers = int(hidden), int(layers)
        self.T_scale, self.mu_scale = float(T_scale), float(mu_scale)
        self.conditional_net = cond
        self.marginal_net = marg

    def hparams(self) -> dict:
        # the conditional net is the (non-symmetric) component; the pair carries the Z2 flag
        return {**self.conditional_net.hparams(), "kind": self.kind, "arch": self.arch, "symmetric": self.symmetric}

    # ---- marginal network -------------------------------------------------------------------------------------
    def marginal_log_prob(self, tokens: torch.Tensor, T, mu) -> torch.Tensor:
        """log p_theta(x_S | T, mu) for partial lattices ``tokens`` (B, N) in 0..K (0 = unknown), one pass, with
        gradient: -|S| log K + h_theta(x_S). The empty lattice should give 0 (soft constraint)."""
        T, mu = self._conditions(T, mu, tokens.shape[0])
        h = self.marginal_net(tokens, T, mu)
        known = (tokens > 0).sum(-1).to(h.dtype)
        return h - known * math.log(self.n_species)

    def model_marginal_log_prob(self, tokens: torch.Tensor, T, mu) -> torch.Tensor:
        """log p(x_S) of the model's distribution: the component's :meth:`marginal_log_prob`, or for a symmetric
        model the Z2 mixture log(1/2 p_c(x_S | mu) + 1/2 p_c(-x_S | -mu)) (one pass over both)."""
        if not self.symmetric:
            return self.marginal_log_prob(tokens, T, mu)
        T, mu = self._conditions(T, mu, tokens.shape[0])
        flipped = torch.where(tokens > 0, self.n_species + 1 - tokens, tokens)  # 1 <-> 2, unknown stays 0
        B = tokens.shape[0]
        g = self.marginal_log_prob(torch.cat([tokens, flipped]), torch.cat([T, T]), torch.cat([mu, -mu]))
        return z2_mixture(g[:B], g[B:])

    # ---- conditional network ----------------------------------------------------------------------------------
    @property
    def any_size(self) -> bool:
        return self.conditional_net.any_size

    @property
    def train_lattice(self):
        return self.conditional_net.train_lattice

    def conditionals(self, lattice=None, period_mode: str | None = None) -> Conditionals:
        """The conditional network's conditionals; the pair, not its (plain) component network, carries the Z2
        flag, so a symmetric AO-MAM paints and samples the same mixture."""
        return replace(self.conditional_net.conditionals(lattice, period_mode), symmetric=self.symmetric)

    def site_log_probs(self, tokens: torch.Tensor, T: torch.Tensor, mu: torch.Tensor, site: torch.Tensor):
        """(B, K) log p_phi(x_site[b] = k | tokens[b]) of the component for (B,) conditions and sites."""
        cond = self.conditional_net.conditionals()
        return cond.site_log_probs(tokens, cond.condition(T, mu), site)

    def logits(self, tokens: torch.Tensor, T, mu) -> torch.Tensor:
        """All (B, N, K) conditional logits of the conditional network."""
        T, mu = self._conditions(T, mu, tokens.shape[0])
        return self.conditional_net.logits(tokens, T, mu)

    def _sample_path(self, T, mu, ranks, tokens, free, generator=None):
        return self.conditional_net._sample_path(T, mu, ranks, tokens, free, generator)

    def _log_prob_path(self, s, T, mu, ranks):
        return self.conditional_net._log_prob_path(s, T, mu, ranks)


class MarginalizationMLP(MarginalizationModel):
    arch = "mlp"


class MarginalizationTransformer(MarginalizationModel):
    arch = "transformer"


@torch.no_grad()
def block_gibbs(model: MarginalizationModel, tokens: torch.Tensor, T: torch.Tensor, mu: torch.Tensor,
                ranks: torch.Tensor, k: int, generator=None) -> torch.Tensor:
    """One AO block-Gibbs update per chain (ALGORITHMS.md §4.6): erase the k sites of highest rank and redraw them
    one by one in rank order from the conditional net. Returns new tokens (B, N) in 1..K; ``tokens`` is not
    modified. If the conditionals come from one joint p_phi, this leaves p_phi( . | T, mu) invariant."""
    B, N = tokens.shape
    x = tokens.clone()
    x[ranks >= N - k] = 0
    site_at = ranks.argsort(-1)
    rows = torch.arange(B, device=x.device)
    for t in range(N - k, N):
        check_interrupt()
        site = site_at[:, t]
        logp = model.site_log_probs(x, T, mu, site)
        x[rows, site] = torch.multinomial(logp.exp().float(), 1, generator=generator).squeeze(1) + 1
    return x


__all__ = ["MarginalizationModel", "MarginalizationMLP", "MarginalizationTransformer", "MarginalMLP",
           "MarginalTransformer", "block_gibbs"]
