"""What lattherm knows about each system, without torch: the one place a system's name decides anything.

Everything that differs by system but is not numerics lives here (lattice, how a samples file stores a
configuration, species and value labels, units, the paper's evaluation grid, whether E(-s) = E(s)), so the config
schema, the samples-file layout, the GUI and the CLI ask the catalog instead of testing ``name == "ising"``.
The torch ``System`` classes read their metadata from their entry (``system.info``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..errors import ConfigError
from ..lattices import Lattice, lattice_for


@dataclass(frozen=True)
class SystemInfo:
    """One system: spins s_i in {-1, +1}; species index k = (s + 1) / 2."""

    name: str
    title: str
    #: lattice kind for :func:`lattherm.engine.lattices.lattice_for` ("square", "fcc")
    lattice_kind: str
    #: how a samples file stores a configuration: "spin" (-1/+1) or "species" (index 0/1)
    encoding: str
    #: species names, index 0 <-> spin -1, index 1 <-> spin +1
    species: tuple[str, str]
    #: labels for the values +1 and -1 (in that order), as a painting brush names them
    value_labels: tuple[str, str]
    #: the headline order parameter (``System.observable``) and its unit ("" = dimensionless)
    observable: str
    observable_unit: str
    #: the x axis of temperature-composition diagrams (``System.composition``)
    composition: str
    #: Boltzmann constant in the system's units (1 where kT is in units of the coupling)
    k_B: float
    T_unit: str
    mu_unit: str
    #: natural scales of (T, mu), used to normalise the models' condition features
    T_scale: float
    mu_scale: float
    default_size: str
    #: the paper's evaluation grid (Ising: Appendix F, 5 kT x 5 mu; CuAu: Appendix J, 4 T x 8 mu)
    paper_T: tuple[float, ...]
    paper_mu: tuple[float, ...]
    #: E(-s) = E(s): the Z2-symmetrised models (s, mu) -> (-s, -mu) are exact in form
    energy_even: bool

    def lattice_of(self, size) -> Lattice:
        """The system's lattice at ``size`` ('10x10', '2x2x4'); a bad size is a LatthermError naming it."""
        return lattice_for(self.lattice_kind, size)

    def n_sites(self, size) -> int:
        return self.lattice_of(size).n_sites

    def paper_grid(self) -> list[tuple[float, float]]:
        """The paper's evaluation conditions, T-major."""
        if not self.paper_T:
            raise ConfigError(f"no paper grid for system {self.name!r}")
        return [(float(T), float(mu)) for T in self.paper_T for mu in self.paper_mu]


def _linspace(lo: float, hi: float, n: int) -> tuple[float, ...]:
    return tuple(float(v) for v in np.linspace(lo, hi, n))


ISING = SystemInfo(
    name="ising", title="2D Ising model (square lattice)", lattice_kind="square", encoding="spin",
    species=("down", "up"), value_labels=("up (+1)", "down (−1)"), observable="magnetisation",
    observable_unit="", composition="x_up", k_B=1.0, T_unit="kT/eps", mu_unit="eps", T_scale=2.5, mu_scale=0.4,
    default_size="5x5", paper_T=_linspace(1.5, 3.5, 5), paper_mu=_linspace(-0.4, 0.4, 5), energy_even=True)

CUAU = SystemInfo(
    name="cuau", title="CuAu alloy (fcc cluster expansion)", lattice_kind="fcc", encoding="species",
    species=("Cu", "Au"), value_labels=("Au (+1)", "Cu (−1)"), observable="x_Au", observable_unit="",
    composition="x_Au", k_B=8.617333262e-5,  # eV/K (CODATA 2018)
    T_unit="K", mu_unit="eV", T_scale=700.0, mu_scale=0.12,
    default_size="2x2x4", paper_T=_linspace(200.0, 1200.0, 4), paper_mu=_linspace(-0.12, 0.12, 8),
    energy_even=False)

#: a cluster expansion read from a user's own file: an fcc binary alloy in CuAu's units, with no paper grid
CLUSTER_EXPANSION = replace(CUAU, name="cluster_expansion", title="binary cluster expansion (fcc)", paper_T=(),
                            paper_mu=())

#: the systems a run config can name, in the order a user is offered them
CATALOG: dict[str, SystemInfo] = {info.name: info for info in (ISING, CUAU)}


def system_info(name) -> SystemInfo:
    """The catalog entry of a system name (case-insensitive); an unknown name is a ConfigError listing the known."""
    info = CATALOG.get(str(name).lower())
    if info is None:
        raise ConfigError(f"unknown system {name!r} (choose from: {', '.join(CATALOG)})")
    return info
