"""How much of a painted lattice's free-energy gap the window layout itself costs: paint with a perfect window model.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/painting_layouts.py [--samples 1000] [--seed 0]

The window model is ``ExactConditionals`` (the exact any-order conditionals of the window torus, by enumeration),
so the gap F_q - (-log Z_exact of the target) left after painting is the layout's error alone: a window model
believes its cell is periodic. Layouts: ``centered`` (stride 1: each site generated at the centre of its window),
the paper's ``sliding`` windows (stride 3 in 2D, App. I) and sliding with stride 1. Exact target references come
from the transfer matrix. The trained-model comparison (10x10 -> 20x20) is a CLI command in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import time

import torch

from lattherm.engine.exact import exact_reference
from lattherm.engine.exact.conditionals import ExactConditionals
from lattherm.engine.sampling import paint
from lattherm.engine.systems import make_system

CASES = [("3x3", "6x6"), ("3x3", "9x9")]
CONDITIONS = [(2.0, 0.0), (2.5, 0.0), (3.0, 0.0), (2.5, 0.2)]
LAYOUTS = [("centered", None), ("sliding", None), ("sliding", 1)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    print(f"{a.samples} painted lattices per condition; gap = F_q - exact -log Z of the target (+- one standard error)")
    print(f"{'window':>6} {'target':>6} {'kT':>4} {'mu':>4} | " +
          " | ".join(f"{lay + '/' + str(s or 'default'):>18}" for lay, s in LAYOUTS))
    for wname, tname in CASES:
        window, target = make_system("ising", wname), make_system("ising", tname)
        oracle = ExactConditionals(window)
        t0 = time.perf_counter()
        means = [0.0] * len(LAYOUTS)
        for T, mu in CONDITIONS:
            floor = -exact_reference(target, T, mu).log_Z
            cells = []
            for k, (layout, stride) in enumerate(LAYOUTS):
                gen = torch.Generator().manual_seed(a.seed)
                res = paint(oracle, target, T, mu, a.samples, generator=gen, window=window.lattice, layout=layout,
                            stride=stride)
                d = (res.log_p - res.log_f).double()
                gap = float(d.mean()) - floor
                means[k] += gap / len(CONDITIONS)
                cells.append(f"{gap:9.4f} +- {float(d.std()) / a.samples ** 0.5:6.4f}")
            print(f"{wname:>6} {tname:>6} {T:4.1f} {mu:4.1f} | " + " | ".join(cells))
        print(f"{wname:>6} {tname:>6} {'mean':>9} | " + " | ".join(f"{m:18.4f}" for m in means) +
              f"   ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
