"""L1_0 / L1_2 order parameters of fcc alloys: exact values on the ideal structures, invariance under translations
and Au/Cu antiphase variants, near zero for random alloys, clear errors for cells they do not fit."""

import numpy as np
import pytest
import torch

from lattherm.engine.analysis.order import fcc_order_parameters
from lattherm.engine.errors import LatthermError
from lattherm.engine.lattices import lattice_for


def _structures(lat):
    pos = np.rint(lat.positions).astype(int) % 2
    l10 = np.where(pos[:, 2] == 0, 1.0, -1.0)  # Au and Cu (001) planes alternate
    l12 = np.where((pos == 0).all(1), 1.0, -1.0)  # Au on one simple-cubic sublattice: Cu3Au
    return torch.tensor(np.stack([l10, l12, -l12]))


@pytest.mark.parametrize("size", [[2, 2, 4], [4, 4, 8]])
def test_ideal_structures_translations_and_random_alloys(size):
    lat = lattice_for("fcc", size)
    s = _structures(lat)
    op = fcc_order_parameters(lat, s)
    assert torch.allclose(op["eta_L10"], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    assert torch.allclose(op["eta_L12"], torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64))  # Cu3Au and CuAu3
    for v in np.eye(3) @ lat.vectors:  # translations by primitive vectors permute sites, keep the parameters
        moved = s[:, lat.shifted(v)[:, 0]]
        assert not torch.equal(moved, s) or size == [1, 1, 1]
        m = fcc_order_parameters(lat, moved)
        assert torch.allclose(m["eta_L10"], op["eta_L10"]) and torch.allclose(m["eta_L12"], op["eta_L12"])
    rand = torch.where(torch.rand(2000, lat.n_sites, generator=torch.Generator().manual_seed(0)) < 0.5, 1.0, -1.0)
    r = fcc_order_parameters(lat, rand)
    # disordered: each psi_a has variance 1/N, so E[p^2] = O(1/N)
    assert float(r["eta_L10"].mean()) < 4.0 / lat.n_sites and float(r["eta_L12"].mean()) < 4.0 / lat.n_sites


def test_bad_cells_and_shapes_are_clear_errors():
    with pytest.raises(LatthermError, match="fcc"):
        fcc_order_parameters(lattice_for("square", [4, 4]), torch.ones(1, 16))
    with pytest.raises(LatthermError, match="do not fit"):
        fcc_order_parameters(lattice_for("fcc", [1, 1, 4]), torch.ones(1, 4))
    with pytest.raises(LatthermError, match="shape"):
        fcc_order_parameters(lattice_for("fcc", [2, 2, 4]), torch.ones(2, 15))
