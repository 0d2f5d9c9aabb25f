"""Cluster expansions imported from icet and CLEASE predict what the library itself predicts (<= 1e-8 eV/site on 50
random supercell configurations, fcc and bcc, ECIs up to triplets); CuAu rebuilt through CLEASE matches the bundled
file's golden energies; unsupported or corrupt input is one line, exit 2, nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ase.io as ase_io  # noqa: E402  (a core dependency)
from ase.build import bulk, make_supercell  # noqa: E402

from lattherm.engine.systems import make_system  # noqa: E402
from lattherm.engine.systems.cluster_expansion import CUAU_JSON, load_json  # noqa: E402
from _cli import cli  # noqa: E402

#: supercells (rows in primitive vectors) the random configurations live on: diagonal and non-diagonal
SHAPES = [np.diag([2, 3, 4]), np.diag([3, 3, 3]), np.array([[2, 1, 0], [0, 2, 0], [0, 0, 2]])]
N_CONFIGS = 50




def _random_structures(prim, species, seed, sort=None):
    rng = np.random.default_rng(seed)
    out = []
    for k in range(N_CONFIGS):
        sc = make_supercell(prim, SHAPES[k % len(SHAPES)])
        if sort is not None:
            sc = sort(sc)
        x = rng.uniform(0.1, 0.9)  # compositions across the range
        sc.set_chemical_symbols(np.where(rng.random(len(sc)) < x, species[1], species[0]))
        out.append(sc)
    return out


def _lattherm_energies(capsys, tmp_path, ce_json, structures):
    path = tmp_path / "structures.extxyz"
    ase_io.write(path, structures)
    rc, out, err = cli(capsys, "ce", "energy", ce_json, path, "--json")
    assert rc == 0, err
    d = json.loads(out)
    assert d["definition"] == "raw" and len(d["structures"]) == len(structures)
    return np.array(d["energies_per_site_eV"])


@pytest.mark.parametrize("kind,a,cutoffs", [("fcc", 4.08, [6.0, 4.5]), ("bcc", 3.16, [5.0, 4.0])])
def test_icet_import_predicts_like_icet(tmp_path, capsys, kind, a, cutoffs):
    icet = pytest.importorskip("icet")
    prim = bulk("Au", kind, a=a)
    cs = icet.ClusterSpace(prim, cutoffs, ["Au", "Pd"])
    assert max(o.order for o in cs.orbit_list.orbits) == 3  # up to triplets
    rng = np.random.default_rng(11)
    ce = icet.ClusterExpansion(cs, rng.normal(scale=0.02, size=len(cs)))
    ce.write(str(tmp_path / "model.ce"))
    rc, out, err = cli(capsys, "ce", "import", tmp_path / "model.ce", "--from", "icet", "--out", tmp_path / "ce.json")
    assert rc == 0, err
    assert kind in out
    data = json.loads((tmp_path / "ce.json").read_text())
    assert data["lattice"]["kind"] == kind and data["lattice"]["conventional_lattice_constant_angstrom"] == a
    assert len(data["clusters"]) == len(cs)
    structures = _random_structures(prim, ("Au", "Pd"), seed=5)
    theirs = np.array([ce.predict(s) for s in structures])
    mine = _lattherm_energies(capsys, tmp_path, tmp_path / "ce.json", structures)
    assert np.abs(mine - theirs).max() <= 1e-8
    assert np.std(theirs) > 1e-3  # the comparison is not between constants


@pytest.mark.parametrize("kind,a,dia", [pytest.param("fcc", 3.8, [6.0, 4.5], marks=pytest.mark.slow),
                                        ("bcc", 2.87, [5.0, 4.2])])
def test_clease_import_predicts_like_clease(tmp_path, capsys, kind, a, dia):
    pytest.importorskip("clease")
    from clease.corr_func import CorrFunction
    from clease.settings import CEBulk, Concentration
    from clease.tools import wrap_and_sort_by_position

    settings = CEBulk(Concentration(basis_elements=[["Au", "Cu"]]), crystalstructure=kind, a=a, size=[3, 3, 3],
                      db_name=str(tmp_path / "clease.db"), max_cluster_dia=dia)
    settings.save(str(tmp_path / "settings.json"))
    names = settings.all_cf_names
    assert max(int(n[1]) for n in names) == 3  # up to triplets
    rng = np.random.default_rng(2)
    eci = {n: float(rng.normal(scale=0.02)) for n in names}
    (tmp_path / "eci.json").write_text(json.dumps(eci))
    rc, _, err = cli(capsys, "ce", "import", tmp_path / "settings.json", "--from", "clease", "--eci",
                     tmp_path / "eci.json", "--out", tmp_path / "ce.json")
    assert rc == 0, err
    structures = _random_structures(settings.prim_cell, ("Au", "Cu"), seed=7, sort=wrap_and_sort_by_position)
    cf = CorrFunction(settings)
    theirs = []
    for s in structures:
        c = cf.get_cf(s)
        theirs.append(sum(eci[n] * c[n] for n in names))
    mine = _lattherm_energies(capsys, tmp_path, tmp_path / "ce.json", structures)
    assert np.abs(mine - np.array(theirs)).max() <= 1e-8
    assert np.std(theirs) > 1e-3


def test_cuau_rebuilt_through_clease_matches_the_golden_energies(tmp_path, capsys):
    """CLEASE settings with the CuAu clusters (pairs to the 4th shell, two triplets, three quadruplets) plus the
    bundled file's ECIs, imported back: the same figures, and every golden 2x2x4 test vector (E_raw and E_form,
    computed with CLEASE 1.2.0 in the reference) and ordered-structure energy."""
    pytest.importorskip("clease")
    from clease.settings import CEBulk, Concentration

    ref = load_json(CUAU_JSON)
    settings = CEBulk(Concentration(basis_elements=[["Au", "Cu"]]), crystalstructure="fcc", a=3.8, size=[3, 3, 3],
                      db_name=str(tmp_path / "clease.db"), max_cluster_dia=[5.5, 4.1, 4.1])
    settings.save(str(tmp_path / "settings.json"))
    (tmp_path / "eci.json").write_text(json.dumps(ref["eci_eV_per_site"]))
    rc, _, err = cli(capsys, "ce", "import", tmp_path / "settings.json", "--from", "clease", "--eci",
                     tmp_path / "eci.json", "--out", tmp_path / "cuau.json")
    assert rc == 0, err
    imported = json.loads((tmp_path / "cuau.json").read_text())
    assert imported["species"] == ["Cu", "Au"]
    figs = {c["eci_key"]: c.get("figures_offsets_in_units_of_half_a") for c in imported["clusters"]}
    for c in ref["clusters"]:
        if "figures_offsets_in_units_of_half_a" in c:
            theirs = sorted(tuple(sorted(map(tuple, f))) for f in c["figures_offsets_in_units_of_half_a"])
            assert sorted(tuple(sorted(map(tuple, f))) for f in figs[c["eci_key"]]) == theirs
    system = make_system(str(tmp_path / "cuau.json"), "2x2x4")
    tv = ref["test_vectors"]["2x2x4"]
    bits = torch.tensor([[int(b) for b in t["occupation_bits"]] for t in tv["tests"]], dtype=torch.float64)
    s = 2 * bits - 1
    raw = np.array([t["E_raw_total_eV"] for t in tv["tests"]])
    form = np.array([t["E_form_total_eV"] for t in tv["tests"]])
    np.testing.assert_allclose(system.raw_energy(s).numpy(), raw, rtol=0, atol=1e-12)
    np.testing.assert_allclose(system.energy(s).numpy(), form, rtol=0, atol=1e-12)
    bundled = make_system("cuau", "4x4x4")
    mine = make_system(str(tmp_path / "cuau.json"), "4x4x4")
    x = torch.where(torch.rand(64, 64, generator=torch.Generator().manual_seed(0)) < 0.5, -1.0, 1.0)
    torch.testing.assert_close(mine.energy(x), bundled.energy(x), rtol=0, atol=1e-12)


def test_ce_energy_reports_the_formation_definition_of_the_bundled_file(tmp_path, capsys):
    """The CuAu file defines E_form per site: `ce energy` on L1_0 CuAu gives the file's golden value."""
    from lattherm.engine.analysis.structures import to_atoms

    system = make_system("cuau", "2x2x2")
    au = system.lattice.positions[:, 2] % 2 == 0
    ase_io.write(tmp_path / "l10.cif", to_atoms(system.lattice, system.species, np.where(au, 1, -1)[None]))
    rc, out, err = cli(capsys, "ce", "energy", CUAU_JSON, tmp_path / "l10.cif", "--json")
    assert rc == 0, err
    d = json.loads(out)
    golden = load_json(CUAU_JSON)["ordered_structures_eV_per_site"]["L1_0_CuAu(Au on even z/(a/2) planes)"]
    assert d["definition"] == "formation"
    assert d["energies_per_site_eV"][0] == pytest.approx(golden["E_form_per_site_eV"], abs=1e-12)
    assert d["structures"][0]["raw_energy_per_site_eV"] == pytest.approx(golden["E_raw_per_site_eV"], abs=1e-12)


