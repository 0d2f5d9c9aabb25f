"""CPU seconds to -log Z within +-0.01 (absolute, per lattice) with a field: a model's importance sampling against
thermodynamic integration from Monte Carlo (issue 13 item 6, BENCHMARKS.md "Free energy: CPU seconds to -log Z").

Methods, each on one thread:
- ``model NIS``: -log Z_hat = -log mean w, w = f / q, from the model's i.i.d. draws (the bundled 10x10 CPU model on
  10x10; painted with the default layout on larger lattices, its path log q exact), stderr by the delta method
  (analysis.free_energy.importance_stderr).
- ``NMCMC reverse`` (model's own lattice): the states of neural-MCMC chains are exact samples of p, and for the chain
  on (x, order) E_p[q / f] = 1 / Z, so -log Z_hat = log mean exp(-log w) over the chain states; its stderr by the
  delta method with tau_int of the series (montecarlo.statistics.estimate).
- ``TI (SW)``: montecarlo.thermodynamic_integration with Swendsen-Wang chains at every beta node; its error is the
  statistical and the halved-grid quadrature error together (both mostly noise in a short pilot, so
  the combined error is projected like the others).

Each method runs a pilot of about ``--pilot`` CPU seconds; for an error sigma that falls as 1 / sqrt(cost), the
CPU seconds to sigma = 0.01 are t_pilot (sigma_pilot / 0.01)^2 ("projected"). Where that projection is at most
``--confirm`` CPU seconds, a run of that length is made and its own seconds, estimate and error are reported
("measured"). The clock is the process CPU time (time.process_time, one thread): on a shared machine wall time
counts the other jobs too. The reference is exact_reference: the transfer matrix at 10x10, the HOTRG tensor network
(with its error) at 20x20.

    OMP_NUM_THREADS=1 python benchmarks/free_energy_cost.py [--sizes 10x10,20x20] [--conditions 2.5:0.2,2.269:0.2]
        [--pilot 15] [--confirm 120] [--model MODEL] [--no-ti] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import time

import torch

from lattherm.engine.analysis.free_energy import importance_estimates, importance_stderr
from lattherm.engine.exact import exact_reference
from lattherm.engine.montecarlo.statistics import estimate
from lattherm.engine.montecarlo.thermodynamic_integration import thermodynamic_integration
from lattherm.engine.sampling import paint_with_model
from lattherm.engine.sampling.nmcmc import NeuralMCMC
from lattherm.engine.systems import make_system
from lattherm.engine.tasks._common import load, seeded

MODEL = "ising-10x10-ao-mlp-cpu"
TARGET = 0.01


def cpu() -> float:
    return time.process_time()


def nis(lm, system, T, mu, seconds=None, n=None, batch=500, seed=0):
    """Model draws (painted where the lattice is larger) for ``seconds`` CPU or ``n`` samples: (est, err, cpu, n)."""
    g = seeded(seed)
    own = tuple(system.lattice.size) == tuple(lm.system.lattice.size)
    log_w, t0, count = [], cpu(), 0
    with torch.no_grad():
        while (n is None and cpu() - t0 < seconds) or (n is not None and count < n):
            k = batch if n is None else min(batch, n - count)
            if own:
                sb = lm.model.sample(T, mu, batch=k, generator=g)
                spins, log_q = sb.spins.double(), sb.log_p.double()
            else:
                res = paint_with_model(lm, system, T, mu, k, generator=g)
                spins, log_q = res.spins.double(), res.log_p.double()
            log_w.append(system.log_f(spins, T, mu) - log_q)
            count += k
    sec = cpu() - t0
    lw = torch.cat(log_w)
    neg, ess = importance_estimates(torch.zeros_like(lw), lw)
    return neg, importance_stderr(ess, lw.numel()), sec, {"samples": lw.numel(), "ess_fraction": ess}


def nmcmc_reverse(lm, system, T, mu, seconds=None, steps=None, chains=16, equilibration=20, seed=0):
    """-log Z = log mean_p exp(-log w) over NMCMC chain states: (est, err, cpu, info)."""
    g = seeded(seed)
    t0 = cpu()
    rec = []
    with torch.no_grad():
        mc = NeuralMCMC(lm.model, system, T, mu, chains, window=lm.system.lattice, generator=g)
        for _ in range(equilibration):
            mc.step(count=False)
        while len(rec) < 20 or (steps is None and cpu() - t0 < seconds) or (steps is not None and len(rec) < steps):
            mc.step()
            rec.append(mc.log_w.clone())
    sec = cpu() - t0
    x = -torch.stack(rec, 1)  # (chains, steps) log (q / f)
    c = float(x.max())
    u = torch.exp(x - c)
    mean, err, tau = estimate(u)
    return c + math.log(mean), err / mean, sec, {"steps": x.shape[1], "chains": chains, "tau_int": tau,
                                                 "acceptance": float(mc.acceptance.mean())}


def ti(system, T, mu, sweeps, chains=4, intervals=32, seed=0):
    t0 = cpu()
    r = thermodynamic_integration(system, T, mu, intervals=intervals, chains=chains, sweeps=sweeps,
                                  generator=seeded(seed))
    return r.neg_log_Z, r.error, cpu() - t0, {"sweeps": sweeps, "chains": chains, "intervals": intervals,
                                              "statistical_error": r.statistical_error,
                                              "quadrature_error": r.quadrature_error}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10x10,20x20")
    ap.add_argument("--conditions", default="2.5:0.2,2.269:0.2", help="T:mu pairs")
    ap.add_argument("--pilot", type=float, default=15.0, help="CPU seconds of each method's pilot")
    ap.add_argument("--confirm", type=float, default=120.0, help="largest projected CPU seconds to run for real")
    ap.add_argument("--ti-pilot-sweeps", type=int, default=200)
    ap.add_argument("--model", default=MODEL, help="the model of the NIS and NMCMC rows (bundled name or run)")
    ap.add_argument("--no-ti", action="store_true", help="leave out thermodynamic integration (model rows only)")
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.set_num_threads(1)
    lm = load(a.model)
    rows = []
    for size in a.sizes.split(","):
        system = make_system("ising", size)
        own = tuple(system.lattice.size) == tuple(lm.system.lattice.size)
        for cond in a.conditions.split(","):
            T, mu = (float(v) for v in cond.split(":"))
            t0 = time.perf_counter()
            ref = exact_reference(system, T, mu, derivatives=False)
            ref_neg, ref_err = -ref.log_Z, (ref.error or 0.0) * system.n_sites
            print(f"{size} kT {T:g} mu {mu:g}: reference {ref.method} -log Z = {ref_neg:.6f} +- {ref_err:.1e} "
                  f"({time.perf_counter() - t0:.1f} s wall)", flush=True)

            methods = [("model NIS" + ("" if own else " (painted)"),
                        lambda s=None, k=None: nis(lm, system, T, mu, seconds=s, n=k), "samples")]
            if own:
                methods.append(("NMCMC reverse", lambda s=None, k=None: nmcmc_reverse(lm, system, T, mu, seconds=s,
                                                                                      steps=k), "steps"))
            for name, run, unit in methods:
                est, err, sec, info = run(s=a.pilot)
                projected = sec * (err / TARGET) ** 2 if math.isfinite(err) else math.inf
                row = dict(size=size, T=T, mu=mu, method=name, model=a.model, reference=ref_neg,
                           reference_method=ref.method,
                           pilot=dict(estimate=est, stderr=err, cpu_seconds=sec, **info), projected_seconds=projected)
                if projected <= a.confirm:
                    need = max(int(math.ceil(info[unit] * 1.1 * (err / TARGET) ** 2)), info[unit])
                    est, err, sec, info = run(k=need)
                    row["measured"] = dict(estimate=est, stderr=err, cpu_seconds=sec, **info)
                rows.append(row)
                _print(row)
                _dump(a.json, rows)
            if a.no_ti:
                continue
            pilot_sweeps = a.ti_pilot_sweeps
            est, err, sec, info = ti(system, T, mu, pilot_sweeps)
            # both parts of the pilot's error are mostly noise (the halved-grid difference of noisy nodes), so the
            # combined error is projected like the others; the measured run then shows what it reaches
            projected = sec * (err / TARGET) ** 2
            row = dict(size=size, T=T, mu=mu, method="TI (SW)", reference=ref_neg, reference_method=ref.method,
                       pilot=dict(estimate=est, stderr=err, cpu_seconds=sec, **info), projected_seconds=projected)
            if projected <= a.confirm:
                sweeps = max(int(math.ceil(pilot_sweeps * 1.1 * projected / sec)), pilot_sweeps)
                est, err, sec, info = ti(system, T, mu, sweeps, seed=1)
                row["measured"] = dict(estimate=est, stderr=err, cpu_seconds=sec, **info)
            rows.append(row)
            _print(row)
            _dump(a.json, rows)
    print("\n| size | kT | mu | method | CPU s to +-0.01 | estimate -log Z | stderr | deviation | reference |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        m = r.get("measured") or r["pilot"]
        kind = f"{m['cpu_seconds']:.0f} (measured)" if "measured" in r else f"{r['projected_seconds']:.0f} (projected)"
        dev = (m["estimate"] - r["reference"]) / m["stderr"] if m["stderr"] > 0 else float("nan")
        print(f"| {r['size']} | {r['T']:g} | {r['mu']:g} | {r['method']} | {kind} | {m['estimate']:.4f} | "
              f"{m['stderr']:.4f} | {dev:+.1f}σ | {r['reference']:.4f} ({r['reference_method']}) |")


def _print(row):
    m = row.get("measured") or row["pilot"]
    dev = (m["estimate"] - row["reference"]) / m["stderr"] if m["stderr"] > 0 else float("nan")
    print(f"  {row['method']:22s} pilot {row['pilot']['cpu_seconds']:6.1f} s err {row['pilot']['stderr']:.4f} -> "
          f"projected {row['projected_seconds']:9.0f} s; {'measured' if 'measured' in row else 'pilot'} "
          f"{m['estimate']:.4f} +- {m['stderr']:.4f} ({dev:+.1f}σ) in {m['cpu_seconds']:.1f} s", flush=True)


def _dump(path, rows):
    if path:
        with open(path, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
