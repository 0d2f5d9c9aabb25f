"""In-/out-painting with any-order models: fill the free sites of a (possibly larger) target lattice, keeping the
fixed sites, and return the exact path log-probability of what was generated (ALGORITHMS.md §3.6; PAPER App. I, L).

Plan. A paint is a fixed sequence of steps, each a block of target sites to generate and one or more *windows*
(index maps from a model cell, in the model's own site order, onto target sites; windows wrap periodically on the
target). A site is conditioned on everything already known inside a window (fixed sites and sites filled earlier,
given to the model as known tokens; the other free sites stay unknown); with several windows its conditional is
their normalised geometric mean. The order is one uniform random key per target site and sample: within a step,
sites are generated in increasing key. The path log p of the painted lattice is the sum of the per-site
log-conditionals, which is the exact probability of this generating procedure given the plan and the order.

Window layouts for fixed-size models (AO-ARM MLP, n_sites = window cell), first axis moving fastest; ``"auto"``
(default) is centered where the window leaves room around a site (extent >= 3 on every axis shorter than the
target) and sliding otherwise (e.g. the 2x2x4 CuAu cell: single sites at its 2-wide edges lose the ordered phases
that whole-cell windows keep, BENCHMARKS.md):
* ``"centered"``: blocks of ``stride`` sites per axis (default 1), each generated at the centre of its
  windows (every central window where the centre is ambiguous). A window model believes its cell is a torus, so a
  site at a window edge is conditioned on the opposite edge as its neighbour; keeping the generated block away from
  the edges removes that wrong coupling from its neighbourhood (see :func:`centered_plan`; numbers in
  BENCHMARKS.md).
* ``"sliding"``: the paper's procedure (App. I for 2D with stride 3, App. L for 3D with stride 1): windows at
  offsets 0, s, 2s, ... until the window reaches the periodic image of the start; each generates every free site
  inside it.
Transformers (any cell): ``method="direct"`` (default) is one window, the whole target, all free sites in one random
order; ``method="windows"`` uses windows of its training cell (or ``window=``) like an MLP.

The plan depends only on the mask (not on the sample), and the order is recorded, so :func:`paint_log_prob`
re-scores any configuration by teacher forcing through the same steps; the value returned by :func:`paint` equals
it. Z2-symmetrised models paint the mixture [q(s | mu, v) + q(-s | -mu, -v)] / 2 (v: the fixed values), sampled by
drawing one component and flipping, scored along the same plan and order.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from ..devices import generator_on
from ..errors import LatthermError
from ..lattices import Lattice, lattice_for
from ..models.base import AutoregressiveModel, tokens_from_spins
from ..models.transformer import TransformerAOARM, TransformerCellView
from ..systems import make_system
from ..systems.base import System
from ..store.samples import load_npz, write_samples

METHODS = ("auto", "direct", "windows")
LAYOUTS = ("auto", "centered", "sliding")
DEFAULT_STRIDE = {"centered": {2: 1, 3: 1}, "sliding": {2: 3, 3: 1}}  # by layout, then dimension


@dataclass
class PaintStep:
    """One step of a paint: the target sites it may generate (``block``) and the windows (``views``, each a (N_w,)
    target-index map in the runner's site order, every one containing the whole block) whose conditionals are
    combined for each of those sites: the normalised geometric mean (a product of experts), which with one view is
    that window's conditional."""

    block: np.ndarray  # (b,) int64 target indices
    views: list  # K arrays (N_w,) int64


@dataclass
class PaintPlan:
    """The steps a paint goes through, with the model that scores each window and the constraints."""

    target: Lattice
    mask: np.ndarray  # (N,) bool: fixed sites
    values: np.ndarray  # (N,) float64 spins at fixed sites (0 elsewhere)
    steps: list  # PaintStep, in order
    runner: AutoregressiveModel  # applied to every window (an MLP, or a Transformer view on the window cell)
    method: str
    window_size: tuple
    stride: tuple
    layout: str | None  # "centered" or "sliding" for windows; None for a direct paint

    @property
    def n_free(self) -> int:
        return int((~self.mask).sum())

    @property
    def windows(self) -> list:
        """The first window of every step."""
        return [st.views[0] for st in self.steps]


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


# ---- plans --------------------------------------------------------------------------------------------------------
def window_offsets(L: int, w: int, stride: int) -> list[int]:
    """Offsets 0, s, 2s, ... along one axis until the window [o, o + w) reaches the periodic image of site 0."""
    offs = [0]
    while offs[-1] + w < L:
        offs.append(offs[-1] + stride)
    return offs


def _check_window(target: Lattice, wsize: tuple) -> None:
    if len(wsize) != target.dim:
        raise LatthermError(f"a {len(wsize)}D window cannot paint the {target.dim}D target {target.label}")
    if any(w > L for w, L in zip(wsize, target.size)):
        raise LatthermError(f"the model's window {'x'.join(map(str, wsize))} is larger than the target "
                            f"{target.label}")


def window_plan(target: Lattice, window_size, stride=None) -> list[np.ndarray]:
    """All sliding windows of ``window_size`` on ``target`` (periodic), as target-index maps in window site order."""
    wsize = tuple(int(v) for v in window_size)
    _check_window(target, wsize)
    strides = _strides(stride, wsize, "sliding")
    offs = [window_offsets(L, w, s) for L, w, s in zip(target.size, wsize, strides)]
    wgrid = lattice_for(target.kind, list(wsize)).grid  # row-major: the model's own site order
    windows = []
    for rev in itertools.product(*offs[::-1]):  # first axis moves fastest
        o = np.asarray(rev[::-1], dtype=np.int64)
        windows.append(target.index(wgrid + o))
    return windows


def centered_plan(target: Lattice, window_size, stride=None, views: int | None = None) -> list[PaintStep]:
    """Blocks of ``stride`` sites per axis in raster order (first axis fastest), each generated at the centre of its
    windows. Where the centre is ambiguous (w - s odd: two central positions per axis), the block gets every
    central window (up to ``views`` of them; default all, 2^d for a 2D/3D window of even extent and stride 1).

    Why: a window model believes its cell is a torus, so a site at a window's edge is conditioned on the opposite
    edge as a nearest neighbour, although on the larger target that site is a window length away. Keeping the
    generated block (w - s) // 2 sites away from the window's edges gives every generated site its true
    neighbourhood up to that distance; the wrong periodic coupling only links sites far from the block. Several
    central windows see the same neighbourhood through different positions of the model, and their combined
    conditional averages out part of each one's error. Along an axis where the window spans the whole target the
    window is the target itself (its periodicity is right)."""
    wsize = tuple(int(v) for v in window_size)
    _check_window(target, wsize)
    strides = _strides(stride, wsize, "centered")
    if views is not None and int(views) < 1:
        raise LatthermError(f"views must be at least 1, got {views}")
    blocks, margins = [], []
    for L, w, s in zip(target.size, wsize, strides):
        if w == L:
            blocks.append([np.arange(L)])
            margins.append([0])
        else:
            blocks.append([np.arange(start, min(start + s, L)) for start in range(0, L, s)])
            margins.append(sorted({(w - s) // 2, (w - s + 1) // 2}))
    shifts = [np.asarray(m[::-1], dtype=np.int64) for m in itertools.product(*margins[::-1])][:views]
    wgrid = lattice_for(target.kind, list(wsize)).grid  # row-major: the model's own site order
    plan = []
    for rev in itertools.product(*blocks[::-1]):
        block = rev[::-1]
        start = np.asarray([b[0] for b in block], dtype=np.int64)
        cells = np.stack(np.meshgrid(*block, indexing="ij"), -1).reshape(-1, len(block))
        plan.append(PaintStep(block=target.index(cells),
                              views=[target.index(wgrid + start - m) for m in shifts]))
    return plan


def _strides(stride, wsize, layout: str) -> tuple[int, ...]:
    if stride is None:
        d = DEFAULT_STRIDE[layout].get(len(wsize), 1)
        return tuple(min(d, w) for w in wsize)
    s = (int(stride),) * len(wsize) if np.ndim(stride) == 0 else tuple(int(v) for v in stride)
    if len(s) != len(wsize) or any(not 1 <= a <= w for a, w in zip(s, wsize)):
        raise LatthermError(f"stride {stride} must be between 1 and the window extent "
                            f"{'x'.join(map(str, wsize))} on every axis")
    return s


def _window_size(model, target: Lattice, window) -> tuple[int, ...]:
    """Window cell of a fixed-size model: from ``window`` (Lattice, System, size) or inferred for square cells."""
    if isinstance(window, System):
        window = window.lattice
    if isinstance(window, Lattice):
        if window.kind != target.kind:
            raise LatthermError(f"a model of a {window.kind} lattice cannot paint a {target.kind} target")
        size = window.size
    elif window is not None:
        size = lattice_for(target.kind, window if isinstance(window, str) else list(window)).size
    else:
        L = math.isqrt(model.n_sites)
        if target.kind != "square" or L * L != model.n_sites:
            raise LatthermError(f"give the model's window cell (window=...) for a {model.n_sites}-site model")
        size = (L, L)
    if int(np.prod(size)) != model.n_sites:
        raise LatthermError(f"window {'x'.join(map(str, size))} does not match the model's {model.n_sites} sites")
    return tuple(size)


def _constraints(target: Lattice, mask, values) -> tuple[np.ndarray, np.ndarray]:
    N = target.n_sites
    if mask is None:
        return np.zeros(N, dtype=bool), np.zeros(N)
    m = np.asarray(mask.cpu() if isinstance(mask, torch.Tensor) else mask)
    if m.shape not in (tuple(target.size), (N,)):
        raise LatthermError(f"constraint mask has shape {m.shape}; the target {target.label} needs "
                            f"{tuple(target.size)}")
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise LatthermError("constraint mask must be boolean (or 0/1)")
        m = m.astype(bool)
    m = m.reshape(N)
    if values is None:
        if m.any():
            raise LatthermError("constraint values are missing for the fixed sites")
        return m, np.zeros(N)
    v = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values)
    if v.shape not in (tuple(target.size), (N,)):
        raise LatthermError(f"constraint values have shape {v.shape}; the target {target.label} needs "
                            f"{tuple(target.size)}")
    v = v.reshape(N).astype(np.float64)
    if not np.isin(v[m], (-1.0, 1.0)).all():
        raise LatthermError("constraint values at fixed sites must be spins -1/+1 (one of the system's two species)")
    if m.all():
        raise LatthermError("every site is fixed: nothing to paint")
    return m, np.where(m, v, 0.0)


def make_plan(model: AutoregressiveModel, target: Lattice, mask=None, values=None, stride=None,
              method: str = "auto", window=None, period_mode: str | None = None,
              layout: str = "auto", views: int | None = None) -> PaintPlan:
    """Check the model, target and constraints, and build the steps of ``layout`` (steps with nothing left to fill
    are dropped)."""
    if method not in METHODS:
        raise LatthermError(f"unknown painting method {method!r} (choose from: {', '.join(METHODS)})")
    if layout not in LAYOUTS:
        raise LatthermError(f"unknown window layout {layout!r} (choose from: {', '.join(LAYOUTS)})")
    model = getattr(model, "conditional_net", model)  # an AO-MAM paints with its conditional (AO-ARM) network
    if not getattr(model, "any_order", False) or not hasattr(model, "logits"):
        raise LatthermError("painting needs an any-order (ao-arm) model")
    m, v = _constraints(target, mask, values)
    if isinstance(model, (TransformerAOARM, TransformerCellView)):
        net = model.net if isinstance(model, TransformerCellView) else model
        if net.lattice_kind != target.kind:
            raise LatthermError(f"a model of a {net.lattice_kind} lattice cannot paint a {target.kind} target")
        if method in ("auto", "direct"):
            runner = net.for_lattice(target, period_mode)
            steps = [PaintStep(block=np.arange(target.n_sites), views=[np.arange(target.n_sites)])]
            wsize, strides = tuple(target.size), tuple(target.size)
        else:
            wlat = net.resolve_lattice(window.lattice if isinstance(window, System) else window)
            runner = net.for_lattice(wlat, period_mode)
            wsize = tuple(wlat.size)
            layout = _resolve_layout(layout, target, wsize)
            strides = _strides(stride, wsize, layout)
            steps = _layout(target, wsize, strides, layout, views)
    else:
        wsize = _window_size(model, target, window)
        if method == "direct" and wsize != tuple(target.size):
            raise LatthermError(f"a fixed-size model ({'x'.join(map(str, wsize))}) cannot paint the "
                                f"{target.label} target directly; use windows")
        runner = model
        layout = _resolve_layout(layout, target, wsize)
        strides = _strides(stride, wsize, layout)
        steps = _layout(target, wsize, strides, layout, views)
    filled = m.copy()
    kept = []
    for st in steps:  # a step generates the sites of its block that are still free
        todo = st.block[~filled[st.block]]
        if todo.size:
            kept.append(PaintStep(block=todo, views=st.views))
            filled[todo] = True
    assert filled.all(), "windows do not cover the target"
    used = "direct" if isinstance(runner, TransformerCellView) and method != "windows" else "windows"
    return PaintPlan(target, m, v, kept, runner, used, wsize, strides, layout if used == "windows" else None)


def _resolve_layout(layout: str, target: Lattice, wsize) -> str:
    """"auto": centered when every axis the window does not span has room for a site between two edges."""
    if layout != "auto":
        return layout
    return "centered" if all(w >= 3 for w, L in zip(wsize, target.size) if w < L) else "sliding"


def _layout(target: Lattice, wsize, strides, layout: str, views) -> list[PaintStep]:
    if layout == "centered":
        return centered_plan(target, wsize, strides, views)
    return [PaintStep(block=idx, views=[idx]) for idx in window_plan(target, wsize, strides)]


# ---- painting -----------------------------------------------------------------------------------------------------
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
    runner = plan.runner
    dev = tokens.device
    n, N = tokens.shape
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
            site = seq[:, j]
            logp = 0.0
            for idx, pos in zip(views, positions):
                logits = runner.logits(tokens[:, idx], T, mu)[rows, pos[:, j]]
                logp = logp + F.log_softmax(logits.to(torch.float64), -1)
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
    dev = plan.runner.device
    spins, order = spins.to(dev), order.to(dev)
    truth = tokens_from_spins(spins)
    tokens = torch.where(torch.as_tensor(plan.mask, device=dev)[None], truth, torch.zeros_like(truth))
    return _walk(plan, T.to(dev), mu.to(dev), tokens, order.to(torch.float64), truth=truth)[0]


def paint_log_prob(model_or_plan, T, mu, spins, order, plan: PaintPlan | None = None) -> torch.Tensor:
    """Exact path log p (n,) float64 of painted configurations ``spins`` (n, N) along ``plan`` and ``order``
    (as recorded by :func:`paint`), by teacher forcing through the same windows. The first argument is the model
    (kept for symmetry with :func:`paint`; the plan's runner is what scores) or the plan itself."""
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
    if not plan.runner.symmetric:
        return lp.cpu()
    other = _score_component(plan, T, -mu, -spins, order)
    return (torch.logaddexp(lp, other) - math.log(2.0)).cpu()


def paint(model: AutoregressiveModel, system_target: System, T, mu, n: int, mask=None, values=None,
          generator: torch.Generator | None = None, stride=None, *, method: str = "auto", window=None,
          period_mode: str | None = None, order=None, layout: str = "auto",
          views: int | None = None) -> PaintResult:
    """Paint ``n`` configurations of ``system_target`` at (T, mu) (scalars or (n,) tensors).

    mask, values: fixed sites (bool) and their spins +-1, shaped like the target lattice or flat (N,); None paints
    everything. ``window``: the cell of a fixed-size model (Lattice, System or size; inferred for square L x L),
    or the window cell of a Transformer with ``method="windows"``. ``layout``: "auto" (default), "centered" or "sliding"
    (the paper's), see the module docstring. ``stride``: int or per-axis tuple (default 1 centered; 3 in 2D sliding).
    ``views``: at most this many central windows per block (centered layout; default all of them).
    ``period_mode``: RoPE periods of a Transformer on the target ("trained" or "target"; default: the model's).
    ``order``: optional site priorities, (N,) or (n, N) (e.g. a recorded ``result.order``), instead of a random
    order: inside each step the free sites are generated by increasing priority."""
    n = int(n)
    if n < 1:
        raise LatthermError("the number of samples must be positive")
    system_target.check(T, mu)
    plan = make_plan(model, system_target.lattice, mask, values, stride, method, window, period_mode, layout, views)
    runner = plan.runner
    T, mu = _conds(T, mu, n)
    dev = runner.device
    generator = generator_on(generator, dev)
    if runner.symmetric:
        flip = torch.rand(n, generator=generator, device=dev if generator is None else generator.device).to(dev) < 0.5
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
    if runner.symmetric:
        other = _score_component(plan, T, -mu_c, -s_c, order)
        lp_c = torch.logaddexp(lp_c, other) - math.log(2.0)
    spins, lp_c, order = spins.cpu(), lp_c.cpu(), order.cpu()
    assert bool((spins[:, torch.as_tensor(plan.mask)] == torch.as_tensor(plan.values[plan.mask],
                                                                           dtype=torch.float32)).all())
    log_f = system_target.log_f(spins, T, mu)
    return PaintResult(spins=spins, log_p=lp_c, log_f=log_f, order=order, mask=torch.as_tensor(plan.mask),
                       T=T, mu=mu, plan=plan)


# ---- files --------------------------------------------------------------------------------------------------------
def paint_with_model(lm, target, T, mu, n: int, mask=None, values=None, generator=None, **options):
    """``paint`` for a :class:`~lattherm.engine.models.io.LoadedModel` ``lm``: ``target`` is a System or a size
    (``"8x8"`` or ``[8, 8]``) of the model's system, the model's own size included. A fixed-size (MLP) model paints
    with its own lattice as the window. ``options`` go to ``paint`` (stride, method, layout, views, period_mode,
    order)."""
    if not lm.model.any_order:
        raise LatthermError(f"painting needs an any-order model; {lm.source.name} is a {lm.model.kind}")
    if not isinstance(target, System):
        size = target if isinstance(target, str) else "x".join(str(int(v)) for v in target)
        target = make_system(lm.system.name, size)
    window = lm.system.lattice if lm.model.arch == "mlp" else None
    return paint(lm.model, target, T, mu, n, mask=mask, values=values, generator=generator, window=window,
                 **options)


def _uses_spins(system: System) -> bool:
    """Ising files hold spins +-1; alloy files hold species indices 0/1."""
    return system.name == "ising"


def load_constraints(path, system: System) -> tuple[np.ndarray, np.ndarray]:
    """Read a constraints .npz (``mask`` bool, ``values``; both shaped like the target lattice) -> (mask (N,) bool,
    values (N,) float64 spins +-1, 0 at free sites). Ising values are spins +-1; alloy values species indices 0/1."""
    path = Path(path)
    data = load_npz(path, "constraints")
    missing = [k for k in ("mask", "values") if k not in data]
    if missing:
        raise LatthermError(f"{path}: constraints file lacks {', '.join(missing)} (needs mask and values)")
    lat = system.lattice
    mask, values = data["mask"], data["values"]
    for name, arr in (("mask", mask), ("values", values)):
        if arr.shape != tuple(lat.size):
            raise LatthermError(f"{path}: {name} has shape {arr.shape}; the target {lat.label} needs {tuple(lat.size)}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise LatthermError(f"{path}: mask must be boolean")
        mask = mask.astype(bool)
    mask = mask.reshape(-1)
    values = values.reshape(-1).astype(np.float64)
    allowed = (-1.0, 1.0) if _uses_spins(system) else (0.0, 1.0)
    if not np.isin(values[mask], allowed).all():
        what = "spins -1/+1" if _uses_spins(system) else f"species indices 0/1 ({'/'.join(system.species)})"
        raise LatthermError(f"{path}: values at fixed sites must be {what}")
    spins = values if _uses_spins(system) else 2.0 * values - 1.0
    if mask.all():
        raise LatthermError(f"{path}: every site is fixed: nothing to paint")
    return mask, np.where(mask, spins, 0.0)


def save_paint_npz(path, result: PaintResult, system: System) -> Path:
    """Write a painted batch in the common samples layout (:mod:`.files`): ``samples``, ``log_p``, ``log_f``,
    ``order`` (-1 at fixed sites), ``mask``, ``T``, ``mu``; atomically."""
    return write_samples(path, system, result.spins, result.log_p, result.log_f, result.T, result.mu,
                         order=result.order, mask=result.mask)


__all__ = ["PaintPlan", "PaintStep", "PaintResult", "paint", "paint_log_prob", "make_plan", "window_plan",
           "window_offsets", "centered_plan", "LAYOUTS", "load_constraints", "save_paint_npz"]