def _assert_refused(capsys, tmp_path, out, words, *args):
    rc, _, err = cli(capsys, *args)
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert all(w in err for w in words), err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_bad_icet_input_is_one_line(tmp_path, capsys):
    icet = pytest.importorskip("icet")
    out = tmp_path / "ce.json"
    rocksalt = bulk("NaCl", "rocksalt", a=5.6)
    cs = icet.ClusterSpace(rocksalt, [5.0], [["Na", "K"], ["Cl"]])
    icet.ClusterExpansion(cs, np.zeros(len(cs))).write(str(tmp_path / "multi.ce"))
    _assert_refused(capsys, tmp_path, out, ["2 sites", "one-site"],
                    "ce", "import", tmp_path / "multi.ce", "--from", "icet", "--out", out)
    cs3 = icet.ClusterSpace(bulk("Au", "fcc", a=4.0), [4.0], ["Au", "Cu", "Pd"])
    icet.ClusterExpansion(cs3, np.zeros(len(cs3))).write(str(tmp_path / "ternary.ce"))
    _assert_refused(capsys, tmp_path, out, ["binary"],
                    "ce", "import", tmp_path / "ternary.ce", "--from", "icet", "--out", out)
    good = (tmp_path / "multi.ce").read_bytes()
    (tmp_path / "corrupt.ce").write_bytes(good[: len(good) // 2])
    _assert_refused(capsys, tmp_path, out, ["corrupt.ce", "not a readable icet"],
                    "ce", "import", tmp_path / "corrupt.ce", "--from", "icet", "--out", out)
    (tmp_path / "noise.ce").write_bytes(b"\x00garbage" * 50)
    _assert_refused(capsys, tmp_path, out, ["noise.ce"],
                    "ce", "import", tmp_path / "noise.ce", "--from", "icet", "--out", out)
    _assert_refused(capsys, tmp_path, out, ["unknown cluster-expansion source 'atat'"],
                    "ce", "import", tmp_path / "noise.ce", "--from", "atat", "--out", out)


def test_bad_clease_input_is_one_line(tmp_path, capsys):
    pytest.importorskip("clease")
    from clease.settings import CEBulk, Concentration

    out = tmp_path / "ce.json"
    settings = CEBulk(Concentration(basis_elements=[["Au", "Cu"]]), crystalstructure="fcc", a=3.8, size=[2, 2, 2],
                      db_name=str(tmp_path / "clease.db"), max_cluster_dia=[4.0])
    settings.save(str(tmp_path / "settings.json"))
    _assert_refused(capsys, tmp_path, out, ["--eci"],
                    "ce", "import", tmp_path / "settings.json", "--from", "clease", "--out", out)
    (tmp_path / "eci.json").write_text(json.dumps({"c0": 0.1, "c7_d0000_0_0000000": 1.0}))
    _assert_refused(capsys, tmp_path, out, ["c7_d0000_0_0000000", "names no cluster"],
                    "ce", "import", tmp_path / "settings.json", "--from", "clease", "--eci", tmp_path / "eci.json",
                    "--out", out)
    (tmp_path / "other.json").write_text(json.dumps({"hello": 1}))
    _assert_refused(capsys, tmp_path, out, ["not a CLEASE settings file"],
                    "ce", "import", tmp_path / "other.json", "--from", "clease", "--eci", tmp_path / "eci.json",
                    "--out", out)
    db_before = (tmp_path / "clease.db").read_bytes()
    (tmp_path / "eci.json").write_text(json.dumps({"c0": 0.1, "c1_0": 0.2}))
    rc, _, err = cli(capsys, "ce", "import", tmp_path / "settings.json", "--from", "clease", "--eci",
                     tmp_path / "eci.json", "--out", out)
    assert rc == 0, err
    assert (tmp_path / "clease.db").read_bytes() == db_before  # the user's database is only read


def test_unsupported_ce_files_are_one_line(tmp_path, capsys):
    """A ternary or multi-sublattice (unknown lattice) CE JSON, and a structure of another lattice, refused by name."""
    from lattherm.engine.analysis.structures import to_atoms

    ref = load_json(CUAU_JSON)
    system = make_system("feco", "2x2x2")
    ase_io.write(tmp_path / "bcc.extxyz", to_atoms(system.lattice, ("Cu", "Au"), np.ones((1, 8))))
    ternary = {**ref, "species": ["Cu", "Au", "Pd"]}
    (tmp_path / "ternary.json").write_text(json.dumps(ternary))
    rc, _, err = cli(capsys, "ce", "energy", tmp_path / "ternary.json", tmp_path / "bcc.extxyz")
    assert rc == 2 and "binary" in err and "3" in err and err.count("\n") == 1
    hcp = {**ref, "species": ["Cu", "Au"], "lattice": {"kind": "hcp", "conventional_lattice_constant_angstrom": 3.0}}
    (tmp_path / "hcp.json").write_text(json.dumps(hcp))
    rc, _, err = cli(capsys, "ce", "energy", tmp_path / "hcp.json", tmp_path / "bcc.extxyz")
    assert rc == 2 and "'hcp' is not supported" in err and err.count("\n") == 1
    rc, _, err = cli(capsys, "ce", "energy", CUAU_JSON, tmp_path / "bcc.extxyz")
    assert rc == 2 and "nearest-neighbour distance" in err and err.count("\n") == 1
    (tmp_path / "broken.json").write_text("{not json")
    rc, _, err = cli(capsys, "ce", "energy", tmp_path / "broken.json", tmp_path / "bcc.extxyz")
    assert rc == 2 and "not valid JSON" in err and err.count("\n") == 1
