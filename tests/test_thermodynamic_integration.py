"""Free energy by thermodynamic integration over beta (engine/montecarlo/thermodynamic_integration.py).

-log Z from Monte Carlo against the transfer matrix / enumeration with a field, within its own error bar and with
a small error bar; the quadrature and its halved-grid error estimate on the exact integrand; bad input."""

from __future__ import annotations

import math

import pytest
import torch

from lattherm.engine.errors import LatthermError
from lattherm.engine.exact import exact_reference
from lattherm.engine.montecarlo.thermodynamic_integration import (simpson_integral, simpson_weights,
                                                                   thermodynamic_integration)
from lattherm.engine.systems import make_system


def test_simpson_weights_integrate_a_cubic_exactly():
    w = simpson_weights(8, 0.25)  # [0, 2]
    x = torch.arange(9, dtype=torch.float64) * 0.25
    assert float((w * (x ** 3 - 2 * x + 1)).sum()) == pytest.approx(2.0 ** 4 / 4 - 4 + 2, abs=1e-12)
    fine, coarse, stat = simpson_integral(2.0, x ** 3, torch.full((9,), 0.1, dtype=torch.float64))
    assert fine == pytest.approx(4.0, abs=1e-12) and coarse == pytest.approx(4.0, abs=1e-12)
    assert stat == pytest.approx(0.1 * math.sqrt(float((w ** 2).sum())), rel=1e-12)


def _exact_integrand(system, T, mu, K):
    """<E - mu sum s> per lattice at the K + 1 uniform beta nodes, from the exact reference (0 at beta = 0)."""
    beta = torch.arange(K + 1, dtype=torch.float64) / (K * T)
    values = [0.0]
    for b in beta[1:]:
        r = exact_reference(system, 1.0 / float(b), mu)
        values.append(system.n_sites * (r.mean_energy_per_site - mu * r.mean_observable))
    return torch.tensor(values, dtype=torch.float64)


@pytest.mark.parametrize("T,mu", [(2.269, 0.2), (2.0, 0.3)])
def test_quadrature_of_the_exact_integrand_and_its_halved_grid_error(T, mu):
    """The Simpson integral of the exact <H>(beta) reproduces the exact -log Z, and |S_h - S_2h| / 15 is the size
    of the fine rule's true error (Richardson for an O(h^4) rule)."""
    system = make_system("ising", "4x4")
    exact = -exact_reference(system, T, mu).log_Z
    last = None
    for K in (8, 16, 32):
        fine, coarse, _ = simpson_integral(1.0 / T, _exact_integrand(system, T, mu, K))
        fine -= 16 * math.log(2.0)
        coarse -= 16 * math.log(2.0)
        true, estimated = abs(fine - exact), abs(fine - coarse) / 15.0
        assert true < 2 * estimated + 1e-9, (K, true, estimated)  # the estimate is the size of the true error
        if last is not None:
            assert estimated < last / 4, (K, estimated, last)  # and falls like h^4 (x16 per halving)
        last = estimated
    assert true < 1e-4 and estimated < 1e-3  # 32 intervals: the quadrature is far below the statistical errors below


@pytest.mark.parametrize("size,T,mu,method", [("4x4", 2.5, 0.2, "swendsen-wang"), ("6x6", 2.269, 0.2, "swendsen-wang"),
                                             ("4x4", 2.0, -0.3, "metropolis")])
def test_monte_carlo_free_energy_matches_the_transfer_matrix_in_a_field(size, T, mu, method):
    system = make_system("ising", size)
    ref = exact_reference(system, T, mu)
    assert ref.method == "transfer_matrix"
    r = thermodynamic_integration(system, T, mu, intervals=16, chains=8, sweeps=600,
                                  generator=torch.Generator().manual_seed(7), method=method)
    assert r.error < 0.003 * system.n_sites  # a small error bar: under 0.003 per site
    assert abs(r.neg_log_Z - (-ref.log_Z)) < 3.5 * r.error, (r.neg_log_Z, -ref.log_Z, r.error)
    assert r.quadrature_error < r.statistical_error
    assert r.mean_energy[0] == 0.0 and r.stderr[0] == 0.0  # beta = 0: <H> = 0 exactly for Ising
    assert bool((r.tau_int[1:] >= 0.5).all()) and r.beta[-1] == pytest.approx(1.0 / T)
    d = r.to_dict()
    assert d["intervals"] == 16 and d["error"] == pytest.approx(r.error) and len(d["mean_energy"]) == 17


def test_error_bar_is_calibrated_over_repeats():
    """Over independent repeats the spread of -log Z about the exact value matches the reported error."""
    system = make_system("ising", "4x4")
    T, mu = 2.269, 0.2
    exact = -exact_reference(system, T, mu).log_Z
    z = []
    for seed in range(12):
        r = thermodynamic_integration(system, T, mu, intervals=8, chains=4, sweeps=150,
                                      generator=torch.Generator().manual_seed(100 + seed))
        z.append((r.neg_log_Z - exact) / r.error)
    z = torch.tensor(z)
    assert abs(float(z.mean())) < 3.0 / math.sqrt(len(z)) + 0.3
    assert 0.4 < float(z.std()) < 1.8


def test_alloy_by_metropolis_matches_enumeration():
    """A cluster expansion (energy in eV, T in K, a constant term in E): the beta = 0 node comes from uniform
    draws and the integral still lands on the enumerated -log Z."""
    system = make_system("cuau", "2x2x4")
    T, mu = 800.0, 0.05
    ref = exact_reference(system, T, mu)
    r = thermodynamic_integration(system, T, mu, intervals=16, chains=8, sweeps=400, method="metropolis",
                                  generator=torch.Generator().manual_seed(3))
    assert abs(r.neg_log_Z - (-ref.log_Z)) < 3.5 * r.error, (r.neg_log_Z, -ref.log_Z, r.error)
    assert r.error < 0.05


@pytest.mark.parametrize("kwargs,match", [
    ({"intervals": 6}, "multiple of 4"),
    ({"intervals": 2}, "intervals must be an integer >= 4"),
    ({"method": "heat-bath"}, "unknown Monte Carlo method"),
    ({"sweeps": 0}, "sweeps must be"),
    ({"chains": -1}, "chains must be"),
])
def test_bad_input_is_one_clear_error(kwargs, match):
    with pytest.raises(LatthermError, match=match):
        thermodynamic_integration(make_system("ising", "4x4"), 2.5, 0.2, **kwargs)


def test_cluster_method_on_an_alloy_and_bad_temperature_are_refused():
    with pytest.raises(LatthermError, match="square-lattice Ising"):
        thermodynamic_integration(make_system("cuau", "2x2x4"), 800.0, 0.0, method="swendsen-wang")
    with pytest.raises(LatthermError, match="temperature must be positive"):
        thermodynamic_integration(make_system("ising", "4x4"), -1.0, 0.0)
    with pytest.raises(LatthermError, match="even number of intervals"):
        simpson_weights(3, 0.1)
