"""Training data from our own Monte Carlo: configurations at conditions spread continuously over (T, mu) ranges.

A maximum-likelihood phase needs samples of the Boltzmann distribution at many conditions. :func:`mc_dataset`
draws one (T, mu) per chain uniformly over the run's ranges (not only the grid points: the model is conditioned on
a continuum), runs all chains side by side with a batched sampler (semi-grand-canonical Metropolis, or cluster
updates for Ising), measures each chain's integrated autocorrelation time tau_int on a pilot run (energy and
observable series, Sokal's window), and keeps one configuration every ``thin = ceil(2 tau_int)`` sweeps. The chains
run in lockstep, so the slowest one sets the spacing; spacing every chain by it costs nothing extra. ``thin`` is the
95th percentile over chains (the maximum of noisy per-chain estimates is an outlier), capped at ``max_thin``; the
fraction of chains whose own 2 tau_int exceeds the spacing is reported so a too-small cap is visible.

Everything follows from the seed, so a data set is reproducible; its cost (wall seconds, sweeps, site updates) and
tau_int are in ``meta``. A data set is stored as one .npz (:func:`save_dataset`, atomic) and carries the system,
size and condition ranges it was made for, so a run never trains on data for another lattice
(:func:`check_dataset`).
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import LatthermError
from ..store.atomic import atomic_write_bytes
from ..systems.base import System
from .metropolis import MCResult, check_count, metropolis
from .statistics import integrated_autocorrelation_time

__all__ = ["Dataset", "mc_dataset", "mc_sampler", "save_dataset", "load_dataset", "check_dataset",
           "DATASET_FILE"]

#: the data set's file name in a run folder
DATASET_FILE = "dataset.npz"
#: sampler(system, T, mu, n_chains, sweeps, equilibration=..., init=..., generator=...) -> MCResult
Sampler = Callable[..., MCResult]


@dataclass
class Dataset:
    """M configurations with their conditions: spins (M, N) int8 +-1, T (M,) and mu (M,) float64, and ``meta``
    (system, size, T_range, mu_range, seed, sampler, chains, thin, tau_int, sweeps, seconds, site_updates)."""

    spins: np.ndarray
    T: np.ndarray
    mu: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.spins.shape[0])


def _cluster(algorithm: str) -> Sampler:
    try:
        from .cluster import cluster_mc
    except ImportError:
        raise LatthermError(f"the {algorithm} cluster sampler is not available in this build (use metropolis)") \
            from None
    return partial(cluster_mc, algorithm=algorithm)


def mc_sampler(name: str, system: System) -> Sampler:
    """The batched Monte Carlo sampler called ``name`` for ``system``; a sampler the system has not is a
    LatthermError naming both. Cluster updates (``wolff``, ``swendsen-wang``) need the square-lattice Ising model."""
    if name == "metropolis":
        return metropolis
    if name in ("wolff", "swendsen-wang"):
        if system.square_ising_coupling is None:
            raise LatthermError(f"no {name} cluster sampler for {system!r}: cluster updates need the square-lattice "
                                f"Ising model; use sampler = \"metropolis\"")
        return _cluster(name)
    raise LatthermError(f"unknown Monte Carlo sampler {name!r} (metropolis, wolff, swendsen-wang)")


def _tau_per_chain(result: MCResult) -> np.ndarray:
    """(chains,) max over the energy and observable series of each chain's tau_int, in sweeps."""
    taus = []
    for x in (result.energy, result.observable):
        x = x.cpu()
        taus.append([integrated_autocorrelation_time(x[c]) * result.record_every for c in range(x.shape[0])])
    return np.maximum(*np.asarray(taus))


