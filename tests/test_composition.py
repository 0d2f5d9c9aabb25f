"""The composition free-energy profile (engine/analysis/composition.py): lower hull, two-phase regions, the
phase boundary over temperatures and semi-grand reweighting against closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lattherm.engine.analysis.composition import CompositionProfile, lower_hull, phase_boundary


def _profile(F, T=1.0, k_B=1.0) -> CompositionProfile:
    F = np.asarray(F, dtype=np.float64)
    return CompositionProfile(T=T, n_sites=len(F) - 1, k_B=k_B, F=F, F_error=np.zeros(len(F)), ln_f_final=0,
                              sweeps=0)


def test_two_phase_from_hull():
    F = np.array([0.0, 1.0, 1.5, 1.0, 0.0]) * -1 + np.array([0, 0, 3.0, 0, 0])  # bump in the middle
    p = _profile(F)
    assert p.two_phase_regions() == [(0.25, 0.75)]
    assert list(lower_hull(p.x, F)) == [0, 1, 3, 4]
    convex = _profile((np.arange(5) - 2.0) ** 2)
    assert convex.two_phase_regions() == []
    assert convex.mean_fraction(0.0) == pytest.approx(0.5)


def test_phase_boundary_collects_regions_per_temperature():
    """A double well at low T and a convex profile at high T: only the low-T profile contributes, with its T."""
    x = np.arange(9) / 8
    low = _profile(4 * (x - 0.5) ** 4 - (x - 0.5) ** 2, T=300.0)  # minima at x = 0.5 +- 0.35
    high = _profile((x - 0.5) ** 2, T=900.0)
    rows = phase_boundary([low, high])
    assert rows == [(300.0, a, b) for a, b in low.two_phase_regions()]
    assert rows == [(300.0, 0.125, 0.875)]
    assert phase_boundary([low, high], tol=10.0) == []  # nothing lies 10 energy units above the hull


def test_ideal_mixture_reweighting():
    """Non-interacting spins: F(n) = -k_B T ln C(N, n), so <x>(mu) = 1 / (1 + exp(-2 mu / k_B T)) exactly, and
    P(n | mu) is binomial."""
    N, T, k_B = 12, 2.0, 1.0
    F = np.array([-k_B * T * math.log(math.comb(N, n)) for n in range(N + 1)])
    p = _profile(F - F.min(), T=T, k_B=k_B)
    mus = np.array([-1.0, -0.2, 0.0, 0.3, 1.5])
    np.testing.assert_allclose(p.mean_fraction(mus), 1 / (1 + np.exp(-2 * mus / (k_B * T))), rtol=0, atol=1e-12)
    q = 1 / (1 + math.exp(-2 * 0.3 / (k_B * T)))
    binom = np.array([math.comb(N, n) * q ** n * (1 - q) ** (N - n) for n in range(N + 1)])
    np.testing.assert_allclose(p.probabilities(0.3), binom, rtol=0, atol=1e-12)
    assert p.two_phase_regions() == []  # -ln C(N, n) is convex
    assert p.mean_fraction_error(0.3) == float("inf")  # no block estimates behind a hand-made profile


def test_unvisited_bin_of_one_block_keeps_the_other_error_bars():
    """Production histograms of 4 walker blocks over a double-well profile, one block never reaching the edge bin
    n = 0: F and its error bars stay finite elsewhere (the edge bin's error too, from 3 blocks), the two-phase
    region is still found, and the blocks' errors match their spread."""
    from lattherm.engine.montecarlo.wang_landau import profile_from_histograms

    rng = np.random.default_rng(0)
    x = np.arange(9) / 8
    F_true = 4 * (x - 0.5) ** 4 - (x - 0.5) ** 2
    T, k_B = 0.05, 1.0
    lnW = F_true / (k_B * T)                                    # the bias that flattens the histogram exactly
    H = rng.poisson(4000.0, size=(4, 9)).astype(np.float64)
    H[2, 0] = 0.0                                                # block 2 never visited n = 0
    p = profile_from_histograms(T, 8, k_B, -lnW, H, 1e-3, 100)
    assert np.isfinite(p.F).all() and np.isfinite(p.F_error).all()
    # (bin 0 lost a quarter of its visits by hand: its pooled value is biased by kT ln 4/3, so it is left out)
    np.testing.assert_allclose(p.F[1:] - p.F.min(), F_true[1:] - F_true.min(), atol=5 * p.F_error.max())
    assert 0 < p.F_error.max() < 0.01
    assert p.two_phase_regions() == [(0.125, 0.875)]
    assert np.isfinite(p.mean_fraction_error(0.0))
    H[1:, 0] = 0.0                                               # only one block saw n = 0: no error bar there
    q = profile_from_histograms(T, 8, k_B, -lnW, H, 1e-3, 100)
    assert q.F_error[0] == float("inf") and np.isfinite(q.F_error[1:]).all()
    H[:, 0] = 0.0                                                # no walker saw n = 0: the bin is left out
    r = profile_from_histograms(T, 8, k_B, -lnW, H, 1e-3, 100)
    assert r.F[0] == float("inf") and r.two_phase_regions() == [(0.125, 0.875)]
