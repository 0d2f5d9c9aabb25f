"""Energy-based training of an AO-MAM across (T, mu) (ALGORITHMS.md §4, §5; PAPER Eq. 2).

State: B persistent chains X (tokens 1..K), each with its own condition (T_b, mu_b) from the ConditionSchedule
(condition g on rows g*M .. (g+1)*M - 1). All chains are refreshed by ancestral sampling from the conditional net at
the start of every epoch (when ``schedule.epoch`` changes; the jittered conditions change only then) and whenever
their conditions differ from the schedule's. They are stored in checkpoints, so a resumed run continues exactly.

One step (ALGORITHMS.md §4.9), with R a fresh random order per chain:

    X    <- block_gibbs(X, k = gibbs_steps, R)                     # k passes of phi, no gradient
    g(x) =  log p_theta(X)                                          # marginal net, gradient
    adv  =  per-condition standardised stopgrad(g(x) - beta_t log f(X))
    Delta = log p_theta(x_{R<t}) + log p_phi(x_{R=t} | x_{R<t}) - log p_theta(x_{R<=t}),  t ~ U{0..N-1} per chain
    pen  =  N mean Delta^2 + mean_c log p_theta(empty; c)^2         # offset parameterisation: C = 0
    loss =  mean(adv * g(x)) + lambda * pen

REINFORCE reaches theta only; phi is trained only through the self-consistency penalty (no detach in Delta).
Z2-symmetric models: chains hold the component's configurations y at (T, sign * mu) with a random sign per chain
(log f(y; T, sign * mu) = log f(sign * y; T, mu) for an even energy); every term (KL, Gibbs, self-consistency, the
empty-set penalty at mu and -mu) acts on the component, and the mixture is used at inference (sampling, log p,
the logged diagnostics). The mixture's KL is at most the mean of its components' (convexity), and at low T it
recovers the ordered state a mode-seeking component dropped.
Samples come from phi-driven chains, i.e. off-policy for p_theta, with no importance correction (§8.4).
Data parallel: each rank keeps M / W chains of every condition (its own stream refreshes and moves them), the
per-condition standardisation uses the whole batch's mean and std (all-reduced), and checkpoints keep every rank's
chains (``ROW_KEYS``), re-split by condition when a run resumes with another number of ranks.

Logged diagnostics (every log step): ``self_consistency`` (N mean Delta^2 on this step's chains), ``empty_set_drift``
(max over conditions of |log p_theta(empty; c)|), ``marginal_vs_path_gap`` (mean |log p_theta(x) - log p_phi,sigma(x)|
on fresh ancestral samples of phi, with their exact path log p), and F_q / ess_fraction / F_q_per_condition from the
same fresh samples (the conditional net is the sampler that evaluation uses); at most DIAGNOSTIC_SAMPLES per condition,
so these are noisier than an ARM run's batch-wide values.
"""

from __future__ import annotations

import torch

from ..distributed import current_world, sum_over_ranks
from ..models.base import random_ranks, tokens_from_spins
from ..models.mam import MarginalizationModel, block_gibbs
from .reinforce import batch_metrics

EPS = 1e-6
#: fresh ancestral samples per condition for the logged diagnostics (N passes of phi without gradient each log step;
#: split over the ranks of a distributed run)
DIAGNOSTIC_SAMPLES = 16
#: checkpointed chain state with one row per chain (rows grouped by condition): re-split when the world size changes
ROW_KEYS = ("mam.chains", "mam.chain_T", "mam.chain_mu", "mam.chain_sign")


def standardise_per_condition(a: torch.Tensor, groups: int, world=None) -> torch.Tensor:
    """(a - mean) / (std + eps) within each condition group (rows grouped contiguously, M = B / groups); over a
    ``world`` of ranks holding M / W rows of each condition, mean and std (two passes, Bessel's M - 1) are those
    of the whole batch."""
    world = world or current_world()
    x = a.view(groups, -1)
    if not world.distributed:
        return ((x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + EPS)).reshape(-1)
    M = x.shape[1] * world.size
    mean = sum_over_ranks(x.sum(1, keepdim=True), world) / M
    var = sum_over_ranks(((x - mean) ** 2).sum(1, keepdim=True), world) / (M - 1)
    return ((x - mean) / (var.sqrt() + EPS)).reshape(-1)


