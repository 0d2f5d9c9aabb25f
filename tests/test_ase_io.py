"""Structure export and import through ASE: every format round-trips through ase.io.read with the system's lattice
and lattice constant, rotated/shifted/non-diagonal supercells map every site, and bad input is one line."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import ase.io as ase_io  # noqa: E402  (a core dependency)
from ase.build import make_supercell  # noqa: E402

from lattherm.engine.analysis.structures import structure_to_config, to_atoms  # noqa: E402
from lattherm.engine.errors import LatthermError  # noqa: E402
from lattherm.engine.lattices import lattice_for  # noqa: E402
from lattherm.engine.store.samples import read_samples, write_samples  # noqa: E402
from lattherm.engine.systems import make_system  # noqa: E402
from _cli import cli  # noqa: E402

FORMATS = ["extxyz", "cif", "vasp", "lammps-data"]
#: (system, size, nearest-neighbour distance in angstrom, atoms per conventional cubic cell)
SYSTEMS = [("cuau", "2x2x3", 3.8 / math.sqrt(2)), ("feco", "2x2x2", 2.857 * math.sqrt(3) / 2)]




def _samples(path, name, size, n=3, seed=0, T=600.0, mu=0.02):
    system = make_system(name, size)
    g = torch.Generator().manual_seed(seed)
    spins = torch.where(torch.rand(n, system.n_sites, generator=g) < 0.5, -1.0, 1.0)
    write_samples(path, system, spins, torch.zeros(n), system.log_f(spins, T, mu), T, mu)
    return system, spins.numpy().astype(np.int8)


def _read_back(out, fmt):
    """Every exported structure, in order, as ase.Atoms."""
    files = sorted(out.iterdir()) if out.is_dir() else [out]
    images = []
    for f in files:
        kw = {"format": "lammps-data", "atom_style": "atomic", "units": "metal"} if fmt == "lammps-data" else {}
        got = ase_io.read(f, index=":", **kw)
        images.extend(got)
    return images


def _min_image_nn(atoms, nn):
    """Shortest interatomic distance over periodic images, and per atom the number of images at that distance."""
    from ase.neighborlist import neighbor_list

    i, d = neighbor_list("id", atoms, 1.2 * nn)
    dmin = float(d.min())
    return dmin, np.bincount(i[np.abs(d - dmin) < 1e-4], minlength=len(atoms))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name,size,nn", SYSTEMS)
def test_export_round_trips_through_ase(tmp_path, capsys, fmt, name, size, nn):
    """Species (per site, in order), cell volume = N * primitive volume, nearest-neighbour distance and count
    (12 fcc, 8 bcc) of every frame read back by ase.io; the import maps it back to the same spins."""
    system, spins = _samples(tmp_path / "s.npz", name, size)
    out = tmp_path / ("out" if fmt in ("vasp", "lammps-data") else f"s.{fmt}")
    rc, stdout, err = cli(capsys, "export", tmp_path / "s.npz", "--format", fmt, "--out", out)
    assert rc == 0, err
    assert "Traceback" not in err and system.lattice.kind in stdout
    images = _read_back(out, fmt)
    assert len(images) == len(spins)
    lat = system.lattice
    prim_volume = abs(np.linalg.det(lat.vectors * lat.unit_length))
    z = {"fcc": 12, "bcc": 8}[lat.kind]
    for atoms, s in zip(images, spins):
        assert atoms.get_chemical_symbols() == [system.species[1] if v > 0 else system.species[0] for v in s]
        assert atoms.get_volume() == pytest.approx(lat.n_sites * prim_volume, rel=1e-6)
        d, counts = _min_image_nn(atoms, nn)
        assert d == pytest.approx(nn, rel=1e-5)
        assert (counts == z).all()
    rc, _, err = cli(capsys, "import", out, "--system", name, "--out", tmp_path / "back.npz")
    assert rc == 0, err
    back = read_samples(tmp_path / "back.npz")
    assert str(back["size"]) == lat.label
    np.testing.assert_array_equal(back["spins"].reshape(len(spins), -1), spins)


def test_extxyz_carries_conditions_and_grid_files_flatten(tmp_path, capsys):
    system = make_system("cuau", "2x2x4")
    spins = torch.where(torch.rand(3, 4, system.n_sites) < 0.5, -1.0, 1.0)
    T, mu = np.array([300.0, 500.0, 700.0]), np.array([-0.1, 0.0, 0.1])
    write_samples(tmp_path / "g.npz", system, spins, torch.zeros(3, 4), torch.zeros(3, 4), T, mu)
    out = tmp_path / "g.xyz"
    assert cli(capsys, "export", tmp_path / "g.npz", "--out", out)[0] == 0  # format from the suffix
    images = ase_io.read(out, index=":")
    assert len(images) == 12
    assert [a.info["T"] for a in images[::4]] == [300.0, 500.0, 700.0]
    assert [a.info["frame"] for a in images] == list(range(12))
    assert cli(capsys, "export", tmp_path / "g.npz", "--out", out, "--max", "2")[0] == 0
    assert len(ase_io.read(out, index=":")) == 2


def _cf(system, spins):
    return system.correlation_functions(torch.as_tensor(np.atleast_2d(spins), dtype=torch.float64))[0]


@pytest.mark.parametrize("name,fmt", [("cuau", "extxyz"), ("cuau", "vasp"), ("feco", "cif"), ("feco", "extxyz")])
def test_rotated_shifted_shuffled_supercell_maps_every_site(tmp_path, capsys, name, fmt):
    """A supercell written by ASE after a rotation, a shift, an atom shuffle -- and a non-diagonal (conventional
    cubic) repeat -- imports to a configuration with the same composition and every correlation function equal
    to the original's (the site map is a lattice symmetry plus translation)."""
    system = make_system(name, "2x2x2")
    rng = np.random.default_rng(3)
    spins = rng.choice(np.array([-1, 1], dtype=np.int8), size=system.n_sites)
    atoms = to_atoms(system.lattice, system.species, spins[None])[0]
    cubic = make_supercell(atoms, np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]]) if name == "cuau"
                           else np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]))
    for structure in (atoms.copy(), cubic):
        structure.rotate(37.0, (1, 2, 3), rotate_cell=True)
        structure.translate((0.31, -1.7, 2.2))
        structure = structure[rng.permutation(len(structure))]
        path = tmp_path / f"r.{ {'extxyz': 'extxyz', 'vasp': 'vasp', 'cif': 'cif'}[fmt]}"
        ase_io.write(path, structure, format=fmt)
        rc, _, err = cli(capsys, "import", path, "--system", name, "--out", tmp_path / "r.npz")
        assert rc == 0, err
        back = read_samples(tmp_path / "r.npz")
        size = tuple(int(v) for v in str(back["size"]).split("x"))
        target = make_system(name, str(back["size"]))
        got = back["spins"].reshape(-1)
        assert len(got) == target.n_sites and got.mean() == pytest.approx(spins.mean())
        torch.testing.assert_close(_cf(target, got), _cf(system, spins), rtol=0, atol=1e-12)
        assert all(n % 2 == 0 for n in size)


