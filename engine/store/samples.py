"""One .npz layout for every configuration file the engine writes (samples, painted lattices, GUI jobs).

Keys: ``samples`` (..., *lattice shape) int8 in the system's encoding (Ising: spins -1/+1; alloys: species index
0/1, e.g. Cu/Au), ``log_p`` and ``log_f`` (...,) float64, ``T`` and ``mu``, optional ``order`` (..., *shape) (step at
which each site was generated, -1 for fixed sites) and ``mask`` (*shape, True = fixed), plus ``system``, ``size``,
``species``, ``encoding``, ``lattice`` and (alloys) ``lattice_constant`` so a file can be read (and exported)
without the model that made it.
Leading dimensions are free: (n,) for one condition, (G, n) for a grid of G conditions.

Torch-free: the encoding is the system's (its catalog entry) when writing, and the file's own when reading, so the
GUI and export read samples without the engine's numerics.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..errors import LatthermError
from ..systems import CATALOG
from .atomic import atomic_write_bytes

ENCODINGS = ("spin", "species")


def encode(spins, enc: str) -> np.ndarray:
    """Spins +-1 (any array/tensor) -> int8 values in the file encoding ``enc`` ("spin": -1/+1, "species": 0/1)."""
    s = np.asarray(spins.cpu() if hasattr(spins, "cpu") else spins)
    return s.astype(np.int8) if enc == "spin" else (s > 0).astype(np.int8)


def file_values(system) -> tuple[tuple[int, int], str]:
    """The two values a file holds in the system's encoding (species index 0, 1) and how to name them."""
    if system.info.encoding == "spin":
        return (-1, 1), "spins -1/+1"
    return (0, 1), f"species indices 0/1 ({'/'.join(system.species)})"


def decode(values: np.ndarray, enc: str) -> np.ndarray:
    """File values -> spins +-1 as int8."""
    v = np.asarray(values).astype(np.int8)
    return v if enc == "spin" else (2 * v - 1).astype(np.int8)


def write_samples(path, system, spins, log_p, log_f, T, mu, order=None, mask=None, observable=None) -> Path:
    """Write configurations ((..., N) spins of ``system``, anything with ``info`` and ``lattice``) and their
    log-densities atomically in the common layout; ``observable`` (...,) is each configuration's value of the
    system's observable, so a reader needs no knowledge of the system to show it."""
    shape = tuple(system.lattice.size)
    info = system.info
    s = encode(spins, info.encoding)
    lead = s.shape[:-1]
    arrays = {"samples": s.reshape(lead + shape),
              "log_p": np.asarray(_np(log_p), dtype=np.float64), "log_f": np.asarray(_np(log_f), dtype=np.float64),
              "T": np.asarray(_np(T), dtype=np.float64), "mu": np.asarray(_np(mu), dtype=np.float64),
              "system": np.array(info.name), "size": np.array(system.lattice.label),
              "species": np.array(info.species), "encoding": np.array(info.encoding),
              "lattice": np.array(info.lattice_kind)}
    if getattr(info, "lattice_constant", None) is not None:
        arrays["lattice_constant"] = np.array(float(info.lattice_constant))  # angstrom: what structure export needs
    if observable is not None:
        arrays["observable"] = np.asarray(_np(observable), dtype=np.float64)
        arrays["observable_name"] = np.array(info.observable)
    if order is not None:
        arrays["order"] = np.asarray(_np(order), dtype=np.int64).reshape(lead + shape)
    if mask is not None:
        arrays["mask"] = np.asarray(_np(mask), dtype=bool).reshape(shape)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def save_paint_npz(path, result, system) -> Path:
    """Write a painted batch (a :class:`..painting.PaintResult`) in this layout: ``samples``, ``log_p``, ``log_f``,
    ``order`` (-1 at fixed sites), ``mask``, ``T``, ``mu``; atomically."""
    return write_samples(path, system, result.spins, result.log_p, result.log_f, result.T, result.mu,
                         order=result.order, mask=result.mask, observable=system.observable(result.spins))


def load_npz(path, what: str = "samples") -> dict:
    """All arrays of a user-given .npz (never unpickled); a missing or unreadable file is a one-line error."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise LatthermError(f"{path}: no such {what} file") from None
    except Exception as exc:  # noqa: BLE001 - an unreadable file is the user's input problem
        raise LatthermError(f"{path}: not a readable .npz file ({type(exc).__name__})") from None


def file_encoding(data: dict) -> str | None:
    """A samples file's encoding: its own ``encoding`` entry, else that of the catalog system it names."""
    if "encoding" in data:
        return str(data["encoding"])
    info = CATALOG.get(str(data.get("system", "")))
    return info.encoding if info is not None else None


def read_samples(path) -> dict:
    """Load a samples file; adds ``spins`` (decoded to +-1). A missing or foreign file is a LatthermError."""
    data = load_npz(path, "samples")
    enc = file_encoding(data)
    if "samples" not in data or enc is None:
        raise LatthermError(f"{path}: not a lattherm samples file (needs 'samples' and 'encoding')")
    if enc not in ENCODINGS:
        raise LatthermError(f"{path}: unknown sample encoding {enc!r} (known: {', '.join(ENCODINGS)})")
    data["spins"] = decode(data["samples"], enc)
    return data


def _np(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x
