"""The target of every model: a lattice system with log f(s; T, mu) = -(E(s) - mu * sum_i s_i) / (k_B T).

Configurations are spins s_i in {-1, +1} (Ising down/up; CuAu Cu/Au) as a (B, N) tensor of any real or integer
dtype, on any device. Species index k in {0, 1} maps to s = 2k - 1. Energies come back in float64.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

from ..errors import LatthermError
from ..lattices import Lattice
from .catalog import SystemInfo


def check_condition(T, mu) -> None:
    """Reject non-positive or non-finite temperatures and non-finite mu with a message naming the value."""
    t = torch.as_tensor(T, dtype=torch.float64)
    m = torch.as_tensor(mu, dtype=torch.float64)
    if not bool(torch.isfinite(t).all()) or bool((t <= 0).any()):
        bad = t[~torch.isfinite(t) | (t <= 0)].reshape(-1)[0].item()
        raise LatthermError(f"temperature must be positive and finite, got T={bad:g}")
    if not bool(torch.isfinite(m).all()):
        raise LatthermError("chemical potential / field mu must be finite")


class System(ABC):
    """A binary lattice system in the semi-grand-canonical ensemble; its metadata is its catalog entry."""

    #: name, species, units, scales and labels (:mod:`.catalog`); subclasses set it
    info: SystemInfo

    name = property(lambda self: self.info.name)
    #: species names, index 0 <-> spin -1, index 1 <-> spin +1
    species = property(lambda self: self.info.species)
    #: how a samples file stores a configuration ("spin" or "species")
    encoding = property(lambda self: self.info.encoding)
    #: Boltzmann constant in the system's units (1 for Ising, where kT is in units of eps)
    k_B = property(lambda self: self.info.k_B)
    temperature_unit = property(lambda self: self.info.T_unit)
    mu_unit = property(lambda self: self.info.mu_unit)
    #: natural scales of (T, mu), used to normalise model conditioning features
    T_scale = property(lambda self: self.info.T_scale)
    mu_scale = property(lambda self: self.info.mu_scale)
    observable_name = property(lambda self: self.info.observable)
    #: name of :meth:`composition` (the x axis of temperature-composition diagrams)
    composition_name = property(lambda self: self.info.composition)

    def __init__(self, lattice: Lattice):
        self.lattice = lattice

    @property
    def n_sites(self) -> int:
        return self.lattice.n_sites

    @property
    def n_species(self) -> int:
        return len(self.species)

    @abstractmethod
    def energy(self, s: torch.Tensor) -> torch.Tensor:
        """E(s) for a (B, N) batch of spins, float64 (B,), in the system's energy unit."""

    def spin_polynomial(self):
        """E(s) as a polynomial in the spins, (linear (N,), [(sites (M, d), coef (M,)), ...]) for
        E = const + sum_i linear_i s_i + sum_m coef_m prod_{i in sites_m} s_i, or None if the system has no such
        form. Monte Carlo uses it to get a single flip's energy change from the terms touching that site."""
        return None

    @property
    def square_ising_coupling(self) -> float | None:
        """eps when this is the nearest-neighbour Ising model on a square torus (the model Kaufman's formula and the
        row transfer matrix solve), else None; exact solvers ask this instead of testing the class."""
        return None

    @property
    def z2_symmetric(self) -> bool:
        """True when E(-s) = E(s), so f(-s; T, -mu) = f(s; T, mu) and a Z2-symmetrised model is exact in form:
        a binary system whose spin polynomial has no odd-degree term (Ising without a built-in field; not CuAu)."""
        poly = self.spin_polynomial()
        if self.n_species != 2 or poly is None:
            return False
        linear, terms = poly
        if bool(torch.as_tensor(linear).abs().max() > 1e-12):
            return False
        return all(sites.shape[1] % 2 == 0 or not bool(torch.as_tensor(coef).abs().max() > 1e-12)
                   for sites, coef in terms)

    def log_f(self, s: torch.Tensor, T, mu) -> torch.Tensor:
        """Log of the unnormalised Boltzmann weight, float64 (B,). T and mu: scalars or (B,) tensors."""
        s = s.to(torch.float64)
        T = torch.as_tensor(T, dtype=torch.float64, device=s.device)
        mu = torch.as_tensor(mu, dtype=torch.float64, device=s.device)
        return -(self.energy(s) - mu * s.sum(-1)) / (self.k_B * T)

    def magnetisation(self, s: torch.Tensor) -> torch.Tensor:
        """Mean spin per site, float64 (B,)."""
        return s.to(torch.float64).mean(-1)

    def observable(self, s: torch.Tensor) -> torch.Tensor:
        """The system's headline order parameter: magnetisation (Ising) or x_Au (alloy)."""
        return self.magnetisation(s)

    def composition(self, s: torch.Tensor) -> torch.Tensor:
        """Fraction of sites with spin +1 (x_Au for an alloy), float64 (B,)."""
        return (s > 0).to(torch.float64).mean(-1)

    def composition_of_observable(self, v):
        """The composition from values of :meth:`observable` (here the magnetisation m: (1 + m) / 2)."""
        return (1 + v) / 2

    def beta(self, T) -> float:
        return 1.0 / (self.k_B * float(T))

    def check(self, T, mu) -> None:
        check_condition(T, mu)

    def check_spins(self, s: torch.Tensor) -> None:
        if s.ndim != 2 or s.shape[1] != self.n_sites:
            raise LatthermError(f"configurations must have shape (batch, {self.n_sites}), got {tuple(s.shape)}")
        if not bool(((s == 1) | (s == -1)).all()):
            raise LatthermError("configurations must hold spins -1/+1 only")

    def describe(self) -> dict:
        return {"system": self.name, "lattice": self.lattice.kind, "size": list(self.lattice.size)}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.lattice.label})"


def spins_from_species(k: torch.Tensor) -> torch.Tensor:
    return 2 * k - 1


def species_from_spins(s: torch.Tensor) -> torch.Tensor:
    return (s > 0).to(torch.long)


LOG2 = math.log(2.0)
