"""Periodic lattices: geometry, site coordinates, neighbour shells and cluster orbits from positions."""

from .lattice import Lattice, fcc, parse_size, square, lattice_for

__all__ = ["Lattice", "square", "fcc", "parse_size", "lattice_for"]
