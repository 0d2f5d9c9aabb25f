"""Exact references of small lattices: log Z, free energy, <E>, <M> or <x_Au>, C."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import LatthermError


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


def exact(system: str, size: str, T: float, mu: float = 0.0, method: str = "auto", chi: int | None = None,
          chi_check: int | None = None) -> ExactResult:
    """The exact reference at one condition (the tensor network's, with its error, for a large Ising torus in a
    field); a size no method serves is an error. chi / chi_check: the tensor network's bond dimensions."""
    from ..exact import DEFAULT_CHI, DEFAULT_CHI_CHECK, exact_reference
    from ..exact.tensor_network import check_chi
    from ..systems import make_system
    from .limits import check_lattice

    check_lattice(system, size)
    s = make_system(system, size)
    s.check(T, mu)
    chi = DEFAULT_CHI if chi is None else chi
    if chi_check is None:
        chi_check = DEFAULT_CHI_CHECK if chi == DEFAULT_CHI else None     # None: tensor_network's chi + chi/3
    chi, chi_check = check_chi(chi, chi_check)
    ref = exact_reference(s, T, mu, method=method, chi=chi, chi_check=chi_check)
    d = ref.to_dict()
    _check_finite(d, T, mu)
    return ExactResult(d, s.name, s.lattice.label, s.temperature_unit, s.mu_unit)


#: the values of an exact reference (a result's to_dict gives None for a non-finite one)
_VALUES = ("log_Z", "free_energy_per_site", "mean_energy_per_site", "mean_observable", "heat_capacity_per_site")


def _check_finite(d: dict, T, mu) -> None:
    """An extreme condition (T = 1e308) overflows the exact sums: an error naming it, never silent nulls. A
    tensor-network reference computed without derivatives has only log Z and the free energy to check."""
    import math

    keys = _VALUES[:2] if d.get("method") == "tensor_network" and d.get("mean_energy_per_site") is None else _VALUES
    bad = [k for k in keys if k in d and (d[k] is None or not math.isfinite(d[k]))]
    if bad:
        raise LatthermError(f"T={T:g}, mu={mu:g}: the exact reference overflows ({', '.join(bad)} not finite); "
                            "choose a less extreme condition")


def exact_references(system: str, size: str, Ts, mu: float = 0.0) -> list:
    """Exact references at each T (e.g. for a plot), None where no exact method applies. A large Ising torus in a
    field gets the tensor network's log Z (method "tensor_network", with "error"; no derivatives): seconds per T."""
    from ..analysis.free_energy import exact_or_none
    from ..systems import make_system
    from .limits import check_lattice, check_temperatures

    check_temperatures(Ts)
    check_lattice(system, size)
    s = make_system(system, size)
    for T in Ts:
        s.check(T, mu)  # T = -1 is an error, not a null entry
    out = []
    for T in Ts:
        ref = exact_or_none(s, float(T), float(mu))
        if ref is not None:
            d = ref.to_dict()
            _check_finite(d, T, mu)
            ref = d
        out.append(ref)
    return out