def self_consistency_residual(model: MarginalizationModel, tokens: torch.Tensor, T: torch.Tensor, mu: torch.Tensor,
                              ranks: torch.Tensor, t: torch.Tensor, detach_conditional: bool = False) -> torch.Tensor:
    """Delta_b = log p_theta(x_{R<t}) + log p_phi(x_{R=t} | x_{R<t}) - log p_theta(x_{R<=t}) per row (gradient
    into both networks, or only into the marginal net with ``detach_conditional``: maximum likelihood trains phi
    on data and distils it into theta). tokens (B, N) full lattices in 1..K, t (B,) steps in 0..N-1."""
    B = tokens.shape[0]
    rows = torch.arange(B, device=tokens.device)
    prev = tokens * (ranks < t[:, None])
    curr = tokens * (ranks <= t[:, None])
    site = ranks.argsort(-1)[rows, t]
    g = model.marginal_log_prob(torch.cat([prev, curr]), torch.cat([T, T]), torch.cat([mu, mu]))
    g_prev, g_curr = g[:B], g[B:]
    logp = model.site_log_probs(prev, T, mu, site).gather(1, (tokens[rows, site] - 1)[:, None]).squeeze(1)
    if detach_conditional:
        logp = logp.detach()
    return g_prev + logp - g_curr


