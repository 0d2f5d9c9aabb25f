"""In-/out-painting with any-order models: fill the free sites of a (possibly larger) target lattice, keeping the
fixed sites, and return the exact path log-probability of what was generated (ALGORITHMS.md §3.6; PAPER App. I, L).

The walk. A paint goes through the steps of a :class:`.plan.PaintPlan`: each a block of target sites and one or
more windows onto the target. A site is conditioned on everything already known inside a window (fixed sites and
sites filled earlier, given to the model as known tokens; the other free sites stay unknown); with several windows
its conditional is their normalised geometric mean. The order is one uniform random key per target site and sample:
within a step, sites are generated in increasing key. The path log p of the painted lattice is the sum of the
per-site log-conditionals, which is the exact probability of this generating procedure given the plan and the order.

The model enters only through its :class:`..models.any_order.Conditionals` (``model.conditionals(cell)``): a model
of one fixed cell (AO-ARM MLP) paints through windows of that cell (layouts in :mod:`.plan`); a model that serves
any cell size (Transformer) paints the whole target as one window (``method="direct"``, the default) or through
windows of its training cell (or ``window=``) with ``method="windows"``.

The plan depends only on the mask (not on the sample), and the order is recorded, so :func:`paint_log_prob`
re-scores any configuration by teacher forcing through the same steps; the value returned by :func:`paint` equals
it by construction (one walk does both). Z2-symmetrised models paint the mixture [q(s | mu, v) + q(-s | -mu, -v)] / 2
(v: the fixed values), sampled by drawing one component and flipping, scored along the same plan and order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.nn import functional as F

from ..devices import generator_on
from ..errors import LatthermError
from ..lattices import Lattice, lattice_for
from ..models.base import AutoregressiveModel, tokens_from_spins, z2_flip, z2_mixture
from ..progress import check_interrupt
from ..systems import make_system
from ..systems.base import System
from .constraints import constraints_from_arrays
from .plan import LAYOUTS, PaintPlan, free_steps, layout_steps, whole_target, window_cell

METHODS = ("auto", "direct", "windows")


@dataclass
class PaintResult:
    spins: torch.Tensor  # (n, N) float32 in {-1, +1}
    log_p: torch.Tensor  # (n,) float64 exact path log-probability of the free sites
    log_f: torch.Tensor  # (n,) float64 log f of the whole target configuration
    order: torch.Tensor  # (n, N) long: step at which each site was generated; -1 at fixed sites
    mask: torch.Tensor  # (N,) bool: fixed sites
    T: torch.Tensor  # (n,) float64
    mu: torch.Tensor  # (n,) float64
    plan: PaintPlan = field(repr=False)

    @property
    def ranks(self) -> torch.Tensor:
        return self.order


def make_plan(model: AutoregressiveModel, target: Lattice, mask=None, values=None, stride=None,
              method: str = "auto", window=None, period_mode: str | None = None,
              layout: str = "auto", views: int | None = None) -> PaintPlan:
    """Check the model, target and constraints; take the model's conditionals on the window cell (the whole target
    for a direct paint) and the steps of ``layout`` that still have free sites to fill."""
    if method not in METHODS:
        raise LatthermError(f"unknown painting method {method!r} (choose from: {', '.join(METHODS)})")
    if layout not in LAYOUTS:
        raise LatthermError(f"unknown window layout {layout!r} (choose from: {', '.join(LAYOUTS)})")
    if not model.any_order:
        raise LatthermError(f"painting needs an any-order (ao-arm or ao-mam) model, not a {model.kind} model")
    m, v = constraints_from_arrays(target, mask, values)
    cell = model.train_lattice
    if cell is not None and cell.kind != target.kind:
        raise LatthermError(f"a model of a {cell.kind} lattice cannot paint a {target.kind} target")
    if model.any_size and method != "windows":
        conditionals = model.conditionals(target, period_mode)
        steps, used, layout = whole_target(target), "direct", None
        wsize = strides = tuple(target.size)
    else:
        wsize = window_cell(target, window, cell, None if model.any_size else model.n_sites)
        if method == "direct" and wsize != tuple(target.size):
            raise LatthermError(f"a fixed-size model ({'x'.join(map(str, wsize))}) cannot paint the "
                                f"{target.label} target directly; use windows")
        steps, layout, strides = layout_steps(target, wsize, stride, layout, views)
        conditionals = model.conditionals(lattice_for(target.kind, list(wsize)), period_mode)
        used = "windows"
    return PaintPlan(target, m, v, free_steps(steps, m), conditionals, used, wsize, strides, layout)


# ---- the walk -------------------------------------------------------------------------------------------------------
def _conds(T, mu, n):
    T = torch.as_tensor(T, dtype=torch.float64)
    mu = torch.as_tensor(mu, dtype=torch.float64)
    T = T.expand(n).clone() if T.ndim == 0 else T
    mu = mu.expand(n).clone() if mu.ndim == 0 else mu
    if T.shape != (n,) or mu.shape != (n,):
        raise LatthermError(f"T and mu must be scalars or have one value per sample ({n})")
    return T, mu


@torch.no_grad()
def _walk(plan: PaintPlan, T, mu, tokens, key, truth=None, generator=None):
    """Go through the plan's steps on ``tokens`` (n, N) (0 = free; filled in place) of one Z2 component: inside a
    step the free block sites are taken by increasing ``key`` (n, N), each drawn from (or, with ``truth`` tokens,
    teacher-forced to) the combined conditional of the step's views. Returns the float64 path log p (n,) and the
    order (n, N): the step at which each site was generated, -1 at fixed sites."""
    cond = plan.conditionals
    dev = tokens.device
    n, N = tokens.shape
    c = cond.condition(T, mu)
    rows = torch.arange(n, device=dev)
    log_p = torch.zeros(n, dtype=torch.float64, device=dev)
    order = torch.full((n, N), -1, dtype=torch.long, device=dev)
    where = torch.empty(N, dtype=torch.long, device=dev)  # target site -> position in the current window
    t = 0
    for st in plan.steps:
        block = torch.as_tensor(st.block, device=dev)
        seq = block[key[:, block].argsort(-1)]  # (n, b): the block's sites in generation order, per sample
        views = [torch.as_tensor(idx, device=dev) for idx in st.views]
        positions = []
        for idx in views:
            where[idx] = torch.arange(idx.numel(), device=dev)
            positions.append(where[seq])
        for j in range(seq.shape[1]):
            check_interrupt()
            site = seq[:, j]
            logp = 0.0
            for idx, pos in zip(views, positions):
                logp = logp + cond.site_log_probs(tokens[:, idx], c, pos[:, j]).to(torch.float64)
            logp = F.log_softmax(logp / len(views), -1) if len(views) > 1 else logp
            if truth is None:
                val = torch.multinomial(logp.exp(), 1, generator=generator).squeeze(1) + 1
            else:
                val = truth[rows, site]
            log_p += logp.gather(1, (val - 1)[:, None]).squeeze(1)
            tokens[rows, site] = val
            order[rows, site] = t
            t += 1
    return log_p, order


def _known_tokens(plan: PaintPlan, sign, dev):
    """(n, N) tokens with the fixed values times ``sign`` (n,) (the Z2 component) and 0 at free sites."""
    mask = torch.as_tensor(plan.mask, device=dev)
    vals = torch.as_tensor(plan.values, dtype=torch.float32, device=dev)[None] * sign[:, None]
    return torch.where(mask[None], tokens_from_spins(vals), torch.zeros((), dtype=torch.long, device=dev))


def _score_component(plan: PaintPlan, T, mu, spins, order) -> torch.Tensor:
    """Teacher-forced path log p of ``spins`` (n, N) through the plan's steps in the recorded ``order``."""
    dev = plan.conditionals.device
    spins, order = spins.to(dev), order.to(dev)
    truth = tokens_from_spins(spins)
    tokens = torch.where(torch.as_tensor(plan.mask, device=dev)[None], truth, torch.zeros_like(truth))
    return _walk(plan, T.to(dev), mu.to(dev), tokens, order.to(torch.float64), truth=truth)[0]


