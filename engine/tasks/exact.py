"""Exact references of small lattices: log Z, free energy, <E>, <M> or <x_Au>, C."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ExactResult:
    reference: dict
    system: str
    size: str
    T_unit: str
    energy_unit: str

    def to_dict(self) -> dict:
        return {**self.reference, "system": self.system, "size": self.size, "T_unit": self.T_unit,
                "energy_unit": self.energy_unit}


def exact(system: str, size: str, T: float, mu: float = 0.0, method: str = "auto") -> ExactResult:
    """The exact reference at one condition; a size no exact method serves is an error."""
    from ..exact import exact_reference
    from ..systems import make_system

    s = make_system(system, size)
    ref = exact_reference(s, T, mu, method=method)
    return ExactResult(ref.to_dict(), s.name, s.lattice.label, s.temperature_unit, s.mu_unit)


def exact_references(system: str, size: str, Ts, mu: float = 0.0) -> list:
    """Exact references at each T (e.g. for a plot), None where no exact method applies."""
    from ..analysis.free_energy import exact_or_none
    from ..systems import make_system

    s = make_system(system, size)
    return [None if (ref := exact_or_none(s, float(T), float(mu))) is None else ref.to_dict() for T in Ts]
