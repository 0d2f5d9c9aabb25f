"""Generating and scoring along an arbitrary order, shared by every any-order network (MLP, Transformer).

A network enters only through ``site_log_probs(tokens, c, site) -> (R, K)``: the log-conditionals of site[r] given
the partial configuration tokens[r] (0 = unknown) and the condition embedding c[r]. The order is a rank matrix:
ranks[b, j] = step at which site j is generated (ALGORITHMS.md §3.2). Outside the model (painting) the same
function reaches a sampler as :class:`Conditionals`, from ``model.conditionals(lattice)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import LatthermError
from ..progress import check_interrupt
from .base import tokens_from_spins

SiteLogProbs = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Conditionals:
    """An any-order model's conditionals on one cell of ``n_sites`` sites:
    ``site_log_probs(tokens, condition(T, mu), site)`` -> (R, K) log p(x_site | known tokens). A ``symmetric``
    model is the Z2 mixture (:func:`.base.z2_mixture`) of these conditionals at (s, mu) and at (-s, -mu), so a
    sampler draws one orientation, flips, and scores the other one along the same order."""

    site_log_probs: SiteLogProbs
    condition: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (T, mu) (R,) -> c (R, ...)
    n_sites: int
    symmetric: bool
    device: torch.device
    #: (T, mu) -> (log pi, log(1 - pi)) of the Z2 mixture, or None (pi = 1/2): the model's mode weight
    mode_log_weights: Callable | None = None

    def log_w(self, T: torch.Tensor, mu: torch.Tensor):
        """The mixture's (log pi, log(1 - pi)) at (T, mu) on this device, or None for pi = 1/2."""
        if self.mode_log_weights is None:
            return None
        return self.mode_log_weights(T.to(self.device), mu.to(self.device))


def fixed_cell_conditionals(model, lattice, site_log_probs: SiteLogProbs, condition) -> Conditionals:
    """:class:`Conditionals` of a model of one fixed cell; a ``lattice`` of another number of sites is refused."""
    if lattice is not None and lattice.n_sites != model.n_sites:
        raise LatthermError(f"a {model.n_sites}-site model cannot run on the {lattice.label} cell "
                            f"({lattice.n_sites} sites)")
    return Conditionals(site_log_probs, condition, model.n_sites, model.symmetric, model.device,
                        model.mode_log_weights)


def sample_along(site_log_probs: SiteLogProbs, c: torch.Tensor, ranks: torch.Tensor, tokens: torch.Tensor,
                 free: torch.Tensor, generator=None) -> torch.Tensor:
    """Fill the ``free`` sites of ``tokens`` in place, step by step in rank order (fixed sites are skipped), and
    return the float64 sum of the log-conditionals of the drawn values: the exact path log-probability."""
    B, N = tokens.shape
    log_p = torch.zeros(B, dtype=torch.float64, device=tokens.device)
    rows = torch.arange(B, device=tokens.device)
    site_at = ranks.argsort(-1)  # site_at[b, t] = site generated at step t
    for t in range(N):
        check_interrupt()  # a Stop takes effect inside a long draw, not after it
        site = site_at[:, t]
        todo = free[rows, site]
        if not bool(todo.any()):
            continue
        r, s = rows[todo], site[todo]
        logp = site_log_probs(tokens[r], c[r], s)
        k = torch.multinomial(logp.exp().float(), 1, generator=generator).squeeze(1)
        tokens[r, s] = k + 1
        free[r, s] = False
        log_p[r] += logp.gather(1, k[:, None]).squeeze(1).to(torch.float64)
    return log_p


def log_prob_along(site_log_probs: SiteLogProbs, c: torch.Tensor, spins: torch.Tensor, ranks: torch.Tensor,
                   chunk_rows: int) -> torch.Tensor:
    """log p_sigma(s) = sum_t log p(s_site(t) | s_{R<t}), differentiable. The N partial lattices are stacked into
    (steps x B)-row passes of at most ``chunk_rows`` rows: on a CPU one big pass is much faster than N small ones."""
    B, N = spins.shape
    tokens = tokens_from_spins(spins)
    target = tokens - 1
    site_at = ranks.argsort(-1)
    steps = torch.arange(N, device=spins.device)
    out = torch.zeros(B, dtype=c.dtype, device=spins.device)
    per_chunk = max(1, chunk_rows // max(B, 1))
    for t0 in range(0, N, per_chunk):
        check_interrupt()
        ts = steps[t0:t0 + per_chunk]
        known = ranks[None, :, :] < ts[:, None, None]  # (S, B, N)
        x = (tokens[None] * known).reshape(-1, N)
        site = site_at[:, ts].T.reshape(-1)  # (S*B,)
        logp = site_log_probs(x, c.repeat(len(ts), 1), site)
        val = target.repeat(len(ts), 1).gather(1, site[:, None])
        out = out + logp.gather(1, val).reshape(len(ts), B).sum(0)
    return out