def test_unrotated_export_maps_back_exactly():
    lat = lattice_for("bcc", (2, 3, 2), 2.857)
    rng = np.random.default_rng(0)
    s = rng.choice(np.array([-1, 1], dtype=np.int8), size=lat.n_sites)
    atoms = to_atoms(lat, ("Fe", "Co"), s[None])[0]
    size, back = structure_to_config(atoms.cell[:], atoms.get_chemical_symbols(), atoms.positions, "bcc", 2.857,
                                     ("Fe", "Co"))
    assert size == (2, 3, 2)
    np.testing.assert_array_equal(back, s)


def test_import_errors_are_one_line_and_write_nothing(tmp_path, capsys):
    system, spins = _samples(tmp_path / "s.npz", "cuau", "2x2x2")
    atoms = to_atoms(system.lattice, system.species, spins[:1])[0]
    cases = []
    foreign = atoms.copy()
    foreign[0].symbol = "Fe"
    cases.append((foreign, "Fe"))
    bcc = to_atoms(make_system("feco", "2x2x2").lattice, ("Cu", "Au"), spins[:1])[0]
    cases.append((bcc, "nearest-neighbour distance"))  # another lattice
    scaled = atoms.copy()
    scaled.set_cell(atoms.cell[:] * 1.05, scale_atoms=True)
    cases.append((scaled, "nearest-neighbour distance"))  # another lattice constant
    off = atoms.copy()
    off.positions[3] += (0.4, 0.0, 0.1)
    cases.append((off, "not a supercell"))
    vacancy = atoms[1:]
    cases.append((vacancy, "vacancies"))
    for k, (structure, words) in enumerate(cases):
        path = tmp_path / f"bad{k}.extxyz"
        ase_io.write(path, structure)
        out = tmp_path / f"bad{k}.npz"
        rc, _, err = cli(capsys, "import", path, "--system", "cuau", "--out", out)
        assert rc == 2 and words in err and err.count("\n") == 1 and "Traceback" not in err, (k, err)
        assert not out.exists()
    (tmp_path / "junk.extxyz").write_text("this is not\na structure\n")
    rc, _, err = cli(capsys, "import", tmp_path / "junk.extxyz", "--system", "cuau", "--out", tmp_path / "j.npz")
    assert rc == 2 and "junk.extxyz" in err and err.count("\n") == 1
    rc, _, err = cli(capsys, "import", tmp_path / "bad0.extxyz", "--system", "ising", "--out", tmp_path / "i.npz")
    assert rc == 2 and "not atoms" in err
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".npz")] == ["s.npz"]