def mc_dataset(system: System, T_range, mu_range, samples: int, chains: int, equilibration: int = 200,
               pilot: int = 200, max_thin: int = 50, seed: int = 0, sampler: Sampler = metropolis,
               sampler_name: str = "metropolis", progress: Callable[[float], None] | None = None) -> Dataset:
    """``samples`` configurations from ``chains`` chains, chain c at (T_c, mu_c) ~ U(T_range) x U(mu_range).

    Each chain: ``equilibration`` discarded sweeps, a ``pilot`` run whose series give tau_int, then
    ceil(samples / chains) configurations ``thin`` sweeps apart (see the module docstring). Rows are chain-major
    and cut to ``samples``. ``sampler`` is any batched sampler with :func:`metropolis`'s signature (``init``
    continues the chains); ``progress`` gets the fraction done."""
    samples = check_count(samples, "samples", 1)
    chains = check_count(chains, "chains", 1)
    chains = min(chains, samples)
    equilibration = check_count(equilibration, "equilibration", 0)
    pilot = check_count(pilot, "pilot", 8)
    max_thin = check_count(max_thin, "max_thin", 1)
    (T_lo, T_hi), (mu_lo, mu_hi) = (float(v) for v in T_range), (float(v) for v in mu_range)
    if not 0 < T_lo <= T_hi or mu_lo > mu_hi:
        raise LatthermError(f"data set ranges must be 0 < T_low <= T_high and mu_low <= mu_high, got T "
                            f"{list(T_range)}, mu {list(mu_range)}")
    g = torch.Generator().manual_seed(int(seed))
    u = torch.rand(2, chains, generator=g, dtype=torch.float64)
    T = T_lo + (T_hi - T_lo) * u[0]
    mu = mu_lo + (mu_hi - mu_lo) * u[1]
    per_chain = math.ceil(samples / chains)

    t0 = time.perf_counter()
    sweeps = 0
    first = sampler(system, T, mu, chains, pilot, equilibration=equilibration, generator=g)
    sweeps += equilibration + pilot
    tau = _tau_per_chain(first)
    thin = int(min(max_thin, max(1, math.ceil(2.0 * float(np.quantile(tau, 0.95))))))
    state = first.final
    kept = np.empty((per_chain, chains, system.n_sites), dtype=np.int8)
    for k in range(per_chain):
        r = sampler(system, T, mu, chains, thin, equilibration=0, init=state.to(torch.float32), generator=g)
        state = r.final
        kept[k] = state.cpu().numpy()
        sweeps += thin
        if progress is not None:
            progress((k + 1) / per_chain)
    seconds = time.perf_counter() - t0

    spins = kept.transpose(1, 0, 2).reshape(-1, system.n_sites)[:samples]
    Ts = np.repeat(T.numpy(), per_chain)[:samples]
    mus = np.repeat(mu.numpy(), per_chain)[:samples]
    meta = {"system": system.info.name, "size": system.lattice.label, "T_range": [T_lo, T_hi],
            "mu_range": [mu_lo, mu_hi], "samples": int(len(spins)), "chains": chains, "seed": int(seed),
            "sampler": sampler_name, "equilibration": equilibration, "pilot": pilot, "thin": thin,
            "max_thin": max_thin, "tau_int_median": float(np.median(tau)), "tau_int_p95": float(np.quantile(tau, 0.95)),
            "tau_int_max": float(tau.max()), "under_thinned_fraction": float(np.mean(2.0 * tau > thin)),
            "sweeps": sweeps, "site_updates": int(sweeps) * chains * system.n_sites, "seconds": round(seconds, 3)}
    return Dataset(spins=spins, T=Ts, mu=mus, meta=meta)


def save_dataset(path, data: Dataset) -> Path:
    """Write ``data`` to ``path`` (.npz: spins, T, mu, meta as JSON), atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, spins=data.spins.astype(np.int8), T=data.T.astype(np.float64),
                        mu=data.mu.astype(np.float64), meta=np.array(json.dumps(data.meta)))
    return atomic_write_bytes(path, buf.getvalue())


def load_dataset(path) -> Dataset:
    """Read a data set written by :func:`save_dataset`; a missing or foreign file is a one-line LatthermError."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            spins, T, mu, meta = z["spins"], z["T"], z["mu"], json.loads(str(z["meta"]))
    except FileNotFoundError:
        raise LatthermError(f"{path}: no such data set file") from None
    except Exception as exc:  # noqa: BLE001 - an unreadable file is the user's input problem
        raise LatthermError(f"{path}: not a lattherm data set ({type(exc).__name__})") from None
    if spins.ndim != 2 or len(T) != len(spins) or len(mu) != len(spins) or not isinstance(meta, dict):
        raise LatthermError(f"{path}: not a lattherm data set (inconsistent arrays)")
    return Dataset(spins=spins, T=T, mu=mu, meta=meta)


def check_dataset(data: Dataset, system: System, T_range, mu_range, source="data set") -> Dataset:
    """``data`` if it was made for ``system`` (name and size) and exactly these condition ranges, else a one-line
    LatthermError saying what it was made for."""
    m = data.meta
    want = (system.info.name, system.lattice.label, [float(v) for v in T_range], [float(v) for v in mu_range])
    have = (m.get("system"), m.get("size"), [float(v) for v in m.get("T_range", [])],
            [float(v) for v in m.get("mu_range", [])])
    if have != want or data.spins.shape[1] != system.n_sites:
        raise LatthermError(f"{source} was made for {have[0]} {have[1]}, T {have[2]}, mu {have[3]}; this run needs "
                            f"{want[0]} {want[1]}, T {want[2]}, mu {want[3]}")
    if not bool(np.isin(data.spins, (-1, 1)).all()):
        raise LatthermError(f"{source} holds values other than spins -1/+1")
    return data
