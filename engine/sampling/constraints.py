"""The fixed sites of a paint, checked in one place for a target lattice.

Constraints are a pair (mask (N,) bool: the fixed sites, values (N,) float64: their spins +-1, 0 at free sites).
They come in three ways, each with its own entry point and all through the same checks: mask and values arrays
(the Python API; shaped like the target lattice or flat), a flat list of -1 / 0 (free) / +1 per site (what the GUI
sends), or a constraints .npz file (``mask`` and ``values`` in the system's file encoding). Every problem is a
one-line LatthermError that names it. Nothing here needs torch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import LatthermError
from ..lattices import Lattice
from ..store.samples import decode, file_values, load_npz
from ..systems.base import System


def constraints_from_arrays(target: Lattice, mask=None, values=None) -> tuple[np.ndarray, np.ndarray]:
    """Fixed sites from a boolean (or 0/1) ``mask`` and spins +-1 in ``values`` at the fixed sites (both shaped like
    ``target`` or flat; arrays or tensors); no mask: every site free."""
    N = target.n_sites
    if mask is None:
        return np.zeros(N, dtype=bool), np.zeros(N)
    m = _mask(target, mask, "constraint ")
    if values is None:
        if m.any():
            raise LatthermError("constraint values are missing for the fixed sites")
        return m, np.zeros(N)
    v = _flat(target, values, "constraint values have")
    return _fixed(m, v, "constraint values at fixed sites must be spins -1/+1 (one of the system's two species)", "")


def constraints_from_fixed(target: Lattice, fixed) -> tuple[np.ndarray, np.ndarray]:
    """Fixed sites from one value per site: -1 or +1 fixes that spin, 0 leaves the site free (the GUI's ``fixed``
    list); None or an empty list paints every site."""
    N = target.n_sites
    need = f"fixed must list {N} values in -1, 0 (free), +1"
    if fixed is None or (np.ndim(fixed) == 1 and len(fixed) == 0):
        return np.zeros(N, dtype=bool), np.zeros(N)
    try:
        f = np.asarray(_numpy(fixed), dtype=np.float64)
    except (TypeError, ValueError):
        raise LatthermError(f"{need}; got values that are not numbers") from None
    if f.shape not in ((N,), tuple(target.size)):
        raise LatthermError(f"{need} (one per site of {target.label}); got shape {f.shape}")
    f = f.reshape(N)
    bad = np.flatnonzero(~np.isin(f, (-1.0, 0.0, 1.0)))
    if bad.size:
        raise LatthermError(f"{need}; site {int(bad[0])} has {f[bad[0]]:g}")
    return _fixed(f != 0, f, need, "")


def load_constraints(path, system: System) -> tuple[np.ndarray, np.ndarray]:
    """Fixed sites from a constraints .npz: ``mask`` (bool) and ``values`` (in the system's file encoding: Ising
    spins -1/+1, alloy species indices 0/1), both shaped like the target lattice (or flat)."""
    path = Path(path)
    data = load_npz(path, "constraints")
    missing = [k for k in ("mask", "values") if k not in data]
    if missing:
        raise LatthermError(f"{path}: constraints file lacks {', '.join(missing)} (needs mask and values)")
    where = f"{path}: "
    target = system.lattice
    m = _mask(target, data["mask"], where)
    raw = _flat(target, data["values"], f"{where}values have")
    allowed, what = file_values(system)
    if not np.isin(raw[m], allowed).all():
        raise LatthermError(f"{where}values at fixed sites must be {what}")
    spins = np.zeros(target.n_sites)
    spins[m] = decode(raw[m], system.encoding)
    return _fixed(m, spins, f"{where}values at fixed sites must be spins -1/+1", where)


# ---- the checks every entry point shares ------------------------------------------------------------------------
def _numpy(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


def _flat(target: Lattice, x, what: str) -> np.ndarray:
    """``x`` shaped like the target or flat -> (N,) array; ``what`` starts the message ("... values have")."""
    a = np.asarray(_numpy(x))
    if a.shape not in (tuple(target.size), (target.n_sites,)):
        raise LatthermError(f"{what} shape {a.shape}; the target {target.label} needs {tuple(target.size)}")
    return a.reshape(target.n_sites)


def _mask(target: Lattice, mask, where: str) -> np.ndarray:
    m = _flat(target, mask, f"{where}mask has")
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise LatthermError(f"{where}mask must be boolean (or 0/1)")
        m = m.astype(bool)
    return m


def _fixed(m: np.ndarray, spins: np.ndarray, not_spins: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    """The constraints pair, once the values at fixed sites are spins; a lattice with no free site is refused."""
    spins = spins.astype(np.float64)
    if not np.isin(spins[m], (-1.0, 1.0)).all():
        raise LatthermError(not_spins)
    if m.all():
        raise LatthermError(f"{where}every site is fixed: nothing to paint")
    return m, np.where(m, spins, 0.0)


__all__ = ["constraints_from_arrays", "constraints_from_fixed", "load_constraints"]