def test_export_errors_write_nothing(tmp_path, capsys):
    _samples(tmp_path / "ising.npz", "ising", "3x3")
    out = tmp_path / "o.xyz"
    rc, _, err = cli(capsys, "export", tmp_path / "ising.npz", "--out", out)
    assert rc == 2 and err.count("\n") == 1 and "not atoms" in err
    rc, _, err = cli(capsys, "export", tmp_path / "missing.npz", "--out", out)
    assert rc == 2 and "no such samples file" in err
    _samples(tmp_path / "s.npz", "cuau", "2x2x2")
    rc, _, err = cli(capsys, "export", tmp_path / "s.npz", "--format", "pdb", "--out", tmp_path / "o.pdb")
    assert rc == 2 and err.count("\n") == 1 and "unknown structure format 'pdb'" in err
    rc, _, err = cli(capsys, "export", tmp_path / "s.npz", "--out", tmp_path / "o.txt")
    assert rc == 2 and "cannot tell the format" in err
    assert cli(capsys, "export", tmp_path / "s.npz", "--out", out, "--max", "0")[0] == 2
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("x")
    rc, _, err = cli(capsys, "export", tmp_path / "s.npz", "--format", "vasp", "--out", tmp_path / "full")
    assert rc == 2 and "folder with files" in err
    rc, _, err = cli(capsys, "export", tmp_path / "s.npz", "--out", tmp_path / "nodir" / "o.cif")
    assert rc == 2 and "cannot write" in err
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "lattherm-home") == ["full", "ising.npz", "s.npz"]
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep"]


def test_one_configuration_to_a_single_poscar(tmp_path, capsys):
    system, spins = _samples(tmp_path / "s.npz", "feco", "2x2x2", n=1)
    rc, _, err = cli(capsys, "export", tmp_path / "s.npz", "--out", tmp_path / "POSCAR")
    assert rc == 0, err
    atoms = ase_io.read(tmp_path / "POSCAR", format="vasp")
    assert len(atoms) == system.n_sites and atoms.get_chemical_symbols().count("Co") == int((spins > 0).sum())


def test_to_atoms_refuses_spin_lattices():
    with pytest.raises(LatthermError, match="square"):
        to_atoms(lattice_for("square", "3x3"), ("down", "up"), np.ones((1, 9)))
