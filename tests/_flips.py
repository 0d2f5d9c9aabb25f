"""An independent check of 'these sites do not interact', by full energies: what the colour sweep and parallel
block NMCMC rely on."""

from __future__ import annotations

import math

import torch


def flip_energy(system, x: torch.Tensor, j: int) -> float:
    """E(x with site j flipped) - E(x) for one configuration x (1, N), from two full energies."""
    y = x.clone()
    y[0, j] = -y[0, j]
    return float(system.energy(y) - system.energy(x))


def assert_no_interaction(system, x: torch.Tensor, i: int, others) -> None:
    """Flipping site i leaves the flip energy of every site in ``others`` unchanged."""
    y = x.clone()
    y[0, i] = -y[0, i]
    for j in others:
        if j != i:
            assert math.isclose(flip_energy(system, x, j), flip_energy(system, y, j), abs_tol=1e-9), (i, j)
