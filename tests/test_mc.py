"""Reference Monte Carlo (engine/montecarlo/) against exact enumeration: flip energies, the shared single-site
step's transition matrix, Metropolis means, detailed balance and the Wang-Landau composition free energy."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from lattherm.engine.errors import LatthermError
from lattherm.engine.exact import enumerate_exact
from lattherm.engine.montecarlo import (SpinChains, biased_ratio, composition_free_energy, estimate, flip_energy_pairs,
                                        flip_tables, integrated_autocorrelation_time, metropolis, semi_grand_ratio)
from lattherm.engine.systems import make_system
from lattherm.engine.systems.ising import Ising

from _flips import assert_no_interaction


@pytest.fixture(scope="module")
def cuau16():
    return make_system("cuau", "2x2x4")


@pytest.mark.parametrize("name,size", [("cuau", "2x2x4"), ("cuau", "4x4x8"), ("ising", "2x2"), ("ising", "5x4")])
def test_flip_energy_equals_full_difference(name, size):
    system = make_system(name, size)
    tables = flip_tables(system, check=False)
    assert tables.exact
    d, full = flip_energy_pairs(system, tables, batch=64, seed=3)
    torch.testing.assert_close(d, full, rtol=0, atol=1e-12)


def test_full_difference_tables_take_one_site_per_row_in_either_shape():
    """Without a spin polynomial the flip energy is a full energy difference: for sites (B,) and (B, 1) it equals
    the polynomial tables' value, in the shape asked; several sites per row are refused."""
    from lattherm.engine.montecarlo.flips import FlipTables, pad_spins

    system = make_system("ising", "5x4")
    exact = flip_tables(system, check=False)
    full = FlipTables(system.n_sites, torch.zeros(system.n_sites, dtype=torch.float64), [], [], system, exact=False)
    g = torch.Generator().manual_seed(0)
    s = pad_spins(torch.where(torch.rand(6, system.n_sites, generator=g) < 0.5, -1.0, 1.0), torch.int8)
    i = torch.randint(system.n_sites, (6,), generator=g)
    assert torch.allclose(full.delta(s, i), exact.delta(s, i))
    column = full.delta(s, i[:, None])
    assert column.shape == (6, 1) and torch.allclose(column, exact.delta(s, i[:, None]))
    with pytest.raises(ValueError, match="spin polynomial"):
        full.delta(s, torch.stack([i, i], 1))


@pytest.mark.parametrize("T,mu", [(600.0, 0.0), (900.0, 0.02), (1200.0, -0.03)])
def test_metropolis_matches_enumeration(cuau16, T, mu):
    g = torch.Generator().manual_seed(int(T))
    res = metropolis(cuau16, T, mu, n_chains=256, sweeps=150, equilibration=40, generator=g)
    ex = enumerate_exact(cuau16, T, mu)
    row = res.summary()[0]
    assert abs(row["energy"] - ex.mean_energy_per_site) < 4 * row["energy_error"]
    assert abs(row["observable"] - ex.mean_observable) < 4 * row["observable_error"]
    assert 0 < row["acceptance"] < 1 and row["energy_tau"] >= 0.5
    assert res.final.shape == (256, 16) and res.energy.shape == (256, 150)


def test_batched_conditions(cuau16):
    """Different (T, mu) per chain in one call agree with enumeration condition by condition."""
    T = torch.tensor([800.0, 1100.0]).repeat_interleave(128)
    mu = torch.tensor([0.05, -0.05]).repeat_interleave(128)
    res = metropolis(cuau16, T, mu, n_chains=256, sweeps=120, equilibration=30,
                     generator=torch.Generator().manual_seed(5), record_every=2)
    rows = res.summary()
    assert len(rows) == 2
    for row in rows:
        ex = enumerate_exact(cuau16, row["T"], row["mu"])
        assert abs(row["observable"] - ex.mean_observable) < 4 * row["observable_error"]
        assert abs(row["energy"] - ex.mean_energy_per_site) < 4 * row["energy_error"]


