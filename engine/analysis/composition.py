"""What a composition free-energy profile F(n) says: semi-grand averages and two-phase regions.

(a) In the semi-grand ensemble P(n | mu) is proportional to exp(-(F(n) - mu (2n - N)) / k_B T), which gives
<x_Au>(mu) for any mu by reweighting one profile (:meth:`CompositionProfile.mean_fraction`). (b) Compositions
whose F(x) lies above the lower convex hull of F(x) are two-phase: a run of such points between two hull vertices
x_a < x_b is a two-phase region (x_a, x_b) at that T (:meth:`CompositionProfile.two_phase_regions`), and over
several temperatures these trace the two-phase boundary (:func:`phase_boundary`). The profile itself comes from
Wang-Landau (:func:`lattherm.engine.montecarlo.composition_free_energy`); this module needs only numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["CompositionProfile", "lower_hull", "phase_boundary"]


def lower_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the vertices of the lower convex hull of points (x, y), x increasing (monotone chain)."""
    hull: list[int] = []
    for k in range(len(x)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b if it lies on or above the segment a -> k
            if (y[b] - y[a]) * (x[k] - x[a]) >= (y[k] - y[a]) * (x[b] - x[a]):
                hull.pop()
            else:
                break
        hull.append(k)
    return np.asarray(hull, dtype=np.int64)


@dataclass
class CompositionProfile:
    """Free energy F(n) (system energy unit, up to a constant, min 0) of the number n = 0..N of +1 spins (Au) at
    temperature T and mu = 0, with its error bar and the independent block estimates behind it."""

    T: float
    n_sites: int
    k_B: float
    F: np.ndarray  # (N+1,)
    F_error: np.ndarray  # (N+1,)
    ln_f_final: float
    sweeps: int
    F_blocks: np.ndarray | None = None  # (n_blocks, N+1) independent block estimates (for error bars)

    @property
    def x(self) -> np.ndarray:
        return np.arange(self.n_sites + 1) / self.n_sites

    def probabilities(self, mu: float) -> np.ndarray:
        """P(n) in the semi-grand ensemble at chemical potential mu: exp(-(F(n) - mu (2n - N)) / k_B T), normalised."""
        n = np.arange(self.n_sites + 1)
        a = -(self.F - float(mu) * (2 * n - self.n_sites)) / (self.k_B * self.T)
        a -= a.max()
        w = np.exp(a)
        return w / w.sum()

    def mean_fraction(self, mu) -> np.ndarray | float:
        """<n>/N (= <x_Au> for an alloy) at chemical potential(s) mu, by reweighting the profile."""
        mus = np.atleast_1d(np.asarray(mu, dtype=np.float64))
        out = np.array([self.probabilities(m) @ self.x for m in mus])
        return float(out[0]) if np.ndim(mu) == 0 else out

    def mean_fraction_error(self, mu) -> float:
        """Error bar of :meth:`mean_fraction` at one mu from the spread of the independent walker blocks (a bin a
        block never visited takes the pooled F there: it adds no spread)."""
        if self.F_blocks is None or len(self.F_blocks) < 2 or not np.isfinite(self.F).all():
            return float("inf")
        vals = [CompositionProfile(self.T, self.n_sites, self.k_B, np.where(np.isfinite(f), f, self.F), self.F_error,
                                   self.ln_f_final, self.sweeps).mean_fraction(float(mu)) for f in self.F_blocks]
        return float(np.std(vals, ddof=1) / math.sqrt(len(vals)))

    def two_phase_regions(self, tol: float | None = None) -> list[tuple[float, float]]:
        """Composition intervals (x_a, x_b) where F(x) lies above its lower convex hull by more than ``tol`` (default
        3 error bars, at least 1e-9 in energy): the endpoints are hull vertices, the points between are two-phase.
        Compositions no walker visited (F infinite) are left out."""
        seen = np.isfinite(self.F)
        x, F = self.x[seen], self.F[seen]
        hull = lower_hull(x, F)
        line = np.interp(x, x[hull], F[hull])
        above = F - line
        tol_arr = np.maximum(3.0 * self.F_error[seen], 1e-9) if tol is None else np.full_like(F, float(tol))
        off = above > tol_arr
        regions, k = [], 0
        while k < len(x):
            if off[k]:
                j = k
                while j + 1 < len(x) and off[j + 1]:
                    j += 1
                regions.append((float(x[k - 1]), float(x[j + 1])))  # endpoints of a hull are always on it
                k = j + 1
            else:
                k += 1
        return regions


def phase_boundary(profiles: list[CompositionProfile], tol: float | None = None) -> list[tuple[float, float, float]]:
    """(T, x_a, x_b) for every two-phase region of every profile: the two-phase boundary traced over T."""
    return [(p.T, a, b) for p in profiles for a, b in p.two_phase_regions(tol)]
