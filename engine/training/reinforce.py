"""REINFORCE on KL(q || Boltzmann) across (T, mu) for FO-/AO-ARMs (ALGORITHMS.md §2.2, §3.4, §5).

One step: draw a batch from the model (G conditions x M samples, each with its generating order), recompute
log q along the same orders with gradients, and use the per-condition leave-one-out mean of
l = log q - beta_t * log f as the baseline (log Z(c) differs between conditions, so a batch-wide mean is a poor
baseline; leave-one-out removes the O(1/M) bias).
"""

from __future__ import annotations

import torch


def leave_one_out_advantage(l: torch.Tensor, groups: int) -> torch.Tensor:
    """l - mean of the other samples of the same condition; rows are grouped contiguously, M = B / groups."""
    x = l.view(groups, -1)
    M = x.shape[1]
    return (x - (x.sum(1, keepdim=True) - x) / (M - 1)).reshape(-1)


def sample_metrics(log_p: torch.Tensor, log_f: torch.Tensor, groups: int) -> dict:
    """F_q, ESS/n (means over conditions) and F_q per condition from samples with exact log p, grouped by condition."""
    logw = (log_f - log_p).view(groups, -1)
    M = logw.shape[1]
    lse = torch.logsumexp(logw, 1)
    ess = torch.exp(2 * lse - torch.logsumexp(2 * logw, 1)) / M
    fq = (log_p - log_f).view(groups, -1).mean(1)
    return {"F_q": float(fq.mean()), "ess_fraction": float(ess.mean()),
            "F_q_per_condition": [round(float(v), 5) for v in fq]}


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
        sample = tr.model.sample(T, mu)
        log_q = tr.model.log_prob(sample.spins, T, mu, sample.ranks)
        log_f = tr.system.log_f(sample.spins, T, mu)
        with torch.no_grad():
            l = log_q.detach().double() - tr.beta_factor(step) * log_f
            adv = leave_one_out_advantage(l, G).to(log_q.dtype)
            info = sample_metrics(sample.log_p, log_f, G)
        return (adv * log_q).mean(), info

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass
