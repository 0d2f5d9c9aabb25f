"""Cluster updates (Wolff, Swendsen-Wang) against single-site Metropolis for the square-lattice Ising model.

Run:  OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cluster_mc.py                 (a few minutes on one core)
      OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cluster_mc.py --sizes 10x10 --chains 32   (about a minute)
      .venv/bin/python benchmarks/cluster_mc.py --device cuda --chains 1024

For each lattice (10x10, 20x20), T in (T_c = 2.269, 2.5) and mu in (0, 0.2), and each algorithm, prints the
integrated autocorrelation times of E and |M| in sweeps (Metropolis: N attempted flips; SW: one update; Wolff:
clusters_per_sweep single-cluster updates, about N sites), sweeps per second and site updates per second (all
chains; Wolff counts the sites of the clusters grown), and effective independent samples per second,
n_chains * sweeps / (2 tau) / seconds, for E and for |M|. Every condition is its own run from random spins with
sweeps / 4 discarded equilibration sweeps. A '*' marks a tau longer than sweeps / 50, where Sokal's window
estimate is short of data and tau is a lower bound.
"""

from __future__ import annotations

import argparse

import torch

from lattherm.engine.montecarlo import cluster_mc, integrated_autocorrelation_time, metropolis
from lattherm.engine.systems.ising import Ising

T_C = 2.269


def run(algorithm: str, system, T: float, mu: float, chains: int, sweeps: int, device: str, seed: int):
    g = torch.Generator(device=device).manual_seed(seed)
    kw = dict(n_chains=chains, sweeps=sweeps, equilibration=sweeps // 4, generator=g, device=device)
    if algorithm == "metropolis":
        return metropolis(system, T, mu, **kw)
    return cluster_mc(system, T, mu, algorithm=algorithm, **kw)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10x10,20x20")
    ap.add_argument("--chains", type=int, default=64)
    ap.add_argument("--sweeps", type=int, default=400, help="recorded cluster sweeps per run")
    ap.add_argument("--metropolis-sweeps", type=int, default=2000, help="recorded Metropolis sweeps per run")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    print(f"device {args.device}, threads {torch.get_num_threads()}, {args.chains} chains; recorded sweeps: "
          f"{args.metropolis_sweeps} Metropolis, {args.sweeps} Wolff / SW (plus 1/4 of that equilibration)")
    head = (f"{'L':>5} {'T':>5} {'mu':>4} {'algorithm':>13} | {'tau_E':>7} {'tau_|M|':>8} | {'<|C|>/N':>7} "
            f"{'cl/sw':>5} | {'sweeps/s':>9} {'updates/s':>9} | {'eff E/s':>9} {'eff |M|/s':>9}")
    print(head)
    print("-" * len(head))
    for size in args.sizes.split(","):
        L1, L2 = (int(x) for x in size.lower().split("x"))
        system = Ising((L1, L2))
        N = system.n_sites
        run("wolff", system, 2.5, 0.0, 4, 2, args.device, 0)  # warm-up (allocator, tables)
        for T in (T_C, 2.5):
            for mu in (0.0, 0.2):
                for k, algorithm in enumerate(("metropolis", "wolff", "swendsen-wang")):
                    sweeps = args.metropolis_sweeps if algorithm == "metropolis" else args.sweeps
                    res = run(algorithm, system, T, mu, args.chains, sweeps, args.device, seed=100 * k + L1)
                    taus = [integrated_autocorrelation_time(x) * res.record_every
                            for x in (res.energy, res.observable.abs())]
                    flag = ["*" if t > sweeps / 50 else " " for t in taus]
                    samples = args.chains * sweeps
                    eff = [samples / (2 * t) / res.seconds for t in taus]
                    rate = (sweeps + sweeps // 4) * args.chains / res.seconds
                    if algorithm == "metropolis":
                        size_c, per = "", ""
                    else:
                        size_c = f"{float(res.mean_cluster_size.mean()) / N:.3f}"
                        per = f"{float(res.clusters_per_sweep.to(torch.float64).mean()):.1f}"
                    print(f"{size:>5} {T:>5.3f} {mu:>4.1f} {algorithm:>13} | {taus[0]:>6.2f}{flag[0]} "
                          f"{taus[1]:>7.2f}{flag[1]} | {size_c:>7} {per:>5} | {rate:>9.3g} "
                          f"{res.updates_per_second:>9.3g} | {eff[0]:>9.3g} {eff[1]:>9.3g}", flush=True)


if __name__ == "__main__":
    main()
