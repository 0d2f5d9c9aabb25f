"""One-site Bravais lattices beyond fcc: geometry from primitive vectors (shells, point group, cluster orbits), the
bundled bcc alloy (feco) through exact enumeration, Monte Carlo, training, sampling, painting and export."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lattherm.engine.errors import LatthermError
from lattherm.engine.exact import enumerate_exact
from lattherm.engine.lattices import BRAVAIS, bcc, fcc, identify_bravais, lattice_for, simple_cubic, square
from lattherm.engine.montecarlo.metropolis import metropolis
from lattherm.engine.systems import CATALOG, make_system, system_info
from lattherm.engine.systems.cluster_expansion import CUAU_JSON, load_json
from _cli import cli  # noqa: E402




#: (lattice, [(shell distance in units of a, neighbours)] for the first three shells)
SHELLS = {
    "sc": [(1.0, 6), (math.sqrt(2), 12), (math.sqrt(3), 8)],
    "fcc": [(1 / math.sqrt(2), 12), (1.0, 6), (math.sqrt(1.5), 24)],
    "bcc": [(math.sqrt(3) / 2, 8), (1.0, 6), (math.sqrt(2), 12)],
    "square": [(1.0, 4), (math.sqrt(2), 4), (2.0, 4)],
}


@pytest.mark.parametrize("kind", sorted(SHELLS))
def test_shells_and_point_group_from_primitive_vectors(kind):
    """Neighbour shells (distance, count) of each lattice and the order of its point group (48 cubic, 8 square)."""
    lat = lattice_for(kind, (4, 4) if kind == "square" else (4, 4, 4), a=3.0)
    per_a = BRAVAIS[kind][1]
    for (d, z), (dist, vecs) in zip(SHELLS[kind], lat.shells(3)):
        assert dist / per_a == pytest.approx(d) and len(vecs) == z
    assert len(lat.point_group) == (8 if kind == "square" else 48)
    # every neighbour index is a distinct site in a cell wide enough, and the neighbour relation is symmetric
    nb = lat.neighbours(1)
    assert all(len(set(row)) == len(row) for row in nb)
    assert all(i in nb[j] for i in range(lat.n_sites) for j in nb[i])
    assert lat.unit_length == pytest.approx(3.0 / per_a if kind != "square" else 3.0)


def test_cluster_orbits_from_positions_reproduce_the_cuau_figures():
    """The orbit of one representative figure under the fcc point group is the CuAu file's whole figure list."""
    lat = fcc(1, 1, 1)
    for c in load_json(CUAU_JSON)["clusters"]:
        figs = c.get("figures_offsets_in_units_of_half_a")
        if figs is None:
            continue
        mine = lat.cluster_figures(np.asarray(figs[0]) + np.array([2, 0, 0]))  # any origin
        canon = sorted(tuple(sorted(map(tuple, f))) for f in figs)
        assert sorted(tuple(sorted(map(tuple, f))) for f in mine.tolist()) == canon


@pytest.mark.parametrize("kind", ["sc", "fcc", "bcc"])
def test_identify_bravais_from_any_primitive_basis(kind):
    from ase.build import bulk

    cell = bulk("Fe", kind, a=2.9).cell[:]
    assert identify_bravais(cell) == (kind, pytest.approx(2.9))
    U = np.array([[1, 1, 0], [0, 1, 0], [0, 1, 1]])  # unimodular: another basis of the same lattice
    assert identify_bravais(U @ cell) == (kind, pytest.approx(2.9))
    with pytest.raises(LatthermError, match="standard cubic orientation"):
        c, s = math.cos(0.3), math.sin(0.3)
        identify_bravais(cell @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]))


def test_hexagonal_cell_is_refused():
    from ase.build import bulk

    with pytest.raises(LatthermError, match="not an sc, fcc or bcc"):
        identify_bravais(bulk("Mg", "hcp", a=3.2).cell[:])


def test_lattice_constructors_and_sizes():
    assert bcc(2, 3, 4).n_sites == 24 and simple_cubic(2, 2, 2).kind == "sc" and square(3).dim == 2
    with pytest.raises(LatthermError, match="three extents"):
        lattice_for("bcc", "4x4")
    with pytest.raises(LatthermError, match="unknown lattice kind 'hcp'"):
        lattice_for("hcp", "2x2x2")


