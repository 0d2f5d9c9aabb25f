"""What lattherm knows about each system, without torch: the one place a system's name decides anything.

Everything that differs by system but is not numerics lives here (lattice, how a samples file stores a
configuration, species and value labels, units, the paper's evaluation grid, whether E(-s) = E(s)), so the config
schema, the samples-file layout, the GUI and the CLI ask the catalog instead of testing ``name == "ising"``.
The torch ``System`` classes read their metadata from their entry (``system.info``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError, LatthermError
from ..lattices import BRAVAIS, Lattice, lattice_for
from ..paths import RESOURCES
from . import ce_file

#: the bundled CuAu expansion (copy of shared/reference/cuau_cluster_expansion.json)
CUAU_JSON = RESOURCES / "cuau" / "cuau_cluster_expansion.json"
#: further bundled cluster expansions: every ``*.json`` here is a catalog system named by its ``name`` key
SYSTEMS_DIR = RESOURCES / "systems"


@dataclass(frozen=True)
class SystemInfo:
    """One system: spins s_i in {-1, +1}; species index k = (s + 1) / 2."""

    name: str
    title: str
    #: lattice kind for :func:`lattherm.engine.lattices.lattice_for` ("square", "sc", "fcc", "bcc")
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
    #: conventional lattice constant in angstrom (None: a model lattice in units of its spacing)
    lattice_constant: float | None = None
    #: the cluster-expansion JSON the system's energy comes from (None: a model Hamiltonian such as Ising)
    ce_file: str | None = None

    def lattice_of(self, size) -> Lattice:
        """The system's lattice at ``size`` ('10x10', '2x2x4'); a bad size is a LatthermError naming it."""
        return lattice_for(self.lattice_kind, size, self.lattice_constant)

    def n_sites(self, size) -> int:
        return self.lattice_of(size).n_sites

    def paper_grid(self) -> list[tuple[float, float]]:
        """The paper's evaluation conditions, T-major."""
        if not self.paper_T:
            raise ConfigError(f"no paper grid for system {self.name!r}: give the conditions (e.g. --grid "
                              "600,900:-0.05,0.05, T values : mu values)")
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
    energy_even=False, lattice_constant=3.8, ce_file=str(CUAU_JSON))

#: a cluster expansion read from a user's own file: an fcc binary alloy in CuAu's units, with no paper grid
CLUSTER_EXPANSION = replace(CUAU, name="cluster_expansion", title="binary cluster expansion (fcc)", paper_T=(),
                            paper_mu=(), ce_file=None)


def info_from_ce_file(path, name: str | None = None) -> SystemInfo:
    """The catalog entry of a binary cluster expansion on any one-site lattice, from its JSON header: lattice kind
    and constant, species [spin -1, spin +1]; energies in eV, T in K (CuAu's units); optional ``T_scale_K``,
    ``mu_scale_eV`` and ``default_size``. ``name`` defaults to the file's ``name`` key, else its path."""
    path = Path(path).expanduser().resolve()
    if name is None:  # a bundled file is its catalog system (the CuAu file predates 'species')
        for info in CATALOG.values():
            if info.ce_file is not None and Path(info.ce_file).resolve() == path:
                return info
    source = repr(str(path))
    data = ce_file.load_json(path)
    kind, a = ce_file.lattice_of(data, source)
    species = ce_file.species_of(data, source)
    ce_file.energy_definition_of(data, source)
    default = "8x8" if BRAVAIS[kind][0].shape[0] == 2 else "2x2x4"
    size = str(data.get("default_size", default))
    lattice_for(kind, size)  # a bad default size names itself here
    try:
        T_scale, mu_scale = float(data.get("T_scale_K", 700.0)), float(data.get("mu_scale_eV", 0.12))
    except (TypeError, ValueError):
        raise LatthermError(f"cluster-expansion file {source}: T_scale_K / mu_scale_eV must be numbers") from None
    minus, plus = species
    return replace(CUAU, name=str(name or data.get("name") or path), title=str(data.get("title", path.stem)),
                   lattice_kind=kind, species=species, value_labels=(f"{plus} (+1)", f"{minus} (−1)"),
                   observable=f"x_{plus}", composition=f"x_{plus}", T_scale=T_scale, mu_scale=mu_scale,
                   default_size=size, paper_T=(), paper_mu=(), lattice_constant=a, ce_file=str(path))


def _bundled() -> list[SystemInfo]:
    out = []
    for p in sorted(SYSTEMS_DIR.glob("*.json")) if SYSTEMS_DIR.is_dir() else ():
        out.append(info_from_ce_file(p, name=str(ce_file.load_json(p).get("name", p.stem)).lower()))
    return out


#: the systems a run config can name, in the order a user is offered them
CATALOG: dict[str, SystemInfo] = {info.name: info for info in (ISING, CUAU, *_bundled())}


def system_info(name) -> SystemInfo:
    """The catalog entry of a system name (case-insensitive), or of a cluster-expansion JSON file given by its path
    (a user's own alloy); a SystemInfo is its own entry (a loaded model's system, whatever file it came from); an
    unknown name is a ConfigError listing the known."""
    if isinstance(name, SystemInfo):
        return name
    info = CATALOG.get(str(name).lower())
    if info is not None:
        return info
    if str(name).lower().endswith(".json") or Path(str(name)).expanduser().is_file():
        return info_from_ce_file(name)
    raise ConfigError(f"unknown system {name!r} (choose from: {', '.join(CATALOG)}, or a cluster-expansion "
                      ".json file)")
