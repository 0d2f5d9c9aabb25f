"""Model sampler against exact MCMC: effective independent samples per CPU-second of <E> and <|M|>, and each
estimate's deviation from the reference in units of its error bar (issue 13 item 6, BENCHMARKS.md).

Methods: the model i.i.d. with self-normalised importance weights (ESS = (sum w)^2 / sum w^2; error from the
weighted variance), NMCMC (model's own lattice), block NMCMC (larger lattices), Metropolis, Wolff, Swendsen-Wang.
References: Kaufman at mu = 0, the transfer matrix with a field at 10x10, exact_reference where it serves a
64x64 field (tensor network, when present), else blank. <|M|> has no exact reference (blank).

    OMP_NUM_THREADS=1 python benchmarks/sampler_vs_mcmc.py --quick [--json FILE]
    OMP_NUM_THREADS=1 python benchmarks/sampler_vs_mcmc.py [--sizes 10x10,64x64] [--json FILE]
    OMP_NUM_THREADS=1 python benchmarks/sampler_vs_mcmc.py --sizes 64x64 --conditions 2.5:0.2 --steps 10000 \
        --cluster-steps 1000 --block-steps 30 --json FILE   # one condition; Metropolis longer than the rest

One clock for every method: wall seconds of the production draws on one thread (the model's i.i.d. draws; the
chains' recorded steps, equilibration excluded), so "effective samples per second" compares like with like.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from lattherm.engine.errors import LatthermError
from lattherm.engine.exact import exact_reference
from lattherm.engine.systems import make_system
from lattherm.engine.tasks._common import load, seeded
from lattherm.engine.tasks.mcmc import effective_rate, mcmc

MODEL = "ising-10x10-ao-mlp-cpu"


def reference(size: str, T: float, mu: float):
    try:
        r = exact_reference(make_system("ising", size), T, mu)
    except LatthermError:
        return None
    return r.mean_energy_per_site - mu * r.mean_observable, r.method


def importance(model, T, mu, n, seed):
    """Model i.i.d. with importance weights at 10x10: (rows per observable, seconds)."""
    lm = load(model)
    system = lm.system
    g = seeded(seed)
    t0 = time.perf_counter()
    with torch.no_grad():
        sb = lm.model.sample(T, mu, batch=n, generator=g)
    sec = time.perf_counter() - t0
    s = sb.spins.double()
    log_w = system.log_f(s, T, mu) - sb.log_p
    w = torch.softmax(log_w, 0)
    ess = float(1.0 / (w ** 2).sum())
    m = s.mean(1)
    out = {}
    for name, x in (("E", system.energy(s) / system.n_sites - mu * m), ("|M|", m.abs())):
        mean = float((w * x).sum())
        err = math.sqrt(float((w ** 2 * (x - mean) ** 2).sum()))
        out[name] = (mean, err, ess / sec)
    return out, sec


def chain(method, size, T, mu, steps, chains, block=None, seed=0, equilibration=None):
    t0 = time.perf_counter()
    kw = {"size": size}
    if block:
        kw["block"] = block
    r = mcmc(method, T, mu, steps, chains=chains, seed=seed, reference=False, equilibration=equilibration, **kw)
    cpu = time.perf_counter() - t0
    out = {}
    for name, key in (("E", "energy_per_site"), ("|M|", "abs_magnetisation_per_site")):
        x = r.series[key]
        from lattherm.engine.montecarlo.statistics import estimate

        mean, err, _ = estimate(x)
        out[name] = (mean, err, effective_rate(x, r.seconds))
    return out, r.acceptance, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="10x10 only, short runs")
    ap.add_argument("--sizes", help="comma-separated (default 10x10, and 64x64 unless --quick)")
    ap.add_argument("--conditions", help="T:mu pairs, e.g. 2.269:0,2.5:0.2 (default: per size, see below)")
    ap.add_argument("--steps", type=int, help="Metropolis / cluster sweeps (NMCMC: half of it); default per size")
    ap.add_argument("--cluster-steps", type=int, help="Wolff / Swendsen-Wang sweeps (default: --steps)")
    ap.add_argument("--block-steps", type=int, help="block NMCMC steps (sweeps of block proposals); default per size")
    ap.add_argument("--iid", type=int, help="model i.i.d. samples at 10x10 (default 20000, --quick 2000)")
    ap.add_argument("--model", default=MODEL, help=f"the 10x10 model (default {MODEL}); block NMCMC needs an "
                    "any-order one and is left out for a fixed-order model")
    ap.add_argument("--json")
    a = ap.parse_args()
    paints = load(a.model).model.any_order
    sizes = a.sizes.split(",") if a.sizes else (["10x10"] if a.quick else ["10x10", "64x64"])
    rows = []
    for size in sizes:
        big = size != "10x10"
        if a.quick:
            conds, steps, chains, n_iid, block_steps = [(2.269, 0.0), (2.5, 0.0), (2.5, 0.2)], 200, 8, 2000, 10
        elif big:  # block NMCMC costs one sweep of 5x5 re-paints per step: few steps at 64x64
            conds, steps, chains, n_iid, block_steps = [(2.269, 0.0), (2.5, 0.2)], 1000, 16, 0, 30
        else:
            conds, steps, chains, n_iid, block_steps = [(2.269, 0.0), (2.5, 0.0), (2.269, 0.2), (2.5, 0.2)], 2000, \
                16, 20000, 100
        steps = a.steps or steps
        block_steps = a.block_steps or block_steps
        n_iid = a.iid or n_iid
        if a.conditions:
            conds = [tuple(float(v) for v in c.split(":")) for c in a.conditions.split(",")]
        for T, mu in conds:
            ref = reference(size, T, mu)
            runs = []
            if size == "10x10":
                res, _ = importance(a.model, T, mu, n_iid, 0)
                runs.append(("model-iid", res, None))
                res, acc, _ = chain(a.model, size, T, mu, steps // 2, chains)
                runs.append(("nmcmc", res, acc))
            if paints:
                res, acc, _ = chain(a.model, size, T, mu, block_steps, chains, block="5x5",
                                    equilibration=max(2, block_steps // 5))
                runs.append(("block-nmcmc 5x5", res, acc))
            for m in ("metropolis", "wolff", "swendsen-wang"):
                res, acc, _ = chain(m, size, T, mu, steps if m == "metropolis" else a.cluster_steps or steps, chains)
                runs.append((m, res, acc))
            for name, res, acc in runs:
                row = {"size": size, "T": T, "mu": mu, "method": name, "model": a.model, "acceptance": acc,
                       "reference": None if ref is None else ref[1]}
                for obs, (mean, err, rate) in res.items():
                    row[obs] = mean
                    row[obs + "_err"] = err
                    row[obs + "_eff_per_s"] = rate
                row["E_dev_sigma"] = None if ref is None or not err else (res["E"][0] - ref[0]) / res["E"][1]
                rows.append(row)
                dev = row["E_dev_sigma"]
                print(f"{size:6s} T={T:<6g} mu={mu:<4g} {name:16s} acc={'' if acc is None else f'{acc:.3f}':6s} "
                      f"E={res['E'][0]:+.4f}+-{res['E'][1]:.4f} ({'' if dev is None else f'{dev:+.1f}s'}) "
                      f"eff/s E {res['E'][2]:9.1f}  |M| {res['|M|'][2]:9.1f}", flush=True)
                if a.json:  # after every row: a long run cut short keeps what it measured
                    with open(a.json, "w") as f:
                        json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
