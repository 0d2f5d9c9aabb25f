"""Long-range order parameters of fcc alloys: L1_0 (CuAu) and L1_2 (Cu3Au / CuAu3) from the X-point amplitudes.

An fcc site at r (Cartesian, units of a/2: integer coordinates) and the three X-point wave vectors k_a = (2 pi / a) e_a
give phases exp(i k_a . r) = (-1)^(r_a). The amplitudes

    psi_a = (1/N) sum_i s_i (-1)^(r_a,i),      a = x, y, z    (s = +1 Au, -1 Cu)

vanish in the disordered solid solution (up to O(N^-1/2)), and an ordered variant only changes their signs, so with
|psi| sorted p1 >= p2 >= p3 (per configuration):

* L1_0 (alternating Au and Cu (001) planes): p = (1, 0, 0)        ->  eta_L10 = p1^2 - p2^2 = 1, eta_L12 = 0
* L1_2 (one of the four simple-cubic sublattices Au, or Cu): p = (1/2, 1/2, 1/2)  ->  eta_L10 = 0, eta_L12 = 4 p3^2 = 1

Both are translation invariant and commensurate with every fcc supercell whose vectors are even combinations of the
primitive ones in the sense that k_a . L is a multiple of 2 pi (true for the n1 x n2 x n3 primitive supercells with
even n, e.g. 2x2x4 and 4x4x8); :func:`fcc_order_parameters` checks this and refuses other cells.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import LatthermError
from ..lattices import Lattice


def x_point_phases(lattice: Lattice) -> torch.Tensor:
    """(N, 3) signs (-1)^(r_a) of the three X-point waves at each site of an fcc supercell."""
    if lattice.kind != "fcc":
        raise LatthermError(f"L1_0/L1_2 order parameters need an fcc lattice, not {lattice.kind}")
    cell = np.rint(lattice.cell).astype(np.int64)  # supercell vectors in units of a/2
    if (cell % 2).any():
        raise LatthermError(f"the X-point waves do not fit the {lattice.label} cell (its vectors must have even "
                            f"Cartesian components in units of a/2; use even supercell repeats)")
    pos = np.rint(lattice.positions).astype(np.int64)
    return torch.as_tensor(1 - 2 * (pos % 2), dtype=torch.float64)


def fcc_order_parameters(lattice: Lattice, spins: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per configuration (B, N) spins: 'psi' (B, 3) X-point amplitudes, 'eta_L10' and 'eta_L12' (B,) in [0, 1]."""
    s = torch.as_tensor(spins).to(torch.float64)
    if s.ndim != 2 or s.shape[1] != lattice.n_sites:
        raise LatthermError(f"spins must have shape (B, {lattice.n_sites}), got {tuple(s.shape)}")
    psi = s @ x_point_phases(lattice) / lattice.n_sites
    p = psi.abs().sort(dim=1, descending=True).values
    return {"psi": psi, "eta_L10": p[:, 0] ** 2 - p[:, 1] ** 2, "eta_L12": 4 * p[:, 2] ** 2}


__all__ = ["fcc_order_parameters", "x_point_phases"]
