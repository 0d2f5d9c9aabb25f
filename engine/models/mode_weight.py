"""The learned mode weight of a Z2 mixture: q_sym(s | mu) = pi q(s | mu) + (1 - pi) q(-s | -mu).

With the plain augmentation of maximum-likelihood data (flip half of the rows) the component must hold both ordered
states at mu = 0 and infer which one it is in from the sites it already knows. A gauge-fixed data set (ordered rows
turned to M > 0, :func:`lattherm.engine.training.mle.gauge_flip_probability`) spares it that, but then the component
at mu carries a share c(mu) of the data and the mixture is exact only with pi(T, mu) = c(mu) / 2 instead of 1/2
(c(mu) + c(-mu) = 2). That weight is a smooth function of (T, mu) that a tiny network learns: by a logistic
regression on the data rows during MLE, and through log q_sym in REINFORCE. pi(T, -mu) = 1 - pi(T, mu) holds by
construction (an odd logit), and a fresh weight is exactly 1/2, so models without one are unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ModeWeight(nn.Module):
    """logit pi(T, mu) = (N mu / T) g(1/T) + h(1/T, mu) - h(1/T, -mu): the ordered phase's weight grows like
    exp(2 beta mu M), so a slope in N mu / T carries it; h corrects the rest."""

    def __init__(self, n_sites: int, T_scale: float = 1.0, mu_scale: float = 1.0, hidden: int = 16):
        super().__init__()
        self.n_sites, self.T_scale, self.mu_scale = int(n_sites), float(T_scale), float(mu_scale)
        self.slope = nn.Sequential(nn.Linear(1, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.odd = nn.Sequential(nn.Linear(2, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        for net in (self.slope, self.odd):  # pi = 1/2 until trained
            nn.init.zeros_(net[2].weight), nn.init.zeros_(net[2].bias)

    def logit(self, T: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        dtype = self.slope[0].weight.dtype
        T, mu = T.to(dtype), mu.to(dtype)
        b = (self.T_scale / T)[:, None]
        m = (mu / self.mu_scale)[:, None]
        odd = self.odd(torch.cat([b, m], -1)) - self.odd(torch.cat([b, -m], -1))
        return (self.n_sites * mu / T * self.slope(b).squeeze(-1)) / self.n_sites ** 0.5 + odd.squeeze(-1)

    def forward(self, T: torch.Tensor, mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log pi, log(1 - pi)) at (T, mu), each (B,)."""
        z = self.logit(T, mu)
        return F.logsigmoid(z), F.logsigmoid(-z)
