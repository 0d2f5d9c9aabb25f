"""Composition free energy F(n) by Wang-Landau over the number n of +1 spins (Au atoms).

At fixed T and mu = 0, many walkers per temperature share one bias (multiple-walker WL). The bias ln W(n)
estimates ln Z(n) = ln sum_{s: n(s)=n} exp(-E(s)/k_B T); a flip n -> n' is accepted with
min(1, exp(-Delta E/k_B T + ln W(n) - ln W(n'))), and every visit adds ln f to ln W of the current bin. When the
histogram of a temperature is flat (min >= ``flatness`` * mean) its ln f is halved and the histogram reset, until
ln f < ``ln_f_final``. This is the metadynamics of Appendix K with a bias per composition bin, but the final
profile does not rely on WL convergence: a production run with the bias FROZEN samples the histogram H(n) of the
flat-histogram (multicanonical) ensemble, and ln Z(n) = ln W(n) + ln H(n) exactly in expectation. Error bars
come from splitting the walkers into independent blocks; F(n) = -k_B T ln Z(n) (up to a constant). The walkers
move by the same single-site step as :func:`.metropolis.metropolis` (:class:`.metropolis.SpinChains`); what to do
with the profile (reweighting, hull, two-phase regions) is :mod:`lattherm.engine.analysis.composition`.
"""

from __future__ import annotations

import numpy as np
import torch

from ..analysis.composition import CompositionProfile
from ..errors import LatthermError
from ..systems.base import System, check_condition
from .metropolis import LogRatio, SpinChains, check_count, initial_spins

__all__ = ["composition_free_energy", "biased_ratio", "profile_from_histograms"]


def biased_ratio(beta: torch.Tensor, W: torch.Tensor, base: torch.Tensor, n: torch.Tensor) -> LogRatio:
    """The Wang-Landau target exp(-E / k_B T - ln W(n)): the log ratio -Delta E / k_B T + ln W(n) - ln W(n') of
    flipping s_i, n' = n - s_i (a -1 -> +1 flip adds one +1 spin). W is flat, chain b's bias row starts at
    base[b]; ``n`` (B,) is read at call time, so the caller may update it in place."""

    def log_ratio(si, dE):
        return -beta * dE + W[base + n] - W[base + n - si.to(torch.long)]

    return log_ratio


def _biased_sweep(chains: SpinChains, n: torch.Tensor, beta: torch.Tensor, W: torch.Tensor, base: torch.Tensor,
                  hist: torch.Tensor, ln_f: torch.Tensor | None, generator) -> None:
    """One sweep under the composition bias: acceptance uses W[base + n] (flat views), every visit adds one to
    hist[base + n] and, when ``ln_f`` (B,) is given, ln_f to W[base + n]. ``n`` (B,) is updated in place."""
    ones = torch.ones(chains.n_chains, dtype=torch.float64, device=chains.device)

    def visit(acc, si, dE):
        n.sub_(torch.where(acc, si.to(torch.long), torch.zeros_like(n)))
        hist.index_add_(0, base + n, ones)
        if ln_f is not None:
            W.index_add_(0, base + n, ln_f)

    chains.sweep(biased_ratio(beta, W, base, n), generator, visit)


