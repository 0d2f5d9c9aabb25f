"""Semi-grand-canonical single-spin-flip Metropolis, batched over independent chains.

Two sweeps of N single-site flips each, both accepting a flip with probability min(1, exp(Delta log f)):

- the *colour sweep* (:meth:`SpinChains.colour_sweep`, what :func:`metropolis` runs): the sites are coloured so that
  no two sites of a colour share an energy term (greedy colouring of the flip tables' partner graph: the
  checkerboard for the square Ising model with even sides, more colours for a cluster expansion's long-range,
  multi-site, self-wrapping clusters); the sites of one colour are independent given the others, so all of them
  are updated at once, colour after colour. Each colour update is a product of commuting single-site Metropolis
  kernels, so f stays invariant; the sweep costs one batched flip-table look-up per colour instead of N.
- the *random-site sweep* (:meth:`SpinChains.sweep`): N sub-steps, each picking ONE uniformly random site per
  chain. Wang-Landau needs it, since its acceptance depends on the chain's total energy (one flip at a time), and it
  is the fallback for a system without a spin polynomial.

:class:`SpinChains` holds the batch; the target enters only as the log acceptance ratio of a proposed flip, so the
Metropolis driver (Delta log f = -(Delta E + 2 mu s_i) / k_B T, one (T, mu) per chain) and Wang-Landau (the same
plus a composition bias) share the flip machinery. The flip's Delta E comes from the flip tables (:mod:`.flips`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import LatthermError
from ..systems.base import System, check_condition
from .flips import flip_tables, pad_spins
from .statistics import estimate, integrated_autocorrelation_time

__all__ = ["SpinChains", "semi_grand_ratio", "MCResult", "metropolis", "initial_spins", "check_count"]

#: log_ratio(s_i, Delta E) -> log acceptance ratio of flipping site i, float64 (B,) for the current spins s_i (B,)
LogRatio = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: after(accepted, s_i, Delta E): bookkeeping after a sub-step (s_i is the spin before the flip)
AfterStep = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], None]
#: after(accepted flips (B,) float64, their summed Delta E (B,) float64): bookkeeping after one colour's update
AfterColour = Callable[[torch.Tensor, torch.Tensor], None]


def colour_classes(partners: list[np.ndarray], n_sites: int) -> list[np.ndarray]:
    """Sites grouped so that no two of a group are partners (greedy colouring in site order; the checkerboard of
    an even square lattice)."""
    colour = np.full(n_sites, -1)
    for i in range(n_sites):
        used = set(colour[partners[i]].tolist())
        c = 0
        while c in used:
            c += 1
        colour[i] = c
    return [np.flatnonzero(colour == c) for c in range(colour.max() + 1)]


def check_count(value, name: str, minimum: int) -> int:
    """``value`` as an int, or a LatthermError if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise LatthermError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def initial_spins(system: System, n_chains: int, init=None, generator: torch.Generator | None = None,
                  device="cpu") -> torch.Tensor:
    """(n_chains, N) float32 starting spins: ``init`` ((n_chains, N) or (N,), -1/+1) or uniformly random."""
    N = system.n_sites
    if init is None:
        return (2 * torch.randint(0, 2, (n_chains, N), generator=generator, device=device) - 1).to(torch.float32)
    s = torch.as_tensor(init).to(device)
    if s.ndim == 1:
        s = s[None].expand(n_chains, -1)
    if s.ndim != 2 or s.shape != (n_chains, N):
        raise LatthermError(f"init must have shape ({n_chains}, {N}) or ({N},), got {tuple(s.shape)}")
    if not bool(((s == 1) | (s == -1)).all()):
        raise LatthermError("init must hold spins -1/+1 only")
    return s.to(torch.float32)