def test_bundled_bcc_system_in_the_catalog():
    info = system_info("feco")
    assert "feco" in CATALOG and info.lattice_kind == "bcc" and info.species == ("Fe", "Co")
    assert info.lattice_constant == pytest.approx(2.857) and info.composition == "x_Co"
    system = make_system("feco", "2x2x2")
    assert system.lattice.unit_length == pytest.approx(2.857 / 2)
    # B2 (CsCl) order: Co on the cube corners, Fe on the body centres (grid parity); E_form from the ECIs:
    # E_raw = J1 (-1) + J2 (+1) + J3 * 0 (two kinds of triangles cancel) and E_form = E_raw - (U_Fe + U_Co)/2
    eci = load_json(info.ce_file)["eci_eV_per_site"]
    b2 = torch.as_tensor(np.where(system.lattice.grid.sum(1) % 2 == 0, 1.0, -1.0))[None]
    raw = -eci["c2_d0000_0_00"] + eci["c2_d0001_0_00"]
    U = eci["c0"] + eci["c2_d0000_0_00"] + eci["c2_d0001_0_00"]  # mean of the two pure cells (odd terms cancel)
    assert system.energy(b2).item() / 8 == pytest.approx(raw - U, abs=1e-14)
    # a CE file on another lattice than the system's is refused by name
    with pytest.raises(LatthermError, match="bcc lattice"):
        from lattherm.engine.systems.cluster_expansion import ClusterExpansion

        ClusterExpansion.from_json(info.ce_file, fcc(2, 2, 2))


@pytest.mark.parametrize("T,mu", [(700.0, 0.0), (1500.0, 0.05)])
def test_exact_enumeration_on_16_bcc_sites_agrees_with_metropolis(T, mu):
    system = make_system("feco", "2x2x4")
    ex = enumerate_exact(system, T, mu)
    res = metropolis(system, T, mu, n_chains=256, sweeps=150, equilibration=40,
                     generator=torch.Generator().manual_seed(int(T)))
    row = res.summary()[0]
    assert abs(row["energy"] - ex.mean_energy_per_site) < 4 * row["energy_error"]
    assert abs(row["observable"] - ex.mean_observable) < 4 * row["observable_error"]


def test_bcc_alloy_trains_samples_paints_and_exports(tmp_path, capsys, tiny_config):
    """A tiny AO-ARM on the 16-site bcc cell: train, sample, paint a 2x2x8 cell, export it as POSCARs."""
    from ase.io import read

    cfg = tmp_path / "feco.toml"
    cfg.write_text(tiny_config("2x2x4", steps=6, **{"system.name": "feco", "conditions.T": [800.0, 1400.0],
                                                   "conditions.mu": [-0.05, 0.05]}))
    rc, out, err = cli(capsys, "train", cfg)
    assert rc == 0, err
    rc, out, err = cli(capsys, "runs", "--json")
    run = json.loads(out)[0]["id"]
    rc, _, err = cli(capsys, "sample", run, "--T", "1000", "--mu", "0", "-n", "4", "--out", tmp_path / "s.npz")
    assert rc == 0, err
    rc, _, err = cli(capsys, "paint", run, "--size", "2x2x8", "--T", "1000", "-n", "2", "--out", tmp_path / "p.npz")
    assert rc == 0, err
    rc, out, err = cli(capsys, "export", tmp_path / "p.npz", "--format", "vasp", "--out", tmp_path / "poscars")
    assert rc == 0, err
    files = sorted((tmp_path / "poscars").iterdir())
    assert len(files) == 2
    atoms = read(files[0], format="vasp")
    assert len(atoms) == 32 and set(atoms.get_chemical_symbols()) <= {"Fe", "Co"}
    assert atoms.get_volume() == pytest.approx(32 * 2.857 ** 3 / 2, rel=1e-6)
    rc, out, err = cli(capsys, "export", tmp_path / "s.npz", "--out", tmp_path / "s.cif")
    assert rc == 0 and "bcc" in out
