"""Extended XYZ / CIF export of samples files with real fcc positions and cell, import back, and bad input."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from lattherm.engine.analysis.structures import (cif_text, read_extxyz, read_extxyz_frames, structure_to_config,
                                                 write_extxyz)
from lattherm.engine.cli.main import main
from lattherm.engine.errors import LatthermError
from lattherm.engine.lattices import lattice_for
from lattherm.engine.store.samples import write_samples
from lattherm.engine.systems import make_system

NN = 3.8 / math.sqrt(2)  # 2.687 A


def _samples(path, name="cuau", size="2x2x4", lead=(5,), seed=0):
    system = make_system(name, size)
    rng = np.random.default_rng(seed)
    spins = rng.choice(np.array([-1, 1], dtype=np.int8), size=lead + (system.n_sites,))
    log_p = rng.normal(size=lead)
    T = np.linspace(300.0, 700.0, lead[0]) if len(lead) == 2 else 500.0
    mu = np.linspace(-0.1, 0.1, lead[0]) if len(lead) == 2 else 0.05
    write_samples(path, system, spins, log_p, log_p + 1.0, T, mu)
    return system, spins.reshape(-1, system.n_sites)


def test_extxyz_round_trip_positions_and_cell(tmp_path):
    system, spins = _samples(tmp_path / "s.npz")
    out = tmp_path / "s.xyz"
    assert main(["export", str(tmp_path / "s.npz"), "--format", "extxyz", "--out", str(out)]) == 0
    lat = system.lattice
    frames = read_extxyz_frames(out)
    assert len(frames) == len(spins)
    for k, (cell, symbols, pos, kv) in enumerate(frames):
        np.testing.assert_allclose(pos, lat.positions * 1.9, atol=1e-6)
        np.testing.assert_allclose(cell, lat.cell * 1.9, atol=1e-6)
        size, back = structure_to_config(cell, symbols, pos)
        assert size == (2, 2, 4)
        np.testing.assert_array_equal(back, spins[k])
        assert set(symbols) <= {"Cu", "Au"} and symbols.count("Au") == int((spins[k] > 0).sum())
        assert int(kv["frame"]) == k and float(kv["T"]) == 500.0 and float(kv["mu"]) == 0.05
        assert "log_p" in kv and "log_f" in kv and kv["pbc"] == "T T T"


def test_grid_file_is_flattened_with_conditions_and_max(tmp_path):
    _, spins = _samples(tmp_path / "g.npz", lead=(3, 4))
    out = tmp_path / "g.extxyz"
    assert main(["export", str(tmp_path / "g.npz"), "--out", str(out)]) == 0  # format from suffix
    frames = read_extxyz_frames(out)
    assert len(frames) == 12
    assert [float(f[3]["T"]) for f in frames[::4]] == [300.0, 500.0, 700.0]
    for k, (cell, sym, pos, _) in enumerate(frames):
        np.testing.assert_array_equal(structure_to_config(cell, sym, pos)[1], spins[k])
    assert main(["export", str(tmp_path / "g.npz"), "--out", str(out), "--max", "2"]) == 0
    assert len(read_extxyz_frames(out)) == 2


def test_cif_parses(tmp_path):
    system, spins = _samples(tmp_path / "s.npz", lead=(2,))
    out = tmp_path / "s.cif"
    assert main(["export", str(tmp_path / "s.npz"), "--format", "cif", "--out", str(out)]) == 0
    text = out.read_text()
    blocks = re.split(r"^data_", text, flags=re.M)[1:]
    assert [b.split()[0] for b in blocks] == ["lattherm_0", "lattherm_1"]
    for k, b in enumerate(blocks):
        vals = dict(re.findall(r"^(_cell_\w+)\s+(\S+)", b, flags=re.M))
        for axis, n in zip("abc", (2, 2, 4)):
            assert float(vals[f"_cell_length_{axis}"]) == pytest.approx(NN * n, abs=1e-5)
        for ang in ("alpha", "beta", "gamma"):
            assert float(vals[f"_cell_angle_{ang}"]) == pytest.approx(60.0, abs=1e-5)
        assert "'P 1'" in b
        atoms = [ln.split() for ln in b.splitlines() if re.match(r"^(Au|Cu)\d+ ", ln)]
        assert len(atoms) == system.n_sites
        frac = np.array([[float(x) for x in a[2:5]] for a in atoms])
        assert ((frac >= 0) & (frac < 1)).all()
        np.testing.assert_allclose(frac, system.lattice.fractional, atol=1e-7)
        assert [a[1] for a in atoms] == ["Au" if s > 0 else "Cu" for s in spins[k]]


def test_every_atom_has_12_nearest_neighbours(tmp_path):
    lat = lattice_for("fcc", "4x4x4")
    rng = np.random.default_rng(1)
    out = write_extxyz(tmp_path / "n.xyz", lat, ("Cu", "Au"), rng.choice([-1, 1], size=(1, lat.n_sites)))
    cell, symbols, pos = read_extxyz(out)
    d = pos[:, None, :] - pos[None, :, :]
    frac = d @ np.linalg.inv(cell)
    d = (frac - np.rint(frac)) @ cell  # minimum image (valid: nn distance << cell widths)
    r = np.linalg.norm(d, axis=-1)
    counts = (np.abs(r - NN) < 1e-4).sum(1)
    assert (counts == 12).all()
    assert r[r > 1e-6].min() == pytest.approx(NN, abs=1e-5)


def test_readable_by_ase_if_installed(tmp_path):
    ase_io = pytest.importorskip("ase.io")
    _samples(tmp_path / "s.npz", lead=(2,))
    main(["export", str(tmp_path / "s.npz"), "--out", str(tmp_path / "s.xyz")])
    main(["export", str(tmp_path / "s.npz"), "--out", str(tmp_path / "s.cif")])
    atoms = ase_io.read(tmp_path / "s.xyz", index=":")
    assert len(atoms) == 2 and len(atoms[0]) == 16
    np.testing.assert_allclose(atoms[0].cell[:], lattice_for("fcc", "2x2x4").cell * 1.9, atol=1e-6)
    assert len(ase_io.read(tmp_path / "s.cif", index=":")) == 2


def test_import_errors():
    lat = lattice_for("fcc", "2x2x2")
    cell, pos = lat.cell * 1.9, lat.positions * 1.9
    symbols = ["Cu"] * lat.n_sites
    with pytest.raises(LatthermError, match="Fe"):
        structure_to_config(cell, ["Fe"] + symbols[1:], pos)
    with pytest.raises(LatthermError, match="not an n1 x n2 x n3 supercell"):
        structure_to_config(np.eye(3) * 3.8 * 2, symbols, pos)  # a cubic fcc cell, not a primitive supercell
    with pytest.raises(LatthermError, match="not an n1 x n2 x n3 supercell"):
        structure_to_config(cell * 1.1, symbols, pos)
    with pytest.raises(LatthermError, match="not on an fcc site"):
        structure_to_config(cell, symbols, pos + np.array([0.3, 0.0, 0.0]))
    with pytest.raises(LatthermError, match="atoms for the 8 sites"):
        structure_to_config(cell, symbols[:-1], pos[:-1])
    with pytest.raises(LatthermError, match="same fcc site"):
        structure_to_config(cell, symbols, np.vstack([pos[:-1], pos[:1]]))


def test_export_errors_write_nothing(tmp_path, capsys):
    _samples(tmp_path / "ising.npz", name="ising", size="3x3")
    out = tmp_path / "o.xyz"
    assert main(["export", str(tmp_path / "ising.npz"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not atoms" in err and "Traceback" not in err
    assert main(["export", str(tmp_path / "missing.npz"), "--out", str(out)]) == 2
    assert "no such samples file" in capsys.readouterr().err
    _samples(tmp_path / "s.npz")
    assert main(["export", str(tmp_path / "s.npz"), "--out", str(tmp_path / "o.txt")]) == 2
    assert main(["export", str(tmp_path / "s.npz"), "--out", str(out), "--max", "0"]) == 2
    assert not out.exists() and not (tmp_path / "o.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(LatthermError, match="Ising|square"):
        cif_text(lattice_for("square", "3x3"), ("down", "up"), np.ones((1, 9)))


def test_unwritable_destination_is_one_line(tmp_path, capsys):
    _samples(tmp_path / "s.npz", lead=(1,))
    (tmp_path / "afile").write_text("x")
    assert main(["export", str(tmp_path / "s.npz"), "--out", str(tmp_path / "afile" / "o.cif")]) == 2
    assert "cannot write" in capsys.readouterr().err
