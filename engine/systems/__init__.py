"""Lattice systems: Ising and cluster expansions (CuAu), with batched log f on torch tensors."""

from __future__ import annotations

from ..errors import LatthermError
from ..lattices import lattice_for
from .base import System, check_condition, species_from_spins, spins_from_species
from .ising import Ising

SYSTEMS = ("ising", "cuau")


def make_system(name: str, size) -> System:
    """Build a system by name ('ising' on a square lattice, 'cuau' on an fcc supercell) and size ('10x10', '2x2x4')."""
    key = str(name).lower()
    if key == "ising":
        return Ising(lattice_for("square", size))
    if key == "cuau":
        from .cluster_expansion import cuau

        return cuau(lattice_for("fcc", size))
    raise LatthermError(f"unknown system {name!r} (choose from: {', '.join(SYSTEMS)})")


__all__ = ["System", "Ising", "make_system", "check_condition", "spins_from_species", "species_from_spins", "SYSTEMS"]
