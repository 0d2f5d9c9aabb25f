"""REINFORCE on KL(q || Boltzmann) across (T, mu) for FO-/AO-ARMs (ALGORITHMS.md §2.2, §3.4, §5).

One step: draw a batch from the model (G conditions x M samples, each with its generating order), recompute
log q along the same orders with gradients, and use the per-condition leave-one-out mean of
l = log q - beta_t * log f as the baseline (log Z(c) differs between conditions, so a batch-wide mean is a poor
baseline; leave-one-out removes the O(1/M) bias).

Cheaper gradient for any-order models (``reinforce_steps = K``): log q_sigma(x) is a sum of N step terms, and the
score-function gradient needs all N of them with gradient (N network passes per sample). The sum over a uniformly
random subset of K distinct steps per sample, scaled N/K, has the same expectation, so the gradient stays unbiased
at K/N of the backward cost (sampling still takes N passes without gradient; the reward uses the exact path
log-probability from sampling). A Z2-symmetric model's score is w_+ grad log q(x|mu) + w_- grad log q(-x|-mu)
with exact responsibilities w_+ = q(x|mu) / (2 q_sym(x|mu)) from the sample's mixture log p and one component's path
(N more passes without gradient).
"""

from __future__ import annotations

import math

import torch

from ..distributed import current_world, gather_by_condition, sum_over_ranks
from ..models.base import tokens_from_spins


def leave_one_out_advantage(l: torch.Tensor, groups: int, world=None) -> torch.Tensor:
    """l - mean of the other samples of the same condition; rows are grouped contiguously, M = B / groups.
    Over a ``world`` of ranks each holding M / W rows of every condition, the sums run over all of them, so the
    baseline is the single-process one of the whole batch."""
    world = world or current_world()
    x = l.view(groups, -1)
    total = sum_over_ranks(x.sum(1, keepdim=True), world)
    M = x.shape[1] * world.size
    return (x - (total - x) / (M - 1)).reshape(-1)


def batch_metrics(log_p: torch.Tensor, log_f: torch.Tensor, groups: int, world=None) -> dict:
    """:func:`sample_metrics` of the whole batch: this rank's rows gathered with the others' first."""
    return sample_metrics(gather_by_condition(log_p, groups, world), gather_by_condition(log_f, groups, world),
                          groups)


def sample_metrics(log_p: torch.Tensor, log_f: torch.Tensor, groups: int) -> dict:
    """F_q, ESS/n (means over conditions) and F_q per condition from samples with exact log p, grouped by condition."""
    logw = (log_f - log_p).view(groups, -1)
    M = logw.shape[1]
    lse = torch.logsumexp(logw, 1)
    ess = torch.exp(2 * lse - torch.logsumexp(2 * logw, 1)) / M
    fq = (log_p - log_f).view(groups, -1).mean(1)
    return {"F_q": float(fq.mean()), "ess_fraction": float(ess.mean()),
            "F_q_per_condition": [round(float(v), 5) for v in fq]}


def subsampled_path_log_prob(model, spins: torch.Tensor, T: torch.Tensor, mu: torch.Tensor, ranks: torch.Tensor,
                             K: int, generator=None, chunk_rows: int = 4096) -> torch.Tensor:
    """(N/K) sum over K random distinct steps t of log p(x_sigma(t) | x_sigma(<t)) per row, differentiable: an
    unbiased estimate of the (non-symmetrised) path log-probability log p_sigma(x), from K passes per row."""
    B, N = spins.shape
    cond = model.conditionals()
    c = cond.condition(T, mu)
    tokens = tokens_from_spins(spins)
    steps = torch.rand(B, N, device=spins.device, generator=generator).argsort(-1)[:, :K]  # (B, K) distinct
    site = ranks.argsort(-1).gather(1, steps)  # (B, K) the site generated at each chosen step
    target = tokens.gather(1, site) - 1
    out = torch.zeros(B, dtype=c.dtype, device=spins.device)
    per_chunk = max(1, chunk_rows // max(B, 1))
    for j0 in range(0, K, per_chunk):
        st, si, tg = steps[:, j0:j0 + per_chunk], site[:, j0:j0 + per_chunk], target[:, j0:j0 + per_chunk]
        k = st.shape[1]
        x = (tokens[:, None, :] * (ranks[:, None, :] < st[:, :, None])).reshape(B * k, N)
        logp = cond.site_log_probs(x, c.repeat_interleave(k, 0), si.reshape(-1))
        out = out + logp.gather(1, tg.reshape(-1, 1)).reshape(B, k).sum(1)
    return out * (N / K)


def subsampled_score(model, spins, T, mu, ranks, K: int, generator=None, log_q=None) -> torch.Tensor:
    """A surrogate whose gradient is an unbiased estimate of grad log q(x) from K of the N steps (see the module
    docstring); for a symmetric model the two components weighted by their exact responsibilities
    w_+ = q(x|mu) / (2 q_sym(x|mu)), from the mixture's ``log_q`` (the sample's exact log p) and one component's
    path (N passes without gradient; both components' when ``log_q`` is not given)."""
    if not model.symmetric:
        return subsampled_path_log_prob(model, spins, T, mu, ranks, K, generator)
    with torch.no_grad():
        if log_q is None:
            both = model._log_prob_path(torch.cat([spins, -spins]), torch.cat([T, T]), torch.cat([mu, -mu]),
                                        torch.cat([ranks, ranks])).double()
            w_plus = torch.sigmoid(both[: len(spins)] - both[len(spins):])
        else:
            plus = model._log_prob_path(spins, T, mu, ranks).double()
            w_plus = torch.exp(plus - math.log(2.0) - log_q.double()).clamp(0.0, 1.0)
        w_plus = w_plus.to(torch.float32)
    s = subsampled_path_log_prob(model, torch.cat([spins, -spins]), torch.cat([T, T]), torch.cat([mu, -mu]),
                                 torch.cat([ranks, ranks]), K, generator)
    return w_plus * s[: len(spins)] + (1 - w_plus) * s[len(spins):]


class ReinforceObjective:
    """The per-step objective of FO-/AO-ARMs: REINFORCE on KL(q || p) with per-condition leave-one-out baselines.

    An objective builds the loss of one step (:meth:`loss`); the :class:`Trainer` owns the optimizer, the loop,
    checkpoints and metrics. Objectives with state of their own (MaM's persistent chains) store it through
    :meth:`state_tensors` / :meth:`load_state_tensors` so a resumed run continues exactly."""

    def __init__(self, trainer: "Trainer"):
        self.trainer = trainer

    def loss(self, step: int, log: bool) -> tuple[torch.Tensor, dict]:
        tr = self.trainer
        G = tr.schedule.n_conditions
        T, mu = tr.schedule.batch(step, tr.device)
        with tr.full_precision():
            sample = tr.model.sample(T, mu)
        K = tr.cfg.training.reinforce_steps
        if K and K < tr.model.n_sites and tr.model.any_order:
            log_q = subsampled_score(tr.model, sample.spins, T, mu, sample.ranks, K, log_q=sample.log_p)
            reward_log_q = sample.log_p  # the exact path log-probability, accumulated while sampling
        else:
            log_q = tr.model.log_prob(sample.spins, T, mu, sample.ranks)
            reward_log_q = log_q.detach().double()
        log_f = tr.system.log_f(sample.spins, T, mu)
        with torch.no_grad():
            l = reward_log_q - tr.beta_factor(step) * log_f
            adv = leave_one_out_advantage(l, G, tr.world).to(log_q.dtype)
            info = batch_metrics(sample.log_p, log_f, G, tr.world)
        return (adv * log_q).mean(), info

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass
