"""Exact Markov chains at one condition, by a model (neural MCMC, block neural MCMC on a larger lattice) or by
classical Monte Carlo (single-site Metropolis, Wolff, Swendsen-Wang), reported the same way: acceptance, mean,
standard error and tau_int of every observable, and effective independent samples per second, so a user can tell
which one to run (BENCHMARKS.md). The exact (or tensor-network) reference is attached when one exists.

Observables per step: the semi-grand energy per site (E - mu sum s) / N (eps for Ising, so log f = -N e / kT) and
the magnetisation sum s / N (Ising) or x_Au (alloy). A step is one proposal per chain (NMCMC), one sweep of block
proposals touching every site once on average (block NMCMC), or one sweep (Metropolis: N flips; Wolff: N / <|C|>
clusters; Swendsen-Wang: one update).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import LatthermError
from ..progress import Meter
from ..distributed import current_world, rank_device, shard
from ._common import chunk_seed, chunks, load, npz_out, run_sharded, seeded, write_guarded
from .limits import check_lattice

#: the classical methods ``mcmc`` runs without a model
MC_METHODS = ("metropolis", "wolff", "swendsen-wang")
#: chunks a classical run is split into (progress and cancel between them)
MC_CHUNKS = 20


@dataclass
class MCMCResult:
    method: str
    system: str
    size: list
    T: float
    mu: float
    chains: int
    steps: int
    equilibration: int
    acceptance: float
    observables: dict  # name -> {"mean", "stderr", "tau_int"}
    seconds: float
    effective_samples: dict  # name -> chains * steps / (2 tau_int)
    reference: dict | None = None
    block: list | None = None
    path: Path | None = None
    series: dict = field(default_factory=dict, repr=False)  # name -> (chains, steps) float64, incl. |M| for Ising

    @property
    def effective_samples_per_second(self) -> float:
        """The slowest observable's effective independent samples per second of the recorded steps."""
        ess = min(self.effective_samples.values())
        return ess / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict:
        d = {"method": self.method, "acceptance": self.acceptance, "observables": self.observables,
             "seconds": self.seconds, "effective_samples_per_second": self.effective_samples_per_second,
             "effective_samples": self.effective_samples, "system": self.system, "size": self.size, "T": self.T,
             "mu": self.mu, "chains": self.chains, "steps": self.steps, "equilibration": self.equilibration}
        if self.block is not None:
            d["block"] = self.block
        if self.reference is not None:
            d["reference"] = self.reference
        if self.path is not None:
            d["path"] = str(self.path)
        return d


def _stats(series: dict) -> tuple[dict, dict]:
    from ..montecarlo.statistics import estimate

    obs, ess = {}, {}
    for name, x in series.items():
        mean, err, tau = estimate(x)
        obs[name] = {"mean": mean, "stderr": err, "tau_int": tau}
        ess[name] = x.numel() / (2.0 * tau)
    return obs, ess


def _observable_key(system) -> str:
    return "magnetisation_per_site" if system.observable_name == "magnetisation" else system.observable_name


def _reference(system, T: float, mu: float, observables: dict) -> dict | None:
    """The exact reference (or whatever exact_reference serves, with its method and error) and each estimate's
    deviation from it in units of its standard error; None where no reference applies."""
    from ..exact import exact_reference

    try:
        ref = exact_reference(system, T, mu)
    except LatthermError:
        return None
    d = ref.to_dict()
    x = d.get("mean_observable")
    key = _observable_key(system)
    m = None if x is None else (x if key == "magnetisation_per_site" else 2 * x - 1)
    e = d.get("mean_energy_per_site")
    values = {"energy_per_site": None if e is None or m is None else e - mu * m, key: x}
    out = {"method": d.get("method"), **values}
    if d.get("error") is not None:
        out["error"] = d["error"]
    out["deviation_sigma"] = {k: (observables[k]["mean"] - v) / observables[k]["stderr"]
                              if v is not None and observables[k]["stderr"] > 0 else None
                              for k, v in values.items()}
    return out


