"""REINFORCE on KL(q || Boltzmann) across (T, mu) for FO-/AO-ARMs (ALGORITHMS.md §2.2, §3.4, §5).

One step: draw a batch from the model (G conditions x M samples, each with its generating order), recompute
log q along the same orders with gradients, and use the per-condition leave-one-out mean of
l = log q - beta_t * log f as the baseline (log Z(c) differs between conditions, so a batch-wide mean is a poor
baseline; leave-one-out removes the O(1/M) bias).

A Z2-symmetric model q_sym = pi q(s | mu) + (1 - pi) q(-s | -mu) needs both components' N passes with gradient
per row, unless one of them explains the row: given s, the component a sample was drawn from
(``SampleBatch.flip``) is a draw from the exact responsibilities, so E_c|s [grad log(w_c q_c)] = grad log q_sym.
Rows whose larger responsibility is >= CONFIDENT (a function of s alone, so the choice keeps the estimate
unbiased) are scored through the drawn component only, at at most 1 % extra variance; the ordered states of the
low-T conditions are such rows. Elsewhere (disordered rows, where both components model the same states) the
drawn component alone adds the variance of picking one of two different gradients at random: measured at the
bundled 5x5 model, 1.3 against the full gradient's batch-to-batch spread of 4.0, which slowed the per-step
convergence of a tiny model below the tests' bound, so those rows keep the exact mixture.

Cheaper gradient for any-order models (``reinforce_steps = K``): log q_sigma(x) is a sum of N step terms, and the
score-function gradient needs all N of them with gradient (N network passes per sample). The sum over a uniformly
random subset of K distinct steps per sample, scaled N/K, has the same expectation, so the gradient stays unbiased
at K/N of the backward cost (sampling still takes N passes without gradient; the reward uses the exact path
log-probability from sampling).
"""

from __future__ import annotations

import math

import torch

from ..distributed import current_world, gather_by_condition, sum_over_ranks
from ..models.base import SampleBatch, tokens_from_spins


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


def score(model, sample: SampleBatch, T: torch.Tensor, mu: torch.Tensor, K: int = 0, generator=None,
          confident: float = 0.99) -> torch.Tensor:
    """A surrogate whose gradient is an unbiased estimate of grad log q(s) for each row of ``sample``: the path
    log-probability (all N steps, or K of them when 0 < K < N). A symmetric model's rows whose components are told
    apart (larger responsibility >= ``confident`` < 1) use the drawn one, with its log weight when pi(T, mu) is
    learned; the others both components, weighted by their exact responsibilities (see the module docstring). The
    value is a surrogate, not log q: only its gradient is meant."""
    s, ranks = sample.spins, sample.ranks

    def path(spins, T, mu, ranks):
        if 0 < K < model.n_sites:
            return subsampled_path_log_prob(model, spins, T, mu, ranks, K, generator)
        return model._log_prob_path(spins, T, mu, ranks)

    if not model.symmetric:
        return path(s, T, mu, ranks)
    if sample.flip is None or sample.responsibility is None:
        raise ValueError("scoring a Z2-symmetric model needs each row's drawn component and its responsibility")
    flip = sample.flip
    log_w = model.mode_log_weights(T, mu)
    if log_w is None:
        log_w = (torch.full_like(T, -math.log(2.0)),) * 2
    r = sample.responsibility
    # a function of s alone, so E_c|s of the drawn component's score stays the mixture's
    both = (torch.maximum(r, 1 - r) < confident) | (confident >= 1.0)
    sd, mud = torch.where(flip[:, None], -s, s), torch.where(flip, -mu, mu)
    drawn = path(sd[~both], T[~both], mud[~both], ranks[~both]) + torch.where(flip, log_w[1], log_w[0])[~both]
    out = torch.zeros(len(s), dtype=drawn.dtype, device=s.device).index_put((~both,), drawn)
    if bool(both.any()):
        # both components, weighted by the exact responsibilities (held fixed: the gradient of log q_sym is
        # w_+ grad log(pi q_+) + w_- grad log((1 - pi) q_-), and with K < N steps the weights must not be noisy)
        lp = path(torch.cat([s[both], -s[both]]), torch.cat([T[both], T[both]]), torch.cat([mu[both], -mu[both]]),
                  torch.cat([ranks[both], ranks[both]]))
        plus, minus = lp.chunk(2)
        w_plus = torch.where(flip, 1 - r, r)[both].to(lp.dtype)
        out = out.index_put((both,), w_plus * (plus + log_w[0][both]) + (1 - w_plus) * (minus + log_w[1][both]))
    return out


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
        K = tr.cfg.training.reinforce_steps if tr.model.any_order else 0
        log_q = score(tr.model, sample, T, mu, K, confident=tr.cfg.training.z2_confident)
        log_f = tr.system.log_f(sample.spins, T, mu)
        with torch.no_grad():  # the reward: the exact path log-probability, accumulated while sampling
            l = sample.log_p - tr.beta_factor(step) * log_f
            adv = leave_one_out_advantage(l, G, tr.world).to(log_q.dtype)
            info = batch_metrics(sample.log_p, log_f, G, tr.world)
        return (adv * log_q).mean(), info

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass
