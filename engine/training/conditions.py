"""Condition grids and the per-epoch jitter of the training conditions (paper Appendices F and J).

Training starts on an evenly spaced (T, mu) grid; at the start of every epoch (``samples_per_epoch`` samples) each
grid point is moved by Gaussian noise (Ising: dT ~ N(0, 0.2^2), dmu ~ N(0, 0.05^2)) around its base value, so the
model sees a continuum of conditions. The jitter of epoch e is drawn from a generator seeded by (seed, e): a resumed
run replays exactly the same conditions without storing them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import LatthermError
from ..systems import system_info


def grid(T_values, mu_values) -> list[tuple[float, float]]:
    """All (T, mu) pairs, T-major."""
    return [(float(T), float(mu)) for T in T_values for mu in mu_values]


def paper_grid(system_name: str) -> list[tuple[float, float]]:
    """The paper's evaluation conditions (the system catalog's): Ising 5 kT x 5 mu (25); CuAu 4 T x 8 mu (32)."""
    return system_info(system_name).paper_grid()


def parse_grid(text: str, system_name: str) -> list[tuple[float, float]]:
    """'paper', or 'T1,T2,...:mu1,mu2,...' (either side may be a single value)."""
    if text == "paper":
        return paper_grid(system_name)
    try:
        t_part, m_part = text.split(":")
        Ts = [float(v) for v in t_part.split(",")]
        mus = [float(v) for v in m_part.split(",")]
    except ValueError:
        raise LatthermError(f"grid {text!r} must be 'paper' or 'T1,T2,...:mu1,mu2,...'") from None
    return grid(Ts, mus)


class ConditionSchedule:
    """The G training conditions at each step, and the (B,) condition tensors of a batch grouped by condition."""

    def __init__(self, T_range, T_points, mu_range, mu_points, jitter_T, jitter_mu, samples_per_epoch, batch, seed,
                 shares: int = 1):
        self.base = torch.tensor(grid(np.linspace(*T_range, T_points), np.linspace(*mu_range, mu_points)),
                                 dtype=torch.float64)
        self.jitter = torch.tensor([jitter_T, jitter_mu], dtype=torch.float64)
        self.T_floor = 0.5 * float(T_range[0])
        self.steps_per_epoch = max(1, math.ceil(samples_per_epoch / batch))
        self.per_condition = batch // len(self.base) // int(shares)  # this rank's share of the M per condition
        self.seed = int(seed)

    @classmethod
    def from_config(cls, cfg, shares: int = 1) -> "ConditionSchedule":
        """The run's schedule; ``shares`` ranks split each condition's samples (the conditions are the same on all)."""
        c = cfg.conditions
        return cls(c.T, c.T_points, c.mu, c.mu_points, c.jitter_T, c.jitter_mu, c.samples_per_epoch,
                   cfg.training.batch, cfg.training.seed, shares)

    @property
    def n_conditions(self) -> int:
        return len(self.base)

    def epoch(self, step: int) -> int:
        return step // self.steps_per_epoch

    def conditions(self, step: int) -> torch.Tensor:
        """(G, 2) [T, mu] at ``step``: the base grid in epoch 0, jittered in later epochs."""
        e = self.epoch(step)
        if e == 0:
            return self.base.clone()
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + e)
        c = self.base + torch.randn(self.base.shape, generator=g, dtype=torch.float64) * self.jitter
        c[:, 0].clamp_(min=self.T_floor)
        return c

    def batch(self, step: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,) T and mu, condition g occupying rows g*M .. (g+1)*M - 1 (B and M this rank's share)."""
        c = self.conditions(step).repeat_interleave(self.per_condition, 0)
        return c[:, 0].to(device), c[:, 1].to(device)