def _mc_series(system, method: str, T, mu, chains: int, steps: int, equilibration: int, gen, meter, control):
    """A classical run in MC_CHUNKS calls (each continuing the last; Wolff keeps the first call's cluster counts):
    (series, acceptance, seconds of the recorded sweeps)."""
    from ..montecarlo import cluster_mc, metropolis

    def run(sweeps, eq, init, counts):
        if method == "metropolis":
            return metropolis(system, T, mu, chains, sweeps, eq, init=init, generator=gen)
        return cluster_mc(system, T, mu, chains, sweeps, eq, algorithm=method, init=init, generator=gen,
                          clusters_per_sweep=counts)

    per = max(1, -(-steps // MC_CHUNKS))
    parts, init, counts, seconds, acc = [], None, None, 0.0, []
    done = 0
    while done < steps:
        if control is not None:
            control.raise_if_stopped()
        k = min(per, steps - done)
        res = run(k, equilibration if done == 0 else 0, init, counts)
        counts = getattr(res, "clusters_per_sweep", None) if method == "wolff" else None
        init, seconds = res.final, seconds + res.seconds
        parts.append(res)
        acc.append(float(res.acceptance.mean()) * k)
        done += k
        meter.update(equilibration + done)
    e_raw = torch.cat([p.energy for p in parts], 1)
    o = torch.cat([p.observable for p in parts], 1)
    m = 2 * system.composition_of_observable(o) - 1
    series = {"energy_per_site": e_raw - mu * m, _observable_key(system): o}
    if system.observable_name == "magnetisation":
        series["abs_magnetisation_per_site"] = m.abs()
    return series, sum(acc) / steps, seconds, init


def _model_series(lm, system, T, mu, chains, steps, equilibration, block, positions, sweeps_between, init, gen,
                  meter, control):
    from ..sampling.nmcmc import neural_mcmc

    def on_step(k):
        if control is not None:
            control.raise_if_stopped()
        meter.update(k)

    res = neural_mcmc(lm.model, system, T, mu, chains, steps, equilibration, window=lm.system.lattice, block=block,
                      positions=positions, sweeps_between=sweeps_between, init=init, generator=gen, on_step=on_step)
    series = {"energy_per_site": res.energy, _observable_key(system): res.observable}
    if system.observable_name == "magnetisation":
        series["abs_magnetisation_per_site"] = res.magnetisation.abs()
    return res, series


class _Shifted:
    """A meter seen from one group of chains: its counts start at ``offset`` (the groups this rank ran before)."""

    def __init__(self, meter, offset: int):
        self.meter, self.offset = meter, offset

    def update(self, k: int, extra=None):
        return self.meter.update(self.offset + k, extra=extra)


def mcmc(model_or_method, T: float, mu: float = 0.0, steps: int = 1000, *, size=None, system: str | None = None,
         block=None, chains: int = 16, sweeps_between: int = 0, equilibration: int | None = None,
         positions: str = "parallel", init: str | None = None, seed: int = 0, device: str | None = "cpu", out=None,
         reference: bool = True, chain_batch: int | None = None, progress=None, control=None) -> MCMCResult | None:
    """Run ``chains`` exact chains for ``equilibration`` (default steps // 10) then ``steps`` recorded steps.

    ``model_or_method``: a run, model folder or bundled model (NMCMC on its own lattice; block NMCMC with ``block``
    or on a larger ``size``, default block: the model's window), or one of MC_METHODS (then ``system``, default
    "ising", and ``size`` name the lattice). ``init``: "model" (default for a model) or "random". ``out``: an .npz
    with the recorded series, the final spins and the acceptance.

    The chains run in groups of ``chain_batch`` (default: all in one), group g from its own generator
    (:func:`chunk_seed`; group 0 keeps ``seed``). In a distributed world the groups are split over the ranks and rank
    0 writes the file one process writes for the same seed and chain_batch (bitwise; ``seconds`` is the slowest
    rank's); the other ranks return None."""
    from ..montecarlo.metropolis import check_count
    from ..systems import make_system

    steps = check_count(steps, "steps", 1)
    chains = check_count(chains, "chains", 1)
    if chain_batch is not None:
        chain_batch = check_count(chain_batch, "chain_batch", 1)
    sweeps_between = check_count(sweeps_between, "sweeps_between", 0)
    equilibration = steps // 10 if equilibration is None else check_count(equilibration, "equilibration", 0)
    npz_out(out)
    name = str(model_or_method)
    classical = name in MC_METHODS
    lm = None
    if classical:
        if block is not None:
            raise LatthermError(f"--block is for a model's block updates, not {name}")
        sysname = system or "ising"
        if size is None:
            raise LatthermError(f"{name} needs the lattice size (e.g. 10x10)")
    else:
        from ..store.models import resolve_model_source

        try:
            resolve_model_source(name)
        except LatthermError:
            raise LatthermError(f"unknown method or model {name!r} (a run, model folder or bundled model, or one "
                                f"of: {', '.join(MC_METHODS)})") from None
        lm = load(name, rank_device(device, current_world()))
        if system is not None and system != lm.system.name:
            raise LatthermError(f"the model {name} is for {lm.system.name}, not {system}")
        sysname = lm.system.info  # a user's CE file has no catalog name
        size = size or list(lm.system.lattice.size)
    size_text = size if isinstance(size, str) else "x".join(str(int(v)) for v in size)
    check_lattice(sysname, size_text)
    target = make_system(sysname, size_text)
    target.check(T, mu)
    T, mu = float(T), float(mu)
    if classical and name != "metropolis" and target.square_ising_coupling is None:
        raise LatthermError(f"{name} is for the square-lattice Ising model, not {sysname}")
    world = current_world()
    groups = chunks(chains, chain_batch or chains)
    per_group = equilibration + steps
    meter = Meter(len(shard(len(groups), world)) * per_group, progress, control=control)

    def run_group(g):
        """Chains of group g from their own generator; progress continues over this rank's groups."""
        gen = seeded(chunk_seed(seed, 0, g))
        shifted = _Shifted(meter, (g // world.size) * per_group)
        if classical:
            series, acc, seconds, final = _mc_series(target, name, T, mu, groups[g], steps, equilibration, gen,
                                                     shifted, control)
            return name, series, acc, seconds, final, None
        res, series = _model_series(lm, target, T, mu, groups[g], steps, equilibration, block, positions,
                                    sweeps_between, init or "model", gen, shifted, control)
        return (res.method, series, float(res.acceptance.mean()), res.seconds, res.final.cpu(),
                None if res.block is None else list(res.block))

    parts = run_sharded(len(groups), run_group, what="groups of chains", control=control,
                        hint=f"{chains} chains in groups of --chain-batch {chain_batch or chains}: lower it")
    if parts is None:
        return None
    method, block_out = parts[0][0], parts[0][5]
    series = {k: torch.cat([p[1][k] for p in parts]) for k in parts[0][1]}
    acceptance = parts[0][2] if len(parts) == 1 else sum(p[2] * c for p, c in zip(parts, groups)) / chains
    final = None if parts[0][4] is None else torch.cat([p[4] for p in parts])
    seconds = max(sum(p[3] for p in parts[r::world.size]) for r in range(world.size))  # the slowest rank's
    observables, ess = _stats({k: v for k, v in series.items() if k != "abs_magnetisation_per_site"})
    ref = _reference(target, T, mu, observables) if reference else None
    result = MCMCResult(method, target.name, list(target.lattice.size), T, mu, chains, steps, equilibration, acceptance,
                        observables, seconds, ess, ref, block_out, None, series)
    if out is not None:
        arrays = {k: v.numpy() for k, v in series.items()}
        if final is not None:
            arrays["final"] = final.numpy()

        def write():
            from ..store.atomic import atomic_write_bytes
            import io

            buf = io.BytesIO()
            np.savez(buf, method=np.array(method), T=np.array(T), mu=np.array(mu), **arrays)
            return atomic_write_bytes(out, buf.getvalue())

        write_guarded(write, out)
        result.path = Path(out)
    return result


def effective_rate(x: torch.Tensor, seconds: float) -> float:
    """Effective independent samples per second of a series (chains, n) recorded in ``seconds``."""
    from ..montecarlo.statistics import integrated_autocorrelation_time

    tau = integrated_autocorrelation_time(x)
    return x.numel() / (2.0 * tau) / seconds if seconds > 0 else math.inf


__all__ = ["MC_METHODS", "MCMCResult", "effective_rate", "mcmc"]
