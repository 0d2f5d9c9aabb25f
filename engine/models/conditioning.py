"""Conditioning on (T, mu): every model sees the same normalised features of the thermodynamic condition.

log f is linear in beta and in beta*mu, so those are the features a network can use most directly; T and mu
themselves are added so the embedding can also vary smoothly in the variables the user scans. Scales come from
the system (Ising: kT ~ 2.5, mu ~ 0.4; CuAu: T ~ 700 K, mu ~ 0.12 eV) so features are O(1).
"""

from __future__ import annotations

import torch
from torch import nn

N_FEATURES = 4


def condition_features(T: torch.Tensor, mu: torch.Tensor, T_scale: float, mu_scale: float) -> torch.Tensor:
    """(B,) temperatures and chemical potentials -> (B, 4) float32 features [beta, beta*mu, T, mu] (scaled)."""
    t = T.to(torch.float32) / T_scale
    m = mu.to(torch.float32) / mu_scale
    beta = 1.0 / t
    return torch.stack([beta, beta * m, t, m], dim=-1)


class ConditionEmbedding(nn.Module):
    """Small MLP from condition features to a width-``width`` vector added to hidden layers (FiLM-style shift)."""

    def __init__(self, width: int, T_scale: float, mu_scale: float):
        super().__init__()
        self.T_scale = float(T_scale)
        self.mu_scale = float(mu_scale)
        self.net = nn.Sequential(nn.Linear(N_FEATURES, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, T: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
        return self.net(condition_features(T, mu, self.T_scale, self.mu_scale))
