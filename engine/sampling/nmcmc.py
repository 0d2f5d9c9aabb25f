"""Neural MCMC: exact Markov chains with an autoregressive model as the proposal (Nicoli et al.; Bialas et al.).

Whole-lattice mode (the lattice is the model's cell): independence Metropolis-Hastings. Each step every chain draws
x' ~ q(. | T, mu) with its exact path log-probability and accepts with min(1, w(x') / w(x)), w = f / q,
log f = -(E - mu sum s) / k_B T. An any-order model's log q is that of the path, so the chain lives on (x, sigma)
with target f(x) u(sigma) and proposal u(sigma) q_sigma(x): exact for any model, untrained included (a Z2-symmetrised
model proposes from its mixture, scored along the same order, :func:`..models.base.z2_mixture`).

Block mode (a lattice larger than the model, or a block smaller than it): each step is a sweep of block re-paints
(:mod:`.block_nmcmc`), ``proposals_per_step`` per chain, each exact on its own.

Either mode can interleave ``sweeps_between`` single-site Metropolis sweeps per step (the montecarlo package's
:class:`~..montecarlo.metropolis.SpinChains`); in whole-lattice mode the current state's order sigma is kept, so the
weight after local moves is re-scored as f(x) / q_sigma(x) (local moves at fixed sigma leave f(x) u(sigma)
invariant). The chains record, once per step, the semi-grand energy per site (E - mu sum s) / N, the magnetisation
sum s / N and the system's observable (magnetisation, or x_Au for an alloy).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..errors import LatthermError
from ..lattices import Lattice
from ..models.base import AutoregressiveModel
from ..montecarlo.flips import flip_tables
from ..montecarlo.metropolis import SpinChains, check_count, initial_spins, semi_grand_ratio
from ..montecarlo.statistics import estimate
from ..progress import check_interrupt
from ..systems.base import System, check_condition
from .block_nmcmc import BlockProposer, block_move, parse_block

INITS = ("model", "random")


@dataclass
class NMCMCResult:
    """Series (n_chains, steps) recorded once per step after equilibration, and what the chains did."""

    method: str  # "nmcmc" or "block-nmcmc"
    energy: torch.Tensor  # semi-grand energy per site (E - mu sum s) / N
    magnetisation: torch.Tensor  # sum s / N
    observable: torch.Tensor  # the system's observable (magnetisation or x_Au)
    final: torch.Tensor  # (n_chains, N) int8
    acceptance: torch.Tensor  # (n_chains,) accepted / proposed model moves over the recorded steps
    T: float
    mu: float
    n_sites: int
    steps: int
    equilibration: int
    proposals_per_step: int
    sweeps_between: int
    seconds: float  # the recorded steps only
    block: tuple | None = None
    positions: str | None = None

    @property
    def n_chains(self) -> int:
        return int(self.energy.shape[0])

    def estimate(self, which: str = "energy") -> tuple[float, float, float]:
        """(mean, stderr, tau_int in steps) of a series."""
        return estimate(getattr(self, which))


class NeuralMCMC:
    """``n_chains`` chains of ``system`` at one (T, mu) driven by ``model`` (a model of the ``window`` cell).

    ``block``: block size (e.g. "4x4"); default the whole window. Whole-lattice independence MH when the block is
    the whole lattice, block NMCMC otherwise. ``positions``: "parallel" (a randomly shifted sub-lattice of
    non-interacting blocks proposed at once), "random" (one block at a uniform corner at a time) or "tiled" (a
    shifted tiling per sweep, block after block). ``init``: "model" (a model draw; a paint of the lattice in block
    mode), "random", or spins."""

    def __init__(self, model: AutoregressiveModel, system: System, T: float, mu: float, n_chains: int, *,
                 window: Lattice | None = None, block=None, positions: str = "parallel", sweeps_between: int = 0,
                 init="model", generator: torch.Generator | None = None):
        check_condition(T, mu)
        system.check(T, mu)
        self.n_chains = check_count(n_chains, "chains", 1)
        self.sweeps_between = check_count(sweeps_between, "sweeps_between", 0)
        self.model, self.system, self.generator = model, system, generator
        self.window = window if window is not None else (model.train_lattice or system.lattice)
        if self.window.n_sites != model.n_sites and not model.any_size:
            raise LatthermError(f"a {model.n_sites}-site model has no {self.window.label} window")
        lat = system.lattice
        size = tuple(lat.size) if block is None and tuple(self.window.size) == tuple(lat.size) else \
            parse_block(self.window.label if block is None else block, lat.dim)
        self.whole = size == tuple(lat.size) and tuple(self.window.size) == tuple(lat.size)
        if self.whole and model.n_sites != system.n_sites:
            raise LatthermError(f"a {model.n_sites}-site model cannot propose {lat.label} lattices")
        self.proposer = None
        if not self.whole:
            partners = flip_tables(system).partners() if positions == "parallel" else None
            self.proposer = BlockProposer(model, self.window, lat, size, positions, partners=partners)
        self.block, self.positions = size, (None if self.whole else positions)
        self.T, self.mu = float(T), float(mu)
        C = self.n_chains
        self.Tt = torch.full((C,), self.T, dtype=torch.float64)
        self.mut = torch.full((C,), self.mu, dtype=torch.float64)
        self.beta = 1.0 / (system.k_B * self.Tt)
        self.ranks = None  # whole mode: the order of each chain's current state
        self.log_w = torch.full((C,), -math.inf, dtype=torch.float64)
        self.model.eval()
        self.chains = SpinChains(system, self._initial(init))
        if self.whole and self.ranks is None:  # a given start: its order drawn uniformly, independently of it
            self.ranks = model.default_ranks(C, model.device, generator).cpu()
            self._rescore()
        self.E = self.chains.energy()
        self.proposed = 0
        self.accepted = torch.zeros(C, dtype=torch.float64)

    @property
    def method(self) -> str:
        return "nmcmc" if self.whole else "block-nmcmc"

    @property
    def proposals_per_step(self) -> int:
        return 1 if self.whole else self.proposer.proposals_per_sweep

    @torch.no_grad()
    def _initial(self, init) -> torch.Tensor:
        C = self.n_chains
        if isinstance(init, str):
            if init not in INITS:
                raise LatthermError(f"unknown init {init!r} (choose from: {', '.join(INITS)})")
            if init == "random":
                return initial_spins(self.system, C, None, self.generator)
            if self.whole:  # a model draw with its order and weight
                return self._independence_proposal()[0]
            from .painting import paint

            return paint(self.model, self.system, self.T, self.mu, C, generator=self.generator, window=self.window,
                         views=1).spins
        return initial_spins(self.system, C, init, self.generator)

    # ---- moves --------------------------------------------------------------------------------------------------
    def _independence_proposal(self):
        sb = self.model.sample(self.T, self.mu, batch=self.n_chains, generator=self.generator)
        spins = sb.spins.cpu()
        log_w = self.system.log_f(spins, self.T, self.mu) - sb.log_p.cpu().to(torch.float64)
        if self.whole and self.ranks is None:
            self.ranks, self.log_w = sb.ranks.cpu(), log_w
        return spins, log_w, sb.ranks.cpu()

    def _independence_step(self) -> torch.Tensor:
        spins, log_w, ranks = self._independence_proposal()
        logu = torch.rand(self.n_chains, generator=self.generator, dtype=torch.float64).log()
        acc = logu < log_w - self.log_w
        if bool(acc.any()):
            N = self.system.n_sites
            self.chains.s[acc, :N] = spins[acc]
            self.E[acc] = self.system.energy(spins[acc].to(torch.float64))
            self.log_w[acc] = log_w[acc]
            self.ranks[acc] = ranks[acc]
        return acc

    def _block_sweep(self) -> torch.Tensor:
        p, C = self.proposer, self.n_chains
        acc_total = torch.zeros(C, dtype=torch.float64)
        shift = None
        if p.positions == "tiled":
            shift = p._grid[torch.randint(0, self.system.n_sites, (C,), generator=self.generator)]

        for k in range(p.rounds_per_sweep):
            check_interrupt()
            corners = p.corners(C, k, shift, self.generator)
            sites, new, fwd, rev = p.propose(self.chains.spins, self.Tt, self.mut, corners, self.generator)
            acc, dE, _, _ = block_move(self.chains, sites, new, fwd, rev, self.beta, self.mut, self.generator)
            self.E += dE.sum(1)
            acc_total += acc.sum(1)
        return acc_total

    def _local_sweeps(self) -> None:
        if not self.sweeps_between:
            return
        ratio = semi_grand_ratio(self.beta, self.mut)

        def track(n_acc, dE):
            self.E.add_(dE)

        for _ in range(self.sweeps_between):
            check_interrupt()
            self.chains.colour_sweep(ratio, self.generator, track)
        if self.whole:
            self._rescore()

    def _rescore(self) -> None:
        """log w = log f(x) - log q_sigma(x) of the current states along their kept orders."""
        s = self.chains.spins.clone()
        log_q = self.model.log_prob(s.to(self.model.device), self.T, self.mu,
                                    ranks=self.ranks.to(self.model.device)).to(torch.float64).cpu()
        self.log_w = self.system.log_f(s, self.T, self.mu) - log_q

    @torch.no_grad()
    def step(self, count: bool = True) -> None:
        """One step: one independence proposal per chain, or a sweep of block proposals; then the local sweeps."""
        acc = self._independence_step().to(torch.float64) if self.whole else self._block_sweep()
        self._local_sweeps()
        if count:
            self.accepted += acc
            self.proposed += self.proposals_per_step

    def resync(self) -> None:
        """Running energies back to full energies (no rounding drift over long runs)."""
        self.E = self.chains.energy()

    def observe(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(semi-grand energy per site, magnetisation, observable), each float64 (C,)."""
        s = self.chains.spins.to(torch.float64)
        N = self.system.n_sites
        m = s.sum(1) / N
        return self.E / N - self.mu * m, m, self.system.observable(s)

    @property
    def acceptance(self) -> torch.Tensor:
        return self.accepted / max(self.proposed, 1)