def test_detailed_balance_ising_2x2():
    system = Ising((2, 2))
    T, mu = 2.0, 0.3
    res = metropolis(system, T, mu, n_chains=2000, sweeps=1, equilibration=30, generator=torch.Generator().manual_seed(7))
    s = res.final.to(torch.long)
    codes = (((s + 1) // 2) * (1 << torch.arange(4))).sum(1)
    counts = torch.bincount(codes, minlength=16).to(torch.float64)
    allc = torch.arange(16)
    states = (2 * ((allc[:, None] >> torch.arange(4)) & 1) - 1).to(torch.float64)
    p = torch.softmax(system.log_f(states, T, mu), 0)
    n = counts.sum()
    sigma = torch.sqrt(n * p * (1 - p))
    assert bool(((counts - n * p).abs() <= 5 * sigma + 1).all())


def _all_states(N: int) -> torch.Tensor:
    """Every configuration of N spins, (2^N, N) float64; spin k of state c is bit k of c."""
    codes = torch.arange(1 << N)
    return (2 * ((codes[:, None] >> torch.arange(N)) & 1) - 1).to(torch.float64)


def _step_transition_matrix(system, log_ratio_for, M: int = 2000) -> torch.Tensor:
    """Transition matrix of one SpinChains.step at a uniformly random site, measured by running the step from
    every state at every site with M stratified uniforms u_j = (j + 1/2) / M, so each acceptance probability is
    exact to 1/M. log_ratio_for(states (B, N)) gives the step's log_ratio for those chains."""
    N = system.n_sites
    states = _all_states(N)
    S = states.shape[0]
    code = torch.arange(S).repeat_interleave(N * M)
    site = torch.arange(N).repeat_interleave(M).repeat(S)
    logu = ((torch.arange(M, dtype=torch.float64) + 0.5) / M).log().repeat(S * N)
    chains = SpinChains(system, states[code].to(torch.float32))
    acc, si, dE = chains.step(site, logu, log_ratio_for(states[code]))
    flipped = code ^ (1 << site)
    torch.testing.assert_close(si, states[code, site], rtol=0, atol=0)
    torch.testing.assert_close(dE, system.energy(states[flipped]) - system.energy(states[code]), rtol=0, atol=1e-12)
    # exactly the accepted chains moved, each to its flipped state
    assert torch.equal(chains.spins.to(torch.float64), torch.where(acc[:, None], states[flipped], states[code]))
    P = torch.zeros(S, S, dtype=torch.float64)
    P.index_put_((code, torch.where(acc, flipped, code)), torch.full((len(code),), 1.0 / (N * M),
                                                                      dtype=torch.float64), accumulate=True)
    return P


def _assert_stationary(P: torch.Tensor, log_p: torch.Tensor, N: int, M: int = 2000) -> None:
    """p P = p and detailed balance p_a P_ab = p_b P_ba, to the 1/M resolution of the measured acceptances."""
    p = torch.softmax(log_p, 0)
    torch.testing.assert_close(P.sum(1), torch.ones_like(p))
    assert float((P - torch.diag(torch.diag(P))).sum()) > 0.1  # the step does move
    flux = p[:, None] * P
    assert float((flux - flux.T).abs().max()) <= 2.0 / (N * M)
    assert float((p @ P - p).abs().max()) <= 2.0 / M


def test_single_site_step_keeps_boltzmann_stationary():
    """The shared step with the Metropolis target on Ising 2x2 at (T, mu) = (2, 0.3): the exact semi-grand
    Boltzmann distribution exp(log_f) is stationary and in detailed balance. A sign error in the mu or energy term
    breaks both (the Boltzmann ratios are far from 1 here)."""
    system = Ising((2, 2))
    T, mu = 2.0, 0.3

    def ratio(states):
        B = len(states)
        return semi_grand_ratio(torch.full((B,), 1.0 / (system.k_B * T), dtype=torch.float64),
                                torch.full((B,), mu, dtype=torch.float64))

    P = _step_transition_matrix(system, ratio)
    _assert_stationary(P, system.log_f(_all_states(4), T, mu), 4)


def test_single_site_step_keeps_wang_landau_target_stationary():
    """The same step with the Wang-Landau target: for a fixed random bias ln W(n), exp(-E/k_B T - ln W(n)) is
    stationary and in detailed balance (what the frozen-bias production run relies on)."""
    system = Ising((2, 2))
    T = 1.5
    W = torch.randn(5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    states = _all_states(4)

    def ratio(s):
        B = len(s)
        return biased_ratio(torch.full((B,), 1.0 / (system.k_B * T), dtype=torch.float64), W,
                            torch.zeros(B, dtype=torch.long), (s > 0).sum(1))

    P = _step_transition_matrix(system, ratio)
    n = (states > 0).sum(1)
    _assert_stationary(P, -system.energy(states) / (system.k_B * T) - W[n], 4)


def test_composition_free_energy_matches_enumeration(cuau16):
    """F(n) and the reweighted <x_Au>(mu) at 900 K against enumeration. Tolerance: 4 block error bars (independent
    walker blocks) plus 2e-3 for the bias of the block error estimate itself with only 8 blocks."""
    T = 900.0
    (prof,) = composition_free_energy(cuau16, [T], n_walkers=64, production_sweeps=300,
                                      generator=torch.Generator().manual_seed(11))
    N = 16
    codes = torch.arange(1 << N)
    s = (2 * ((codes[:, None] >> torch.arange(N)) & 1) - 1).to(torch.float64)
    E, n = cuau16.energy(s), (s > 0).sum(1)
    kT = cuau16.k_B * T
    F_ex = np.array([-kT * float(torch.logsumexp(-E[n == k] / kT, 0)) for k in range(N + 1)])
    F_ex -= F_ex.min()
    assert np.all(np.abs(prof.F - F_ex) < 5 * prof.F_error + 0.1 * kT)
    for mu in (-0.05, 0.0, 0.02, 0.06):
        x = prof.mean_fraction(mu)
        assert abs(x - enumerate_exact(cuau16, T, mu).mean_observable) < 4 * prof.mean_fraction_error(mu) + 2e-3


def test_composition_free_energy_ising_3x3():
    """Wang-Landau through the Ising bond tables: F(n) against enumeration of all 512 states of 3x3 at T = 2.5
    (within 5 block error bars + 0.05 kT), and <x_up>(mu) reweighted from the profile against the exact
    semi-grand average over exp(log_f) (within 4 error bars + 2e-3)."""
    system = Ising((3, 3))
    T, N = 2.5, 9
    (prof,) = composition_free_energy(system, [T], n_walkers=64, production_sweeps=300,
                                      generator=torch.Generator().manual_seed(13))
    s = _all_states(N)
    E, n = system.energy(s), (s > 0).sum(1)
    kT = system.k_B * T
    F_ex = np.array([-kT * float(torch.logsumexp(-E[n == k] / kT, 0)) for k in range(N + 1)])
    F_ex -= F_ex.min()
    assert np.all(np.abs(prof.F - F_ex) < 5 * prof.F_error + 0.05 * kT)
    assert prof.ln_f_final < 1e-3
    for mu in (-0.3, 0.0, 0.2):
        x_ex = float(torch.softmax(system.log_f(s, T, mu), 0) @ (n / N).to(torch.float64))
        assert abs(prof.mean_fraction(mu) - x_ex) < 4 * prof.mean_fraction_error(mu) + 2e-3


def test_autocorrelation_of_ar1():
    g = torch.Generator().manual_seed(2)
    a, n = 0.8, 20000
    noise = torch.randn(4, n, generator=g, dtype=torch.float64)
    x = torch.zeros(4, n, dtype=torch.float64)
    for t in range(1, n):
        x[:, t] = a * x[:, t - 1] + noise[:, t]
    tau = integrated_autocorrelation_time(x)
    assert tau == pytest.approx((1 + a) / (2 * (1 - a)), rel=0.15)  # exact 4.5
    mean, err, _ = estimate(x)
    assert abs(mean) < 5 * err


def test_errors(cuau16):
    with pytest.raises(LatthermError, match="temperature"):
        metropolis(cuau16, 0.0, 0.0, n_chains=4, sweeps=1)
    with pytest.raises(LatthermError, match="temperature"):
        metropolis(cuau16, torch.tensor([300.0, -1.0]), 0.0, n_chains=2, sweeps=1)
    with pytest.raises(LatthermError, match="temperature"):
        composition_free_energy(cuau16, [-5.0])
    with pytest.raises(LatthermError, match="one value per chain"):
        metropolis(cuau16, torch.tensor([300.0, 400.0, 500.0]), 0.0, n_chains=2, sweeps=1)
    with pytest.raises(LatthermError, match="n_chains"):
        metropolis(cuau16, 300.0, 0.0, n_chains=0, sweeps=1)
    with pytest.raises(LatthermError, match="sweeps"):
        metropolis(cuau16, 300.0, 0.0, n_chains=2, sweeps=0)
    with pytest.raises(LatthermError, match="shape"):
        metropolis(cuau16, 300.0, 0.0, n_chains=2, sweeps=1, init=torch.ones(2, 15))
    with pytest.raises(LatthermError, match="sizes|size|lattice|fcc|bad|positive|must"):
        make_system("cuau", "0x2x4")


@pytest.mark.slow
def test_wang_landau_on_4x4x8_finds_the_ordered_compounds():
    """CuAu on 128 sites at 300 K: F(x) touches its lower hull at the L1_2 (x = 1/4) and L1_0 (x = 1/2) orderings,
    with two-phase regions between them, and nearly every bin has a finite error bar (a walker block that missed one
    edge bin once made every error infinite and hid every region)."""
    from lattherm.engine.systems import make_system

    (p,) = composition_free_energy(make_system("cuau", "4x4x8"), [300.0], n_walkers=32, n_blocks=4,
                                   max_sweeps=3000, production_sweeps=100, generator=torch.Generator().manual_seed(0))
    assert np.isfinite(p.F_error).mean() > 0.9
    ends = {round(v, 6) for region in p.two_phase_regions() for v in region}
    assert {0.25, 0.5} <= ends
    assert all(b - a < 0.5 for a, b in p.two_phase_regions())


@pytest.mark.parametrize("name,size,n_colours", [("ising", "4x4", 2), ("ising", "5x4", 4), ("cuau", "2x2x4", None),
                                                 ("cuau", "4x4x8", None)])
def test_colour_classes_share_no_energy_term(name, size, n_colours):
    """Two sites of one colour never share a monomial (flipping one leaves the other's flip energy unchanged, by
    full energies); an even square Ising lattice gets the checkerboard."""
    system = make_system(name, size)
    chains = SpinChains(system, torch.ones(1, system.n_sites))
    colours = chains.colours
    assert sorted(torch.cat(colours).tolist()) == list(range(system.n_sites))
    if n_colours is not None:
        assert len(colours) == n_colours if n_colours == 2 else len(colours) <= n_colours
    g = torch.Generator().manual_seed(1)
    x = (2 * torch.randint(0, 2, (1, system.n_sites), generator=g) - 1).double()

    for c in colours:
        pick = c[torch.randperm(len(c), generator=g)[:6]].tolist()
        for i in pick:
            assert_no_interaction(system, x, i, pick)


def _colour_sweep_chi2(colours=None) -> float:
    """chi-square / dof of 20000 Ising 3x3 chains (T 2, mu 0.3) after two colour sweeps from exact draws."""
    system = Ising((3, 3))
    T, mu = 2.0, 0.3
    states = _all_states(9)
    p = torch.softmax(system.log_f(states, T, mu), 0)
    g = torch.Generator().manual_seed(9)
    n = 20000
    chains = SpinChains(system, states[torch.multinomial(p, n, True, generator=g)].to(torch.float32))
    if colours is not None:  # a wrong colouring: the running energy is wrong too, so it is not checked
        chains._colours = colours
    ratio = semi_grand_ratio(torch.full((n,), 1 / T, dtype=torch.float64), torch.full((n,), mu, dtype=torch.float64))
    E = chains.energy()
    for _ in range(2):
        chains.colour_sweep(ratio, g, lambda n_acc, dE: E.add_(dE))
    if colours is None:
        torch.testing.assert_close(E, chains.energy())  # the running energy of the accepted flips
    codes = (((chains.spins.to(torch.long) + 1) // 2) * (1 << torch.arange(9))).sum(1)
    counts = torch.bincount(codes, minlength=512).double()
    return float(((counts - n * p) ** 2 / (n * p)).sum()) / 511


def test_colour_sweep_keeps_the_exact_distribution():
    """Chains drawn from the enumerated 3x3 distribution (three colours) stay in it after colour sweeps; updating
    every site at once (one 'colour' of interacting sites) leaves it, so the test has power."""
    assert _colour_sweep_chi2() < 1.25
    assert _colour_sweep_chi2([torch.arange(9)]) > 2.0
