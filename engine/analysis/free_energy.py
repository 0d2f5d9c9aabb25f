"""Free-energy estimates of a trained model against the exact reference (SCIENCE.md, ALGORITHMS.md §7).

Per condition, from n samples with exact path log-probabilities:
  F_q = <log p - log f>                    variational bound on -log Z (in units of kT)
  -log Z_nis = -(LSE(log f - log p) - log n)  importance-sampled (Nicoli et al. 2020), float64 weights
  ESS / n = exp(2 LSE(log w) - LSE(2 log w)) / n
and, where an exact method exists, -log Z and the gap F_q - (-log Z) >= 0.

Each estimate carries its standard error, so a gap of -0.0016 reads as zero within its error bar: F_q's is the sample
standard deviation of log p - log f over sqrt(n); -log Z_nis's is the delta-method error of -log of the mean weight,
se(Z_hat) / Z_hat = sqrt((1 / (ESS/n) - 1) / (n - 1)); the exact -log Z has none, so the gap's error is F_q's.
Averages over conditions (independent samples) add the errors in quadrature.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from ..errors import LatthermError
from ..systems.base import System


@dataclass
class ConditionEstimate:
    T: float
    mu: float
    n_samples: int
    mean_log_p: float
    mean_log_f: float
    F_q: float
    F_q_stderr: float
    neg_log_Z_nis: float
    neg_log_Z_nis_stderr: float
    ess_fraction: float
    mean_observable: float  # <m> or <x_Au> over model samples
    mean_energy_per_site: float
    free_energy_per_site_q: float  # k_B T F_q / N in the system's energy unit
    free_energy_per_site_nis: float
    exact_neg_log_Z: float | None = None
    exact_free_energy_per_site: float | None = None
    exact_mean_observable: float | None = None
    exact_method: str | None = None
    reference_method: str | None = None   # same as exact_method; with reference_error so front ends can label it
    reference_error: float | None = None  # 0.0 exact, else the tensor network's |error of log Z| / N

    @property
    def gap(self) -> float | None:
        return None if self.exact_neg_log_Z is None else self.F_q - self.exact_neg_log_Z

    def to_dict(self) -> dict:
        d = asdict(self)
        d["gap"] = self.gap
        d["gap_stderr"] = None if self.exact_neg_log_Z is None else self.F_q_stderr
        d["nis_gap"] = None if self.exact_neg_log_Z is None else self.neg_log_Z_nis - self.exact_neg_log_Z
        return d


@dataclass
class Evaluation:
    system: dict
    model: dict
    conditions: list[ConditionEstimate] = field(default_factory=list)

    def average(self) -> dict:
        cs = self.conditions
        mean = lambda key: sum(getattr(c, key) for c in cs) / len(cs)  # noqa: E731
        quad = lambda key: math.sqrt(sum(getattr(c, key) ** 2 for c in cs)) / len(cs)  # noqa: E731
        out = {"F_q": mean("F_q"), "F_q_stderr": quad("F_q_stderr"), "neg_log_Z_nis": mean("neg_log_Z_nis"),
               "neg_log_Z_nis_stderr": quad("neg_log_Z_nis_stderr"), "mean_log_p": mean("mean_log_p"),
               "mean_log_f": mean("mean_log_f"), "ess_fraction": mean("ess_fraction"), "exact_neg_log_Z": None,
               "gap": None, "gap_stderr": None}
        if cs and all(c.exact_neg_log_Z is not None for c in cs):
            out["exact_neg_log_Z"] = mean("exact_neg_log_Z")
            out["gap"] = out["F_q"] - out["exact_neg_log_Z"]
            out["gap_stderr"] = out["F_q_stderr"]
        return out

    def to_dict(self) -> dict:
        return {"system": self.system, "model": self.model, "conditions": [c.to_dict() for c in self.conditions],
                "average": self.average()}


def importance_estimates(log_p: torch.Tensor, log_f: torch.Tensor) -> tuple[float, float]:
    """(-log Z_nis, ESS/n) from float64 log-densities of n samples."""
    log_w = (log_f - log_p).to(torch.float64)
    n = log_w.numel()
    lse = torch.logsumexp(log_w, 0)
    neg_log_z = -(float(lse) - math.log(n))
    ess = math.exp(float(2 * lse - torch.logsumexp(2 * log_w, 0))) / n
    return neg_log_z, ess


def importance_stderr(ess_fraction: float, n: int) -> float:
    """Delta-method standard error of -log Z_nis = -log(mean w): se(mean w) / mean w, where the relative sample
    variance of the weights is n / (n - 1) (1 / (ESS/n) - 1). nan for a single sample."""
    if n < 2 or not ess_fraction > 0:
        return float("nan")
    return math.sqrt(max(1.0 / ess_fraction - 1.0, 0.0) / (n - 1))


def estimate_condition(system: System, T: float, mu: float, spins: torch.Tensor, log_p: torch.Tensor,
                       exact=None) -> ConditionEstimate:
    log_f = system.log_f(spins, T, mu)
    log_p = log_p.to(torch.float64)
    diff = log_p - log_f
    n = diff.numel()
    neg_log_z, ess = importance_estimates(log_p, log_f)
    kT_per_site = system.k_B * T / system.n_sites
    est = ConditionEstimate(
        T=float(T), mu=float(mu), n_samples=n, mean_log_p=float(log_p.mean()), mean_log_f=float(log_f.mean()),
        F_q=float(diff.mean()), F_q_stderr=float(diff.std() / math.sqrt(n)) if n > 1 else float("nan"),
        neg_log_Z_nis=neg_log_z, neg_log_Z_nis_stderr=importance_stderr(ess, n), ess_fraction=ess, mean_observable=float(system.observable(spins).mean()),
        mean_energy_per_site=float(system.energy(spins).mean()) / system.n_sites,
        free_energy_per_site_q=float(diff.mean()) * kT_per_site, free_energy_per_site_nis=neg_log_z * kT_per_site)
    if exact is not None:
        est.exact_neg_log_Z = -exact.log_Z
        est.exact_free_energy_per_site = exact.free_energy_per_site
        est.exact_mean_observable = exact.mean_observable
        est.exact_method = est.reference_method = exact.method
        est.reference_error = exact.error
    return est


def exact_or_none(system: System, T: float, mu: float, derivatives: bool = False):
    """The reference where one exists for this system and size, else None. Tables and gaps need log Z: a
    tensor-network reference then skips its derivatives (seconds instead of tens of seconds at 64x64) unless
    ``derivatives`` asks for <E>, <M> and C too."""
    from ..exact import exact_reference

    try:
        return exact_reference(system, T, mu, derivatives=derivatives)
    except LatthermError:
        return None


@torch.no_grad()
def evaluate(model, system: System, conditions, n_samples: int, batch_size: int = 2000, exact: bool = True,
             on_progress=None, draw=None) -> Evaluation:
    """Sample ``n_samples`` per condition and estimate free energies; exact references where available.

    ``draw(T, mu, n) -> (spins, log_p)`` replaces the model's own sampler, e.g. painting a larger lattice: any
    generator works as long as log_p is the exact log-probability of the procedure that drew each sample."""
    if n_samples < 1 or batch_size < 1:
        raise LatthermError(f"samples and batch size must be >= 1, got {n_samples} and {batch_size}")
    if draw is None:
        if model.n_sites != system.n_sites:
            raise LatthermError(f"model serves {model.n_sites} sites, the {system.lattice.label} lattice has "
                                f"{system.n_sites}")

        def draw(T, mu, n):
            sb = model.sample(T, mu, batch=n)
            return sb.spins, sb.log_p

    model.eval()
    ev = Evaluation(system=system.describe(), model=model.hparams())
    for i, (T, mu) in enumerate(conditions):
        system.check(T, mu)
        spins, log_p = [], []
        for start in range(0, n_samples, batch_size):
            s, lp = draw(float(T), float(mu), min(batch_size, n_samples - start))
            spins.append(s.cpu())
            log_p.append(lp.cpu())
        ref = exact_or_none(system, T, mu) if exact else None
        ev.conditions.append(estimate_condition(system, T, mu, torch.cat(spins), torch.cat(log_p), ref))
        if on_progress:
            on_progress(i + 1, len(conditions))
    return ev