def neural_mcmc(model: AutoregressiveModel, system: System, T: float, mu: float, n_chains: int, steps: int,
                equilibration: int = 0, *, on_step=None, **options) -> NMCMCResult:
    """Run :class:`NeuralMCMC` for ``equilibration`` unrecorded then ``steps`` recorded steps; ``on_step(k)`` is
    called after each (k counts both phases; a front end's progress and cancel go there). ``options`` go to
    :class:`NeuralMCMC` (window, block, positions, sweeps_between, init, generator)."""
    steps = check_count(steps, "steps", 1)
    equilibration = check_count(equilibration, "equilibration", 0)
    with torch.no_grad():
        mc = NeuralMCMC(model, system, T, mu, n_chains, **options)
        for k in range(equilibration):
            mc.step(count=False)
            if on_step is not None:
                on_step(k + 1)
        mc.resync()
        C = mc.n_chains
        rec = [torch.empty(C, steps, dtype=torch.float64) for _ in range(3)]
        t0 = time.perf_counter()
        for k in range(steps):
            mc.step()
            if (k + 1) % 64 == 0:
                mc.resync()
            for r, v in zip(rec, mc.observe()):
                r[:, k] = v
            if on_step is not None:
                on_step(equilibration + k + 1)
        seconds = time.perf_counter() - t0
    return NMCMCResult(mc.method, rec[0], rec[1], rec[2], mc.chains.spins.to(torch.int8), mc.acceptance, mc.T, mc.mu,
                       system.n_sites, steps, equilibration, mc.proposals_per_step, mc.sweeps_between, seconds,
                       None if mc.whole else mc.block, mc.positions)


__all__ = ["INITS", "NMCMCResult", "NeuralMCMC", "neural_mcmc"]
