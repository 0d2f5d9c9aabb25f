"""CuAu 4x4x8 (128 sites) painted from a 2x2x4 model against semi-grand-canonical Monte Carlo at 4x4x8 (issue 4,
PAPER Appendix L): <x_Au>, <E>/N and the L1_0 / L1_2 order parameters at the 16 conditions of Appendix L.

    .venv/bin/python benchmarks/cuau_4x4x8.py [MODEL] [--samples 200] [--chains 16] [--sweeps 400]

MODEL defaults to the bundled cuau-2x2x4-ao-mlp. Painting: `--layout auto` (default) picks 3D sliding 2x2x4
windows with stride 1 (Appendix L) for this cell; `--layout centered [--views K]` for comparison.
Monte Carlo: all 16 conditions x --chains chains in one batch from random starts, --sweeps equilibration sweeps,
then --sweeps recorded ones in --blocks blocks; order parameters from the configuration at the end of each block.
Error bars (+-) are one standard error over chains. At 200 K single-flip Metropolis from a random start can stay
in a multi-domain state for the whole run: its order parameters there are lower bounds on the ordered phase's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lattherm.engine.analysis.order import fcc_order_parameters
from lattherm.engine.models.io import load_model
from lattherm.engine.sampling import paint_with_model
from lattherm.engine.montecarlo import metropolis
from lattherm.engine.systems import make_system

QUANTITIES = ("x_Au", "E_meV", "eta_L10", "eta_L12")


def observables(system, spins: torch.Tensor) -> dict[str, torch.Tensor]:
    s = spins.to(torch.float64)
    op = fcc_order_parameters(system.lattice, s)
    return {"x_Au": system.composition(s), "E_meV": 1000 * system.energy(s) / system.n_sites,
            "eta_L10": op["eta_L10"], "eta_L12": op["eta_L12"]}


def mc_reference(system, conds, chains: int, sweeps: int, blocks: int, seed: int) -> list[dict]:
    T = torch.tensor([t for t, _ in conds for _ in range(chains)], dtype=torch.float64)
    mu = torch.tensor([m for _, m in conds for _ in range(chains)], dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    res = metropolis(system, T, mu, len(T), 1, equilibration=sweeps, generator=gen)
    per_block = max(1, sweeps // blocks)
    snaps = []
    for _ in range(blocks):
        res = metropolis(system, T, mu, len(T), per_block, init=res.final, generator=gen)
        snaps.append(observables(system, res.final))
    out = []
    for c in range(len(conds)):
        rows = slice(c * chains, (c + 1) * chains)
        d = {}
        for q in QUANTITIES:
            per_chain = torch.stack([s[q][rows] for s in snaps]).mean(0)  # (chains,)
            d[q] = (float(per_chain.mean()), float(per_chain.std() / chains ** 0.5))
        out.append(d)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default="cuau-2x2x4-ao-mlp")
    ap.add_argument("--size", default="4x4x8")
    ap.add_argument("--samples", type=int, default=200, help="painted lattices per condition")
    ap.add_argument("--chains", type=int, default=16, help="Monte Carlo chains per condition")
    ap.add_argument("--sweeps", type=int, default=400, help="equilibration sweeps, and as many recorded")
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layout", default="auto", choices=["auto", "centered", "sliding"], help="painting windows")
    ap.add_argument("--views", type=int, help="centered layout: central windows combined per site")
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    lm = load_model(a.model)
    target = make_system("cuau", a.size)
    conds = [(float(T), float(mu)) for T in np.linspace(200, 1200, 4) for mu in np.linspace(-0.12, 0.12, 4)]

    t0 = time.perf_counter()
    painted = []
    for T, mu in conds:
        res = paint_with_model(lm, target, T, mu, a.samples, layout=a.layout, views=a.views)
        obs = observables(target, res.spins)
        painted.append({q: (float(v.mean()), float(v.std() / len(v) ** 0.5)) for q, v in obs.items()})
    t_paint = time.perf_counter() - t0
    t0 = time.perf_counter()
    mc = mc_reference(target, conds, a.chains, a.sweeps, a.blocks, a.seed)
    t_mc = time.perf_counter() - t0

    print(f"CuAu {a.size}: {a.samples} lattices painted per condition by {a.model} ({t_paint:.0f} s); Metropolis "
          f"{a.chains} chains x ({a.sweeps} + {a.sweeps}) sweeps per condition ({t_mc:.0f} s)")
    print(f"{'T/K':>5} {'mu/eV':>6} | {'x_Au paint':>10} {'MC':>15} | {'E/N meV paint':>13} {'MC':>15} | "
          f"{'L1_0 paint':>10} {'MC':>11} | {'L1_2 paint':>10} {'MC':>11}")
    worst = {q: 0.0 for q in QUANTITIES}
    for (T, mu), p, m in zip(conds, painted, mc):
        cells = []
        for q, w in zip(QUANTITIES, (4, 2, 3, 3)):
            cells.append(f"{p[q][0]:10.{w}f} {m[q][0]:8.{w}f}+-{m[q][1]:.{w}f}")
            if T >= 600:
                worst[q] = max(worst[q], abs(p[q][0] - m[q][0]))
        print(f"{T:5.0f} {mu:6.3f} | " + " | ".join(cells))
    print("largest |painted - MC| at T >= 600 K: " + ", ".join(f"{q} {v:.4f}" for q, v in worst.items()))


if __name__ == "__main__":
    main()
