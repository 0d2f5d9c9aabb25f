"""Brute-force enumeration of all 2^N configurations of any System: the cross-check for every other method.

Works for any System through its public interface only (log_f, energy, observable), so it is also the exact ground
truth for the 16-site CuAu cell. Configurations are generated in chunks of integer codes, so memory stays small;
log Z is accumulated with a running log-sum-exp and the moments of E are taken about a reference energy, both in
float64, so neither overflow nor cancellation limits the accuracy.
"""

from __future__ import annotations

import math

import torch

from ..errors import LatthermError
from ..systems.base import System, check_condition
from ._threads import single_threaded
from .result import ExactResult

MAX_ENUMERATION_SITES = 24


def _configurations(start: int, stop: int, n: int) -> torch.Tensor:
    """Spins (stop-start, n) in float64 for integer codes start..stop-1 (bit i of the code <-> site i)."""
    codes = torch.arange(start, stop, dtype=torch.int64)
    bits = (codes[:, None] >> torch.arange(n, dtype=torch.int64)) & 1
    return (2 * bits - 1).to(torch.float64)


def enumerate_exact(system: System, T: float, mu: float, chunk: int = 1 << 17) -> ExactResult:
    """Exact log Z, <E>/N, <observable>, C/N of ``system`` at (T, mu) by summing over all 2^N configurations."""
    check_condition(T, mu)
    n = int(system.n_sites)
    if n > MAX_ENUMERATION_SITES:
        raise LatthermError(f"enumeration needs N <= {MAX_ENUMERATION_SITES} sites (2^N states), "
                            f"got N={n} for {system!r}")
    T, mu = float(T), float(mu)
    beta = 1.0 / (system.k_B * T)
    top = -math.inf        # running max of log f
    w0 = 0.0               # sum exp(log f - top)
    w1 = w2 = wo = 0.0     # same, weighted by (E - e_ref), (E - e_ref)^2, observable
    e_ref = None
    plain_log_f = type(system).log_f is System.log_f
    with torch.no_grad(), single_threaded():
        for start in range(0, 1 << n, chunk):
            s = _configurations(start, min(start + chunk, 1 << n), n)
            energy = system.energy(s).to(torch.float64)
            if plain_log_f:   # the base-class definition: reuse E instead of evaluating it twice
                log_f = -(energy - mu * s.sum(-1)) * beta
            else:
                log_f = system.log_f(s, T, mu).to(torch.float64)
            obs = system.observable(s).to(torch.float64)
            if e_ref is None:
                e_ref = float(energy[log_f.argmax()])
            m = float(log_f.max())
            if m > top:
                scale = math.exp(top - m) if math.isfinite(top) else 0.0
                w0, w1, w2, wo = w0 * scale, w1 * scale, w2 * scale, wo * scale
                top = m
            w = torch.exp(log_f - top)
            de = energy - e_ref
            w0 += float(w.sum())
            w1 += float((w * de).sum())
            w2 += float((w * de * de).sum())
            wo += float((w * obs).sum())
    mean_de = w1 / w0
    var_e = max(w2 / w0 - mean_de * mean_de, 0.0)
    return ExactResult.from_log_z("enumeration", T, mu, n, system.k_B, top + math.log(w0),
                                  mean_energy_per_site=(e_ref + mean_de) / n, mean_observable=wo / w0,
                                  heat_capacity_per_site=beta * beta * var_e / n)
