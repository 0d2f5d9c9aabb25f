"""The exact any-order model of a small system: every conditional p(s_i | known sites) of the Boltzmann distribution,
by enumeration of all 2^N configurations.

Why: it is the perfect window model. Painting a larger lattice with it isolates the error that the window layout
itself makes (a window model treats its cell as a torus), apart from any training error; tests and
``benchmarks/painting_layouts.py`` use it that way. It samples and scores like any AO-ARM (``sample_along``), so
the painting code needs nothing special for it.
"""

from __future__ import annotations

import torch

from ..errors import LatthermError
from ..models.any_order import Conditionals, fixed_cell_conditionals, log_prob_along, sample_along
from ..models.base import AutoregressiveModel
from ..systems.base import System
from .enumeration import _configurations

MAX_ORACLE_SITES = 16


class ExactConditionals(AutoregressiveModel):
    """Exact conditionals of ``system`` (N <= 16 sites) at any (T, mu); tokens as for every model (0 unknown)."""

    kind = "ao-arm"
    arch = "exact"
    any_order = True

    def __init__(self, system: System):
        N = system.n_sites
        if N > MAX_ORACLE_SITES:
            raise LatthermError(f"exact conditionals enumerate 2^N states: {system.lattice.label} has {N} sites, "
                                f"at most {MAX_ORACLE_SITES}")
        super().__init__(N, 2, symmetric=False)
        self.system = system
        states = _configurations(0, 1 << N, N)
        # log f is linear in 1/T and mu/T for both systems: log f(T, mu) = (a + mu b) / T
        a = system.log_f(states, 1.0, 0.0).to(torch.float64)
        b = system.log_f(states, 1.0, 1.0).to(torch.float64) - a
        self.register_buffer("states", states)
        self.register_buffer("a", a)
        self.register_buffer("b", b)

    def hparams(self) -> dict:
        return {"system": self.system.name, "size": list(self.system.lattice.size)}

    @property
    def device(self) -> torch.device:
        return self.states.device

    @property
    def train_lattice(self):
        return self.system.lattice

    def conditionals(self, lattice=None, period_mode: str | None = None) -> Conditionals:
        return fixed_cell_conditionals(self, lattice, self._site_log_probs, self.condition)

    def _log_weights(self, tokens: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """(B, 2^N) log f of every state at each row's (T, mu), -inf where it contradicts the known tokens."""
        T, mu = c[:, 0:1], c[:, 1:2]
        logw = (self.a[None] + mu * self.b[None]) / T
        spins = (2 * tokens - 3).to(torch.float64)  # known sites +-1; unknown (token 0) gives -3
        known = tokens > 0
        clash = (known[:, None, :] & (self.states[None] != spins[:, None, :])).any(-1)
        return logw.masked_fill(clash, float("-inf"))

    def _all_site_log_probs(self, tokens, c) -> torch.Tensor:
        """(B, N, 2) exact log p(s_i = -1 / +1 | known tokens), in row chunks of bounded memory."""
        S, N = self.states.shape
        rows = max(1, (1 << 23) // (S * N))
        return torch.cat([self._chunk_log_probs(tokens[i:i + rows], c[i:i + rows])
                          for i in range(0, tokens.shape[0], rows)])

    def _chunk_log_probs(self, tokens, c) -> torch.Tensor:
        logw = self._log_weights(tokens, c)[:, :, None]  # (B, S, 1)
        up = self.states[None] > 0  # (1, S, N)
        lp_up = torch.logsumexp(logw.masked_fill(~up, float("-inf")), 1)
        lp_down = torch.logsumexp(logw.masked_fill(up, float("-inf")), 1)
        out = torch.stack([lp_down, lp_up], -1)
        return out - torch.logsumexp(out, -1, keepdim=True)

    def _site_log_probs(self, tokens, c, site) -> torch.Tensor:
        rows = torch.arange(tokens.shape[0], device=tokens.device)
        return self._all_site_log_probs(tokens, c)[rows, site]

    def condition(self, T, mu) -> torch.Tensor:
        T = torch.as_tensor(T, dtype=torch.float64, device=self.device)
        mu = torch.as_tensor(mu, dtype=torch.float64, device=self.device)
        return torch.stack(torch.broadcast_tensors(T, mu), -1)

    def logits(self, tokens: torch.Tensor, T, mu) -> torch.Tensor:
        return self._all_site_log_probs(tokens, self.condition(T, mu))

    def _sample_path(self, T, mu, ranks, tokens, free, generator=None):
        return sample_along(self._site_log_probs, self.condition(T, mu), ranks, tokens, free, generator)

    def _log_prob_path(self, s, T, mu, ranks):
        return log_prob_along(self._site_log_probs, self.condition(T, mu), s, ranks, chunk_rows=4096)


__all__ = ["ExactConditionals", "MAX_ORACLE_SITES"]
