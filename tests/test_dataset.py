"""Monte Carlo training data: reproducible by seed, conditions spread uniformly over the ranges, thinned by the
measured tau_int, Boltzmann-distributed (checked against enumeration), stored and refused for another lattice."""

import math

import numpy as np
import pytest
import torch

from lattherm.engine.errors import LatthermError
from lattherm.engine.exact import exact_reference
from lattherm.engine.montecarlo.dataset import (Dataset, check_dataset, load_dataset, mc_dataset, mc_sampler,
                                                save_dataset)
from lattherm.engine.systems import make_system


def small(seed=0, **kw):
    args = dict(samples=600, chains=200, equilibration=50, pilot=32, max_thin=20, seed=seed)
    args.update(kw)
    return mc_dataset(make_system("ising", "3x3"), [1.5, 3.5], [-0.4, 0.4], **args)


def test_the_same_seed_gives_the_same_data_set_and_another_seed_another():
    a, b, c = small(seed=5), small(seed=5), small(seed=6)
    assert np.array_equal(a.spins, b.spins) and np.array_equal(a.T, b.T) and np.array_equal(a.mu, b.mu)
    assert not np.array_equal(a.T, c.T) and not np.array_equal(a.spins, c.spins)
    assert a.spins.dtype == np.int8 and set(np.unique(a.spins)) <= {-1, 1}
    assert a.spins.shape == (600, 9) and a.T.shape == a.mu.shape == (600,)


def test_conditions_are_drawn_uniformly_over_both_ranges_one_per_chain():
    d = small(samples=2000, chains=1000)
    T, mu = np.unique(d.T), np.unique(d.mu)
    assert len(T) == len(mu) == 1000  # continuous: no two chains share a condition
    for v, (lo, hi) in ((T, (1.5, 3.5)), (mu, (-0.4, 0.4))):
        assert v.min() >= lo and v.max() <= hi
        assert v.min() - lo < 0.02 * (hi - lo) and hi - v.max() < 0.02 * (hi - lo)  # the ends are reached
        # uniform: each quarter of the range holds 1/4 of the chains (binomial sd ~ 0.014)
        counts = np.histogram(v, bins=4, range=(lo, hi))[0] / len(v)
        assert np.all(np.abs(counts - 0.25) < 0.06), counts


def test_thinning_is_twice_the_measured_tau_int_and_the_cost_is_reported():
    d = small()
    m = d.meta
    assert m["thin"] == min(m["max_thin"], max(1, math.ceil(2 * m["tau_int_p95"])))
    per_chain = math.ceil(600 / 200)
    assert m["sweeps"] == m["equilibration"] + m["pilot"] + per_chain * m["thin"]
    assert m["site_updates"] == m["sweeps"] * 200 * 9
    assert m["seconds"] > 0 and 0.5 <= m["tau_int_median"] <= m["tau_int_p95"] <= m["tau_int_max"]
    assert (m["system"], m["size"], m["T_range"], m["mu_range"]) == ("ising", "3x3", [1.5, 3.5], [-0.4, 0.4])


def test_samples_at_one_condition_have_the_exact_mean_energy_and_magnetisation():
    """A degenerate range (one condition): the kept configurations are Boltzmann samples, so <E>/N and <m> agree
    with enumeration within 4 standard errors (the thinning makes the rows nearly independent)."""
    system = make_system("ising", "3x3")
    d = mc_dataset(system, [2.5, 2.5], [0.2, 0.2], samples=4000, chains=400, equilibration=100, pilot=64, seed=1)
    s = torch.as_tensor(d.spins, dtype=torch.float64)
    e = system.energy(s) / 9
    m = s.mean(1)
    ex = exact_reference(system, 2.5, 0.2, method="enumeration")
    for x, exact in ((e, ex.mean_energy_per_site), (m, ex.mean_observable)):
        se = float(x.std()) / math.sqrt(len(x))
        assert abs(float(x.mean()) - exact) < 4 * se, (float(x.mean()), exact, se)


def test_a_data_set_round_trips_and_is_refused_for_another_lattice_or_range(tmp_path):
    d = small()
    path = save_dataset(tmp_path / "dataset.npz", d)
    back = load_dataset(path)
    assert np.array_equal(back.spins, d.spins) and np.array_equal(back.T, d.T) and back.meta == d.meta
    check_dataset(back, make_system("ising", "3x3"), [1.5, 3.5], [-0.4, 0.4])
    with pytest.raises(LatthermError, match="made for ising 3x3.*needs ising 4x4"):
        check_dataset(back, make_system("ising", "4x4"), [1.5, 3.5], [-0.4, 0.4])
    with pytest.raises(LatthermError, match=r"needs ising 3x3, T \[1.0, 3.5\]"):
        check_dataset(back, make_system("ising", "3x3"), [1.0, 3.5], [-0.4, 0.4])
    (tmp_path / "junk.npz").write_bytes(b"not an npz")
    with pytest.raises(LatthermError, match="not a lattherm data set"):
        load_dataset(tmp_path / "junk.npz")
    with pytest.raises(LatthermError, match="no such data set"):
        load_dataset(tmp_path / "missing.npz")


def test_a_sampler_the_system_has_not_is_refused_by_name():
    with pytest.raises(LatthermError, match="no wolff cluster sampler for .*square-lattice Ising"):
        mc_sampler("wolff", make_system("cuau", "2x2x4"))
    with pytest.raises(LatthermError, match="unknown Monte Carlo sampler 'heatbath'"):
        mc_sampler("heatbath", make_system("ising", "3x3"))
    assert isinstance(Dataset(np.zeros((0, 9), np.int8), np.zeros(0), np.zeros(0)).meta, dict)
