"""What every autoregressive model offers the rest of the engine.

A model draws configurations of spins s in {-1,+1}^N conditioned on (T, mu) and returns, for each sample, the exact
log-probability of the path that generated it (the order is part of the sample for any-order models, so
importance weights f(s)/p_sigma(s) stay exact even when conditionals disagree across orders; ALGORITHMS.md §7).

Optional Z2 symmetrisation uses the symmetry f(s; T, mu) = f(-s; T, -mu) of binary systems:
q_sym(s | mu) = [q(s | mu) + q(-s | -mu)] / 2, sampled by drawing under +-mu with probability 1/2 and flipping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..devices import generator_on
from ..errors import LatthermError


@dataclass
class SampleBatch:
    """Samples with their generating order and exact path log-probability (float64)."""

    spins: torch.Tensor  # (B, N) float32 in {-1, +1}
    log_p: torch.Tensor  # (B,) float64
    ranks: torch.Tensor  # (B, N) long: ranks[b, j] = step at which site j was generated
    #: (B,) bool, Z2-symmetric models only: the row came from the flipped component q(-s | -mu). Given s this is a
    #: draw from the exact responsibilities, which is what lets one component's score stand for the mixture's
    #: (:func:`..training.reinforce.score`)
    flip: torch.Tensor | None = None
    #: (B,) float64, Z2-symmetric models only: the responsibility of the drawn component given s
    responsibility: torch.Tensor | None = None


def tokens_from_spins(s: torch.Tensor) -> torch.Tensor:
    """Spins -> model tokens: 0 = unknown, 1 = spin -1 (species 0), 2 = spin +1 (species 1)."""
    return (s > 0).to(torch.long) + 1


def z2_mixture(log_q: torch.Tensor, log_q_flipped: torch.Tensor, log_w=None, flip=None) -> torch.Tensor:
    """log q_sym(s | mu) = log [pi q(s | mu) + (1 - pi) q(-s | -mu)] from the two components' log-probabilities:
    the one place the Z2 mixture is formed (sampling, scoring, marginals, painting). ``log_w`` = (log pi, log(1 -
    pi)) at the sample's (T, mu), from :meth:`AutoregressiveModel.mode_log_weights` (None: pi = 1/2). ``flip``
    (B,) bool marks rows whose first term is the flipped component (a sample drawn at -mu and then flipped)."""
    if log_w is None:
        return torch.logaddexp(log_q, log_q_flipped) - math.log(2.0)
    w_plus, w_minus = (w.to(device=log_q.device, dtype=log_q.dtype) for w in log_w)
    if flip is not None:
        flip = flip.to(log_q.device)
        w_plus, w_minus = torch.where(flip, w_minus, w_plus), torch.where(flip, w_plus, w_minus)
    return torch.logaddexp(w_plus + log_q, w_minus + log_q_flipped)


def z2_flip(log_w, batch: int, device, generator=None) -> torch.Tensor:
    """(B,) bool: which samples a Z2 mixture draws from its flipped component, q(-s | -mu), with probability
    1 - pi (1/2 when ``log_w`` is None)."""
    u = torch.rand(batch, device=device if generator is None else generator.device, generator=generator).to(device)
    return u < (0.5 if log_w is None else log_w[1].to(device=device, dtype=u.dtype).exp())


def random_ranks(batch: int, n_sites: int, device=None, generator=None) -> torch.Tensor:
    """A uniformly random order per row, as ranks (argsort of uniform noise)."""
    noise = torch.rand(batch, n_sites, device=device, generator=generator)
    return noise.argsort(-1).argsort(-1)


class AutoregressiveModel(nn.Module):
    """Base of FO-ARM and AO-ARM models: sampling with path log-probabilities, log_prob with gradients."""

    kind: str = ""
    arch: str = "mlp"
    any_order: bool = False
    #: True when the same weights serve any supercell of the lattice kind (RoPE Transformer); False for a model of
    #: one fixed cell of ``n_sites`` sites
    any_size: bool = False
    #: the cell the model was built for, when it knows it (a fixed-size MLP knows only its number of sites)
    train_lattice = None

    def __init__(self, n_sites: int, n_species: int = 2, symmetric: bool = False):
        super().__init__()
        if n_species != 2 and symmetric:
            raise ValueError("Z2 symmetrisation needs a binary system")
        self.n_sites = int(n_sites)
        self.n_species = int(n_species)
        self.symmetric = bool(symmetric)
        self.mode_weight = None  # a learned Z2 mode weight (:mod:`.mode_weight`); None: pi = 1/2

    def add_mode_weight(self, T_scale: float = 1.0, mu_scale: float = 1.0) -> None:
        """Give a symmetric model the learned mixture weight pi(T, mu) (it starts at 1/2: nothing changes)."""
        if not self.symmetric:
            raise ValueError("a mode weight needs a Z2-symmetric model")
        from .mode_weight import ModeWeight
        self.mode_weight = ModeWeight(self.n_sites, T_scale, mu_scale).to(self.device)

    def mode_log_weights(self, T: torch.Tensor, mu: torch.Tensor):
        """(log pi, log(1 - pi)) of the Z2 mixture at (T, mu), or None for pi = 1/2."""
        return None if self.mode_weight is None else self.mode_weight(T, mu)

    def hparams(self) -> dict:
        """The hyper-parameters that rebuild this model (:func:`lattherm.engine.models.build_model`)."""
        hp = self._hparams()
        if self.mode_weight is not None:
            hp["mode_weight"] = True
        return hp

    # ---- to implement -------------------------------------------------------------------------------------------
    def _hparams(self) -> dict:
        raise NotImplementedError

    def _sample_path(self, T, mu, ranks, tokens, free, generator=None) -> torch.Tensor:
        """Fill the sites ``free`` of ``tokens`` (in place) in the order ``ranks``; return the float64 (B,) sum
        of the log-conditionals of the drawn values (the exact path log-probability of the free sites)."""
        raise NotImplementedError

    def _log_prob_path(self, s, T, mu, ranks) -> torch.Tensor:
        """log p_sigma(s) along ``ranks`` (with gradient), float32 (B,)."""
        raise NotImplementedError

    def conditionals(self, lattice=None, period_mode: str | None = None):
        """The model's any-order conditionals on ``lattice`` (default: its own cell) as one
        :class:`.any_order.Conditionals`; ``period_mode`` picks RoPE periods where the model has them."""
        raise LatthermError(f"a {self.kind} model has no any-order conditionals (it needs an ao-arm or ao-mam model)")

    def default_ranks(self, batch: int, device, generator=None) -> torch.Tensor:
        if self.any_order:
            return random_ranks(batch, self.n_sites, device, generator)
        return torch.arange(self.n_sites, device=device).expand(batch, -1).clone()

    # ---- public API -------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def sample(self, T, mu, batch: int | None = None, ranks=None, generator=None) -> SampleBatch:
        """Draw ``batch`` samples at conditions T, mu (scalars or (B,) tensors), with exact path log p."""
        T, mu = self._conditions(T, mu, batch)
        B = T.shape[0]
        generator = generator_on(generator, T.device)
        if ranks is None:
            ranks = self.default_ranks(B, T.device, generator)
        flip = log_w = resp = None
        if self.symmetric:
            log_w = self.mode_log_weights(T, mu)
            flip = z2_flip(log_w, B, T.device, generator)
            mu = torch.where(flip, -mu, mu)
        tokens = torch.zeros(B, self.n_sites, dtype=torch.long, device=T.device)
        free = torch.ones(B, self.n_sites, dtype=torch.bool, device=T.device)
        log_p = self._sample_path(T, mu, ranks, tokens, free, generator=generator)
        s = (2 * tokens - 3).to(torch.float32)
        if self.symmetric:
            # the other mixture component, scored along the same order (joint-space weights stay exact)
            other = self._log_prob_path(-s, T, -mu, ranks).to(torch.float64)
            drawn = log_p + (-math.log(2.0) if log_w is None else
                             torch.where(flip, log_w[1], log_w[0]).to(torch.float64))
            log_p = z2_mixture(log_p, other, log_w, flip)
            resp = torch.exp(drawn - log_p).clamp(0.0, 1.0)
            s = torch.where(flip[:, None], -s, s)
        return SampleBatch(spins=s, log_p=log_p, ranks=ranks, flip=flip, responsibility=resp)

    def log_prob(self, s: torch.Tensor, T, mu, ranks: torch.Tensor | None = None) -> torch.Tensor:
        """log q_sigma(s | T, mu) for a (B, N) batch along ``ranks`` (FO: raster order). Differentiable."""
        T, mu = self._conditions(T, mu, s.shape[0])
        if ranks is None:
            if self.any_order:
                raise ValueError("an any-order model needs the order (ranks) that generated each sample")
            ranks = self.default_ranks(s.shape[0], s.device)
        if not self.symmetric:
            return self._log_prob_path(s, T, mu, ranks)
        both = self._log_prob_path(torch.cat([s, -s]), torch.cat([T, T]), torch.cat([mu, -mu]), torch.cat([ranks, ranks]))
        return z2_mixture(*both.chunk(2), self.mode_log_weights(T, mu))

    def _conditions(self, T, mu, batch):
        dev = self.device
        T = torch.as_tensor(T, dtype=torch.float32, device=dev)
        mu = torch.as_tensor(mu, dtype=torch.float32, device=dev)
        if batch is None:
            batch = max(T.numel(), mu.numel())
        return T.expand(batch).clone() if T.ndim == 0 else T, mu.expand(batch).clone() if mu.ndim == 0 else mu
