"""Autocorrelation statistics of Markov-chain time series.

:func:`integrated_autocorrelation_time` uses Sokal's automatic window (smallest W with W >= c * tau(W), c = 5) on
the chain-averaged autocorrelation function; :func:`estimate` gives the pooled mean and the error
sigma * sqrt(2 tau / n_total), never below the spread of the chain means (which exposes unequilibrated chains).
"""

from __future__ import annotations

import math

import torch

__all__ = ["integrated_autocorrelation_time", "estimate"]


def integrated_autocorrelation_time(x, c: float = 5.0) -> float:
    """Integrated autocorrelation time tau = 1/2 + sum_{t=1}^{W} rho(t) of series x, (n,) or (chains, n), in units
    of the series spacing. rho is the autocorrelation averaged over chains (each chain centred on its own mean);
    W is Sokal's automatic window, the smallest W >= c * tau(W). Returns 0.5 for constant or length-<4 series."""
    a = torch.as_tensor(x, dtype=torch.float64).detach().cpu()
    if a.ndim == 1:
        a = a[None]
    n = a.shape[1]
    if n < 4:
        return 0.5
    a = a - a.mean(1, keepdim=True)
    m = 1 << (2 * n - 1).bit_length()
    f = torch.fft.rfft(a, n=m)
    acf = torch.fft.irfft(f * f.conj(), n=m)[:, :n].sum(0)
    acf = acf / torch.arange(n, 0, -1, dtype=torch.float64)  # unbiased lag normalisation
    if not float(acf[0]) > 0:
        return 0.5
    rho = (acf / acf[0]).numpy()
    tau = 0.5
    for W in range(1, n):
        tau += rho[W]
        if W >= c * tau:
            break
    return float(max(tau, 0.5))


def estimate(x) -> tuple[float, float, float]:
    """(mean, error, tau) of a series (n,) or of independent chains (chains, n): pooled mean and
    sigma * sqrt(2 tau / (chains * n)) with tau from :func:`integrated_autocorrelation_time`."""
    a = torch.as_tensor(x, dtype=torch.float64).detach().cpu()
    if a.ndim == 1:
        a = a[None]
    total = a.numel()
    mean = float(a.mean())
    var = float(((a - a.mean(1, keepdim=True)) ** 2).sum() / max(total - a.shape[0], 1))
    tau = integrated_autocorrelation_time(a)
    err = math.sqrt(var * 2.0 * tau / total)
    if a.shape[0] > 1:  # the between-chain spread (zero in equilibrium up to noise) shows non-equilibrated chains
        chain_err = float(a.mean(1).std()) / math.sqrt(a.shape[0])
        err = max(err, chain_err)
    return mean, err, tau
