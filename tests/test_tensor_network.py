"""The HOTRG tensor-network reference: exact where it does not truncate, against Kaufman (mu = 0) and the transfer
matrix (field) where it does, its error estimate bounding the true error, and its place in exact_reference / CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lattherm.engine.errors import LatthermError
from lattherm.engine.exact import (
    enumerate_exact,
    exact_reference,
    hotrg_log_z,
    kaufman_log_z,
    tensor_network,
    transfer_matrix,
)
from lattherm.engine.systems import make_system
from lattherm.engine.systems.ising import Ising

T_C = 2.0 / math.log(1.0 + math.sqrt(2.0))


def per_site_error(r, ref_log_z):
    return abs(r.log_Z - ref_log_z) / r.n_sites


def assert_bounded(r, ref, keys=("mean_energy_per_site", "mean_observable", "heat_capacity_per_site")):
    """Every reported error estimate is at least the true deviation from the exact reference."""
    assert per_site_error(r, ref.log_Z) <= r.error
    assert r.errors["log_Z_per_site"] == r.error
    for k in keys:
        assert abs(getattr(r, k) - getattr(ref, k)) <= r.errors[k], k


@pytest.mark.parametrize("size, T, mu", [((2, 3), 2.0, 0.3), ((1, 4), 3.0, -0.2), ((3, 5), T_C, 0.1),
                                         ((4, 4), 1.5, 0.0), ((2, 2), 2.5, 0.4)])
def test_untruncated_network_is_exact(size, T, mu):
    """While no bond exceeds chi, the contraction is exact: log Z equals enumeration to rounding, including the
    1- and 2-wide tori whose bonds wrap onto the same site or pair."""
    ref = enumerate_exact(Ising(size), T, mu)
    assert hotrg_log_z(*size, 1.0 / T, mu / T, chi=64) == pytest.approx(ref.log_Z, abs=1e-11)


@pytest.mark.parametrize("size", [(13, 3), (3, 13)])
def test_narrow_torus_with_a_prime_side_is_exact(size):
    """A 3-wide torus is completed first without truncation (2^3 <= chi), and its 13-fold remainder is the exact
    Tr M^13 - whichever way round the torus is given."""
    exact = transfer_matrix(Ising(size), 2.0, 0.2).log_Z
    assert hotrg_log_z(*size, 0.5, 0.1, chi=8) == pytest.approx(exact, abs=1e-10)


@pytest.mark.parametrize("T", [1.5, 3.5])
def test_matches_kaufman_at_32_away_from_tc(T):
    r = tensor_network(Ising((32, 32)), T, 0.0, chi=16, chi_check=24, derivatives=False)
    exact = float(kaufman_log_z(32, 32, 1.0 / T))
    assert r.method == "tensor_network" and r.chi == (16, 24)
    assert per_site_error(r, exact) <= 1e-9
    assert per_site_error(r, exact) <= r.error


def test_matches_kaufman_at_32_at_tc():
    """At T_c HOTRG converges slowest; chi 16 -> 24 gives ~1e-6 per site (1e-7 needs chi ~ 40, see BENCHMARKS)."""
    r = tensor_network(Ising((32, 32)), T_C, 0.0, chi=16, chi_check=24, derivatives=False)
    exact = float(kaufman_log_z(32, 32, 1.0 / T_C))
    assert per_site_error(r, exact) <= 2e-6
    assert per_site_error(r, exact) <= r.error


@pytest.mark.slow
@pytest.mark.parametrize("L, T", [(64, 1.5), (64, 3.5), (128, 1.5), (128, 3.5), (64, T_C)])
def test_matches_kaufman_at_64_and_128(L, T):
    r = tensor_network(Ising((L, L)), T, 0.0, chi=16, chi_check=24, derivatives=False)
    exact = float(kaufman_log_z(L, L, 1.0 / T))
    assert per_site_error(r, exact) <= (2e-6 if T == T_C else 1e-9)
    assert per_site_error(r, exact) <= r.error


def test_matches_transfer_matrix_12x12_in_a_field():
    system = Ising((12, 12))
    ref = transfer_matrix(system, 2.5, 0.2)
    r = tensor_network(system, 2.5, 0.2, chi=32, chi_check=40, derivatives=False)
    assert per_site_error(r, ref.log_Z) <= 1e-9
    assert per_site_error(r, ref.log_Z) <= r.error


@pytest.mark.slow
def test_matches_transfer_matrix_14x14_in_a_field():
    """14 = 2 x 7: in the heuristic order the 7-fold merge makes a 14 x 2 strip truncated like a chi-state transfer
    matrix (8.4e-7 per site at chi 32); the order chosen by discarded weight (x2, y7, x7, the last 2 exact) reaches
    1e-9 at chi 32/40, and the estimate bounds it."""
    import importlib

    tn_module = importlib.import_module("lattherm.engine.exact.tensor_network")
    system = Ising((14, 14))
    ref = transfer_matrix(system, 2.5, 0.2)
    r = tensor_network(system, 2.5, 0.2, chi=32, chi_check=40, derivatives=False)
    assert per_site_error(r, ref.log_Z) <= 1e-9
    assert per_site_error(r, ref.log_Z) <= r.error
    heuristic = tn_module._heuristic_order(14, 14, 16)
    assert tn_module.choose_order(14, 14, 1 / 2.5, 0.2 / 2.5, 16) != heuristic
    worse = hotrg_log_z(14, 14, 1 / 2.5, 0.2 / 2.5, chi=16, order=heuristic)
    better = hotrg_log_z(14, 14, 1 / 2.5, 0.2 / 2.5, chi=16)
    assert abs(better - ref.log_Z) * 20 < abs(worse - ref.log_Z)


def test_chosen_order_is_never_worse_than_the_heuristic():
    """10 x 14 in a field at chi 8: the order picked by discarded weight is at least as close to the transfer
    matrix as the heuristic one, and every candidate order gives a valid contraction (a bound on log Z's error)."""
    import importlib

    tn_module = importlib.import_module("lattherm.engine.exact.tensor_network")
    K, H = 1 / 2.5, 0.2 / 2.5
    exact = transfer_matrix(Ising((10, 14)), 2.5, 0.2).log_Z
    chosen = abs(hotrg_log_z(10, 14, K, H, chi=8) - exact)
    heuristic = abs(hotrg_log_z(10, 14, K, H, chi=8, order=tn_module._heuristic_order(10, 14, 8)) - exact)
    assert chosen <= heuristic
    for order in tn_module._candidate_orders(10, 14, 8):
        assert abs(hotrg_log_z(10, 14, K, H, chi=8, order=order) - exact) / 140 < 1e-3


def test_energy_magnetisation_heat_capacity_against_transfer_matrix():
    """<E>/N, <M>/N and C/N by 5-point differences agree with the transfer matrix's analytic derivatives, within
    1e-6 and within the reported estimates."""
    system = Ising((12, 12))
    ref = transfer_matrix(system, 2.5, 0.2)
    r = tensor_network(system, 2.5, 0.2, chi=16, chi_check=24)
    assert_bounded(r, ref)
    assert abs(r.mean_energy_per_site - ref.mean_energy_per_site) <= 1e-6
    assert abs(r.mean_observable - ref.mean_observable) <= 1e-6
    assert abs(r.heat_capacity_per_site - ref.heat_capacity_per_site) <= 1e-5


@pytest.mark.parametrize("size, T, mu, tol", [((12, 16), 2.0, 0.1, 1e-8), ((10, 6), 3.0, 0.3, 1e-5)])
def test_non_square_tori_against_transfer_matrix(size, T, mu, tol):
    """Factors 3 and 5 go through the binary-doubling merges, the leftover factor through Tr M^n (10 x 6: a 5-fold
    merge, the least accurate kind; 12 x 16 is the case where chi 16 and 24 agree by accident)."""
    system = Ising(size)
    ref = transfer_matrix(system, T, mu)
    r = tensor_network(system, T, mu, chi=16, chi_check=24)
    assert per_site_error(r, ref.log_Z) <= tol
    assert_bounded(r, ref)


def test_concurrent_contractions_give_the_serial_result_and_keep_the_thread_count():
    """The stencil's contractions run on the caller's torch threads, one each: 2 threads give the 1-thread numbers
    bit for bit (same order, same projectors) and leave torch's thread count as it was."""
    system = Ising((8, 8))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = tensor_network(system, 2.5, 0.2, chi=6, chi_check=8)
        torch.set_num_threads(2)
        concurrent = tensor_network(system, 2.5, 0.2, chi=6, chi_check=8)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert concurrent == serial


def test_transposed_torus_has_the_same_log_z():
    assert hotrg_log_z(12, 16, 0.5, 0.1, chi=12) == pytest.approx(hotrg_log_z(16, 12, 0.5, 0.1, chi=12), abs=1e-9)


def test_field_reversal_symmetry():
    """Z(H) = Z(-H): the network respects the spin-flip symmetry exactly."""
    assert hotrg_log_z(16, 16, 0.4, 0.3, chi=12) == pytest.approx(hotrg_log_z(16, 16, 0.4, -0.3, chi=12), abs=1e-9)


def test_auto_picks_tensor_network_only_where_nothing_exact_applies():
    big = Ising((16, 16))
    assert exact_reference(Ising((12, 12)), 2.5, 0.2).method == "transfer_matrix"
    assert exact_reference(big, 2.5, 0.0).method == "kaufman"
    r = exact_reference(big, 2.5, 0.2, chi=6, chi_check=8)
    assert r.method == "tensor_network" and r.error > 0 and not r.is_exact
    d = r.to_dict()
    assert d["method"] == "tensor_network" and d["error"] == r.error and d["chi"] == [6, 8]
    assert set(d["errors"]) == {"log_Z_per_site", "mean_energy_per_site", "mean_observable", "heat_capacity_per_site"}
    exact = exact_reference(big, 2.5, 0.0).to_dict()
    assert exact["error"] == 0.0 and exact["errors"] is None and exact["chi"] is None
    with pytest.raises(LatthermError, match="no exact method"):
        exact_reference(make_system("cuau", "4x4x8"), 600.0, 0.0)


def test_bad_requests_are_one_line_errors():
    with pytest.raises(LatthermError, match="square-lattice Ising"):
        exact_reference(make_system("cuau", "2x2x2"), 600.0, 0.0, method="tensor_network")
    with pytest.raises(LatthermError, match="chi"):
        tensor_network(Ising((8, 8)), 2.0, 0.1, chi=16, chi_check=16)
    with pytest.raises(LatthermError, match="chi"):
        tensor_network(Ising((8, 8)), 2.0, 0.1, chi=1)
    with pytest.raises(LatthermError, match="chi"):
        tensor_network(Ising((8, 8)), 2.0, 0.1, chi=16, chi_check=1000)


def test_evaluation_rows_carry_the_reference_method_and_error():
    from lattherm.engine.analysis.free_energy import estimate_condition

    system = Ising((16, 16))
    ref = exact_reference(system, 2.5, 0.2, chi=6, chi_check=8)
    spins = torch.ones(4, system.n_sites, dtype=torch.long)
    row = estimate_condition(system, 2.5, 0.2, spins, torch.zeros(4), ref).to_dict()
    assert row["reference_method"] == row["exact_method"] == "tensor_network"
    assert row["reference_error"] == ref.error > 0


def _cli(capsys, *argv):
    from _cli import cli

    return cli(capsys, *argv)


def test_cli_exact_64x64_json_names_the_method(capsys):
    rc, out, err = _cli(capsys, "exact", "ising", "--size", "64x64", "--T", "2.5", "--mu", "0.2", "--json",
                        "--chi", "8", "--chi-check", "12")
    assert rc == 0, err
    d = json.loads(out)
    assert d["method"] == "tensor_network" and 0 < d["error"] < 1e-4 and d["size"] == "64x64"
    # the 64x64 torus at kT 2.5, mu 0.2 is near its bulk value: magnetised along the field
    assert 0.5 < d["mean_observable"] < 1 and -2 < d["mean_energy_per_site"] < -1


@pytest.mark.parametrize("argv, needle", [
    (("exact", "cuau", "--size", "2x2x2", "--T", "600", "--method", "tensor_network"), "square-lattice Ising"),
    (("exact", "ising", "--size", "20x20", "--T", "2", "--mu", "0.1", "--chi", "100"), "chi"),
    (("exact", "ising", "--size", "20x20", "--T", "2", "--mu", "0.1", "--chi", "8", "--chi-check", "4"), "chi"),
])
def test_cli_bad_tensor_network_requests_exit_2(capsys, argv, needle):
    rc, out, err = _cli(capsys, *argv)
    assert rc == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err


@pytest.mark.slow
def test_tables_take_the_tensor_networks_log_z_without_its_derivatives():
    """Evaluation tables and the GUI's curves need log Z only: exact_or_none skips the 16 derivative contractions
    and gives the same log Z and error as the full reference; the task-level check accepts the missing <E>."""
    from lattherm.engine.analysis.free_energy import exact_or_none
    from lattherm.engine.exact import exact_reference
    from lattherm.engine.systems import make_system
    from lattherm.engine.tasks import exact_references

    s = make_system("ising", "16x16")
    quick = exact_or_none(s, 2.5, 0.2)
    full = exact_reference(s, 2.5, 0.2)
    assert quick.method == full.method == "tensor_network"
    assert quick.mean_energy_per_site is None and full.mean_energy_per_site is not None
    assert quick.log_Z == full.log_Z and quick.error == full.error
    (d,) = exact_references("ising", "16x16", [2.5], 0.2)
    assert d["method"] == "tensor_network" and d["log_Z"] == pytest.approx(full.log_Z, rel=1e-12)


@pytest.mark.parametrize("mu, total, at_check", [(0.2, 14, 5), (0.0, 8, 3)])
def test_derivatives_take_few_contractions_at_the_large_chi(monkeypatch, mu, total, at_check):
    """The 5-point stencils run at the cheap chi and only 3-point ones at chi_check (corrected by chi's 5-point
    difference): 14 contractions in a field, 5 of them at chi_check (log Z + 4), and 8 / 3 at mu = 0; log Z alone 2.
    The result still matches the transfer matrix within its estimates."""
    import importlib

    tn_module = importlib.import_module("lattherm.engine.exact.tensor_network")    # the package shadows its name
    calls = []
    real = tn_module.hotrg_log_z
    monkeypatch.setattr(tn_module, "hotrg_log_z", lambda *a, **kw: calls.append(a[4]) or real(*a, **kw))
    system = Ising((6, 8))
    r = tn_module.tensor_network(system, 2.5, mu, chi=6, chi_check=8)
    assert len(calls) == total and calls.count(8) == at_check
    assert_bounded(r, transfer_matrix(system, 2.5, mu))
    calls.clear()
    tn_module.tensor_network(system, 2.5, mu, chi=6, chi_check=8, derivatives=False)
    assert sorted(calls) == [6, 8]


@pytest.mark.slow
def test_matches_kaufman_at_tc_within_1e7_at_chi_40():
    """At T_c the 1e-7 target needs chi_check 40 (64x64: 9.4e-8; 5.8e-7 at 24): minutes on one thread."""
    r = tensor_network(Ising((64, 64)), T_C, 0.0, chi=32, chi_check=40, derivatives=False)
    exact = float(kaufman_log_z(64, 64, 1.0 / T_C))
    assert per_site_error(r, exact) <= 1e-7
    assert per_site_error(r, exact) <= r.error
