"""Periodic lattices: geometry, site coordinates, neighbour shells and cluster orbits from positions."""

from .lattice import (BRAVAIS, Lattice, bcc, bravais, fcc, identify_bravais, lattice_for, parse_size, simple_cubic,
                      square)

__all__ = ["BRAVAIS", "Lattice", "square", "fcc", "bcc", "simple_cubic", "bravais", "parse_size", "lattice_for",
           "identify_bravais"]
