"""A periodic Bravais lattice supercell.

Sites are the integer grid points g (0 <= g_k < size_k) of the primitive cell; site index is row-major over g,
i = (g_1*n_2 + g_2)*n_3 + g_3, which is the canonical ordering of the CuAu reference file. Cartesian positions are
r = g @ A with the primitive vectors as rows of A (square: unit vectors; fcc: (0,1,1),(1,0,1),(1,1,0) in units of a/2).
Neighbours and cluster figures are found by adding displacement vectors to positions and wrapping periodically, so
in small cells two offsets may land on the same site, exactly as the cluster-expansion reference does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from ..errors import LatthermError

_FCC_VECTORS = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=np.int64)


def parse_size(text: str | tuple | list) -> tuple[int, ...]:
    """'10x10' -> (10, 10); '2x2x4' -> (2, 2, 4). Raises a LatthermError naming the bad text."""
    if isinstance(text, (tuple, list)):
        dims = tuple(int(v) for v in text)
    else:
        if not re.fullmatch(r"\s*\d+(\s*[xX×]\s*\d+)*\s*", str(text)):
            raise LatthermError(f"lattice size {text!r} is not of the form 10x10 or 2x2x4")
        dims = tuple(int(v) for v in re.split(r"[xX×]", str(text)))
    if not dims or any(d < 1 for d in dims):
        raise LatthermError(f"lattice size {text!r} must have positive extents")
    return dims


@dataclass(frozen=True, eq=False)
class Lattice:
    """Periodic supercell of ``size`` primitive cells along primitive vectors ``vectors`` (rows)."""

    kind: str
    size: tuple[int, ...]
    vectors: np.ndarray = field(repr=False)
    #: length of one position unit in angstrom (fcc: a/2); 1.0 for model lattices
    unit_length: float = 1.0

    # ---- basic geometry -------------------------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return len(self.size)

    @property
    def n_sites(self) -> int:
        return int(np.prod(self.size))

    @property
    def label(self) -> str:
        return "x".join(str(n) for n in self.size)

    def __eq__(self, other) -> bool:
        return isinstance(other, Lattice) and (self.kind, self.size) == (other.kind, other.size)

    def __hash__(self) -> int:
        return hash((self.kind, self.size))

    @cached_property
    def grid(self) -> np.ndarray:
        """(N, dim) integer cell coordinates of each site, in site-index order."""
        axes = np.meshgrid(*[np.arange(n) for n in self.size], indexing="ij")
        return np.stack([a.reshape(-1) for a in axes], axis=1).astype(np.int64)

    @cached_property
    def positions(self) -> np.ndarray:
        """(N, dim) Cartesian positions in lattice units (square: spacing 1; fcc: a/2)."""
        return self.grid @ self.vectors

    @cached_property
    def fractional(self) -> np.ndarray:
        """(N, dim) fractional coordinates in the supercell, each in [0, 1): what periodic RoPE rotates by."""
        return self.grid / np.asarray(self.size, dtype=np.float64)

    @cached_property
    def cell(self) -> np.ndarray:
        """(dim, dim) supercell vectors as rows (size_k * a_k), in lattice units."""
        return np.asarray(self.size)[:, None] * self.vectors

    def index(self, grid: np.ndarray) -> np.ndarray:
        """Site index of integer cell coordinates (..., dim), wrapped periodically."""
        g = np.mod(np.asarray(grid, dtype=np.int64), np.asarray(self.size))
        idx = np.zeros(g.shape[:-1], dtype=np.int64)
        for k, n in enumerate(self.size):
            idx = idx * n + g[..., k]
        return idx

    def shifted(self, displacement: np.ndarray) -> np.ndarray:
        """For Cartesian displacements (M, dim): (N, M) index of the site at r_i + v (periodic images)."""
        v = np.atleast_2d(np.asarray(displacement, dtype=np.float64))
        g = v @ np.linalg.inv(self.vectors.astype(np.float64))
        gi = np.rint(g).astype(np.int64)
        if not np.allclose(g, gi, atol=1e-9):
            raise LatthermError(f"displacement {v.tolist()} is not a lattice vector of the {self.kind} lattice")
        return self.index(self.grid[:, None, :] + gi[None, :, :])

    # ---- neighbours and clusters -----------------------------------------------------------------------------
    def shells(self, n_shells: int) -> list[tuple[float, np.ndarray]]:
        """The first ``n_shells`` neighbour shells as (distance, (z, dim) displacement vectors), from positions.

        Displacements are taken in the infinite lattice, then wrapped into the supercell by :meth:`shifted`.
        """
        reach = n_shells + 2
        rng = np.arange(-reach, reach + 1)
        m = np.stack(np.meshgrid(*([rng] * self.dim), indexing="ij"), -1).reshape(-1, self.dim)
        vecs = m @ self.vectors
        dist = np.sqrt((vecs.astype(np.float64) ** 2).sum(1))
        keys = np.round(dist, 9)
        out = []
        for d in np.unique(keys[keys > 0])[:n_shells]:
            sel = vecs[keys == d]
            order = np.lexsort(sel.T[::-1])
            out.append((float(d), sel[order]))
        return out

    def neighbours(self, shell: int = 1) -> np.ndarray:
        """(N, z) site indices of the neighbours in shell ``shell`` (1 = nearest)."""
        return self.shifted(self.shells(shell)[shell - 1][1])

    def bonds(self, shell: int = 1) -> np.ndarray:
        """(N*z/2, 2) pairs, each bond of the shell once: for every site, the displacements whose first
        non-zero component is positive. Small cells keep wrap-around duplicates (a 2-wide torus has doubled bonds)."""
        vecs = self.shells(shell)[shell - 1][1]
        first = np.array([v[np.flatnonzero(v)[0]] for v in vecs])
        half = vecs[first > 0]
        j = self.shifted(half)
        i = np.repeat(np.arange(self.n_sites)[:, None], len(half), 1)
        return np.stack([i.reshape(-1), j.reshape(-1)], 1)

    def orbit(self, figures: np.ndarray) -> np.ndarray:
        """Cluster orbit: figures (F, k, dim) of offsets (each figure relative to a site) -> (N, F, k) site indices."""
        f = np.asarray(figures)
        F, k, _ = f.shape
        idx = self.shifted(f.reshape(F * k, -1))
        return idx.reshape(self.n_sites, F, k)

    def describe(self) -> dict:
        return {"kind": self.kind, "size": list(self.size)}


def square(L1: int, L2: int | None = None) -> Lattice:
    """Periodic L1 x L2 square lattice (rows x columns); site (i, j) has index i*L2 + j."""
    L2 = L1 if L2 is None else L2
    return Lattice("square", (int(L1), int(L2)), np.eye(2, dtype=np.int64))


def fcc(n1: int, n2: int, n3: int, a: float = 3.8) -> Lattice:
    """fcc supercell of n1 x n2 x n3 primitive cells (positions in units of a/2)."""
    return Lattice("fcc", (int(n1), int(n2), int(n3)), _FCC_VECTORS.copy(), unit_length=a / 2)


def lattice_for(kind: str, size) -> Lattice:
    dims = parse_size(size)
    if kind == "square":
        if len(dims) != 2:
            raise LatthermError(f"a square lattice needs two extents like 10x10, got {size!r}")
        return square(*dims)
    if kind == "fcc":
        if len(dims) != 3:
            raise LatthermError(f"an fcc supercell needs three extents like 2x2x4, got {size!r}")
        return fcc(*dims)
    raise LatthermError(f"unknown lattice kind {kind!r} (square, fcc)")