def paint_log_prob(model_or_plan, T, mu, spins, order, plan: PaintPlan | None = None) -> torch.Tensor:
    """Exact path log p (n,) float64 of painted configurations ``spins`` (n, N) along ``plan`` and ``order``
    (as recorded by :func:`paint`), by teacher forcing through the same windows. The first argument is the model
    (kept for symmetry with :func:`paint`; the plan's conditionals are what score) or the plan itself."""
    plan = model_or_plan if isinstance(model_or_plan, PaintPlan) else plan
    if plan is None:
        raise LatthermError("paint_log_prob needs the plan recorded by paint()")
    spins = torch.as_tensor(spins, dtype=torch.float32)
    n = spins.shape[0]
    if spins.shape != (n, plan.target.n_sites) or torch.as_tensor(order).shape != spins.shape:
        raise LatthermError(f"spins and order must have shape (n, {plan.target.n_sites})")
    T, mu = _conds(T, mu, n)
    order = torch.as_tensor(order)
    lp = _score_component(plan, T, mu, spins, order)
    if plan.conditionals.symmetric:
        lp = z2_mixture(lp, _score_component(plan, T, -mu, -spins, order), plan.conditionals.log_w(T, mu))
    return lp.cpu()


def paint(model: AutoregressiveModel, system_target: System, T, mu, n: int, mask=None, values=None,
          generator: torch.Generator | None = None, stride=None, *, method: str = "auto", window=None,
          period_mode: str | None = None, order=None, layout: str = "auto",
          views: int | None = None) -> PaintResult:
    """Paint ``n`` configurations of ``system_target`` at (T, mu) (scalars or (n,) tensors).

    mask, values: fixed sites (bool) and their spins +-1, shaped like the target lattice or flat (N,); None paints
    everything (see :mod:`.constraints` for lists and files). ``window``: the cell of a fixed-size model (Lattice,
    System or size; default the model's own cell, inferred as L x L for a square MLP), or the window cell of a
    Transformer with ``method="windows"``. ``layout``: "auto" (default), "centered" or "sliding" (the paper's), see
    :mod:`.plan`. ``stride``: int or per-axis tuple (default 1 centered; 3 in 2D sliding). ``views``: at most this
    many central windows per block (centered layout; default all of them). ``period_mode``: RoPE periods of a
    Transformer on the target ("trained" or "target"; default: the model's). ``order``: optional site priorities,
    (N,) or (n, N) (e.g. a recorded ``result.order``), instead of a random order: inside each step the free sites
    are generated by increasing priority."""
    n = int(n)
    if n < 1:
        raise LatthermError("the number of samples must be positive")
    system_target.check(T, mu)
    plan = make_plan(model, system_target.lattice, mask, values, stride, method, window, period_mode, layout, views)
    cond = plan.conditionals
    T, mu = _conds(T, mu, n)
    dev = cond.device
    generator = generator_on(generator, dev)
    log_w = flip = None
    if cond.symmetric:
        log_w = cond.log_w(T, mu)
        flip = z2_flip(log_w, n, dev, generator)
        sign = torch.where(flip, -1.0, 1.0).to(dev)
    else:
        sign = torch.ones(n, device=dev)
    mu_c = mu * sign.to(mu.dtype).cpu()
    N = plan.target.n_sites
    if order is None:
        key = torch.rand(n, N, generator=generator, device=dev if generator is None else generator.device)
    else:
        key = torch.as_tensor(order, dtype=torch.float64)
        if key.shape not in ((N,), (n, N)):
            raise LatthermError(f"order must have shape ({N},) or ({n}, {N})")
        key = key.expand(n, -1)
    tokens = _known_tokens(plan, sign, dev)
    lp_c, order = _walk(plan, T.to(dev), mu_c.to(dev), tokens, key.to(dev), generator=generator)
    s_c = (2 * tokens - 3).to(torch.float32)
    spins = s_c * sign[:, None]
    if cond.symmetric:  # the other orientation, scored along the same plan and order
        lp_c = z2_mixture(lp_c, _score_component(plan, T, -mu_c, -s_c, order), log_w, flip)
    spins, lp_c, order = spins.cpu(), lp_c.cpu(), order.cpu()
    assert bool((spins[:, torch.as_tensor(plan.mask)] == torch.as_tensor(plan.values[plan.mask],
                                                                           dtype=torch.float32)).all())
    log_f = system_target.log_f(spins, T, mu)
    return PaintResult(spins=spins, log_p=lp_c, log_f=log_f, order=order, mask=torch.as_tensor(plan.mask),
                       T=T, mu=mu, plan=plan)


def paint_with_model(lm, target, T, mu, n: int, mask=None, values=None, generator=None, **options):
    """``paint`` for a :class:`~lattherm.engine.models.io.LoadedModel` ``lm``: ``target`` is a System or a size
    (``"8x8"`` or ``[8, 8]``) of the model's system, the model's own size included. The model's system lattice is
    its window cell (what a fixed-size model cannot know by itself). ``options`` go to ``paint`` (stride, method,
    layout, views, period_mode, order, window)."""
    if not lm.model.any_order:
        raise LatthermError(f"painting needs an any-order model; {lm.source.name} is a {lm.model.kind}")
    if not isinstance(target, System):
        size = target if isinstance(target, str) else "x".join(str(int(v)) for v in target)
        target = make_system(lm.system.info, size)
    options.setdefault("window", lm.system.lattice)
    return paint(lm.model, target, T, mu, n, mask=mask, values=values, generator=generator, **options)


__all__ = ["PaintResult", "METHODS", "make_plan", "paint", "paint_log_prob", "paint_with_model"]
