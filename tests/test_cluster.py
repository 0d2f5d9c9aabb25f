"""Wolff and Swendsen-Wang cluster updates (engine/montecarlo/cluster.py): the batched component labelling, the
one-update transition matrix on the 2x2 torus against an independent Fortuin-Kasteleyn enumeration (detailed
balance, Boltzmann stationarity), exact <E> and <M> on 2x2, 3x3 and 4x4 with and without a field, agreement
with Metropolis, and the refusals."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from lattherm.engine.errors import LatthermError
from lattherm.engine.exact import enumerate_exact, transfer_matrix
from lattherm.engine.montecarlo import ClusterChains, cluster_mc, connected_components, metropolis
from lattherm.engine.systems import make_system
from lattherm.engine.systems.ising import Ising

ALGORITHMS = ("wolff", "swendsen-wang")


class _UnionFind:
    def __init__(self, n):
        self.p = list(range(n))

    def find(self, x):
        while self.p[x] != x:
            x = self.p[x]
        return x

    def union(self, a, b):
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[max(ra, rb)] = min(ra, rb)


def _components(n, pairs):
    uf = _UnionFind(n)
    for a, b in pairs:
        uf.union(a, b)
    return [uf.find(x) for x in range(n)]


def test_connected_components_against_union_find():
    g = torch.Generator().manual_seed(0)
    n, B = 40, 12
    edges = torch.randint(0, n, (90, 2), generator=g)
    density = torch.linspace(0.0, 0.9, B)[:, None]  # from no edges (all singletons) to one giant component
    active = torch.rand(B, len(edges), generator=g) < density
    labels = connected_components(edges, active, n)
    for b in range(B):
        expect = _components(n, [tuple(e) for e in edges[active[b]].tolist()])
        assert labels[b].tolist() == expect  # the smallest node of each component labels it


def test_connected_components_long_path():
    """A path whose node order alternates ends up as one component with label 0 (many hooking passes)."""
    n = 257
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1))
    edges = torch.stack([order[:-1], order[1:]], 1)
    labels = connected_components(edges, torch.ones(2, n - 1, dtype=torch.bool), n)
    assert bool((labels == 0).all())


# --- the exact one-update transition matrix on the 2x2 torus, built independently from the FK representation ---

def _states(N):
    codes = torch.arange(1 << N)
    return (2 * ((codes[:, None] >> torch.arange(N)) & 1) - 1).to(torch.float64)


def _code(s):
    return int(sum(1 << k for k, v in enumerate(s) if v > 0))


def _exact_sw(system, T, mu):
    """P[a, b] of one Swendsen-Wang update: sum over every ghost/lattice bond configuration of its FK weight,
    then 1/2^k over the flips of the k clusters not holding the ghost."""
    N, beta = system.n_sites, 1.0 / T
    bonds = [tuple(b) for b in system.lattice.bonds(1).tolist() if b[0] != b[1]]
    p, pg = 1 - math.exp(-2 * beta), 1 - math.exp(-2 * beta * abs(mu))
    S = _states(N)
    P = torch.zeros(len(S), len(S), dtype=torch.float64)
    for a, s in enumerate(S.tolist()):
        cand = [(i, j, p) for i, j in bonds if s[i] == s[j]]
        cand += [(i, N, pg) for i in range(N) if mu != 0 and s[i] == math.copysign(1, mu)]
        for on in itertools.product((0, 1), repeat=len(cand)):
            w = math.prod(q if x else 1 - q for (_, _, q), x in zip(cand, on))
            roots = _components(N + 1, [(i, j) for (i, j, _), x in zip(cand, on) if x])
            free = sorted({r for r in roots[:N] if r != roots[N]})
            for flips in itertools.product((1, -1), repeat=len(free)):
                sign = dict(zip(free, flips))
                t = [v * sign.get(roots[i], 1) for i, v in enumerate(s)]
                P[a, _code(t)] += w / 2 ** len(free)
    return P


def _exact_wolff(system, T, mu):
    """P[a, b] of one Wolff update: uniform seed, the seed's component in the percolation of satisfied bonds,
    flipped with the ghost acceptance min(1, exp(-2 beta mu sum_C s))."""
    N, beta = system.n_sites, 1.0 / T
    bonds = [tuple(b) for b in system.lattice.bonds(1).tolist() if b[0] != b[1]]
    p = 1 - math.exp(-2 * beta)
    S = _states(N)
    P = torch.zeros(len(S), len(S), dtype=torch.float64)
    for a, s in enumerate(S.tolist()):
        cand = [(i, j) for i, j in bonds if s[i] == s[j]]
        for on in itertools.product((0, 1), repeat=len(cand)):
            w = math.prod(p if x else 1 - p for x in on)
            roots = _components(N, [e for e, x in zip(cand, on) if x])
            for seed in range(N):
                C = [i for i in range(N) if roots[i] == roots[seed]]
                acc = min(1.0, math.exp(-2 * beta * mu * sum(s[i] for i in C)))
                t = [-v if i in C else v for i, v in enumerate(s)]
                P[a, _code(t)] += w * acc / N
                P[a, a] += w * (1 - acc) / N
    return P


def _sampled(system, T, mu, algorithm, M, seed):
    """The implementation's one-update transition matrix from M independent updates of every state."""
    S = _states(system.n_sites)
    chains = ClusterChains(system, S.repeat_interleave(M, 0).to(torch.float32), T, mu)
    g = torch.Generator().manual_seed(seed)
    chains.wolff(generator=g) if algorithm == "wolff" else chains.swendsen_wang(generator=g)
    codes = (((chains.s.to(torch.long) + 1) // 2) * (1 << torch.arange(system.n_sites))).sum(1)
    counts = torch.zeros(len(S), len(S), dtype=torch.float64)
    counts.index_put_((torch.arange(len(S)).repeat_interleave(M), codes), torch.ones(len(codes), dtype=torch.float64),
                      accumulate=True)
    return counts / M


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("T,mu", [(2.0, 0.4), (1.5, -0.25), (2.5, 0.0)])
def test_one_update_transition_matrix_2x2(algorithm, T, mu):
    system = Ising((2, 2))
    exact = (_exact_wolff if algorithm == "wolff" else _exact_sw)(system, T, mu)
    pi = torch.softmax(system.log_f(_states(4), T, mu), 0)
    torch.testing.assert_close(exact.sum(1), torch.ones(16, dtype=torch.float64), rtol=0, atol=1e-12)
    flow = pi[:, None] * exact
    torch.testing.assert_close(flow, flow.T, rtol=0, atol=1e-12)  # detailed balance
    torch.testing.assert_close(pi @ exact, pi, rtol=0, atol=1e-12)  # Boltzmann is stationary
    M = 6000
    sampled = _sampled(system, T, mu, algorithm, M, seed=int(10 * T))
    sigma = torch.sqrt(exact * (1 - exact) / M)
    assert bool(((sampled - exact).abs() <= 5 * sigma + 2.0 / M).all()), (sampled - exact).abs().max()
    assert bool((sampled[exact == 0] == 0).all())  # no forbidden move is ever made
    var = pi[:, None] ** 2 * exact * (1 - exact) / M  # binomial variance of pi_a * sampled[a, b]
    flow = pi[:, None] * sampled
    off = ~torch.eye(16, dtype=torch.bool)
    z_balance = (flow - flow.T)[off] / torch.sqrt(var + var.T)[off].clamp(min=1e-30)
    assert float(z_balance.abs().max()) < 5  # detailed balance of the sampled kernel
    z_stationary = (pi @ sampled - pi) / torch.sqrt(var.sum(0))
    assert float(z_stationary.abs().max()) < 5  # the sampled kernel keeps Boltzmann


# --- exact means ---

def _exact(system, T, mu):
    return enumerate_exact(system, T, mu) if system.n_sites <= 9 else transfer_matrix(system, T, mu)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", [(2, 2), (3, 3), (4, 4)])
def test_exact_energy_and_magnetisation(size, algorithm):
    """Two conditions batched in one call (zero field at T_c, a field at T = 2.5), each within 3 sigma."""
    system = Ising(size)
    conds = [(2.269, 0.0), (2.5, 0.25), (1.8, -0.1)]
    per = 96
    T = torch.tensor([c[0] for c in conds], dtype=torch.float64).repeat_interleave(per)
    mu = torch.tensor([c[1] for c in conds], dtype=torch.float64).repeat_interleave(per)
    res = cluster_mc(system, T, mu, len(T), sweeps=200, equilibration=30, algorithm=algorithm,
                     generator=torch.Generator().manual_seed(sum(size)))
    rows = res.summary()
    assert [(r["T"], r["mu"]) for r in rows] == conds
    for row in rows:
        ex = _exact(system, row["T"], row["mu"])
        assert abs(row["energy"] - ex.mean_energy_per_site) < 3 * row["energy_error"], (row, ex)
        assert abs(row["observable"] - ex.mean_observable) < 3 * row["observable_error"], (row, ex)
        assert 0.5 <= row["energy_tau"] < 20 and 0 < row["acceptance"] <= 1
    assert res.energy.shape == (len(T), 200) and res.final.shape == (len(T), system.n_sites)


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_agrees_with_metropolis_8x8(algorithm):
    system = Ising((8, 8))
    T, mu = 2.4, 0.1
    met = metropolis(system, T, mu, n_chains=64, sweeps=300, equilibration=100,
                     generator=torch.Generator().manual_seed(3))
    clu = cluster_mc(system, T, mu, n_chains=64, sweeps=300, equilibration=30, algorithm=algorithm,
                     generator=torch.Generator().manual_seed(4))
    for which in ("energy", "observable"):
        diff = clu.mean(which) - met.mean(which)
        assert abs(diff) < 3 * math.hypot(clu.error(which), met.error(which)), (which, diff)


@pytest.mark.slow
def test_cluster_updates_beat_critical_slowing_down():
    """At T_c, from 8x8 to 24x24, Metropolis's tau_int of |M| grows like L^z (z ~ 2: about 3 -> 22 sweeps for the
    colour sweep) while Wolff's and SW's hardly move (about 1.0 -> 1.5 and 2.3 -> 3.1), far below it at 24x24."""
    taus = {}
    for L, sweeps in ((8, 600), (24, 1500)):
        system = Ising((L, L))
        kw = dict(T=2.269, mu=0.0, n_chains=32)
        taus["metropolis", L] = _tau_abs(metropolis(system, sweeps=sweeps, equilibration=200,
                                                    generator=torch.Generator().manual_seed(5), **kw))
        for algorithm in ALGORITHMS:
            taus[algorithm, L] = _tau_abs(cluster_mc(system, sweeps=300, equilibration=50, algorithm=algorithm,
                                                     generator=torch.Generator().manual_seed(6), **kw))
    assert taus["metropolis", 24] > 4 * taus["metropolis", 8], taus
    for algorithm in ALGORITHMS:
        assert taus[algorithm, 24] < 2 * taus[algorithm, 8], taus
        assert taus[algorithm, 24] < taus["metropolis", 24] / 4, taus


def _tau_abs(res):
    from lattherm.engine.montecarlo import integrated_autocorrelation_time
    return integrated_autocorrelation_time(res.observable.abs()) * res.record_every


# --- behaviour of the driver ---

def test_seeded_runs_repeat_and_wolff_counts():
    system = Ising((5, 5))
    runs = [cluster_mc(system, 2.269, 0.1, 8, 10, equilibration=5, generator=torch.Generator().manual_seed(9))
            for _ in range(2)]
    assert torch.equal(runs[0].energy, runs[1].energy) and torch.equal(runs[0].final, runs[1].final)
    res = cluster_mc(system, 2.0, 0.0, 8, 10, clusters_per_sweep=3, generator=torch.Generator().manual_seed(2))
    assert res.clusters_per_sweep.tolist() == [3] * 8
    assert res.acceptance.tolist() == [1.0] * 8  # no field: every Wolff cluster flips
    assert res.attempted == int(round(float(res.mean_cluster_size.sum()) * 30))
    low = cluster_mc(system, 1.2, 0.0, 4, 5, equilibration=5, generator=torch.Generator().manual_seed(2))
    assert low.clusters_per_sweep.tolist() == [1] * 4  # ordered phase: one cluster spans nearly every site
    per = torch.tensor([1, 2, 3, 4])
    more = cluster_mc(system, 3.0, 0.0, 4, 5, init=low.final, clusters_per_sweep=per,
                      generator=torch.Generator().manual_seed(2))
    assert more.clusters_per_sweep.tolist() == [1, 2, 3, 4]
    with pytest.raises(LatthermError, match="one per chain"):
        cluster_mc(system, 3.0, 0.0, 4, 5, clusters_per_sweep=torch.tensor([1, 2]))


def test_init_and_frozen_limit():
    """All-up spins in a strong field at low T stay all up under both algorithms (the ghost pins them)."""
    system = Ising((4, 4))
    for algorithm in ALGORITHMS:
        res = cluster_mc(system, 0.5, 2.0, 4, 20, init=torch.ones(16), algorithm=algorithm,
                         generator=torch.Generator().manual_seed(0))
        assert bool((res.observable == 1).all()) and bool((res.energy == -2).all())


def test_refuses_other_systems_and_bad_input():
    with pytest.raises(LatthermError, match="square-lattice Ising"):
        cluster_mc(make_system("cuau", "2x2x4"), 900.0, 0.0, 4, 10)
    system = Ising((3, 3))
    with pytest.raises(LatthermError, match="unknown cluster algorithm"):
        cluster_mc(system, 2.0, 0.0, 4, 10, algorithm="heatbath")
    with pytest.raises(LatthermError, match="temperature"):
        cluster_mc(system, -1.0, 0.0, 4, 10)
    with pytest.raises(LatthermError, match="clusters_per_sweep"):
        cluster_mc(system, 2.0, 0.0, 4, 10, clusters_per_sweep=0)
    with pytest.raises(LatthermError, match="init"):
        cluster_mc(system, 2.0, 0.0, 4, 10, init=torch.ones(5))
