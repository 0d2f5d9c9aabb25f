"""The CuAu cluster expansion (SCIENCE.md, CuAu) against the reference file shared/reference/cuau_cluster_expansion.json."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lattherm.engine.errors import LatthermError
from lattherm.engine.lattices import fcc, square
from lattherm.engine.systems import make_system
from lattherm.engine.systems.cluster_expansion import CUAU_JSON, ClusterExpansion, cuau, load_json

REF = load_json(CUAU_JSON)
CELLS = sorted(REF["test_vectors"])


def dims_of(label: str) -> tuple[int, int, int]:
    n1, n2, n3 = (int(v) for v in label.split("x"))
    return n1, n2, n3


def spins_from_bits(bits: str) -> list[int]:
    return [2 * int(b) - 1 for b in bits]  # occupation x_i = 1 for Au -> s_i = +1


def random_spins(n: int, batch: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 2, (batch, n), generator=g) * 2 - 1).to(torch.float64)


def test_bundled_file_is_the_shared_reference():
    """The engine ships the same expansion as shared/reference (guards against a stale copy)."""
    repo = CUAU_JSON.parents[2]
    found = [p / "shared" / "reference" / "cuau_cluster_expansion.json" for p in (repo, repo.parent)]
    found = [p for p in found if p.exists()]
    if not found:
        pytest.skip("no shared/reference in or beside the checkout")
    shared = found[0]
    assert json.loads(shared.read_text()) == json.loads(CUAU_JSON.read_text())


@pytest.mark.parametrize("label", CELLS)
def test_reference_cells_use_the_canonical_site_ordering(label):
    """Geometry: the test vectors index sites as (i1*n2+i2)*n3+i3 at r = sum_k i_k a_k; our fcc lattice must
    produce exactly those coordinates (units a/2) in that order, or the bit strings would mean other configurations."""
    tv = REF["test_vectors"][label]
    lat = fcc(*dims_of(label))
    assert lat.n_sites == tv["N"] == len(tv["site_coords_in_units_of_half_a"])
    np.testing.assert_array_equal(lat.positions, np.asarray(tv["site_coords_in_units_of_half_a"]))


@pytest.mark.parametrize("label", CELLS)
def test_golden_energies_of_every_test_vector(label):
    """Cluster-expansion energy: E_raw = N sum ECI cf and E_form = E_raw - (1-c) U_Cu - c U_Au reproduce the
    CLEASE-computed totals of every reference configuration (16, 64, 128 sites; figures wrap in small cells)."""
    tv = REF["test_vectors"][label]
    system = cuau(fcc(*dims_of(label)))
    s = torch.tensor([spins_from_bits(t["occupation_bits"]) for t in tv["tests"]], dtype=torch.float64)
    n_au = torch.tensor([t["N_Au"] for t in tv["tests"]])
    assert torch.equal((s > 0).sum(1), n_au)
    e_raw = system.raw_energy(s)
    e_form = system.energy(s)
    assert e_raw.dtype == e_form.dtype == torch.float64 and e_raw.shape == (len(tv["tests"]),)
    for k, t in enumerate(tv["tests"]):
        assert abs(e_raw[k].item() - t["E_raw_total_eV"]) < 1e-10, (label, k)
        assert abs(e_form[k].item() - t["E_form_total_eV"]) < 1e-10, (label, k)


@pytest.mark.parametrize("label", CELLS)
def test_pure_element_references(label):
    """Formation-energy convention: U_Cu, U_Au are E_raw of the pure cells, N times the per-site values in the
    file, and the pure elements have zero formation energy."""
    tv = REF["test_vectors"][label]
    system = cuau(fcc(*dims_of(label)))
    N = system.n_sites
    assert abs(system.U_minus_per_site * N - tv["U_Cu_total_eV"]) < 1e-12
    assert abs(system.U_plus_per_site * N - tv["U_Au_total_eV"]) < 1e-12
    assert abs(system.U_minus_per_site - REF["energy_formula"]["U_Cu_per_site_eV"]) < 1e-15
    assert abs(system.U_plus_per_site - REF["energy_formula"]["U_Au_per_site_eV"]) < 1e-15
    pure = torch.stack([-torch.ones(N), torch.ones(N)]).to(torch.float64)
    np.testing.assert_allclose(system.raw_energy(pure).numpy(), [tv["U_Cu_total_eV"], tv["U_Au_total_eV"]],
                               rtol=0, atol=1e-12)
    assert torch.all(system.energy(pure).abs() < 1e-12)


@pytest.mark.parametrize("dims", [(1, 1, 1), (3, 3, 3), (2, 3, 5)])
def test_pure_elements_have_zero_formation_energy_in_any_cell(dims):
    """E_form(all Cu) = E_form(all Au) = 0 for every cell, also odd ones where many figures wrap onto one site."""
    system = cuau(fcc(*dims))
    N = system.n_sites
    pure = torch.stack([-torch.ones(N), torch.ones(N)])
    assert torch.all(system.energy(pure).abs() < 1e-12)


def ordered(kind: str, lattice) -> torch.Tensor:
    """Spins of an ordered structure on ``lattice`` (positions in units of a/2, conventional cube = 2)."""
    r = lattice.positions
    if kind == "L1_0":  # Au on the (001) planes z = 0 mod a, Cu on the planes in between
        au = r[:, 2] % 2 == 0
    elif kind == "Cu3Au":  # Au on the simple-cubic corner sublattice, Cu on the face centres
        au = np.all(r % 2 == 0, axis=1)
    elif kind == "CuAu3":  # the same with species swapped
        au = ~np.all(r % 2 == 0, axis=1)
    else:
        raise ValueError(kind)
    return torch.as_tensor(np.where(au, 1.0, -1.0))[None, :]


ORDERED = {
    "L1_0": "L1_0_CuAu(Au on even z/(a/2) planes)",
    "Cu3Au": "L1_2_Cu3Au(Au on simple-cubic corner sublattice)",
    "CuAu3": "L1_2_CuAu3",
}


@pytest.mark.parametrize("dims", [(2, 2, 2), (2, 2, 4), (4, 4, 4)])
@pytest.mark.parametrize("kind", sorted(ORDERED))
def test_ordered_structures(kind, dims):
    """Ordered phases: L1_0 CuAu and L1_2 Cu3Au / CuAu3 reproduce the per-site formation (and raw) energies of the
    file. They fit the cell when all supercell vectors n_k a_k have even Cartesian components (n_k even), so the
    periodic images, wrapped figures included, are exactly those of the infinite crystal: per-site energies are
    cell-size independent."""
    system = cuau(fcc(*dims))
    ref = REF["ordered_structures_eV_per_site"][ORDERED[kind]]
    s = ordered(kind, system.lattice)
    N = system.n_sites
    assert abs(system.observable(s).item() - ref["x_Au"]) < 1e-15
    assert abs(system.energy(s).item() / N - ref["E_form_per_site_eV"]) < 1e-12
    assert abs(system.raw_energy(s).item() / N - ref["E_raw_per_site_eV"]) < 1e-12


def test_ordered_structures_are_on_the_hardcoded_hull():
    """The three ordered phases have negative formation energy and match the convex hull of the source code
    (a mixing alloy: Cu3Au, CuAu, CuAu3 are ground states below the pure-element tie line)."""
    system = cuau(fcc(2, 2, 4))
    hull = REF["hull_hardcoded_in_source_eV_per_site"]
    for kind, x in (("Cu3Au", "0.25"), ("L1_0", "0.5"), ("CuAu3", "0.75")):
        e = system.energy(ordered(kind, system.lattice)).item() / system.n_sites
        assert e < 0
        assert abs(e - hull[x]) < 1e-8


def test_correlation_functions_of_empty_and_point_clusters():
    """cf(c0) = 1 for every configuration and cf(c1) = <s_i>, the mean spin."""
    system = cuau(fcc(4, 4, 8))
    s = random_spins(system.n_sites, 7, seed=3)
    cf = system.correlation_functions(s)
    names = list(system.cluster_names)
    assert torch.all(cf[:, names.index("c0")] == 1)
    torch.testing.assert_close(cf[:, names.index("c1")], s.mean(1), rtol=0, atol=1e-15)
    assert torch.all(cf.abs() <= 1 + 1e-15)
    # E_raw = N sum_alpha ECI_alpha cf_alpha, literally
    torch.testing.assert_close(system.raw_energy(s), system.n_sites * (cf @ system.eci), rtol=0, atol=1e-12)


def test_chemical_potential_sign_convention():
    """Semi-grand-canonical weight log f = -(E_form - mu sum s)/kT: at fixed T, raising mu by dmu changes
    log f(b) - log f(a) by exactly 2 dmu (N_Au(b) - N_Au(a)) / kT, so positive mu favours Au-rich configurations."""
    system = cuau(fcc(2, 2, 4))
    N = system.n_sites
    s = random_spins(N, 32, seed=1)
    s[0] = -1  # pure Cu
    s[1] = 1  # pure Au
    T, mu1, mu2 = 600.0, -0.03, 0.05
    kT = system.k_B * T
    n_au = (s > 0).sum(1).to(torch.float64)
    d1 = system.log_f(s, T, mu2) - system.log_f(s, T, mu1)
    # per configuration: d log f / d mu = sum s / kT = (2 N_Au - N) / kT
    torch.testing.assert_close(d1, (mu2 - mu1) * (2 * n_au - N) / kT, rtol=1e-12, atol=1e-12)
    # pairwise: 2 dmu dN_Au / kT
    pair = d1[:, None] - d1[None, :]
    torch.testing.assert_close(pair, 2 * (mu2 - mu1) * (n_au[:, None] - n_au[None, :]) / kT, rtol=1e-12, atol=1e-10)
    # log f itself follows the formula
    torch.testing.assert_close(system.log_f(s, T, mu1), -(system.energy(s) - mu1 * s.sum(1)) / kT)
    # positive mu: pure Au (E_form = 0 like pure Cu) outweighs pure Cu by 2 mu N / kT
    lf = system.log_f(s[:2], T, 0.01)
    assert lf[1] > lf[0]
    assert math.isclose((lf[1] - lf[0]).item(), 2 * 0.01 * N / kT, rel_tol=1e-12)


@pytest.mark.parametrize("dims", [(2, 2, 4), (4, 4, 8)])
def test_batched_equals_one_by_one(dims):
    """Batching is only vectorisation: energies of a batch equal those evaluated one configuration at a time,
    for any input dtype of the spins."""
    system = cuau(fcc(*dims))
    s = random_spins(system.n_sites, 40, seed=2)
    batched = system.energy(s)
    single = torch.cat([system.energy(s[k : k + 1]) for k in range(len(s))])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-12)
    for dtype in (torch.int64, torch.int8, torch.float32):
        torch.testing.assert_close(system.energy(s.to(dtype)), batched, rtol=0, atol=1e-12)
    raw = system.raw_energy(s)
    torch.testing.assert_close(raw, torch.cat([system.raw_energy(s[k : k + 1]) for k in range(len(s))]),
                               rtol=0, atol=1e-12)


def test_energy_is_translation_invariant():
    """A cluster expansion of a single-sublattice crystal is invariant under lattice translations of a configuration."""
    system = cuau(fcc(4, 4, 8))
    lat = system.lattice
    s = random_spins(system.n_sites, 5, seed=4)
    for v in ([0, 1, 1], [1, 1, 0], [2, 0, 0], [-1, 2, 1]):
        perm = torch.as_tensor(lat.shifted(np.array([v]))[:, 0])
        torch.testing.assert_close(system.energy(s[:, perm]), system.energy(s), rtol=0, atol=1e-12)


def test_system_metadata_and_observable():
    """The CuAu system's conventions: Cu = spin -1 (species 0), Au = +1, kelvin and eV, observable x_Au."""
    system = make_system("cuau", "2x2x4")
    assert isinstance(system, ClusterExpansion)
    assert system.name == "cuau" and system.n_sites == 16
    assert system.species == ("Cu", "Au")
    assert system.k_B == pytest.approx(8.617333262e-5, rel=1e-12)
    assert (system.temperature_unit, system.mu_unit) == ("K", "eV")
    assert (system.T_scale, system.mu_scale) == (700.0, 0.12)
    assert system.observable_name == "x_Au"
    s = torch.tensor([[1] * 4 + [-1] * 12, [1] * 16])
    torch.testing.assert_close(system.observable(s), torch.tensor([0.25, 1.0], dtype=torch.float64))