class SpinChains:
    """A batch of B spin configurations of one system, updated by single-site flips (one site per chain per
    sub-step). Spins are kept padded with a constant +1 column, the form the flip tables read."""

    def __init__(self, system: System, spins: torch.Tensor, device="cpu"):
        self.system = system
        self.device = torch.device(device)
        self.tables = flip_tables(system).on(self.device)
        self.s = pad_spins(spins.to(self.device), torch.float32)
        self.rows = torch.arange(self.s.shape[0], device=self.device)

    @property
    def n_chains(self) -> int:
        return int(self.s.shape[0])

    @property
    def spins(self) -> torch.Tensor:
        """(B, N) float32 view of the current spins."""
        return self.s[:, : self.system.n_sites]

    def energy(self) -> torch.Tensor:
        """Full energies E(s), float64 (B,)."""
        return self.system.energy(self.spins.to(torch.float64)).to(self.device)

    def step(self, i: torch.Tensor, logu: torch.Tensor, log_ratio: LogRatio):
        """Propose flipping site i[b] of chain b and accept where log u < log_ratio(s_i, Delta E).
        Returns (accepted (B,) bool, s_i before the flip (B,) float64, Delta E (B,) float64)."""
        si = self.s[self.rows, i].to(torch.float64)
        dE = self.tables.delta(self.s, i)
        acc = logu < log_ratio(si, dE)
        self.s[self.rows, i] = torch.where(acc, -si, si).to(self.s.dtype)
        return acc, si, dE

    @property
    def colours(self) -> list[torch.Tensor] | None:
        """The colour classes of the sites (:func:`colour_classes`), None without a spin polynomial."""
        if not hasattr(self, "_colours"):
            partners = self.tables.partners()
            self._colours = None if partners is None else \
                [torch.as_tensor(c, device=self.device) for c in colour_classes(partners, self.system.n_sites)]
        return self._colours

    def colour_sweep(self, log_ratio: LogRatio, generator: torch.Generator | None = None,
                     after: AfterColour | None = None) -> None:
        """Every site once: the colours in turn, all sites of a colour in every chain at once (module docstring).
        Falls back to :meth:`sweep` (with ``after`` fed per sub-step) for a system without a spin polynomial."""
        if self.colours is None:
            self.sweep(log_ratio, generator, None if after is None else
                       lambda acc, si, dE: after(acc.to(torch.float64), torch.where(acc, dE, torch.zeros_like(dE))))
            return
        B = self.n_chains
        reads = 1 + sum(o.shape[1] * o.shape[2] for o in self.tables.others)  # spins gathered per flip energy
        per = max(1, (1 << 20) // (B * reads))  # sites of a colour per pass: intermediates stay in cache
        for colour in self.colours:
            for k in range(0, colour.numel(), per):
                self._colour_update(colour[k:k + per], log_ratio, generator, after)

    def _colour_update(self, sites, log_ratio, generator, after) -> None:
        """Flip-or-not at once at ``sites`` (M,) of every chain, none sharing an energy term with another."""
        B = self.n_chains
        i = sites[None].expand(B, -1)
        si = self.s.gather(1, i).to(torch.float64)  # (B, M)
        dE = self.tables.delta(self.s, i)
        logu = torch.rand(B, sites.numel(), generator=generator, device=self.device, dtype=torch.float64).log_()
        acc = logu < log_ratio(si.T, dE.T).T  # the ratio broadcasts per chain along its last axis
        self.s.scatter_(1, i, torch.where(acc, -si, si).to(self.s.dtype))
        if after is not None:
            after(acc.sum(1).to(torch.float64), torch.where(acc, dE, torch.zeros_like(dE)).sum(1))

    def sweep(self, log_ratio: LogRatio, generator: torch.Generator | None = None,
              after: AfterStep | None = None) -> None:
        """N sub-steps with uniformly random sites (drawn per chain) and uniforms drawn up front for the sweep."""
        N, B = self.system.n_sites, self.n_chains
        sites = torch.randint(0, N, (N, B), generator=generator, device=self.device)
        logu = torch.rand(N, B, generator=generator, device=self.device, dtype=torch.float64).log_()
        for k in range(N):
            acc, si, dE = self.step(sites[k], logu[k], log_ratio)
            if after is not None:
                after(acc, si, dE)


def semi_grand_ratio(beta: torch.Tensor, mu: torch.Tensor) -> LogRatio:
    """The semi-grand-canonical target: Delta log f = -(Delta E + 2 mu s_i) / k_B T of flipping s_i (the spin sum
    changes by -2 s_i), for per-chain beta = 1 / k_B T and mu."""

    def log_ratio(si, dE):
        return -beta * (dE + 2.0 * mu * si)

    return log_ratio


@dataclass
class MCResult:
    """Output of :func:`metropolis`. Series are (n_chains, n_records), recorded every ``record_every`` sweeps after
    equilibration; ``energy`` is E/N (system unit), ``observable`` the system's observable (x_Au, magnetisation)."""

    energy: torch.Tensor
    observable: torch.Tensor
    final: torch.Tensor  # (n_chains, N) int8 spins
    acceptance: torch.Tensor  # (n_chains,) over the recorded part
    T: torch.Tensor  # (n_chains,) float64
    mu: torch.Tensor
    n_sites: int
    sweeps: int
    equilibration: int
    record_every: int
    seconds: float
    attempted: int  # attempted flips in total (all chains, equilibration included)
    observable_name: str = "observable"

    @property
    def n_chains(self) -> int:
        return int(self.energy.shape[0])

    @property
    def updates_per_second(self) -> float:
        return self.attempted / self.seconds if self.seconds > 0 else float("nan")

    def series(self, which: str) -> torch.Tensor:
        if which in ("energy", "e", "E"):
            return self.energy
        if which in ("observable", "obs", "x", self.observable_name):
            return self.observable
        raise LatthermError(f"unknown series {which!r} (choose 'energy' or 'observable')")

    def mean(self, which: str = "energy", chains=None) -> float:
        x = self.series(which)
        return float((x if chains is None else x[chains]).mean())

    def tau(self, which: str = "energy", chains=None) -> float:
        """Integrated autocorrelation time in sweeps."""
        x = self.series(which)
        return integrated_autocorrelation_time(x if chains is None else x[chains]) * self.record_every

    def error(self, which: str = "energy", chains=None) -> float:
        x = self.series(which)
        return estimate(x if chains is None else x[chains])[1]

    def conditions(self) -> list[tuple[float, float]]:
        """The distinct (T, mu) of the chains, in order of first appearance."""
        pairs = torch.stack([self.T, self.mu], 1).cpu().numpy()
        seen = []
        for t, m in pairs:
            if (float(t), float(m)) not in seen:
                seen.append((float(t), float(m)))
        return seen

    def summary(self) -> list[dict]:
        """Per distinct (T, mu): mean, error and tau (sweeps) of E/N and of the observable, acceptance, chains."""
        out = []
        T, mu = self.T.cpu(), self.mu.cpu()
        for t, m in self.conditions():
            sel = torch.nonzero((T == t) & (mu == m)).reshape(-1)
            row = {"T": t, "mu": m, "n_chains": int(len(sel)), "acceptance": float(self.acceptance.cpu()[sel].mean())}
            for key, x in (("energy", self.energy), ("observable", self.observable)):
                mean, err, tau = estimate(x.cpu()[sel])
                row[key] = mean
                row[key + "_error"] = err
                row[key + "_tau"] = tau * self.record_every
            out.append(row)
        return out


def _per_chain(value, n: int, name: str, device) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64)
    if t.ndim == 0:
        t = t.expand(n)
    t = t.reshape(-1)
    if t.numel() != n:
        raise LatthermError(f"{name} must be a number or hold one value per chain ({n}), got {t.numel()} values")
    return t.to(device).contiguous()


