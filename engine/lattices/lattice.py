"""A periodic supercell of a one-site Bravais lattice given by its primitive vectors.

Sites are the integer grid points g (0 <= g_k < size_k) of the primitive cell; site index is row-major over g,
i = (g_1*n_2 + g_2)*n_3 + g_3, which is the canonical ordering of the CuAu reference file. Cartesian positions are
r = g @ A with the primitive vectors as rows of A, in "lattice units": square: unit vectors (units of a); the cubic
3D lattices in units of a/2 so that every vector is integer: sc 2*I, fcc (0,1,1),(1,0,1),(1,1,0), bcc (-1,1,1),
(1,-1,1),(1,1,-1) (the primitive cells ase.build.bulk makes). ``unit_length`` converts lattice units to angstrom.
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

#: the one-site Bravais lattices by name: (primitive vectors as rows in lattice units, lattice units per a)
BRAVAIS: dict[str, tuple[np.ndarray, float]] = {
    "square": (np.eye(2, dtype=np.int64), 1.0),
    "sc": (2 * np.eye(3, dtype=np.int64), 2.0),
    "fcc": (_FCC_VECTORS, 2.0),
    "bcc": (np.array([[-1, 1, 1], [1, -1, 1], [1, 1, -1]], dtype=np.int64), 2.0),
}


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

    @cached_property
    def point_group(self) -> np.ndarray:
        """(P, dim, dim) integer matrices W (grid coordinates, g -> g @ W) that preserve the metric A A^T: the
        lattice's point group, from the primitive vectors alone (48 for the cubic lattices, 8 for square)."""
        A = self.vectors.astype(np.float64)
        G = A @ A.T
        cand = np.array(np.meshgrid(*([[-1, 0, 1]] * (self.dim * self.dim)), indexing="ij")).reshape(
            self.dim * self.dim, -1).T.reshape(-1, self.dim, self.dim)
        keep = [W for W in cand if abs(abs(np.linalg.det(W)) - 1) < 1e-9 and np.allclose(W @ G @ W.T, G)]
        return np.array(keep, dtype=np.int64)

    def cluster_figures(self, offsets) -> np.ndarray:
        """All figures (F, k, dim) of the orbit of one cluster (k sites, positions in lattice units, any
        origin) that contain the origin, one per (symmetry image, member at the origin): the per-site figure list
        of the cluster-expansion file. Members of each figure are sorted so that equal figures compare equal."""
        r = np.atleast_2d(np.asarray(offsets, dtype=np.float64))
        g = r @ np.linalg.inv(self.vectors.astype(np.float64))
        gi = np.rint(g).astype(np.int64)
        if r.shape[1] != self.dim or not np.allclose(g, gi, atol=1e-6):
            raise LatthermError(f"cluster sites {r.tolist()} are not sites of the {self.kind} lattice")
        seen = set()
        for W in self.point_group:
            img = gi @ W
            for j in range(len(img)):
                fig = img - img[j]
                seen.add(tuple(sorted(map(tuple, fig.tolist()))))
        figs = np.array(sorted(seen), dtype=np.int64)  # (F, k, dim) grid offsets
        return figs @ self.vectors

    def describe(self) -> dict:
        return {"kind": self.kind, "size": list(self.size)}


def square(L1: int, L2: int | None = None) -> Lattice:
    """Periodic L1 x L2 square lattice (rows x columns); site (i, j) has index i*L2 + j."""
    L2 = L1 if L2 is None else L2
    return Lattice("square", (int(L1), int(L2)), np.eye(2, dtype=np.int64))


def bravais(kind: str, size, a: float | None = None) -> Lattice:
    """Supercell n1 x n2 (x n3) of the Bravais lattice ``kind`` (:data:`BRAVAIS`) with lattice constant ``a``
    (angstrom; None = the lattice-unit length 1, for model lattices)."""
    if kind not in BRAVAIS:
        raise LatthermError(f"unknown lattice kind {kind!r} ({', '.join(BRAVAIS)})")
    vectors, per_a = BRAVAIS[kind]
    dims = parse_size(size)
    if len(dims) != len(vectors):
        two = len(vectors) == 2
        article = "an" if kind[0] in "fs" else "a"  # "an fcc", "an sc", "a bcc"
        raise LatthermError(f"{article} {kind} {'lattice' if two else 'supercell'} needs {'two' if two else 'three'} "
                            f"extents like {'10x10' if two else '2x2x4'}, got {size!r}")
    return Lattice(kind, dims, vectors.copy(), unit_length=1.0 if a is None else float(a) / per_a)


def fcc(n1: int, n2: int, n3: int, a: float = 3.8) -> Lattice:
    """fcc supercell of n1 x n2 x n3 primitive cells (positions in units of a/2)."""
    return bravais("fcc", (n1, n2, n3), a)


def bcc(n1: int, n2: int, n3: int, a: float | None = None) -> Lattice:
    """bcc supercell of n1 x n2 x n3 primitive cells (positions in units of a/2)."""
    return bravais("bcc", (n1, n2, n3), a)


def simple_cubic(n1: int, n2: int, n3: int, a: float | None = None) -> Lattice:
    """Simple-cubic supercell of n1 x n2 x n3 cells (positions in units of a/2)."""
    return bravais("sc", (n1, n2, n3), a)


def lattice_for(kind: str, size, a: float | None = None) -> Lattice:
    """The ``kind`` lattice at ``size`` ('10x10', '2x2x4' or a tuple); a bad kind or size is a LatthermError."""
    return bravais(kind, size, a)


def identify_bravais(cell, tol: float = 1e-6) -> tuple[str, float]:
    """(kind, a) of a 3D primitive cell (rows, angstrom) that spans one of the cubic Bravais lattices of
    :data:`BRAVAIS` in their standard orientation (any primitive basis of it); else a LatthermError."""
    cell = np.asarray(cell, dtype=np.float64)
    if cell.shape != (3, 3) or abs(np.linalg.det(cell)) < 1e-9:
        raise LatthermError(f"the primitive cell {np.round(cell, 4).tolist()} is not three independent 3D vectors")
    volume = abs(np.linalg.det(cell))
    for kind, (vectors, per_a) in BRAVAIS.items():
        if vectors.shape != (3, 3):
            continue
        unit = (volume / abs(np.linalg.det(vectors))) ** (1 / 3)  # angstrom per lattice unit
        m = cell @ np.linalg.inv(vectors * unit)
        if np.allclose(m, np.rint(m), atol=tol * 10) and abs(abs(round(np.linalg.det(np.rint(m)))) - 1) < 1e-9:
            return kind, float(f"{unit * per_a:.12g}")  # 3.9999999999999996 -> 4.0
    raise LatthermError(f"the primitive cell {np.round(cell, 4).tolist()} is not an sc, fcc or bcc lattice in the "
                        "standard cubic orientation")
