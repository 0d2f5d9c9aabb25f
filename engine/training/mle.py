"""Maximum likelihood (forward KL) on Monte Carlo data: one network pass per sample.

Forward KL(p || q) = E_p[log p - log q], so minimising it is maximising E_p log q on samples x ~ p (the Monte Carlo
data set of :mod:`lattherm.engine.montecarlo.dataset`, each row with its own (T, mu)). What one pass gives:

* FO-ARM: every raster conditional at once (teacher forcing), so log q(x) is exact in one pass (two for the Z2
  mixture).
* Any-order models (AO-ARM MLP / Transformer, the AO-MAM's conditional net): the order-agnostic estimator (Uria et
  al.'s NADE order-agnostic training; ARDM). Draw an order sigma and a number k ~ U{0..N-1} of known sites, i.e. a
  uniformly random known set S = sigma(<k); one pass with x_S given scores the N - k unknown sites, and

      L(x) = N / (N - k) * sum_{j not in S} log p(x_j | x_S)

  is unbiased for E_sigma log p_sigma(x) (given k, the site generated at step k is uniform over the N - k unknown
  ones, and the N steps are sampled uniformly). Its average over all (order, k) is exactly E_sigma log p_sigma(x).
  A window model is asked far fewer conditionals when it paints a larger lattice; ``[data] paint_known`` gives that
  fraction of the rows a known set of the painting walk instead, scored at the one site the walk generates there.
* AO-MAM: the conditional net by that estimator; the marginal net by self-consistency with the conditional net held
  fixed (a distillation of p_phi into p_theta on the data configurations: Delta along a random order, plus the
  empty-set normalisation), weighted by the model's lambda.

Data of a system whose energy is even (Ising) are augmented by the exact symmetry (x, mu) -> (-x, -mu) with
probability 1/2 per row, so both orientations of an ordered phase are seen even where the chains did not tunnel.
(For a Z2-symmetric any-order model the component is trained on the augmented data: the mean of the component's
log-likelihood at (x, mu) and (-x, -mu) is a lower bound on the mixture's, by Jensen.)

The batch of a step is drawn with the global torch generator, which checkpoints store, so a resumed run draws
exactly the batches it would have drawn. The data set itself lives in the run folder (``dataset.npz``): it is made
once, on the first MLE step, and a resumed run reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..config import paint_cell, system_of
from ..lattices import lattice_for
from ..models.base import random_ranks, tokens_from_spins
from ..montecarlo.dataset import DATASET_FILE, Dataset, check_dataset, load_dataset, mc_dataset, mc_sampler, \
    save_dataset
from ..sampling.plan import known_sets, layout_steps
from .mam import self_consistency_residual
from .reinforce import batch_metrics


def random_known_sets(batch: int, n_sites: int, device=None, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """A random order per row (ranks) and a number k ~ U{0..N-1} of known sites; known = ranks < k[:, None]."""
    ranks = random_ranks(batch, n_sites, device, generator)
    k = torch.randint(0, n_sites, (batch,), device=device, generator=generator)
    return ranks, k


def site_log_likelihoods(model, spins: torch.Tensor, T: torch.Tensor, mu: torch.Tensor,
                         known: torch.Tensor) -> torch.Tensor:
    """(B, N) log p(x_j | x_known) of every site, from ONE pass of the any-order network (``model.logits``)."""
    tokens = tokens_from_spins(spins)
    logp = F.log_softmax(model.logits(tokens * known, T, mu), -1)  # (B, N, K)
    return logp.gather(2, (tokens - 1)[..., None]).squeeze(-1)


def order_agnostic_log_likelihood(model, spins: torch.Tensor, T: torch.Tensor, mu: torch.Tensor,
                                  known: torch.Tensor) -> torch.Tensor:
    """N / (N - k) * sum_{j unknown} log p(x_j | x_known) per row, from one pass. ``known`` (B, N) bool with k < N
    known sites per row. Unbiased for E_sigma log p_sigma(x) when the known set is :func:`random_known_sets`'s."""
    return _order_agnostic(site_log_likelihoods(model, spins, T, mu, known), known)