def composition_free_energy(system: System, T, n_walkers: int = 64, ln_f_final: float = 1e-3,
                            flatness: float = 0.8, max_sweeps: int = 20000, production_sweeps: int = 200,
                            n_blocks: int = 8, generator: torch.Generator | None = None,
                            device="cpu", on_sweep=None) -> list[CompositionProfile]:
    """Wang-Landau free energy F(n) over the number of +1 spins (Au atoms) at each temperature in ``T``.

    ``n_walkers`` walkers per temperature share one bias ln W(n); WL stages halve ln f (from 1) whenever the
    temperature's histogram is flat (min >= flatness * mean) until ln f < ln_f_final (or max_sweeps). Then
    ``production_sweeps`` sweeps with the bias frozen give ln Z(n) = ln W(n) + ln H(n); the walkers are split into
    ``n_blocks`` blocks for the error bar. ``on_sweep(done, total)`` is called after every sweep, total =
    max_sweeps + production_sweeps (WL stages that converge early jump to max_sweeps): progress with an ETA for a
    run that takes minutes on a large cell, and the place to raise a cancel. Returns one
    :class:`CompositionProfile` per temperature."""
    if not isinstance(system, System):
        raise LatthermError(f"composition_free_energy needs a System, got {type(system).__name__}")
    temps = [float(t) for t in np.atleast_1d(np.asarray(T, dtype=np.float64))]
    check_condition(torch.tensor(temps) if temps else 1.0, 0.0)
    if not temps:
        raise LatthermError("composition_free_energy needs at least one temperature")
    n_walkers = check_count(n_walkers, "n_walkers", 2)
    n_blocks = check_count(n_blocks, "n_blocks", 2)
    if n_walkers % n_blocks:
        raise LatthermError(f"n_walkers ({n_walkers}) must be a multiple of n_blocks ({n_blocks})")
    max_sweeps = check_count(max_sweeps, "max_sweeps", 1)
    production_sweeps = check_count(production_sweeps, "production_sweeps", 1)
    if not (0.0 < flatness < 1.0) or not (ln_f_final > 0):
        raise LatthermError("need 0 < flatness < 1 and ln_f_final > 0")
    device = torch.device(device)
    N = system.n_sites
    nT = len(temps)
    B = nT * n_walkers
    tidx = torch.arange(nT, device=device).repeat_interleave(n_walkers)
    beta = 1.0 / (system.k_B * torch.tensor(temps, dtype=torch.float64, device=device))[tidx]
    with torch.no_grad():
        chains = SpinChains(system, initial_spins(system, B, None, generator, device), device)
        rows = chains.rows
        n = (chains.spins > 0).sum(1).to(torch.long)
        lnW = torch.zeros(nT, N + 1, dtype=torch.float64, device=device)
        H = torch.zeros(nT, N + 1, dtype=torch.float64, device=device)
        ln_f = torch.ones(nT, dtype=torch.float64, device=device)
        base_T = tidx * (N + 1)  # walkers of one temperature share its bias and histogram row

        done = 0
        while done < max_sweeps and bool((ln_f >= ln_f_final).any()):
            _biased_sweep(chains, n, beta, lnW.view(-1), base_T, H.view(-1), ln_f[tidx], generator)
            done += 1
            flat = (H.min(1).values >= flatness * H.mean(1)) & (ln_f >= ln_f_final)
            if bool(flat.any()):
                ln_f = torch.where(flat, ln_f / 2, ln_f)
                H[flat] = 0
            if on_sweep is not None:
                on_sweep(done, max_sweeps + production_sweeps)
        lnW -= lnW.max(1, keepdim=True).values
        # production with the bias frozen: per-walker visit histograms, summed into blocks of walkers
        W_walker = lnW[tidx].contiguous().view(-1)
        H_walker = torch.zeros(B * (N + 1), dtype=torch.float64, device=device)
        for k in range(production_sweeps):
            _biased_sweep(chains, n, beta, W_walker, rows * (N + 1), H_walker, None, generator)
            if on_sweep is not None:
                on_sweep(max_sweeps + k + 1, max_sweeps + production_sweeps)
        per = n_walkers // n_blocks
        block = tidx * n_blocks + (rows % n_walkers) // per
        Hb = torch.zeros(nT * n_blocks, N + 1, dtype=torch.float64, device=device)
        Hb.index_add_(0, block, H_walker.view(B, N + 1))
    Hb = Hb.cpu().reshape(nT, n_blocks, N + 1).numpy()
    lnW = lnW.cpu().numpy()
    return [profile_from_histograms(temp, N, system.k_B, lnW[t], Hb[t], float(ln_f[t]), done)
            for t, temp in enumerate(temps)]


def profile_from_histograms(T: float, n_sites: int, k_B: float, lnW: np.ndarray, H_blocks: np.ndarray,
                            ln_f: float, sweeps: int) -> CompositionProfile:
    """F(n) = -k_B T [ln W(n) + ln H(n)] from the frozen-bias production histograms ``H_blocks`` (n_blocks, N+1) of
    independent walker blocks, and its error bar from the spread of the blocks' own estimates.

    A block that never visited a bin (a large cell at low T: 129 bins, a few walkers per block) has no estimate
    there; the error of each bin comes from the blocks that visited it (infinite only where fewer than two did),
    each block aligned to the pooled profile on the bins every block visited, so one missing edge bin does not make
    every error bar infinite (which used to hide every two-phase region of a 4x4x8 cell)."""
    kT = k_B * T
    with np.errstate(divide="ignore"):
        F = -kT * (lnW + np.log(H_blocks.sum(0)))
        Fb = -kT * (lnW[None] + np.log(H_blocks))
    F = F - F[np.isfinite(F)].min()
    seen = np.isfinite(Fb)
    common = seen.all(0)
    if common.any():
        with np.errstate(invalid="ignore"):  # bins no walker saw are inf in both (excluded by ``common``)
            Fb = Fb - np.mean(Fb - F[None], axis=1, where=common[None], keepdims=True)
    count = seen.sum(0)
    err = np.full(n_sites + 1, np.inf)
    ok = count >= 2
    if ok.any():
        mean = np.where(seen, Fb, 0.0).sum(0) / np.maximum(count, 1)
        dev = np.where(seen, Fb - mean[None], 0.0)
        var = (dev ** 2).sum(0)[ok] / (count[ok] - 1)
        err[ok] = np.sqrt(var / count[ok])
    return CompositionProfile(T=T, n_sites=n_sites, k_B=k_B, F=F, F_error=err, ln_f_final=ln_f, sweeps=sweeps,
                              F_blocks=Fb)
