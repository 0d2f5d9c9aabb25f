"""Exact references: Kaufman's torus formula, the row transfer matrix and brute-force enumeration.

Each test names the physics it pins: an exact value, agreement between independent exact methods, a symmetry, a
limit, or the paper's exact floor averaged over its 25-condition grid.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from lattherm.engine.errors import LatthermError
from lattherm.engine.exact import (
    MAX_TM_WIDTH,
    ExactResult,
    enumerate_exact,
    exact_grid,
    exact_reference,
    kaufman_log_z,
    transfer_matrix,
)
from lattherm.engine.lattices import square
from lattherm.engine.systems.base import System
from lattherm.engine.systems.ising import Ising

PAPER_GRID = [(kT, mu) for mu in (-0.4, -0.2, 0.0, 0.2, 0.4) for kT in (1.5, 2.0, 2.5, 3.0, 3.5)]
T_C = 2.0 / math.log(1.0 + math.sqrt(2.0))


def assert_same_thermo(a: ExactResult, b: ExactResult, log_z_tol=1e-9, tol=1e-8):
    assert a.log_Z == pytest.approx(b.log_Z, abs=log_z_tol)
    assert a.free_energy_per_site == pytest.approx(b.free_energy_per_site, abs=log_z_tol)
    assert a.mean_energy_per_site == pytest.approx(b.mean_energy_per_site, abs=tol)
    assert a.mean_observable == pytest.approx(b.mean_observable, abs=tol)
    assert a.heat_capacity_per_site == pytest.approx(b.heat_capacity_per_site, abs=tol)


class FieldSpins(System):
    """Independent spins in a site-dependent field, E = -sum_i h_i s_i, in odd units (k_B = 0.5), x_up as observable.

    Its exact solution is a product of one-site partition functions, so it checks enumeration on a non-Ising System.
    """

    name = "field-spins"
    species = ("down", "up")
    k_B = 0.5
    temperature_unit = "K"
    mu_unit = "eV"
    T_scale = 1.0
    mu_scale = 1.0
    observable_name = "x_up"

    def __init__(self, h):
        super().__init__(square(1, len(h)))
        self.h = torch.as_tensor(h, dtype=torch.float64)

    def energy(self, s):
        return -(s.to(torch.float64) * self.h).sum(-1)

    def observable(self, s):
        return (s > 0).to(torch.float64).mean(-1)


class FieldSpinsOwnLogF(FieldSpins):
    """Same model, but with log f overridden, so enumeration must call system.log_f rather than reuse E."""

    def log_f(self, s, T, mu):
        s = s.to(torch.float64)
        return ((self.h + mu) * s).sum(-1) / (self.k_B * T)


# ---- Kaufman ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("T, expected", [(3.0, 13.2810), (5.0, 11.7715)])
def test_kaufman_signed_gamma0_reproduces_brute_force_4x4(T, expected):
    """Above T_c the signed gamma_0 = 2K + ln tanh K < 0 flips Y4; brute force on 4x4 gives 13.2810 / 11.7715
    (the arccosh-only formula would give 13.7491 / 12.4457)."""
    log_z = float(kaufman_log_z(4, 4, 1.0 / T))
    assert log_z == pytest.approx(expected, abs=5e-5)
    assert log_z == pytest.approx(enumerate_exact(Ising((4, 4)), T, 0.0).log_Z, abs=1e-9)


@pytest.mark.parametrize("size", [(4, 4), (3, 5), (5, 3), (2, 3), (4, 5)])
@pytest.mark.parametrize("T", [1.5, T_C, 3.0, 5.0])
def test_three_methods_agree_at_zero_field(size, T):
    """Kaufman, transfer matrix and enumeration are independent exact methods: log Z to 1e-9, <E>, <M>, C to 1e-8."""
    system = Ising(size)
    ref = enumerate_exact(system, T, 0.0)
    assert_same_thermo(exact_reference(system, T, 0.0, method="kaufman"), ref)
    assert_same_thermo(transfer_matrix(system, T, 0.0), ref)
    assert abs(ref.mean_observable) < 1e-12                # spin-flip symmetry at mu = 0


@pytest.mark.parametrize("size, T", [((12, 12), 2.5), ((7, 12), 2.0), ((6, 10), 1.5), ((20, 5), T_C)])
def test_transfer_matrix_matches_kaufman_on_wider_tori(size, T):
    """Row momentum blocks (odd and even widths, up to 12) reproduce Kaufman's closed form at mu = 0."""
    system = Ising(size)
    assert_same_thermo(transfer_matrix(system, T, 0.0), exact_reference(system, T, 0.0, method="kaufman"))


