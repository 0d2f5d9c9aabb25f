"""Lattice systems: Ising and binary cluster expansions (CuAu and any one-site Bravais lattice).

Importing this package needs no torch: it holds the catalog (:mod:`.catalog`) and builds the torch systems
(:mod:`.base`, :mod:`.ising`, :mod:`.cluster_expansion`) only when :func:`make_system` is called.
"""

from __future__ import annotations

from .catalog import CATALOG, SystemInfo, info_from_ce_file, system_info

SYSTEMS = tuple(CATALOG)


def make_system(name, size):
    """Build a system by name ('ising' on a square lattice, 'cuau' on an fcc supercell, any bundled or user
    cluster-expansion file on its own lattice), or from a SystemInfo (another size of a loaded model's system, e.g.
    ``make_system(lm.system.info, "4x4x8")``: a user's CE needs no catalog name), and size ('10x10', '2x2x4')."""
    info = system_info(name)
    lattice = info.lattice_of(size)
    if info.name == "ising":
        from .ising import Ising

        return Ising(lattice)
    if info.ce_file is not None:
        from .cluster_expansion import ClusterExpansion

        return ClusterExpansion.from_json(info.ce_file, lattice, info=info)
    raise AssertionError(f"catalog entry {info.name!r} has no implementation")  # a catalog entry without a class


__all__ = ["CATALOG", "SYSTEMS", "SystemInfo", "info_from_ce_file", "make_system", "system_info"]