def test_non_fcc_lattices_are_rejected():
    """The expansion's figures are fcc offsets: a square lattice is refused with a clear message."""
    with pytest.raises(LatthermError, match="fcc"):
        cuau(square(4, 4))
    with pytest.raises(LatthermError):
        make_system("cuau", "10x10")


def write(tmp_path, data) -> str:
    p = tmp_path / "ce.json"
    p.write_text(json.dumps(data))
    return str(p)


def test_malformed_files_are_rejected(tmp_path):
    """Validation of the expansion file: unreadable, non-JSON, missing keys, unknown ECIs, bad figures."""
    lat = fcc(2, 2, 2)
    with pytest.raises(LatthermError, match="cannot read"):
        ClusterExpansion.from_json(tmp_path / "missing.json", lat)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LatthermError, match="not valid JSON"):
        ClusterExpansion.from_json(bad, lat)
    base = json.loads(CUAU_JSON.read_text())
    for key in ("clusters", "eci_eV_per_site"):
        d = {k: v for k, v in base.items() if k != key}
        with pytest.raises(LatthermError, match=key):
            ClusterExpansion.from_json(write(tmp_path, d), lat)
    d = json.loads(CUAU_JSON.read_text())
    d["clusters"][3]["eci_key"] = "nope"
    with pytest.raises(LatthermError, match="nope"):
        ClusterExpansion.from_json(write(tmp_path, d), lat)
    d = json.loads(CUAU_JSON.read_text())
    d["clusters"][2]["figures_offsets_in_units_of_half_a"] = [[[0, 1]]]
    with pytest.raises(LatthermError, match="figures"):
        ClusterExpansion.from_json(write(tmp_path, d), lat)
    d = json.loads(CUAU_JSON.read_text())
    del d["clusters"][5]["size"]
    with pytest.raises(LatthermError, match="size"):
        ClusterExpansion.from_json(write(tmp_path, d), lat)
    d = json.loads(CUAU_JSON.read_text())
    d["eci_eV_per_site"]["c2_d0000_0_00"] = "x"
    with pytest.raises(LatthermError, match="not a number"):
        ClusterExpansion.from_json(write(tmp_path, d), lat)
    d = json.loads(CUAU_JSON.read_text())
    d["energy_formula"]["U_Au_per_site_eV"] = 1.0
    with pytest.raises(LatthermError, match="U_Au_per_site_eV"):
        ClusterExpansion.from_json(write(tmp_path, d), lat)