def _order_agnostic(site: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    unknown = ~known
    n_unknown = unknown.sum(-1)
    if bool((n_unknown == 0).any()):
        raise ValueError("every row needs at least one unknown site (k < N)")
    return (site * unknown).sum(-1) * (site.shape[1] / n_unknown.to(site.dtype))


@dataclass(frozen=True)
class PaintingKnownSets:
    """The (known set, generated site) pairs of one paint of a larger target through windows of the model's cell
    (:func:`lattherm.engine.sampling.plan.known_sets`), and the fraction of rows that draw one of them."""

    known: torch.Tensor  # (M, N) bool, in the cell's site order
    site: torch.Tensor  # (M,) long
    fraction: float

    @classmethod
    def of(cls, cfg, device=None) -> "PaintingKnownSets":
        cell, size = paint_cell(cfg)
        target = lattice_for(system_of(cfg).lattice_kind, list(size))
        known, site = known_sets(target, layout_steps(target, cell)[0])
        return cls(torch.as_tensor(known, device=device), torch.as_tensor(site, device=device),
                   float(cfg.data.paint_known))


def forward_log_likelihood(model, spins: torch.Tensor, T: torch.Tensor, mu: torch.Tensor, generator=None,
                           paint: PaintingKnownSets | None = None):
    """The one-pass log-likelihood estimate of ``model`` on data rows: exact teacher forcing for an FO-ARM,
    the order-agnostic estimator for any-order models (the AO-MAM's conditional net). With ``paint``, a fraction
    of the rows instead takes a known set of the painting walk, uniformly over the walk's (site, view) pairs,
    and scores N log p(x_site | x_known): an unbiased estimate of N times the mean log-conditional of a paint
    (log q of the painted window cell, on the same scale as the order-agnostic rows)."""
    if not model.any_order:
        return model.log_prob(spins, T, mu)
    B, N = spins.shape
    ranks, k = random_known_sets(B, N, spins.device, generator)
    known = ranks < k[:, None]
    if paint is None or not paint.fraction:
        return order_agnostic_log_likelihood(model, spins, T, mu, known)
    painted = torch.rand(B, device=spins.device, generator=generator) < paint.fraction
    pick = torch.randint(0, len(paint.site), (B,), device=spins.device, generator=generator)
    known = torch.where(painted[:, None], paint.known[pick], known)
    site = site_log_likelihoods(model, spins, T, mu, known)
    at = N * site.gather(1, paint.site[pick][:, None]).squeeze(1)
    return torch.where(painted, at, _order_agnostic(site, known))  # a painting row's site is always unknown


def gauge_flip_probability(spins: torch.Tensor, gauge: float) -> torch.Tensor:
    """f(x) = sigmoid(-gauge M / sqrt(N)): the probability that :func:`z2_augment` maps (x, mu) to (-x, -mu).

    Any flip probability f leaves the Z2 mixture exact: the component then learns q(x|mu) = p(x|mu) w(x) with
    w(x) = 1 - f(x) + f(-x), and 1/2 [q(x|mu) + q(-x|-mu)] = p(x|mu) because w(x) + w(-x) = 2. gauge = 0 is the
    plain augmentation (f = 1/2, w = 1: the component must hold both ordered states at mu = 0 and infer which one
    from the known sites). gauge > 0 fixes the gauge softly: ordered configurations (|M| >> sqrt(N)) are turned to
    M > 0, so the component learns one ordered state and the mixture supplies the other, while disordered ones
    (|M| ~ sqrt(N)) keep f near 1/2, so the component is not asked for a sharp cut at M = 0."""
    m = spins.sum(-1).to(torch.promote_types(spins.dtype, torch.float32)) / spins.shape[-1] ** 0.5
    return torch.sigmoid(-gauge * m)


def z2_augment(spins: torch.Tensor, mu: torch.Tensor, generator=None, gauge: float = 0.0):
    """(x, mu) -> (-x, -mu), an exact symmetry of f when the energy is even, with probability
    :func:`gauge_flip_probability` per row (1/2 for gauge = 0)."""
    u = torch.rand(spins.shape[0], device=spins.device, generator=generator)
    flip = u < (gauge_flip_probability(spins, gauge) if gauge else 0.5)
    return torch.where(flip[:, None], -spins, spins), torch.where(flip, -mu, mu)


class MLEObjective:
    """Forward KL on the run's Monte Carlo data set (one pass per sample); diagnostics (F_q, ESS) on fresh model
    samples at the schedule's conditions, the same numbers REINFORCE logs, so curves of both phases compare."""

    def __init__(self, trainer):
        self.trainer = trainer
        cfg = trainer.cfg
        self.data_cfg = cfg.data
        self.sampler = mc_sampler(cfg.data.sampler, trainer.system)  # a sampler the system lacks fails here
        self.data: Dataset | None = None
        self._tensors = None
        self.paint = PaintingKnownSets.of(cfg, trainer.device) if cfg.data.paint_known else None
        own = trainer.run is not None and (trainer.run.path / DATASET_FILE).is_file()
        if cfg.data.path and not own:  # a given data set is checked before any run folder exists
            self.data = check_dataset(load_dataset(cfg.data.path), trainer.system, cfg.conditions.T,
                                      cfg.conditions.mu, source=f"data set {cfg.data.path}")

    # ---- the data set -----------------------------------------------------------------------------------------
    def prepare(self) -> dict | None:
        """Make (or read back) the data set; stored in the run folder. Returns its meta when it was generated
        now (its seconds count in the run's elapsed time), else None."""
        if self._tensors is not None:
            return None
        tr = self.trainer
        c = tr.cfg.conditions
        stored = tr.run.path / DATASET_FILE if tr.run is not None else None
        made = None
        if self.data is None and stored is not None and stored.is_file():
            self.data = check_dataset(load_dataset(stored), tr.system, c.T, c.mu, source=f"data set {stored}")
        if self.data is None:
            d = self.data_cfg
            if tr.run is not None:
                tr.run.set_status("running", step=tr.step, message="generating the Monte Carlo data set")
            self.data = mc_dataset(tr.system, c.T, c.mu, d.samples, d.chains, d.equilibration, d.pilot, d.max_thin,
                                   d.seed, self.sampler, d.sampler)
            made = self.data.meta
        if stored is not None and not stored.is_file():
            save_dataset(stored, self.data)
        dev = tr.device
        rows = slice(tr.world.rank, None, tr.world.size)  # this rank's shard: every W-th row (all conditions)
        self._tensors = (torch.as_tensor(self.data.spins[rows], dtype=torch.float32).to(dev),
                         torch.as_tensor(self.data.T[rows], dtype=torch.float32).to(dev),
                         torch.as_tensor(self.data.mu[rows], dtype=torch.float32).to(dev))
        return made

    def batch(self, size: int):
        """``size`` rows drawn uniformly with replacement (global torch generator), Z2-augmented where exact; in a
        distributed run from this rank's shard of the data, with its own stream."""
        spins, T, mu = self._tensors
        idx = torch.randint(0, spins.shape[0], (size,)).to(spins.device)
        s, t, m = spins[idx], T[idx], mu[idx]
        if self.trainer.system.z2_symmetric:
            s, m = z2_augment(s, m)
        return s, t, m

    # ---- one step -----------------------------------------------------------------------------------------------
    def loss(self, step: int, log: bool) -> tuple[torch.Tensor, dict]:
        if self._tensors is None:
            self.prepare()
        tr = self.trainer
        model = tr.model
        N = tr.system.n_sites
        s, T, mu = self.batch((self.data_cfg.batch or tr.cfg.training.batch) // tr.world.size)
        info: dict = {}
        if model.kind == "ao-mam":
            ll = forward_log_likelihood(model.conditional_net, s, T, mu, paint=self.paint)
            loss = -ll.mean() / N
            sc, empty = self._marginal_terms(s, T, mu, step)
            loss = loss + tr.cfg.model.mam_lambda() * (sc + empty)
            info.update(self_consistency=float(sc.detach()), empty_set_penalty=float(empty.detach()))
        else:
            gauge, mode = self.data_cfg.gauge, None
            if gauge and model.mode_weight is not None:
                # pi(T, mu) -> c(mu) / 2 = E_p[1 - f(x)] by a logistic regression on the (plainly augmented)
                # rows, then the gauge flip with probability f(x) for the component's rows
                target = 1 - gauge_flip_probability(s, gauge)
                mode = F.binary_cross_entropy_with_logits(model.mode_weight.logit(T, mu), target)
                s, mu = z2_augment(s, mu, gauge=gauge)
                info["mode_weight_bce"] = float(mode.detach())
            ll = forward_log_likelihood(model, s, T, mu, paint=self.paint)
            loss = -ll.mean() / N
            if mode is not None:
                loss = loss + mode / N
        info["nll_per_site"] = float(-ll.detach().mean() / N)
        if log:
            info.update(self.diagnostics(step))
        return loss, info

    def _marginal_terms(self, s, T, mu, step):
        """AO-MAM: N mean Delta^2 on the data rows along a random order (the conditional net fixed) and the
        empty-set penalty at the schedule's conditions."""
        tr = self.trainer
        model = tr.model
        B, N = s.shape
        x = tokens_from_spins(s)
        ranks = random_ranks(B, N, s.device)
        t = torch.randint(0, N, (B,), device=s.device)
        delta = self_consistency_residual(model, x, T, mu, ranks, t, detach_conditional=True)
        c = tr.schedule.conditions(step).to(device=s.device, dtype=torch.float32)
        if model.symmetric:  # the component serves mu and -mu: normalise both
            c = torch.cat([c, c * torch.tensor([1.0, -1.0], device=s.device)])
        g_empty = model.marginal_log_prob(torch.zeros(len(c), N, dtype=torch.long, device=s.device), c[:, 0], c[:, 1])
        return N * (delta ** 2).mean(), (g_empty ** 2).mean()

    @torch.no_grad()
    def diagnostics(self, step: int) -> dict:
        """F_q, ESS/n and F_q per condition from ``batch / G`` fresh samples per schedule condition."""
        tr = self.trainer
        G = tr.schedule.n_conditions
        T, mu = tr.schedule.batch(step, tr.device)
        with tr.full_precision():
            sb = tr.model.sample(T, mu)
        return batch_metrics(sb.log_p, tr.system.log_f(sb.spins, T, mu), G, tr.world)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        pass


__all__ = ["MLEObjective", "forward_log_likelihood", "order_agnostic_log_likelihood", "random_known_sets",
           "gauge_flip_probability", "z2_augment"]
