"""2D Ising model on a periodic square lattice (SCIENCE.md): log f = (eps*sum_<ij> s_i s_j + mu*sum_i s_i) / kT,
eps = 1, each nearest-neighbour bond counted once (2*L1*L2 bonds), kT and mu in units of eps."""

from __future__ import annotations

import numpy as np
import torch

from ..lattices import Lattice, square
from .base import System
from .catalog import ISING


class Ising(System):
    info = ISING

    def __init__(self, lattice: Lattice | tuple[int, int]):
        if not isinstance(lattice, Lattice):
            lattice = square(*lattice)
        super().__init__(lattice)
        self.eps = 1.0
        self._bonds = torch.as_tensor(lattice.bonds(1), dtype=torch.long)

    @property
    def square_ising_coupling(self) -> float | None:
        return self.eps if self.lattice.kind == "square" else None

    def spin_polynomial(self):
        b = self._bonds.numpy()
        pairs = b[b[:, 0] != b[:, 1]]  # a bond of a site with itself (1-wide torus) is the constant s_i^2 = 1
        return np.zeros(self.n_sites), [(pairs, np.full(len(pairs), -self.eps))]

    def energy(self, s: torch.Tensor) -> torch.Tensor:
        s = s.to(torch.float64)
        b = self._bonds.to(s.device)
        return -self.eps * (s[:, b[:, 0]] * s[:, b[:, 1]]).sum(-1)
