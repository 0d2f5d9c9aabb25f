"""What every exact method returns: log Z and the thermodynamics that follow from it at one (T, mu).

One record type for Kaufman, the transfer matrix and enumeration, so callers (gap-to-floor evaluation, the CLI's
JSON output, the GUI's reference curves) never care which method produced the numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

METHODS = ("kaufman", "transfer_matrix", "enumeration", "tensor_network")
#: methods whose numbers are exact to rounding (their ``error`` is 0.0); the others carry an estimate
EXACT_METHODS = ("kaufman", "transfer_matrix", "enumeration")


@dataclass(frozen=True)
class ExactResult:
    """Exact thermodynamics of one finite system at temperature T and field/chemical potential mu.

    Energies are in the system's unit and exclude the -mu*sum(s) term. ``mean_observable`` is the per-site order
    parameter (<M>/N for Ising, <x_Au> for alloys); ``heat_capacity_per_site`` is C/k_B per site,
    beta^2 (<E^2> - <E>^2) / N. Either may be None when the method cannot give it.

    ``error`` is the estimated |error of log Z| / N: 0.0 for the exact methods (rounding only, so a front end can
    label the reference "exact"), the chi-against-larger-chi difference for the tensor network, whose ``errors``
    give the same for every quantity (log_Z_per_site, mean_energy_per_site, mean_observable,
    heat_capacity_per_site) and ``chi`` the two bond dimensions; both are None for the exact methods.
    """

    method: str
    T: float
    mu: float
    n_sites: int
    log_Z: float
    free_energy_per_site: float
    mean_energy_per_site: float | None
    mean_observable: float | None
    heat_capacity_per_site: float | None
    error: float = 0.0
    errors: dict | None = None
    chi: tuple[int, int] | None = None

    @property
    def is_exact(self) -> bool:
        return self.method in EXACT_METHODS

    @classmethod
    def from_log_z(cls, method: str, T: float, mu: float, n_sites: int, k_B: float, log_Z: float,
                   mean_energy_per_site: float, mean_observable: float | None,
                   heat_capacity_per_site: float | None, error: float = 0.0, errors: dict | None = None,
                   chi: tuple[int, int] | None = None) -> "ExactResult":
        """Build a record, deriving the free energy per site -k_B T log Z / N from log Z."""
        return cls(method=method, T=float(T), mu=float(mu), n_sites=int(n_sites), log_Z=float(log_Z),
                   free_energy_per_site=-k_B * float(T) * float(log_Z) / n_sites,
                   mean_energy_per_site=None if mean_energy_per_site is None else float(mean_energy_per_site),
                   mean_observable=None if mean_observable is None else float(mean_observable),
                   heat_capacity_per_site=None if heat_capacity_per_site is None else float(heat_capacity_per_site),
                   error=float(error), errors=None if errors is None else {k: None if v is None else float(v) for k, v in errors.items()},
                   chi=None if chi is None else (int(chi[0]), int(chi[1])))

    def to_dict(self) -> dict:
        """A JSON-ready dict (plain floats/None/str/int only)."""
        def num(v):
            return None if v is None or not math.isfinite(v) else float(v)

        return {
            "log_Z": num(self.log_Z),
            "free_energy_per_site": num(self.free_energy_per_site),
            "mean_energy_per_site": num(self.mean_energy_per_site),
            "mean_observable": num(self.mean_observable),
            "heat_capacity_per_site": num(self.heat_capacity_per_site),
            "method": self.method,
            "error": num(self.error),
            "errors": None if self.errors is None else {k: num(v) for k, v in self.errors.items()},
            "chi": None if self.chi is None else list(self.chi),
            "T": float(self.T),
            "mu": float(self.mu),
            "n_sites": int(self.n_sites),
        }