class MAMObjective:
    """KL (REINFORCE through the marginal net) + lambda * self-consistency on persistent block-Gibbs chains."""

    def __init__(self, trainer):
        self.trainer = trainer
        m = trainer.cfg.model
        self.lam = m.mam_lambda()
        self.gibbs_steps = int(m.gibbs_steps)
        self.chains: torch.Tensor | None = None  # (B, N) long tokens 1..K (component space, see refresh)
        self.chain_sign: torch.Tensor | None = None  # (B,) +-1: Z2 orientation of each chain (all +1 if not symmetric)
        self.chain_T: torch.Tensor | None = None
        self.chain_mu: torch.Tensor | None = None
        self.chain_epoch = -1

    # ---- chains -----------------------------------------------------------------------------------------------
    @torch.no_grad()
    def refresh(self, T: torch.Tensor, mu: torch.Tensor, epoch: int) -> None:
        """Replace every chain by a fresh ancestral sample of the conditional net at its condition. A symmetric
        model's chains live in component space: chain b holds y_b at (T_b, sign_b mu_b), the physical sample is
        sign_b y_b (signs drawn at random here, so the component learns both orientations)."""
        model = self.trainer.model
        sign = torch.ones_like(mu)
        if model.symmetric:
            sign = torch.where(torch.rand(mu.shape[0], device=mu.device) < 0.5, -1.0, 1.0)
        # the conditional net alone is the (non-symmetric) component
        with self.trainer.full_precision():
            self.chains = tokens_from_spins(model.conditional_net.sample(T, mu * sign).spins)
        self.chain_sign = sign
        self.chain_T, self.chain_mu, self.chain_epoch = T.clone(), mu.clone(), int(epoch)

    def _chains_current(self, T, mu, epoch) -> bool:
        return (self.chains is not None and self.chain_epoch == epoch and self.chains.shape[0] == T.shape[0]
                and torch.equal(self.chain_T, T) and torch.equal(self.chain_mu, mu))

    # ---- one step -------------------------------------------------------------------------------------------------
    def loss(self, step: int, log: bool) -> tuple[torch.Tensor, dict]:
        tr = self.trainer
        model: MarginalizationModel = tr.model
        G = tr.schedule.n_conditions
        T, mu = tr.schedule.batch(step, tr.device)
        epoch = tr.schedule.epoch(step)
        refreshed = not self._chains_current(T, mu, epoch)
        if refreshed:
            self.refresh(T, mu, epoch)
        B, N = self.chains.shape
        ranks = random_ranks(B, N, tr.device)
        mu_c = mu * self.chain_sign  # the component's condition (= mu unless symmetric)
        self.chains = block_gibbs(model, self.chains, T, mu_c, ranks, self.gibbs_steps)
        x = self.chains
        spins = (2 * x - 3).to(torch.float32)
        log_f = tr.system.log_f(spins, T, mu_c)  # = log f(sign * spins; T, mu): f is Z2-invariant when symmetric

        # KL through the COMPONENT's marginal at the chain's own (T, sign * mu): a Z2-symmetric model is trained as
        # one orientation-aware component and symmetrised at inference. (REINFORCE through the mixture's marginal
        # would send each sample's gradient to the component that already explains it best, and the other
        # orientation would stay untrained.)
        g_x = model.marginal_log_prob(x, T, mu_c)
        with torch.no_grad():
            adv = standardise_per_condition(g_x.detach().double() - tr.beta_factor(step) * log_f, G,
                                            tr.world).to(g_x.dtype)
        kl_term = (adv * g_x).mean()

        t = torch.randint(0, N, (B,), device=tr.device)  # the same order R as the Gibbs block
        delta = self_consistency_residual(model, x, T, mu_c, ranks, t)
        sc = N * (delta ** 2).mean()
        c = tr.schedule.conditions(step).to(device=tr.device, dtype=torch.float32)
        if model.symmetric:  # the component is used at mu and -mu: normalise both
            c = torch.cat([c, c * torch.tensor([1.0, -1.0], device=tr.device)])
        g_empty = model.marginal_log_prob(torch.zeros(len(c), N, dtype=torch.long, device=tr.device), c[:, 0], c[:, 1])
        empty_pen = (g_empty ** 2).mean()
        loss = kl_term + self.lam * (sc + empty_pen)

        info = {"kl_term": float(kl_term.detach()), "self_consistency": float(sc.detach()),
                "empty_set_penalty": float(empty_pen.detach()),
                "empty_set_drift": float(g_empty.detach().abs().max()), "lambda": self.lam,
                "chains_refreshed": bool(refreshed),
                "chain_mean_log_f": float(log_f.mean())}
        if log:
            M = B // G
            share = max(1, DIAGNOSTIC_SAMPLES // tr.world.size)
            keep = torch.arange(B, device=tr.device).view(G, M)[:, :min(M, share)].reshape(-1)
            info.update(self.diagnostics(T[keep], mu[keep], G))
        return loss, info

    @torch.no_grad()
    def diagnostics(self, T: torch.Tensor, mu: torch.Tensor, G: int) -> dict:
        """F_q, ESS and the marginal-vs-path gap on fresh ancestral samples of the conditional net."""
        tr = self.trainer
        with tr.full_precision():
            sb = tr.model.sample(T, mu)
        log_f = tr.system.log_f(sb.spins, T, mu)
        g = tr.model.model_marginal_log_prob(tokens_from_spins(sb.spins), T, mu).double()
        return {**batch_metrics(sb.log_p, log_f, G, tr.world),
                "marginal_vs_path_gap": float((g - sb.log_p).abs().mean()),
                "marginal_minus_path_mean": float((g - sb.log_p).mean())}

    # ---- checkpoint state -----------------------------------------------------------------------------------------
    def state_tensors(self) -> dict[str, torch.Tensor]:
        if self.chains is None:
            return {}
        return {"mam.chains": self.chains.to(torch.uint8).cpu(), "mam.chain_T": self.chain_T.cpu(),
                "mam.chain_mu": self.chain_mu.cpu(), "mam.chain_sign": self.chain_sign.cpu(),
                "mam.chain_epoch": torch.tensor([self.chain_epoch])}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        if "mam.chains" not in tensors:
            self.chains, self.chain_epoch = None, -1
            return
        dev = self.trainer.device
        self.chains = tensors["mam.chains"].to(device=dev, dtype=torch.long)
        self.chain_T = tensors["mam.chain_T"].to(dev)
        self.chain_mu = tensors["mam.chain_mu"].to(dev)
        sign = tensors.get("mam.chain_sign")
        self.chain_sign = torch.ones_like(self.chain_mu) if sign is None else sign.to(dev)
        self.chain_epoch = int(tensors["mam.chain_epoch"][0])
