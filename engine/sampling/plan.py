"""Where a paint generates what: the steps of a paint on a periodic target, from lattice geometry alone
(ALGORITHMS.md §3.6; PAPER App. I, L). Nothing here knows the model; :mod:`.painting` walks the steps.

A step is a block of target sites to generate and one or more *windows* (index maps from a model cell, in the
model's own site order, onto target sites; windows wrap periodically on the target). Window layouts, first axis
moving fastest; ``"auto"`` (default) is centered where the window leaves room around a site (extent >= 3 on every
axis shorter than the target) and sliding otherwise (e.g. the 2x2x4 CuAu cell: single sites at its 2-wide edges
lose the ordered phases that whole-cell windows keep, BENCHMARKS.md):

* ``"centered"``: blocks of ``stride`` sites per axis (default 1), each generated at the centre of its windows
  (every central window where the centre is ambiguous), see :func:`centered_plan`.
* ``"sliding"``: the paper's procedure (App. I for 2D with stride 3, App. L for 3D with stride 1): windows at
  offsets 0, s, 2s, ... until the window reaches the periodic image of the start; each generates every free site
  inside it (:func:`window_plan`).

A model that serves any cell size can instead paint the whole target as one window (:func:`whole_target`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import LatthermError
from ..lattices import Lattice, lattice_for
from ..systems.base import System

if TYPE_CHECKING:  # the plan holds them; building a plan needs no torch
    from ..models.any_order import Conditionals

LAYOUTS = ("auto", "centered", "sliding")
DEFAULT_STRIDE = {"centered": {2: 1, 3: 1}, "sliding": {2: 3, 3: 1}}  # by layout, then dimension


@dataclass
class PaintStep:
    """One step of a paint: the target sites it may generate (``block``) and the windows (``views``, each a (N_w,)
    target-index map in the model's site order, every one containing the whole block) whose conditionals are
    combined for each of those sites: the normalised geometric mean (a product of experts), which with one view is
    that window's conditional."""

    block: np.ndarray  # (b,) int64 target indices
    views: list  # K arrays (N_w,) int64


@dataclass
class PaintPlan:
    """The steps a paint goes through, the model's conditionals that score every window, and the constraints."""

    target: Lattice
    mask: np.ndarray  # (N,) bool: fixed sites
    values: np.ndarray  # (N,) float64 spins at fixed sites (0 elsewhere)
    steps: list  # PaintStep, in order
    conditionals: Conditionals  # the model's, on the window cell (the whole target for a direct paint)
    method: str  # "direct" (one window, the target) or "windows"
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


# ---- window cells and strides -------------------------------------------------------------------------------------
def window_cell(target: Lattice, window=None, cell: Lattice | None = None, n_sites: int | None = None) -> tuple:
    """Size of the window cell that paints ``target``: ``window`` (a Lattice, System or size) if given, else the
    model's own ``cell``, else a square L x L inferred from ``n_sites``. ``n_sites``: the model's fixed number of
    sites, which the window must have (None for a model of any size)."""
    if isinstance(window, System):
        window = window.lattice
    if isinstance(window, Lattice):
        if window.kind != target.kind:
            raise LatthermError(f"a model of a {window.kind} lattice cannot paint a {target.kind} target")
        size = window.size
    elif window is not None:
        size = lattice_for(target.kind, window if isinstance(window, str) else list(window)).size
    elif cell is not None:
        size = cell.size
    else:
        L = math.isqrt(int(n_sites or 0))
        if target.kind != "square" or L * L != n_sites:
            raise LatthermError(f"give the model's window cell (window=...) for a {n_sites}-site model")
        size = (L, L)
    if n_sites is not None and int(np.prod(size)) != n_sites:
        raise LatthermError(f"window {'x'.join(map(str, size))} does not match the model's {n_sites} sites")
    return tuple(int(v) for v in size)


def _check_window(target: Lattice, wsize: tuple) -> None:
    if len(wsize) != target.dim:
        raise LatthermError(f"a {len(wsize)}D window cannot paint the {target.dim}D target {target.label}")
    if any(w > L for w, L in zip(wsize, target.size)):
        raise LatthermError(f"the model's window {'x'.join(map(str, wsize))} is larger than the target "
                            f"{target.label}")


def _strides(stride, wsize, layout: str) -> tuple[int, ...]:
    """Per-axis strides from ``stride`` (int, per-axis tuple, or None: the layout's default in this dimension)."""
    if stride is None:
        d = DEFAULT_STRIDE[layout].get(len(wsize), 1)
        return tuple(min(d, w) for w in wsize)
    s = (int(stride),) * len(wsize) if np.ndim(stride) == 0 else tuple(int(v) for v in stride)
    if len(s) != len(wsize) or any(not 1 <= a <= w for a, w in zip(s, wsize)):
        raise LatthermError(f"stride {stride} must be between 1 and the window extent "
                            f"{'x'.join(map(str, wsize))} on every axis")
    return s


def _resolve_layout(layout: str, target: Lattice, wsize) -> str:
    """"auto": centered when every axis the window does not span has room for a site between two edges."""
    if layout not in LAYOUTS:
        raise LatthermError(f"unknown window layout {layout!r} (choose from: {', '.join(LAYOUTS)})")
    if layout != "auto":
        return layout
    return "centered" if all(w >= 3 for w, L in zip(wsize, target.size) if w < L) else "sliding"


# ---- layouts --------------------------------------------------------------------------------------------------------
def window_offsets(L: int, w: int, stride: int) -> list[int]:
    """Offsets 0, s, 2s, ... along one axis until the window [o, o + w) reaches the periodic image of site 0."""
    offs = [0]
    while offs[-1] + w < L:
        offs.append(offs[-1] + stride)
    return offs


def window_plan(target: Lattice, window_size, stride=None) -> list[np.ndarray]:
    """All sliding windows of ``window_size`` on ``target`` (periodic), as target-index maps in window site order."""
    wsize = tuple(int(v) for v in window_size)
    _check_window(target, wsize)
    offs = [window_offsets(L, w, s) for L, w, s in zip(target.size, wsize, _strides(stride, wsize, "sliding"))]
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
    if views is not None and int(views) < 1:
        raise LatthermError(f"views must be at least 1, got {views}")
    blocks, margins = [], []
    for L, w, s in zip(target.size, wsize, _strides(stride, wsize, "centered")):
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


def layout_steps(target: Lattice, wsize, stride=None, layout: str = "auto",
                 views: int | None = None) -> tuple[list[PaintStep], str, tuple]:
    """The steps of windows of ``wsize`` in ``layout`` -> (steps, the layout used, per-axis strides)."""
    layout = _resolve_layout(layout, target, wsize)
    s = _strides(stride, wsize, layout)
    if layout == "centered":
        return centered_plan(target, wsize, s, views), layout, s
    return [PaintStep(block=idx, views=[idx]) for idx in window_plan(target, wsize, s)], layout, s


def whole_target(target: Lattice) -> list[PaintStep]:
    """One step, one window: the target itself (a model that serves any cell size, painting directly)."""
    every = np.arange(target.n_sites)
    return [PaintStep(block=every, views=[every])]


def free_steps(steps: list[PaintStep], mask: np.ndarray) -> list[PaintStep]:
    """Each step keeps the sites of its block that neither the constraints (``mask``) nor an earlier step fill;
    steps left with nothing are dropped."""
    filled = mask.copy()
    kept = []
    for st in steps:
        todo = st.block[~filled[st.block]]
        if todo.size:
            kept.append(PaintStep(block=todo, views=st.views))
            filled[todo] = True
    assert filled.all(), "windows do not cover the target"
    return kept


def known_sets(target: Lattice, steps: list[PaintStep]) -> tuple[np.ndarray, np.ndarray]:
    """What each window of an unconstrained paint knows when the walk reaches each site: ``known`` (M, N_w) bool in
    the window's site order and ``site`` (M,) int64 the generated site's position in that window, one row per
    (generated site, view) in walk order. Inside a block of several sites the listed order stands in for the
    walk's random one.

    Why: a window model is only ever asked these conditionals when it paints (with the centered layout mostly
    one pattern: the raster prefix of the window up to its centre, plus the wrapped edges of the target), so
    maximum likelihood can weight them (``[data] paint_known``) instead of spreading the net over every subset."""
    filled = np.zeros(target.n_sites, dtype=bool)
    known, site = [], []
    for st in steps:
        for s in st.block:
            for idx in st.views:
                known.append(filled[idx])
                site.append(int(np.flatnonzero(idx == s)[0]))
            filled[s] = True
    return np.stack(known), np.asarray(site, dtype=np.int64)


__all__ = ["LAYOUTS", "PaintStep", "PaintPlan", "window_cell", "window_offsets",
           "window_plan", "centered_plan", "layout_steps", "whole_target", "free_steps", "known_sets"]
