"""Lattice systems: Ising and cluster expansions (CuAu).

Importing this package needs no torch: it holds the catalog (:mod:`.catalog`) and builds the torch systems
(:mod:`.base`, :mod:`.ising`, :mod:`.cluster_expansion`) only when :func:`make_system` is called.
"""

from __future__ import annotations

from .catalog import CATALOG, SystemInfo, system_info

SYSTEMS = tuple(CATALOG)


def make_system(name: str, size):
    """Build a system by name ('ising' on a square lattice, 'cuau' on an fcc supercell) and size ('10x10', '2x2x4')."""
    info = system_info(name)
    lattice = info.lattice_of(size)
    if info.name == "ising":
        from .ising import Ising

        return Ising(lattice)
    if info.name == "cuau":
        from .cluster_expansion import cuau

        return cuau(lattice)
    raise AssertionError(f"catalog entry {info.name!r} has no implementation")  # a catalog entry without a class


__all__ = ["CATALOG", "SYSTEMS", "SystemInfo", "make_system", "system_info"]