def test_general_expansion_from_json(tmp_path):
    """ClusterExpansion is general: a nearest-neighbour pair model J sum_<ij> s_i s_j written in the file format
    gives E_raw = J/12 * sum_i sum_{12 nbrs} s_i s_j = J * (number of bonds with equal minus unequal spins)."""
    J = 0.01
    nn = REF["clusters"][2]
    data = {
        "eci_eV_per_site": {"c2": J},
        "clusters": [{"name": "nn", "eci_key": "c2", "size": 2,
                      "figures_offsets_in_units_of_half_a": nn["figures_offsets_in_units_of_half_a"]}],
    }
    lat = fcc(3, 3, 3)
    system = ClusterExpansion.from_json(write(tmp_path, data), lat)
    s = random_spins(lat.n_sites, 6, seed=5)
    nbr = torch.as_tensor(lat.neighbours(1))
    expected = J / 12 * (s[:, :, None] * s[:, nbr]).sum((1, 2))
    torch.testing.assert_close(system.raw_energy(s), expected, rtol=0, atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    """Device-agnostic evaluation: the same energies on the GPU as on the CPU."""
    system = cuau(fcc(4, 4, 8))
    s = random_spins(system.n_sites, 64, seed=6)
    torch.testing.assert_close(system.energy(s.cuda()).cpu(), system.energy(s), rtol=0, atol=1e-12)
