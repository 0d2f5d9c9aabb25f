"""Lattice geometry: site ordering, neighbour shells, bonds, translations and cluster orbits (square and fcc)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from lattherm.engine.errors import LatthermError
from lattherm.engine.lattices import Lattice, fcc, lattice_for, parse_size, square
from lattherm.engine.systems.cluster_expansion import CUAU_JSON, load_json

FCC_A = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]])


def test_square_size_and_row_major_order():
    """Square L1 x L2 torus: N = L1 L2 sites, site (i, j) has index i*L2 + j and sits at (i, j)."""
    lat = square(3, 4)
    assert lat.n_sites == 12 and lat.dim == 2 and lat.label == "3x4"
    for i, j in itertools.product(range(3), range(4)):
        k = i * 4 + j
        assert tuple(lat.grid[k]) == (i, j)
        assert tuple(lat.positions[k]) == (i, j)
    assert lat.index(np.array([[3, 0], [-1, 5]])).tolist() == [0, 2 * 4 + 1]  # periodic wrapping


def test_fcc_size_order_and_positions():
    """fcc n1 x n2 x n3 primitive cells: N = n1 n2 n3, index (i1*n2+i2)*n3+i3, r = i1 a1 + i2 a2 + i3 a3 (a/2 units)."""
    n1, n2, n3 = 2, 3, 4
    lat = fcc(n1, n2, n3)
    assert lat.n_sites == 24 and lat.dim == 3
    for i1, i2, i3 in itertools.product(range(n1), range(n2), range(n3)):
        k = (i1 * n2 + i2) * n3 + i3
        assert tuple(lat.grid[k]) == (i1, i2, i3)
        np.testing.assert_array_equal(lat.positions[k], i1 * FCC_A[0] + i2 * FCC_A[1] + i3 * FCC_A[2])
    # every fcc site has an even coordinate sum, and all positions are distinct
    assert np.all(lat.positions.sum(1) % 2 == 0)
    assert len({tuple(r) for r in lat.positions}) == lat.n_sites


@pytest.mark.parametrize("label", ["2x2x4", "4x4x4", "4x4x8"])
def test_fcc_positions_match_the_reference_file(label):
    """The canonical ordering of the CuAu reference test vectors is the lattice's own ordering."""
    tv = load_json(CUAU_JSON)["test_vectors"][label]
    lat = lattice_for("fcc", label)
    np.testing.assert_array_equal(lat.positions, np.asarray(tv["site_coords_in_units_of_half_a"]))


def test_fcc_shells_from_positions():
    """fcc coordination shells (units a/2): 12 at sqrt2, 6 at 2, 24 at sqrt6, 12 at sqrt8."""
    shells = fcc(4, 4, 4).shells(4)
    assert [len(v) for _, v in shells] == [12, 6, 24, 12]
    np.testing.assert_allclose([d for d, _ in shells], [math.sqrt(2), 2, math.sqrt(6), math.sqrt(8)])
    for d, v in shells:
        np.testing.assert_allclose(np.sqrt((v.astype(float) ** 2).sum(1)), d)
        assert len({tuple(x) for x in v}) == len(v)  # no duplicates
        assert {tuple(x) for x in v} == {tuple(-x) for x in v}  # closed under inversion


def test_fcc_shells_agree_with_minimum_image_distances():
    """Independent check from positions alone: in a 6x6x6 cell, minimum-image distances from site 0 to all other
    sites have 12, 6, 24, 12 members at the four smallest distances, and they are the shell-1 ... shell-4 sites."""
    lat = fcc(6, 6, 6)
    r = lat.positions - lat.positions[0]
    images = np.array(list(itertools.product((-1, 0, 1), repeat=3))) @ lat.cell
    d2 = ((r[:, None, :] + images[None, :, :]) ** 2).sum(-1).min(1)
    values, counts = np.unique(d2[1:], return_counts=True)
    assert values[:4].tolist() == [2, 4, 6, 8]
    assert counts[:4].tolist() == [12, 6, 24, 12]
    for shell, value in enumerate(values[:4], start=1):
        assert set(lat.neighbours(shell)[0].tolist()) == set(np.flatnonzero(d2 == value).tolist())


def test_reference_pair_figures_are_the_first_three_shells():
    """The CuAu file's pair figures c2_d0000/d0001/d0002 (one offset at the origin) are exactly the 1st, 2nd and
    3rd fcc neighbour shells, and c2_d0003 the 4th."""
    clusters = {c["name"]: c for c in load_json(CUAU_JSON)["clusters"]}
    shells = fcc(4, 4, 4).shells(4)
    for k, name in enumerate(["c2_d0000_0", "c2_d0001_0", "c2_d0002_0", "c2_d0003_0"]):
        figs = np.asarray(clusters[name]["figures_offsets_in_units_of_half_a"])
        assert figs.shape[1:] == (2, 3)
        offsets = set()
        for f in figs:
            zero = [tuple(v) for v in f if not v.any()]
            other = [tuple(v) for v in f if v.any()]
            assert len(zero) == 1 and len(other) == 1
            offsets.add(other[0])
        assert len(offsets) == len(figs)
        assert offsets == {tuple(v) for v in shells[k][1]}, name