def test_kaufman_large_torus_matches_onsager_bulk_free_energy():
    """Far from T_c finite-size corrections are exponentially small: a 64x64 torus has Onsager's bulk log Z / N,
    plus log 2 / N below T_c, where the torus holds both ordered states (Z -> 2 Z_bulk). The log-space evaluation
    does not overflow at T = 1 (Z ~ e^8194)."""
    theta = 2 * np.pi * np.arange(256) / 256
    c1, c2 = np.meshgrid(np.cos(theta), np.cos(theta))
    for T, degeneracy in ((1.0, 2), (1.5, 2), (3.0, 1), (4.0, 1)):
        K = 1.0 / T
        bulk = math.log(2) + 0.5 * np.log(np.cosh(2 * K) ** 2 - np.sinh(2 * K) * (c1 + c2)).mean()
        log_z = float(kaufman_log_z(64, 64, K))
        assert math.isfinite(log_z)
        assert log_z == pytest.approx(4096 * bulk + math.log(degeneracy), abs=1e-8)


def test_kaufman_autograd_gives_energy_and_heat_capacity():
    """d log Z / dK = -<E> and K^2 d^2 log Z / dK^2 = C/k_B: the autograd derivatives equal finite differences."""
    K, h = 0.4, 1e-4
    r = exact_reference(Ising((8, 8)), 1.0 / K, 0.0)
    f = [float(kaufman_log_z(8, 8, K + d)) for d in (-h, 0.0, h)]
    assert -r.mean_energy_per_site * 64 == pytest.approx((f[2] - f[0]) / (2 * h), rel=1e-7)
    assert r.heat_capacity_per_site * 64 / K**2 == pytest.approx((f[2] - 2 * f[1] + f[0]) / h**2, rel=1e-5)


# ---- transfer matrix with a field --------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [(4, 4), (3, 4), (4, 5)])
@pytest.mark.parametrize("T, mu", [(1.5, 0.4), (2.5, -0.2), (3.5, 0.1)])
def test_transfer_matrix_matches_enumeration_in_a_field(size, T, mu):
    """With mu != 0 the transfer matrix equals brute force: log Z to 1e-9; <E>, <M>/N, C to 1e-8."""
    system = Ising(size)
    assert_same_thermo(transfer_matrix(system, T, mu), enumerate_exact(system, T, mu))


@pytest.mark.parametrize("system, method", [(Ising((6, 6)), "transfer_matrix"), (Ising((3, 4)), "enumeration")])
def test_field_reversal_symmetry(system, method):
    """Flipping every spin maps mu -> -mu: log Z, <E>, C are even in mu and <M> is odd."""
    plus = exact_reference(system, 2.2, 0.3, method=method)
    minus = exact_reference(system, 2.2, -0.3, method=method)
    assert plus.log_Z == pytest.approx(minus.log_Z, abs=1e-10)
    assert plus.mean_energy_per_site == pytest.approx(minus.mean_energy_per_site, abs=1e-10)
    assert plus.heat_capacity_per_site == pytest.approx(minus.heat_capacity_per_site, abs=1e-9)
    assert plus.mean_observable == pytest.approx(-minus.mean_observable, abs=1e-10)
    assert plus.mean_observable > 0.5                      # a positive field magnetises the lattice up


@pytest.mark.parametrize("method, size", [("kaufman", (4, 4)), ("transfer_matrix", (4, 4)),
                                          ("enumeration", (4, 4)), ("kaufman", (64, 64))])
def test_high_temperature_limit_is_n_log_2(method, size):
    """As T -> infinity every configuration has weight 1: log Z -> N log 2 (here log Z - N log 2 = O(N K^2))."""
    system = Ising(size)
    r = exact_reference(system, 1e6, 0.0, method=method)
    assert r.log_Z == pytest.approx(system.n_sites * math.log(2), abs=1e-8)
    assert abs(r.mean_energy_per_site) < 1e-5


def test_paper_grid_floor_5x5():
    """The exact floor under <log p - log f> on the paper's 25 conditions, 5x5: mean -log Z = -26.2646."""
    results = exact_grid(Ising((5, 5)), PAPER_GRID)
    assert [(r.T, r.mu) for r in results] == PAPER_GRID
    assert [r.method for r in results].count("kaufman") == 5
    assert -np.mean([r.log_Z for r in results]) == pytest.approx(-26.2646, abs=1e-4)


def test_paper_grid_floor_10x10():
    """The exact floor on the paper's 25 conditions, 10x10: mean -log Z = -104.7294 (transfer matrix with field)."""
    results = exact_grid(Ising((10, 10)), PAPER_GRID)
    assert -np.mean([r.log_Z for r in results]) == pytest.approx(-104.7294, abs=1e-4)


