"""Atomic-structure export and import: extended XYZ and CIF with the real fcc positions and supercell.

Configurations (spins +-1, species index 0 <-> -1, 1 <-> +1) on an fcc supercell are written with Cartesian
positions ``Lattice.positions * unit_length`` (angstrom; fcc unit = a/2) and the supercell ``Lattice.cell`` rows,
so OVITO or ASE open them directly. Pure Python/numpy: ASE is not needed to write or read our own files.

Import (:func:`read_extxyz` + :func:`structure_to_config`) identifies an n1 x n2 x n3 supercell of the primitive
fcc vectors (0,1,1), (1,0,1), (1,1,0) * a/2 and maps every atom to its site index, which proves the round trip.
Square-lattice (Ising) spins are not atomic structures and are refused with a one-line error.
"""

from __future__ import annotations

import math
import re
import shlex
from pathlib import Path

import numpy as np

from ..errors import LatthermError
from ..lattices import Lattice, lattice_for
from ..store import atomic_write_text
from ..store.samples import file_encoding
from ..systems.catalog import CUAU

FORMATS = ("extxyz", "cif")
#: species an imported structure may contain (the CuAu system's two)
KNOWN_SPECIES = CUAU.species
_FCC_PRIMITIVE = np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]], dtype=np.float64)
_TOL = 1e-3  # in primitive-cell (dimensionless) coordinates
_SYMBOL = re.compile(r"[A-Z][a-z]?")


# ---- checks and helpers -----------------------------------------------------------------------------------------
def _check_atomic(lattice: Lattice, species_names) -> tuple[str, str]:
    if lattice.kind != "fcc" or lattice.dim != 3:
        raise LatthermError(f"extended XYZ and CIF are for atomic structures; a {lattice.kind} "
                            f"{lattice.label} lattice (e.g. Ising spins) cannot be exported")
    names = tuple(str(s) for s in species_names)
    if len(names) != 2 or not all(_SYMBOL.fullmatch(s) for s in names):
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


