"""Free energy from Monte Carlo by thermodynamic integration over the inverse temperature, at fixed mu.

Monte Carlo gives averages, not the normalisation Z; but with log f = -beta (E - mu sum_i s_i) = -beta H,
d log Z / d beta = -<H>_beta at fixed mu (mu in energy units), and at beta = 0 every one of the 2^N
configurations has weight 1. So

    -log Z(beta, mu) = -N log 2 + int_0^beta <H>_beta' d beta',

with <H> (semi-grand energy per lattice, the system's energy unit) measured by Markov chains at the nodes
beta_k = k h, k = 0 .. K, of a uniform grid and integrated by the composite Simpson rule (K a multiple of 4).

Errors, both in units of kT per lattice, like -log Z:
- statistical: the nodes are independent chains, so var = sum_k w_k^2 se_k^2 with Simpson weights w_k and se_k from
  :func:`.statistics.estimate` (tau_int, never below the spread of the chain means);
- quadrature: Simpson on the halved grid (every other node, K / 2 intervals) from the same measurements; its error
  is O(h^4), so the fine rule's error is about |S_h - S_2h| / 15 (Richardson).
``error`` combines the two in quadrature.

All nodes run as one batch of chains (one (T, mu) per chain), so a node costs no more per sweep than a chain does.
At beta = 0 the spins are independent and uniform: <H> = 0 exactly for the Ising model (every term holds a spin);
any other system's beta = 0 node is an average over exact uniform draws.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..errors import LatthermError
from ..systems.base import System, check_condition
from .cluster import cluster_mc
from .metropolis import check_count, metropolis
from .statistics import estimate

__all__ = ["TI_METHODS", "ThermodynamicIntegration", "simpson_integral", "simpson_weights",
           "thermodynamic_integration"]

#: the chains thermodynamic_integration can run at each node
TI_METHODS = ("swendsen-wang", "wolff", "metropolis")


def simpson_weights(n_intervals: int, h: float) -> torch.Tensor:
    """(n_intervals + 1,) composite Simpson weights h/3 (1, 4, 2, 4, ..., 4, 1) on a uniform grid of spacing h."""
    if n_intervals < 2 or n_intervals % 2:
        raise LatthermError(f"Simpson's rule needs an even number of intervals >= 2, got {n_intervals}")
    w = torch.full((n_intervals + 1,), 2.0, dtype=torch.float64)
    w[1::2] = 4.0
    w[0] = w[-1] = 1.0
    return w * (h / 3.0)


def simpson_integral(beta_end: float, values, stderr=None) -> tuple[float, float, float]:
    """(fine, coarse, statistical error) of int_0^beta_end of ``values`` sampled at K + 1 uniform nodes (K a
    multiple of 4): composite Simpson on all nodes, on every other node, and sqrt(sum w_k^2 se_k^2) of the fine
    rule for independent node errors ``stderr`` (0 when None)."""
    v = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
    K = v.numel() - 1
    if K < 4 or K % 4:
        raise LatthermError(f"the halved-grid check needs a multiple of 4 intervals, got {K}")
    h = float(beta_end) / K
    w_fine = simpson_weights(K, h)
    w_coarse = torch.zeros_like(w_fine)
    w_coarse[::2] = simpson_weights(K // 2, 2 * h)
    se = torch.zeros_like(v) if stderr is None else torch.as_tensor(stderr, dtype=torch.float64).reshape(-1)
    return float((w_fine * v).sum()), float((w_coarse * v).sum()), math.sqrt(float((w_fine ** 2 * se ** 2).sum()))


@dataclass
class ThermodynamicIntegration:
    """-log Z at (T, mu) by integration over beta, with the measured integrand and both error parts."""

    T: float
    mu: float
    n_sites: int
    method: str
    beta: torch.Tensor  # (K + 1,) nodes 0 .. 1 / (k_B T)
    mean_energy: torch.Tensor  # (K + 1,) <E - mu sum s> per lattice at each node
    stderr: torch.Tensor  # (K + 1,) its standard error
    tau_int: torch.Tensor  # (K + 1,) in sweeps (0.5 for the exact or i.i.d. beta = 0 node)
    neg_log_Z: float  # fine-grid Simpson estimate, kT units per lattice
    neg_log_Z_coarse: float  # the same measurements on the halved grid
    statistical_error: float
    quadrature_error: float  # |fine - coarse| / 15
    chains: int  # per node
    sweeps: int  # recorded, per chain
    equilibration: int
    seconds: float  # wall clock of the whole integration

    @property
    def error(self) -> float:
        """Statistical and quadrature errors in quadrature."""
        return math.hypot(self.statistical_error, self.quadrature_error)

    @property
    def log_Z(self) -> float:
        return -self.neg_log_Z

    def to_dict(self) -> dict:
        return {"T": self.T, "mu": self.mu, "n_sites": self.n_sites, "method": self.method,
                "intervals": int(self.beta.numel() - 1), "chains": self.chains, "sweeps": self.sweeps,
                "equilibration": self.equilibration, "neg_log_Z": self.neg_log_Z,
                "neg_log_Z_coarse": self.neg_log_Z_coarse, "statistical_error": self.statistical_error,
                "quadrature_error": self.quadrature_error, "error": self.error, "seconds": self.seconds,
                "beta": self.beta.tolist(), "mean_energy": self.mean_energy.tolist(),
                "stderr": self.stderr.tolist(), "tau_int": self.tau_int.tolist()}


def _uniform_node(system: System, mu: float, n: int, generator) -> tuple[float, float]:
    """(<H>, se) per lattice at beta = 0: 0 exactly for Ising, else the mean over n uniform draws."""
    if system.square_ising_coupling is not None:
        return 0.0, 0.0
    s = (2 * torch.randint(0, 2, (n, system.n_sites), generator=generator) - 1).to(torch.float64)
    h = system.energy(s).to(torch.float64) - mu * s.sum(1)
    return float(h.mean()), float(h.std() / math.sqrt(n)) if n > 1 else float("nan")


def thermodynamic_integration(system: System, T: float, mu: float = 0.0, *, intervals: int = 32,
                              chains: int = 8, sweeps: int = 1000, equilibration: int | None = None,
                              method: str = "swendsen-wang", generator: torch.Generator | None = None,
                              device="cpu") -> ThermodynamicIntegration:
    """-log Z(T, mu) of ``system`` by Simpson integration of <E - mu sum s> over beta in [0, 1 / k_B T].

    ``intervals`` (a multiple of 4, so the halved grid is a Simpson grid too) uniform beta intervals; at each of
    the ``intervals`` nodes beta > 0, ``chains`` chains of ``method`` ("swendsen-wang" or "wolff" for the
    square-lattice Ising model, "metropolis" for any system) run ``equilibration`` (default sweeps // 10)
    discarded and ``sweeps`` recorded sweeps from uniformly random spins, all nodes in one batch."""
    if not isinstance(system, System):
        raise LatthermError(f"thermodynamic integration needs a System, got {type(system).__name__}")
    if method not in TI_METHODS:
        raise LatthermError(f"unknown Monte Carlo method {method!r} for thermodynamic integration "
                            f"(choose from: {', '.join(TI_METHODS)})")
    intervals = check_count(intervals, "intervals", 4)
    if intervals % 4:
        raise LatthermError(f"intervals must be a multiple of 4 (the halved grid is a Simpson grid), "
                            f"got {intervals}")
    chains = check_count(chains, "chains", 1)
    sweeps = check_count(sweeps, "sweeps", 1)
    equilibration = sweeps // 10 if equilibration is None else check_count(equilibration, "equilibration", 0)
    check_condition(T, mu)
    T, mu = float(T), float(mu)
    system.check(T, mu)
    t0 = time.perf_counter()
    N = system.n_sites
    beta_end = 1.0 / (system.k_B * T)
    h = beta_end / intervals
    beta = torch.arange(intervals + 1, dtype=torch.float64) * h
    beta[-1] = beta_end
    T_chain = (1.0 / (system.k_B * beta[1:])).repeat_interleave(chains)  # node k's chains are one block of rows
    B = T_chain.numel()
    if method == "metropolis":
        res = metropolis(system, T_chain, mu, B, sweeps, equilibration, generator=generator, device=device)
    else:
        res = cluster_mc(system, T_chain, mu, B, sweeps, equilibration, algorithm=method, generator=generator,
                         device=device)
    m = 2.0 * system.composition_of_observable(res.observable.cpu()) - 1.0
    H = N * (res.energy.cpu() - mu * m)  # (B, sweeps) semi-grand energy per lattice
    mean = torch.empty(intervals + 1, dtype=torch.float64)
    se, tau = torch.empty_like(mean), torch.empty_like(mean)
    mean[0], se[0] = _uniform_node(system, mu, chains * sweeps, generator)
    tau[0] = 0.5
    for k in range(intervals):
        mean[k + 1], se[k + 1], tau[k + 1] = estimate(H[k * chains:(k + 1) * chains])
    fine, coarse, stat = simpson_integral(beta_end, mean, se)
    ln2N = N * math.log(2.0)
    fine, coarse = fine - ln2N, coarse - ln2N
    return ThermodynamicIntegration(T=T, mu=mu, n_sites=N, method=method, beta=beta, mean_energy=mean, stderr=se,
                                    tau_int=tau, neg_log_Z=fine, neg_log_Z_coarse=coarse, statistical_error=stat,
                                    quadrature_error=abs(fine - coarse) / 15.0, chains=chains, sweeps=sweeps,
                                    equilibration=equilibration, seconds=time.perf_counter() - t0)
