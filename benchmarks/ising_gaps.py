"""Per-condition free-energy gaps of trained models on the paper grid, side by side.

    .venv/bin/python benchmarks/ising_gaps.py MODEL_OR_RUN [MODEL_OR_RUN ...] [--samples 10000] [--seed 0]

For each model: F_q - (-log Z_exact) at each (kT, mu) of the 25-condition grid (the gap; >= 0 up to noise), the
importance-sampled gap, ESS/N, and the averages. The exact reference is the transfer matrix / Kaufman value.
"""

from __future__ import annotations

import argparse

import torch

from lattherm.engine.analysis import evaluate
from lattherm.engine.models.io import load_model
from lattherm.engine.training import paper_grid


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    results = []
    for ref in a.models:
        torch.manual_seed(a.seed)
        lm = load_model(ref)
        ev = evaluate(lm.model, lm.system, paper_grid(lm.system.name), a.samples)
        results.append((ref, lm, ev))
    print(f"{a.samples} samples per condition; gap = F_q - exact (-log Z); nis = -log Z_nis - exact")
    for ref, lm, ev in results:
        hp = lm.model.hparams()
        print(f"\n{ref}: {hp['kind']} {hp['layers']}x{hp['hidden']} symmetric={hp['symmetric']} step={lm.step}")
        print(f"{'kT':>5} {'mu':>5} {'F_q':>10} {'exact':>10} {'gap':>8} {'+-':>6} {'nis':>8} {'ESS/N':>6}")
        for c in ev.conditions:
            print(f"{c.T:5.2f} {c.mu:5.2f} {c.F_q:10.4f} {c.exact_neg_log_Z:10.4f} {c.gap:8.4f} "
                  f"{c.F_q_stderr:6.4f} {c.neg_log_Z_nis - c.exact_neg_log_Z:8.4f} {c.ess_fraction:6.3f}")
        av = ev.average()
        print(f"{'average':>11} {av['F_q']:10.4f} {av['exact_neg_log_Z']:10.4f} {av['gap']:8.4f} {'':>6} "
              f"{av['neg_log_Z_nis'] - av['exact_neg_log_Z']:8.4f} {av['ess_fraction']:6.3f}")
        worst = sorted(ev.conditions, key=lambda c: -c.gap)[:3]
        print("largest gaps: " + ", ".join(f"(kT {c.T:g}, mu {c.mu:g}) {c.gap:.4f}" for c in worst))


if __name__ == "__main__":
    main()