def _value(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "T" if v else "F"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    s = str(v)
    if not s or any(ch in s for ch in ' "=\t'):
        s = '"' + s.replace('"', "'") + '"'
    return s


def _symbols(names: tuple[str, str], config: np.ndarray) -> np.ndarray:
    return np.where(config > 0, names[1], names[0])


def cell_parameters(cell: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """(a, b, c, alpha, beta, gamma) in angstrom / degrees from supercell vectors as rows."""
    v = np.asarray(cell, dtype=np.float64)
    lengths = np.linalg.norm(v, axis=1)

    def angle(i, j):
        return math.degrees(math.acos(float(np.clip(v[i] @ v[j] / (lengths[i] * lengths[j]), -1.0, 1.0))))

    return (*map(float, lengths), angle(1, 2), angle(0, 2), angle(0, 1))


# ---- writers ------------------------------------------------------------------------------------------------------
def extxyz_text(lattice: Lattice, species_names, configs, info=None) -> str:
    """Multi-frame extended XYZ text (see :func:`write_extxyz`)."""
    names = _check_atomic(lattice, species_names)
    c = _configs(lattice, configs)
    infos = _infos(info, len(c))
    pos = lattice.positions * lattice.unit_length
    cell = lattice.cell * lattice.unit_length
    lat = " ".join(f"{x:.8f}" for x in cell.reshape(-1))
    xyz = [f"{x:14.8f} {y:14.8f} {z:14.8f}" for x, y, z in pos]
    out = []
    for k, (config, extra) in enumerate(zip(c, infos)):
        extra = {**extra, "frame": k}
        kv = " ".join(f"{key}={_value(val)}" for key, val in extra.items())
        out.append(str(lattice.n_sites))
        out.append(f'Lattice="{lat}" Properties=species:S:1:pos:R:3 pbc="T T T" {kv}')
        out.extend(f"{s:<2} {p}" for s, p in zip(_symbols(names, config), xyz))
    return "\n".join(out) + "\n"


def write_extxyz(path, lattice: Lattice, species_names, configs, info=None) -> Path:
    """Write configurations (F, N) spins +-1 as multi-frame extended XYZ, atomically.

    Each frame: the atom count, a comment line with ``Lattice`` (supercell rows, angstrom), ``Properties``,
    ``pbc`` and the per-frame key=values of ``info`` (one dict for all, or one per frame) plus ``frame``;
    then one ``Symbol x y z`` line per site in site-index order. Spin -1 is ``species_names[0]``, +1 is [1].
    """
    return atomic_write_text(path, extxyz_text(lattice, species_names, configs, info))


def cif_text(lattice: Lattice, species_names, configs, info=None) -> str:
    """CIF text, one P1 data block per configuration (see :func:`write_cif`)."""
    names = _check_atomic(lattice, species_names)
    c = _configs(lattice, configs)
    infos = _infos(info, len(c))
    a, b, cc, al, be, ga = cell_parameters(lattice.cell * lattice.unit_length)
    frac = lattice.fractional
    out = []
    for k, (config, extra) in enumerate(zip(c, infos)):
        out.append(f"data_lattherm_{k}")
        for key, val in extra.items():
            out.append(f"# {key} = {val}")
        out += [f"_cell_length_a {a:.8f}", f"_cell_length_b {b:.8f}", f"_cell_length_c {cc:.8f}",
                f"_cell_angle_alpha {al:.6f}", f"_cell_angle_beta {be:.6f}", f"_cell_angle_gamma {ga:.6f}",
                "_symmetry_space_group_name_H-M 'P 1'", "_symmetry_Int_Tables_number 1",
                "loop_", "_symmetry_equiv_pos_as_xyz", "'x, y, z'",
                "loop_", "_atom_site_label", "_atom_site_type_symbol",
                "_atom_site_fract_x", "_atom_site_fract_y", "_atom_site_fract_z"]
        for i, (s, f) in enumerate(zip(_symbols(names, config), frac)):
            out.append(f"{s}{i + 1} {s} {f[0]:.8f} {f[1]:.8f} {f[2]:.8f}")
        out.append("")
    return "\n".join(out)


def write_cif(path, lattice: Lattice, species_names, configs, info=None) -> Path:
    """Write configurations as CIF: one ``data_lattherm_<i>`` block each, cell lengths/angles of the supercell,
    P1 symmetry, and an ``_atom_site`` loop with fractional coordinates in [0, 1); atomically."""
    return atomic_write_text(path, cif_text(lattice, species_names, configs, info))


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


def frames_from_samples(data: dict, max_frames: int | None = None):
    """A :func:`read_samples` dict -> (lattice, species names, (F, N) spins, per-frame info dicts).

    Any leading dimensions ((n,) or a (G, n) grid) are flattened; T, mu, log_p and log_f follow each frame."""
    enc = file_encoding(data)
    system = str(data.get("system", ""))
    if enc == "spin":
        raise LatthermError(f"{system or 'spin'} samples hold model spins on a square lattice, not atoms; "
                            "extended XYZ and CIF export needs an alloy (e.g. cuau) samples file")
    if "size" not in data or "species" not in data:
        raise LatthermError("samples file lacks 'size' or 'species'; cannot build the atomic structure")
    lattice = lattice_for("fcc", str(data["size"]))
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
def read_extxyz_frames(path) -> list[tuple[np.ndarray, list[str], np.ndarray, dict]]:
    """All frames of an extended XYZ file as (cell (3, 3), symbols, positions (N, 3), key=values)."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise LatthermError(f"{path}: no such structure file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LatthermError(f"{path}: cannot read ({exc})") from None
    frames, i = [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].strip())
            kv = {}
            for tok in shlex.split(lines[i + 1]):
                key, _, val = tok.partition("=")
                kv[key] = val
            cell = np.array([float(x) for x in kv["Lattice"].split()]).reshape(3, 3)
            props = kv.get("Properties", "species:S:1:pos:R:3").split(":")
            col, cols = 0, {}
            for name, _typ, width in zip(props[0::3], props[1::3], props[2::3]):
                cols[name] = (col, int(width))
                col += int(width)
            (sc, _), (pc, _) = cols["species"], cols["pos"]
            rows = [lines[i + 2 + k].split() for k in range(n)]
            if len(rows) != n or any(len(r) < col for r in rows):
                raise ValueError("short atom lines")
            symbols = [r[sc] for r in rows]
            pos = np.array([[float(x) for x in r[pc:pc + 3]] for r in rows])
        except (ValueError, KeyError, IndexError) as exc:
            raise LatthermError(f"{path}: not an extended XYZ file with Lattice and species/pos "
                                f"(frame at line {i + 1}: {exc})") from None
        frames.append((cell, symbols, pos.reshape(n, 3), kv))
        i += 2 + n
    if not frames:
        raise LatthermError(f"{path}: no structures in the file")
    return frames


def read_extxyz(path, index: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    """One frame (default the first) of an extended XYZ file as (cell rows, symbols, Cartesian positions)."""
    frames = read_extxyz_frames(path)
    cell, symbols, pos, _ = frames[index]
    return cell, symbols, pos


def structure_to_config(cell, symbols, positions, a: float = 3.8,
                        species: tuple[str, str] = KNOWN_SPECIES) -> tuple[tuple[int, int, int], np.ndarray]:
    """An fcc Au/Cu structure -> (size (n1, n2, n3), spins (N,) int8 in site-index order).

    ``cell`` rows must be n_k times the primitive vectors (0,1,1), (1,0,1), (1,1,0) * a/2 (in that order), every
    position an fcc site, every site occupied once; spin -1 is ``species[0]`` (Cu), +1 is ``species[1]`` (Au).
    """
    cell = np.asarray(cell, dtype=np.float64)
    pos = np.asarray(positions, dtype=np.float64)
    symbols = [str(s) for s in symbols]
    bad = sorted(set(symbols) - set(species))
    if bad:
        raise LatthermError(f"species {', '.join(bad)} not supported: structures may contain only "
                            f"{' and '.join(species)}")
    if cell.shape != (3, 3):
        raise LatthermError(f"the cell must be 3 vectors in 3D, got shape {cell.shape}")
    prim = _FCC_PRIMITIVE * (a / 2)
    m = cell @ np.linalg.inv(prim)
    mi = np.rint(m)
    if not np.allclose(m, mi, atol=_TOL) or np.any(mi[~np.eye(3, dtype=bool)] != 0) or np.any(np.diag(mi) < 1):
        raise LatthermError(f"the cell {np.round(cell, 4).tolist()} is not an n1 x n2 x n3 supercell of the fcc "
                            f"primitive vectors (0,1,1), (1,0,1), (1,1,0) * a/2 with a = {a} A")
    size = tuple(int(v) for v in np.diag(mi))
    lattice = lattice_for("fcc", size)
    if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) != len(symbols):
        raise LatthermError(f"{len(symbols)} symbols but positions of shape {pos.shape}")
    if len(pos) != lattice.n_sites:
        raise LatthermError(f"{len(pos)} atoms for the {lattice.n_sites} sites of the "
                            f"{lattice.label} fcc supercell (vacancies or extra atoms)")
    g = pos @ np.linalg.inv(prim)
    gi = np.rint(g)
    off = np.abs(g - gi).max(axis=1)
    if np.any(off > _TOL):
        k = int(np.argmax(off))
        raise LatthermError(f"atom {k} ({symbols[k]} at {np.round(pos[k], 4).tolist()}) is not on an fcc site "
                            f"of a = {a} A")
    idx = lattice.index(gi.astype(np.int64))
    if len(np.unique(idx)) != lattice.n_sites:
        raise LatthermError("two atoms sit on the same fcc site")
    spins = np.empty(lattice.n_sites, dtype=np.int8)
    spins[idx] = np.where(np.asarray(symbols) == species[1], 1, -1)
    return size, spins


__all__ = ["FORMATS", "KNOWN_SPECIES", "write_extxyz", "write_cif", "extxyz_text", "cif_text", "cell_parameters",
           "frames_from_samples", "read_extxyz", "read_extxyz_frames", "structure_to_config"]