# ---- enumeration of any System -----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [FieldSpins, FieldSpinsOwnLogF])
def test_enumeration_of_a_generic_system_matches_its_product_solution(cls):
    """Non-interacting spins: log Z = sum_i log 2cosh(beta(h_i + mu)), <x_up> = mean (1 + tanh)/2,
    <E> = -sum h_i tanh, C/k_B = beta^2 sum h_i^2 sech^2, in a system with k_B != 1."""
    h = torch.tensor([0.3, -0.1, 0.7, 0.0, -0.45, 0.2, 0.05, -0.6, 0.9, -0.25, 0.15])
    system = cls(h)
    T, mu = 0.8, 0.12
    beta = 1.0 / (system.k_B * T)
    a = beta * (h.double() + mu)
    r = exact_reference(system, T, mu)
    n = len(h)
    assert r.method == "enumeration"
    assert r.log_Z == pytest.approx(float(torch.log(2 * torch.cosh(a)).sum()), abs=1e-10)
    assert r.mean_observable == pytest.approx(float((1 + torch.tanh(a)).mean() / 2), abs=1e-12)
    assert r.mean_energy_per_site == pytest.approx(float(-(h * torch.tanh(a)).sum()) / n, abs=1e-12)
    expected_c = beta**2 * float((h.double() ** 2 / torch.cosh(a) ** 2).sum()) / n
    assert r.heat_capacity_per_site == pytest.approx(expected_c, abs=1e-12)
    assert r.free_energy_per_site == pytest.approx(-system.k_B * T * r.log_Z / n, abs=1e-14)


def test_result_is_json_ready():
    """to_dict carries the agreed keys as plain JSON values, with F/N = -k_B T log Z / N."""
    r = exact_reference(Ising((4, 4)), 2.0, 0.2)
    d = json.loads(json.dumps(r.to_dict()))
    assert set(d) == {"log_Z", "free_energy_per_site", "mean_energy_per_site", "mean_observable",
                      "heat_capacity_per_site", "method", "error", "errors", "chi", "T", "mu", "n_sites"}
    assert d["method"] == "transfer_matrix" and d["n_sites"] == 16
    assert d["error"] == 0.0 and d["errors"] is None and d["chi"] is None
    assert d["free_energy_per_site"] == pytest.approx(-2.0 * d["log_Z"] / 16)


def test_auto_dispatch_picks_the_cheapest_exact_method():
    """Ising at mu = 0 -> Kaufman (any size), Ising in a field -> transfer matrix, other systems -> enumeration."""
    assert exact_reference(Ising((64, 64)), 2.0, 0.0).method == "kaufman"
    assert exact_reference(Ising((8, 8)), 2.0, 0.1).method == "transfer_matrix"
    assert exact_reference(FieldSpins([0.1, 0.2]), 1.0, 0.0).method == "enumeration"


# ---- clear errors --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("T", [0.0, -1.0, float("nan"), float("inf")])
def test_non_physical_temperature_is_rejected(T):
    """Z is defined only for 0 < T < infinity."""
    with pytest.raises(LatthermError, match="temperature"):
        exact_reference(Ising((4, 4)), T, 0.0)


def test_inapplicable_methods_raise_clear_errors():
    """Each method refuses what it cannot do exactly, naming the reason."""
    with pytest.raises(LatthermError, match="N=25"):
        enumerate_exact(Ising((5, 5)), 2.0, 0.0)
    with pytest.raises(LatthermError, match="zero field"):
        exact_reference(Ising((4, 4)), 2.0, 0.1, method="kaufman")
    with pytest.raises(LatthermError, match=f"<= {MAX_TM_WIDTH}"):
        exact_reference(Ising((MAX_TM_WIDTH + 1, 40)), 2.0, 0.1, method="transfer_matrix")
    with pytest.raises(LatthermError, match="Ising"):
        exact_reference(FieldSpins([0.1, 0.2]), 1.0, 0.0, method="transfer_matrix")
    with pytest.raises(LatthermError, match="no exact method"):
        exact_reference(FieldSpins([0.1] * 25), 1.0, 0.0)
    with pytest.raises(LatthermError, match="unknown exact method"):
        exact_reference(Ising((4, 4)), 2.0, 0.0, method="monte_carlo")
    with pytest.raises(LatthermError, match="temperature"):
        exact_grid(Ising((4, 4)), [(2.0, 0.0), (-1.0, 0.0)])


@pytest.mark.parametrize("name,size,T,mu", [("ising", "3x3", 2.25, 0.125), ("cuau", "2x2x2", 700.0, 0.0625)])
def test_exact_conditionals_give_the_boltzmann_probability_along_every_order(name, size, T, mu):
    """The oracle window model: for any generating order, its path log p is log f - log Z exactly (T and mu are
    binary fractions: the model API carries conditions in float32)."""
    from lattherm.engine.exact.conditionals import ExactConditionals
    from lattherm.engine.systems import make_system

    system = make_system(name, size)
    oracle = ExactConditionals(system)
    batch = oracle.sample(T, mu, batch=64, generator=torch.Generator().manual_seed(4))
    log_boltzmann = system.log_f(batch.spins.double(), T, mu) - enumerate_exact(system, T, mu).log_Z
    assert torch.allclose(batch.log_p, log_boltzmann, atol=1e-9)
    other = oracle.log_prob(batch.spins, T, mu, ranks=torch.randperm(system.n_sites).expand(64, -1))
    assert torch.allclose(other.double(), log_boltzmann, atol=1e-9)
    with pytest.raises(LatthermError, match="at most 16"):
        ExactConditionals(make_system("ising", "5x5"))
