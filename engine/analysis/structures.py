"""Atomic structures through ASE: configurations of a lattice system as ``ase.Atoms``, written and read by ``ase.io``.

Export: every configuration (spins +-1; species[0] <-> -1, species[1] <-> +1) becomes an ``Atoms`` with the real
Cartesian positions ``Lattice.positions * unit_length`` (angstrom, the system's lattice constant) and the supercell
``Lattice.cell`` rows, periodic in all three directions. Formats that hold many structures (extended XYZ, CIF) get
one multi-frame file; those that hold one (VASP POSCAR, LAMMPS data) a folder with one file per configuration.

Import (:func:`structure_to_config`): any supercell of the system's lattice -- rotated, shifted, non-diagonal (a
conventional cubic cell), in any atom order -- is mapped onto the smallest n1 x n2 x n3 supercell of the primitive
vectors that it tiles: the rotation is found by matching nearest-neighbour vectors, every atom must sit on a site,
and every site of the cell must be occupied exactly once.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LatthermError
from ..lattices import Lattice, lattice_for
from ..store.samples import file_encoding
from ..systems import CATALOG


@dataclass(frozen=True)
class Format:
    """A structure format: the name ase.io knows, whether one file holds many structures, the file suffix."""

    name: str
    ase_name: str
    multi: bool
    suffix: str


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("extxyz", "extxyz", True, ".extxyz"),
    Format("cif", "cif", True, ".cif"),
    Format("vasp", "vasp", False, ".vasp"),
    Format("lammps-data", "lammps-data", False, ".data"),
)}
#: output suffixes that name a format
SUFFIXES = {".xyz": "extxyz", ".extxyz": "extxyz", ".cif": "cif", ".vasp": "vasp", ".poscar": "vasp",
            ".data": "lammps-data", ".lmp": "lammps-data"}
_GRID_TOL = 0.02  # in primitive-cell (dimensionless) coordinates: sites are >= 1 apart
_NN_RTOL = 1e-2  # relative nearest-neighbour distance tolerance


def format_of(name: str) -> Format:
    f = FORMATS.get(str(name).lower())
    if f is None:
        raise LatthermError(f"unknown structure format {name!r} (choose from: {', '.join(FORMATS)})")
    return f


# ---- checks and helpers -----------------------------------------------------------------------------------------
def _check_atomic(lattice: Lattice, species_names) -> tuple[str, str]:
    if lattice.dim != 3:
        raise LatthermError(f"structure files are for atoms in 3D; a {lattice.kind} {lattice.label} lattice "
                            "(e.g. Ising spins) cannot be exported")
    from ase.data import chemical_symbols

    names = tuple(str(s) for s in species_names)
    if len(names) != 2 or not all(s in chemical_symbols[1:] for s in names):
        raise LatthermError(f"species {list(names)} are not two chemical element symbols; cannot export atoms")
    return names  # type: ignore[return-value]


def _configs(lattice: Lattice, configs) -> np.ndarray:
    c = np.asarray(configs)
    if c.ndim == 1:
        c = c[None]
    c = c.reshape(-1, lattice.n_sites) if c.size % lattice.n_sites == 0 and c.size else c
    if c.ndim != 2 or c.shape[1] != lattice.n_sites:
        raise LatthermError(f"configurations of shape {np.shape(configs)} do not fit the {lattice.label} lattice "
                            f"({lattice.n_sites} sites)")
    if not np.isin(c, (-1, 1)).all():
        raise LatthermError("configurations must be spins -1/+1 (species index 0/1 decoded)")
    return c.astype(np.int8)


def _infos(info, n: int) -> list[dict]:
    if info is None:
        return [{} for _ in range(n)]
    if isinstance(info, dict):
        return [dict(info) for _ in range(n)]
    info = list(info)
    if len(info) != n:
        raise LatthermError(f"{len(info)} info entries for {n} configurations")
    return [dict(d) for d in info]


def to_atoms(lattice: Lattice, species_names, configs, info=None) -> list:
    """Configurations (F, N) spins +-1 -> F ``ase.Atoms`` (angstrom; per-frame ``info`` dicts plus ``frame``)."""
    from ase import Atoms

    names = _check_atomic(lattice, species_names)
    c = _configs(lattice, configs)
    pos = lattice.positions * lattice.unit_length
    cell = lattice.cell * lattice.unit_length
    out = []
    for k, (config, extra) in enumerate(zip(c, _infos(info, len(c)))):
        atoms = Atoms(symbols=list(np.where(config > 0, names[1], names[0])), positions=pos, cell=cell, pbc=True)
        atoms.info.update({**extra, "frame": k})
        out.append(atoms)
    return out


def _write_one(path, images, fmt: Format, species) -> None:
    from ase.io import write

    if fmt.name == "lammps-data":
        write(path, images, format=fmt.ase_name, specorder=list(species), masses=True, units="metal")
    elif fmt.name == "vasp":
        write(path, images, format=fmt.ase_name, direct=True, sort=False)  # keep the site order
    else:
        write(path, images, format=fmt.ase_name)


def write_structures(out, fmt: str, lattice: Lattice, species_names, configs, info=None) -> tuple[Path, int]:
    """Write configurations through ase.io; returns (path, files written). Multi-structure formats: one file at
    ``out``; single-structure formats: a folder ``out`` of ``frame-00000<suffix>`` files (one configuration alone
    goes to the file ``out``). Atomic: a temporary sibling is renamed into place, so a failure leaves nothing."""
    f = format_of(fmt)
    images = to_atoms(lattice, species_names, configs, info)
    out = Path(out)
    species = tuple(str(s) for s in species_names)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise LatthermError(f"cannot write {out}: its folder {parent} does not exist")
    folder = not f.multi and (len(images) > 1 or out.is_dir())
    if folder:
        if out.exists() and not out.is_dir():
            raise LatthermError(f"--out {out} is an existing file; {len(images)} {f.name} structures need a folder")
        if out.is_dir() and any(out.iterdir()):
            raise LatthermError(f"--out {out} is a folder with files in it; choose a new or empty folder")
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent))
        try:
            for k, atoms in enumerate(images):
                _write_one(tmp / f"frame-{k:05d}{f.suffix}", atoms, f, species)
            if out.is_dir():
                out.rmdir()
            os.replace(tmp, out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return out, len(images)
    if out.is_dir():
        raise LatthermError(f"--out {out} is a folder; a {f.name} file needs a file name")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=parent)
    os.close(fd)
    try:
        _write_one(tmp_name, images if f.multi else images[0], f, species)
        os.replace(tmp_name, out)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return out, 1


# ---- samples files ------------------------------------------------------------------------------------------------
def _per_frame(a, lead: tuple[int, ...], name: str) -> np.ndarray | None:
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return np.full(int(np.prod(lead)), float(a))
    if a.shape == lead[: a.ndim]:
        return np.broadcast_to(a.reshape(a.shape + (1,) * (len(lead) - a.ndim)), lead).reshape(-1)
    if a.size == int(np.prod(lead)):
        return a.reshape(-1)
    raise LatthermError(f"'{name}' of shape {a.shape} does not match {lead} configurations")


def lattice_of_samples(data: dict) -> Lattice:
    """The atomic lattice of a samples file: kind from its ``lattice`` entry and the lattice constant from its
    ``lattice_constant`` entry, else from the catalog system it names."""
    system = str(data.get("system", ""))
    info = CATALOG.get(system)
    kind = str(data["lattice"]) if "lattice" in data else (info.lattice_kind if info else "fcc")
    if "lattice_constant" in data and np.isfinite(float(data["lattice_constant"])):
        a = float(data["lattice_constant"])
    elif info is not None and info.lattice_constant is not None:
        a = info.lattice_constant
    else:
        raise LatthermError(f"the samples file of system {system!r} records no lattice constant; cannot place atoms")
    return lattice_for(kind, str(data["size"]), a)


def frames_from_samples(data: dict, max_frames: int | None = None):
    """A :func:`read_samples` dict -> (lattice, species names, (F, N) spins, per-frame info dicts).

    Any leading dimensions ((n,) or a (G, n) grid) are flattened; T, mu, log_p and log_f follow each frame."""
    enc = file_encoding(data)
    system = str(data.get("system", ""))
    if enc == "spin":
        raise LatthermError(f"{system or 'spin'} samples hold model spins on a square lattice, not atoms; "
                            "structure export needs an alloy (e.g. cuau) samples file")
    if "size" not in data or "species" not in data:
        raise LatthermError("samples file lacks 'size' or 'species'; cannot build the atomic structure")
    lattice = lattice_of_samples(data)
    species = tuple(str(s) for s in np.asarray(data["species"]).reshape(-1))
    samples = np.asarray(data["samples"])
    if samples.shape[samples.ndim - lattice.dim:] != lattice.size:
        raise LatthermError(f"samples of shape {samples.shape} do not match the {lattice.label} lattice")
    lead = samples.shape[: samples.ndim - lattice.dim]
    spins = np.asarray(data["spins"]).reshape(-1, lattice.n_sites)
    cols = {k: _per_frame(data.get(k), lead, k) for k in ("T", "mu", "log_p", "log_f")}
    n = len(spins) if max_frames is None else min(len(spins), int(max_frames))
    if n < 1:
        raise LatthermError("the samples file holds no configurations" if len(spins) == 0
                            else f"--max must be >= 1, got {max_frames}")
    infos = [{"system": system, **{k: float(v[i]) for k, v in cols.items() if v is not None}} for i in range(n)]
    return lattice, species, spins[:n], infos


# ---- import -------------------------------------------------------------------------------------------------------
def read_structures(path, format: str | None = None) -> list:
    """Every structure of an ASE-readable file (all frames), or of every file in a folder (sorted by name)."""
    from ase.io import read

    path = Path(path)
    if not path.exists():
        raise LatthermError(f"{path}: no such structure file or folder")
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")) if path.is_dir() else [path]
    if not files:
        raise LatthermError(f"{path}: the folder holds no structure files")
    images = []
    for p in files:
        fmt = None if format is None else format_of(format).ase_name
        if fmt is None and p.suffix.lower() in (".data", ".lmp"):
            fmt = "lammps-data"
        try:
            got = read(p, index=":", format=fmt, **({"atom_style": "atomic", "units": "metal"}
                                                       if fmt == "lammps-data" else {}))
        except Exception as exc:  # noqa: BLE001 - ase raises many kinds on foreign or corrupt input
            raise LatthermError(f"{p}: not a structure file ASE can read ({type(exc).__name__}: "
                                f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from None
        images.extend(got if isinstance(got, list) else [got])
    if not images:
        raise LatthermError(f"{path}: no structures in the file")
    return images


def _nn_vectors(cell: np.ndarray, d: np.ndarray) -> tuple[float, np.ndarray]:
    """Shortest non-zero displacement length from atom 0 (periodic images) and all vectors of that length."""
    shifts = np.array(list(itertools.product((-1, 0, 1), repeat=3)), dtype=np.float64) @ cell
    v = (d[:, None, :] + shifts[None, :, :]).reshape(-1, 3)
    r = np.linalg.norm(v, axis=1)
    dmin = float(r[r > 1e-6].min())
    return dmin, v[np.abs(r - dmin) < _NN_RTOL * dmin]


def _rotations(u: np.ndarray, ref: np.ndarray):
    """Orthogonal R with u_i @ R = one of ``ref`` for three independent nearest-neighbour vectors u (identity
    first): candidates from matching the Gram matrix of an ordered triple of reference vectors. Every lattice
    symmetry gives one; the caller prefers the one under which the cell is n1 x n2 x n3 along the primitive axes."""
    yield np.eye(3)
    trip = None
    for i, j, k in itertools.combinations(range(len(u)), 3):
        if abs(np.linalg.det(u[[i, j, k]])) > 1e-3 * np.linalg.norm(u[i]) ** 3:
            trip = u[[i, j, k]]
            break
    if trip is None:
        return
    G = trip @ trip.T
    inv = np.linalg.inv(trip)
    for a, b, c in itertools.permutations(range(len(ref)), 3):
        V = ref[[a, b, c]]
        if np.allclose(V @ V.T, G, atol=_NN_RTOL * G[0, 0]):
            R = inv @ V
            if np.allclose(R @ R.T, np.eye(3), atol=1e-2):
                yield R


def structure_to_config(cell, symbols, positions, lattice_kind: str = "fcc", a: float = 3.8,
                        species: tuple[str, str] = ("Cu", "Au")) -> tuple[tuple[int, int, int], np.ndarray]:
    """A structure (cell rows and positions in angstrom, symbols) -> (size (n1, n2, n3), spins (N,) int8 in the
    site order of the ``lattice_kind`` supercell of that size with lattice constant ``a``).

    The structure may be rotated, shifted and any supercell of the lattice; it is mapped onto the smallest
    n1 x n2 x n3 supercell of the primitive vectors it tiles (a non-diagonal cell is repeated to fill it). Spin
    -1 is ``species[0]``, +1 is ``species[1]``. Anything else (foreign species, another lattice or lattice
    constant, vacancies, atoms off the sites) is a LatthermError naming it."""
    cell = np.asarray(cell, dtype=np.float64)
    pos = np.asarray(positions, dtype=np.float64)
    symbols = [str(s) for s in symbols]
    bad = sorted(set(symbols) - set(species))
    if bad:
        raise LatthermError(f"species {', '.join(bad)} not in this system: structures may contain only "
                            f"{' and '.join(species)}")
    if cell.shape != (3, 3) or abs(np.linalg.det(cell)) < 1e-6:
        raise LatthermError(f"the structure needs a periodic 3D cell, got {np.round(cell, 4).tolist()}")
    if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) != len(symbols) or len(pos) == 0:
        raise LatthermError(f"{len(symbols)} symbols but positions of shape {pos.shape}")
    unit = lattice_for(lattice_kind, (1, 1, 1), a)
    A = unit.vectors * unit.unit_length  # primitive vectors in angstrom
    invA = np.linalg.inv(A)
    d = pos - pos[0]
    nn_ref = float(np.linalg.norm(unit.shells(1)[0][1][0]) * unit.unit_length)
    dmin, u = _nn_vectors(cell, d)
    if abs(dmin - nn_ref) > _NN_RTOL * nn_ref:
        raise LatthermError(f"the structure's nearest-neighbour distance {dmin:.4f} A is not the {lattice_kind} "
                            f"lattice's {nn_ref:.4f} A (a = {a} A): not a supercell of this system's lattice")
    ref = unit.shells(1)[0][1] * unit.unit_length
    found = None
    for R in _rotations(u, ref):
        M = cell @ R @ invA
        g = d @ R @ invA
        if np.allclose(M, np.rint(M), atol=_GRID_TOL) and np.allclose(g, np.rint(g), atol=_GRID_TOL):
            Mi = np.rint(M)
            if np.count_nonzero(Mi - np.diag(np.diag(Mi))) == 0 and (np.diag(Mi) > 0).all():
                found = (M, g)  # the cell's own axes: the site order of the file is kept
                break
            found = found or (M, g)
    if found is None:
        off = d @ invA
        k = int(np.argmax(np.abs(off - np.rint(off)).max(1)))
        raise LatthermError(f"the structure is not a supercell of the {lattice_kind} lattice with a = {a} A "
                            f"(atom {k}, {symbols[k]} at {np.round(pos[k], 4).tolist()}, is off the sites or the "
                            "cell is not a lattice supercell)")
    M, g = found
    M, g = np.rint(M).astype(np.int64), np.rint(g).astype(np.int64)
    D = int(round(abs(np.linalg.det(M))))
    if D != len(pos):
        raise LatthermError(f"{len(pos)} atoms for the {D} sites of the cell (vacancies or extra atoms)")
    adj = np.rint(np.linalg.inv(M) * D).astype(np.int64)  # inv(M) = adj / D, exactly

    def coset(grid):  # the site of the structure's cell that grid point g is a periodic image of
        return [tuple(r) for r in np.mod(grid @ adj, D).tolist()]

    keys = coset(g)
    where = {k: i for i, k in enumerate(keys)}
    if len(where) != len(keys):
        raise LatthermError("two atoms sit on the same lattice site")
    # smallest diagonal supercell that the structure tiles: n_k e_k must be a lattice vector of M's rows
    size = tuple(D // math.gcd(D, math.gcd(*(int(v) for v in adj[k]))) for k in range(3))
    lattice = lattice_for(lattice_kind, size, a)
    sym = np.asarray(symbols)
    atom = np.array([where[k] for k in coset(lattice.grid)])
    spins = np.where(sym[atom] == species[1], 1, -1).astype(np.int8)
    return size, spins


def atoms_to_config(atoms, lattice_kind: str, a: float, species: tuple[str, str]):
    """An ``ase.Atoms`` -> (size, spins) by :func:`structure_to_config`."""
    if not all(atoms.pbc):
        raise LatthermError("the structure is not periodic in all three directions")
    return structure_to_config(atoms.cell[:], atoms.get_chemical_symbols(), atoms.positions, lattice_kind, a, species)


__all__ = ["FORMATS", "SUFFIXES", "Format", "format_of", "to_atoms", "write_structures", "lattice_of_samples",
           "frames_from_samples", "read_structures", "structure_to_config", "atoms_to_config"]
