"""The gap of a logged F_q to the exact bound -log Z at the same conditions, wherever an exact method is cheap.

Training logs F_q per condition in every phase (REINFORCE and maximum likelihood); with -log Z from
:func:`lattherm.engine.exact.exact_reference` (Kaufman, transfer matrix, enumeration) the mean gap over the
conditions is the learning curve the benchmarks compare. Results are cached per (T, mu); a system with no exact
method (CuAu 4x4x8) or one too wide for the transfer matrix gives None, once, and is not asked again.
"""

from __future__ import annotations

#: shorter side beyond which the transfer matrix is not "cheap" for per-log-step use
MAX_CHEAP_WIDTH = 12


class ExactBounds:
    """-log Z(T, mu) of one system, cached; ``available`` is False when no cheap exact method exists."""

    def __init__(self, system):
        self.system = system
        self._cache: dict[tuple[float, float], float] = {}
        ising = system.square_ising_coupling is not None
        self.available = (ising and min(system.lattice.size) <= MAX_CHEAP_WIDTH) or system.n_sites <= 20

    def floor(self, T: float, mu: float) -> float | None:
        if not self.available:
            return None
        key = (round(float(T), 10), round(float(mu), 10))
        if key not in self._cache:
            from ..analysis.free_energy import exact_or_none

            ref = exact_or_none(self.system, key[0], key[1])
            if ref is None:
                self.available = False
                return None
            self._cache[key] = -ref.log_Z
        return self._cache[key]

    def gap(self, T, mu, F_q_per_condition) -> float | None:
        """Mean over conditions of F_q - (-log Z), or None without an exact method."""
        floors = [self.floor(t, m) for t, m in zip(T, mu)]
        if not floors or any(f is None for f in floors):
            return None
        return sum(fq - f for fq, f in zip(F_q_per_condition, floors)) / len(floors)
