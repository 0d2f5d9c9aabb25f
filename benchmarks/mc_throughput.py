"""Reference Monte Carlo throughput and its agreement with exact enumeration on 2x2x4 CuAu.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/mc_throughput.py        (about a minute on one CPU core)
      .venv/bin/python benchmarks/mc_throughput.py --device cuda            (same on a GPU)

Prints (1) attempted single-spin flips per second (site updates/s) of batched semi-grand-canonical Metropolis for
CuAu 2x2x4 and 4x4x8 at 1024 and 8192 chains and Ising 20x20, and (2) MC mean +- error (Sokal tau) against
exact enumeration for <E>/N (eV/site) and <x_Au> at the corners and centre-ish points of the paper's 8 mu x 4 T
evaluation grid (mu in linspace(-0.12, 0.12, 8) eV, T in linspace(200, 1200, 4) K).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from lattherm.engine.exact import enumerate_exact
from lattherm.engine.montecarlo import metropolis
from lattherm.engine.systems import make_system


def throughput(device: str) -> None:
    print("1. Metropolis throughput (attempted flips / s), device", device, "threads", torch.get_num_threads())
    print(f"{'system':>14} {'chains':>7} {'sweeps':>6} {'seconds':>8} {'updates/s':>12}")
    cases = [("cuau", "2x2x4", 1024, 20), ("cuau", "2x2x4", 8192, 5), ("cuau", "4x4x8", 1024, 2),
             ("cuau", "4x4x8", 8192, 1), ("ising", "20x20", 1024, 2), ("ising", "20x20", 8192, 1)]
    for name, size, chains, sweeps in cases:
        system = make_system(name, size)
        T, mu = (900.0, 0.0) if name == "cuau" else (2.5, 0.0)
        metropolis(system, T, mu, n_chains=8, sweeps=1, device=device)  # warm-up (tables, allocator)
        res = metropolis(system, T, mu, n_chains=chains, sweeps=sweeps, device=device,
                         generator=torch.Generator(device=device).manual_seed(0))
        print(f"{name + ' ' + size:>14} {chains:>7} {sweeps:>6} {res.seconds:>8.2f} {res.updates_per_second:>12.3e}")


def zscore(diff: float, err: float) -> float:
    """diff / err; a frozen chain set (err 0, e.g. a pure phase at 200 K) counts as z = 0 if diff is at rounding."""
    if err > 0:
        return diff / err
    return float("nan")  # every chain frozen in one state: no fluctuation seen, no z (the |diff| is printed)


def agreement(device: str, chains: int, sweeps: int) -> None:
    system = make_system("cuau", "2x2x4")
    mus = np.linspace(-0.12, 0.12, 8)
    temps = np.linspace(200.0, 1200.0, 4)
    conds = [(temps[0], mus[0]), (temps[0], mus[-1]), (temps[-1], mus[0]), (temps[-1], mus[-1]),
             (temps[1], mus[3]), (temps[2], mus[4]), (temps[3], mus[4]), (temps[2], mus[2])]
    T = torch.tensor([c[0] for c in conds]).repeat_interleave(chains)
    mu = torch.tensor([c[1] for c in conds]).repeat_interleave(chains)
    res = metropolis(system, T, mu, n_chains=len(T), sweeps=sweeps, equilibration=sweeps // 4, device=device,
                     generator=torch.Generator(device=device).manual_seed(1))
    print(f"\n2. CuAu 2x2x4: MC ({chains} chains x {sweeps} sweeps per condition, all {len(conds)} conditions in "
          f"one batch, {res.seconds:.1f} s) vs exact enumeration")
    print(f"{'T/K':>6} {'mu/eV':>7} | {'MC <E>/N':>22} {'exact':>10} {'z':>5} | {'MC <x_Au>':>18} {'exact':>8} {'z':>5} | "
          f"{'acc':>5} {'tau_E':>5}")
    zs, diffs = [], [0.0]
    for row in res.summary():
        ex = enumerate_exact(system, row["T"], row["mu"])
        ze = zscore(row["energy"] - ex.mean_energy_per_site, row["energy_error"])
        zx = zscore(row["observable"] - ex.mean_observable, row["observable_error"])
        zs += [ze, zx]
        if row["energy_error"] == 0 or row["observable_error"] == 0:
            diffs += [abs(row["energy"] - ex.mean_energy_per_site), abs(row["observable"] - ex.mean_observable)]
        print(f"{row['T']:6.0f} {row['mu']:7.4f} | {row['energy']:10.6f} +- {row['energy_error']:8.6f} "
              f"{ex.mean_energy_per_site:10.6f} {ze:5.1f} | {row['observable']:7.4f} +- {row['observable_error']:7.4f} "
              f"{ex.mean_observable:8.4f} {zx:5.1f} | {row['acceptance']:5.3f} {row['energy_tau']:5.1f}")
    finite = [abs(z) for z in zs if z == z]
    print(f"max |z| = {max(finite):.2f} over {len(finite)} comparisons with a non-zero error bar "
          f"(z = nan: all chains frozen in a pure phase; there |MC - exact| = {max(diffs):.1e})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--chains", type=int, default=256, help="chains per condition in the agreement table")
    ap.add_argument("--sweeps", type=int, default=400)
    args = ap.parse_args()
    throughput(args.device)
    agreement(args.device, args.chains, args.sweeps)


if __name__ == "__main__":
    main()