@pytest.mark.parametrize("lat", [square(3, 4), square(5, 5), fcc(2, 2, 4), fcc(3, 4, 5)], ids=repr)
@pytest.mark.parametrize("shell", [1, 2, 3])
def test_neighbours_are_symmetric(lat, shell):
    """Neighbour relations are symmetric: j in nbr(i) <=> i in nbr(j), with equal multiplicities (the shell is
    inversion symmetric), also in small cells where images coincide."""
    nbr = lat.neighbours(shell)
    N = lat.n_sites
    count = np.zeros((N, N), dtype=int)
    np.add.at(count, (np.repeat(np.arange(N), nbr.shape[1]), nbr.reshape(-1)), 1)
    np.testing.assert_array_equal(count, count.T)


def test_neighbours_in_a_large_cell_are_distinct():
    """Without wrap-around coincidences, each fcc site has 12 distinct nearest neighbours, none itself."""
    nbr = fcc(4, 4, 4).neighbours(1)
    assert nbr.shape == (64, 12)
    assert all(len(set(row)) == 12 for row in nbr.tolist())
    assert not np.any(nbr == np.arange(64)[:, None])


def test_square_bonds():
    """Square 3x4 torus: 2N nearest-neighbour bonds, each counted once, every site in exactly 4 bond ends."""
    lat = square(3, 4)
    b = lat.bonds(1)
    assert b.shape == (2 * lat.n_sites, 2)
    np.testing.assert_array_equal(np.bincount(b.reshape(-1), minlength=lat.n_sites), 4)
    assert len({tuple(sorted(x)) for x in b.tolist()}) == 2 * lat.n_sites  # no bond twice (3x4 is wide enough)
    d = lat.positions[b[:, 1]] - lat.positions[b[:, 0]]
    d = (d + np.array([1, 2])) % np.array([3, 4]) - np.array([1, 2])  # minimum image
    assert np.all(np.abs(d).sum(1) == 1)


@pytest.mark.parametrize("lat", [square(3, 4), fcc(2, 2, 4), fcc(3, 2, 5)], ids=repr)
def test_translations_permute_sites(lat):
    """A lattice translation maps the sites bijectively onto themselves (shifted() is a permutation), composes
    additively, and a supercell vector is the identity."""
    N = lat.n_sites
    rng = np.random.default_rng(0)
    vecs = rng.integers(-5, 6, size=(10, lat.dim)) @ lat.vectors
    perms = lat.shifted(vecs)
    assert perms.shape == (N, len(vecs))
    for k in range(len(vecs)):
        np.testing.assert_array_equal(np.sort(perms[:, k]), np.arange(N))
        # site perm[i] is at r_i + v up to a supercell vector
        g = np.rint(vecs[k] @ np.linalg.inv(lat.vectors.astype(float))).astype(int)
        assert np.all((lat.grid[perms[:, k]] - lat.grid - g) % np.asarray(lat.size) == 0)
    both = lat.shifted(vecs[:1] + vecs[1:2])[:, 0]
    np.testing.assert_array_equal(both, perms[perms[:, 0], 1])
    np.testing.assert_array_equal(lat.shifted(lat.cell), np.repeat(np.arange(N)[:, None], lat.dim, 1))


def test_non_lattice_displacements_are_rejected():
    """(1, 0, 0) in units of a/2 is not an fcc lattice vector (odd coordinate sum)."""
    with pytest.raises(LatthermError, match="not a lattice vector"):
        fcc(2, 2, 2).shifted(np.array([[1, 0, 0]]))


def test_orbit_shapes_and_origin():
    """orbit(figures) gives for each site and figure the sites at r_i + offsets; an offset 0 is the site itself."""
    lat = fcc(2, 2, 4)
    figs = np.array([[[0, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 0]]])
    orb = lat.orbit(figs)
    assert orb.shape == (16, 2, 2)
    np.testing.assert_array_equal(orb[:, 0, 0], np.arange(16))
    np.testing.assert_array_equal(orb[:, 1, 1], np.arange(16))
    np.testing.assert_array_equal(orb[:, 0, 1], lat.shifted(np.array([[0, 1, 1]]))[:, 0])


def test_parse_size():
    """Size strings: '2x2x4' -> (2, 2, 4); malformed or non-positive sizes raise LatthermError naming the text."""
    assert parse_size("2x2x4") == (2, 2, 4)
    assert parse_size("10x10") == (10, 10)
    assert parse_size((3, 4)) == (3, 4)
    with pytest.raises(LatthermError, match="10by10"):
        parse_size("10by10")
    with pytest.raises(LatthermError, match="0x3"):
        parse_size("0x3")
    with pytest.raises(LatthermError):
        parse_size("")
    with pytest.raises(LatthermError):
        lattice_for("square", "2x2x2")
    with pytest.raises(LatthermError):
        lattice_for("hexagonal", "3x3")


@pytest.mark.parametrize("lat", [square(3, 4), fcc(2, 2, 4), fcc(4, 4, 8)], ids=repr)
def test_fractional_coordinates(lat):
    """Fractional supercell coordinates lie in [0, 1) and are distinct per site."""
    f = lat.fractional
    assert f.shape == (lat.n_sites, lat.dim)
    assert np.all(f >= 0) and np.all(f < 1)
    assert len({tuple(x) for x in f.tolist()}) == lat.n_sites


def test_equality_and_description():
    """Lattices compare by kind and size (hashable, usable as cache keys)."""
    assert fcc(2, 2, 4) == lattice_for("fcc", "2x2x4")
    assert fcc(2, 2, 4) != fcc(4, 2, 2)
    assert square(3, 3) == square(3)
    assert len({fcc(2, 2, 4), lattice_for("fcc", "2x2x4")}) == 1
    assert isinstance(fcc(1, 1, 1), Lattice)
    assert fcc(2, 2, 4).describe() == {"kind": "fcc", "size": [2, 2, 4]}