def metropolis(system: System, T, mu, n_chains: int, sweeps: int, equilibration: int = 0, init=None,
               generator: torch.Generator | None = None, device="cpu", record_every: int = 1) -> MCResult:
    """Semi-grand-canonical single-spin-flip Metropolis, batched over ``n_chains`` independent chains.

    T, mu: scalars or (n_chains,) tensors (one condition per chain). ``sweeps`` recorded sweeps follow
    ``equilibration`` discarded ones; a sweep updates every site once, colour by colour (module docstring). Records
    E/N and the observable every ``record_every`` sweeps. init: (n_chains, N) or (N,) spins, default uniformly
    random. generator: a torch.Generator on ``device`` for reproducibility."""
    if not isinstance(system, System):
        raise LatthermError(f"metropolis needs a System, got {type(system).__name__}")
    n_chains = check_count(n_chains, "n_chains", 1)
    sweeps = check_count(sweeps, "sweeps", 1)
    equilibration = check_count(equilibration, "equilibration", 0)
    record_every = check_count(record_every, "record_every", 1)
    device = torch.device(device)
    check_condition(T, mu)
    Tt = _per_chain(T, n_chains, "T", device)
    mut = _per_chain(mu, n_chains, "mu", device)
    N = system.n_sites
    beta = 1.0 / (system.k_B * Tt)
    with torch.no_grad():
        chains = SpinChains(system, initial_spins(system, n_chains, init, generator, device), device)
        t0 = time.perf_counter()  # the flip tables (built once per system) stay out of the throughput
        E = chains.energy()  # running energy, resynchronised now and then from full energies
        accepted = torch.zeros(n_chains, dtype=torch.float64, device=device)
        n_rec = sweeps // record_every
        e_rec = torch.empty(n_chains, n_rec, dtype=torch.float64, device=device)
        o_rec = torch.empty_like(e_rec)
        log_ratio = semi_grand_ratio(beta, mut)

        def track(n_acc, dE):
            E.add_(dE)

        def track_and_count(n_acc, dE):
            E.add_(dE)
            accepted.add_(n_acc)

        for sweep in range(equilibration + sweeps):
            chains.colour_sweep(log_ratio, generator, track_and_count if sweep >= equilibration else track)
            if sweep + 1 == equilibration:
                E = chains.energy()  # resynchronise the running energy (no drift enters the record)
            r = sweep - equilibration + 1
            if r > 0 and r % record_every == 0 and r // record_every <= n_rec:
                if (r // record_every) % 64 == 0:
                    E = chains.energy()
                j = r // record_every - 1
                e_rec[:, j] = E / N
                o_rec[:, j] = system.observable(chains.spins.to(torch.float64)).to(device)
    seconds = time.perf_counter() - t0
    return MCResult(energy=e_rec, observable=o_rec, final=chains.spins.to(torch.int8),
                    acceptance=accepted / (sweeps * N), T=Tt, mu=mut, n_sites=N, sweeps=sweeps,
                    equilibration=equilibration, record_every=record_every, seconds=seconds,
                    attempted=(equilibration + sweeps) * N * n_chains,
                    observable_name=getattr(system, "observable_name", "observable"))
