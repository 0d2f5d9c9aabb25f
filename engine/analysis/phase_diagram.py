"""Temperature-composition phase diagrams from model samples (the paper's Fig. 4) and <x>(mu) isotherms.

A grid of (T, mu) conditions is sampled; each sample's composition x = n_Au / N (for Ising: the fraction of up
spins) falls in one of the N + 1 bins
0, 1/N, ..., 1. The density of sampled compositions at each T, pooled over mu, is the temperature-composition map;
<x>(mu) per T are the isotherms. Data go to phase_grid.npz / phase_grid.csv, figures (drawn by
:mod:`.figures`, with axes in the system's units) to PNG and SVG, or the formats asked for.
"""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..errors import LatthermError
from ..systems.base import check_condition

GRID_KEYS = ("T", "mu", "x_mean", "x_std", "x_bins", "x_hist")


def _check_axes(T_values, mu_values) -> tuple[np.ndarray, np.ndarray]:
    T = np.asarray(T_values, dtype=np.float64).reshape(-1)
    mu = np.asarray(mu_values, dtype=np.float64).reshape(-1)
    if T.size == 0 or mu.size == 0:
        raise LatthermError("the phase grid needs at least one temperature and one chemical potential")
    check_condition(T, mu)
    return T, mu


def _grid(T, mu, n_sites: int, xs) -> dict:
    """xs[i][j]: 1-D array of sampled compositions at (T[i], mu[j])."""
    nT, nmu = len(T), len(mu)
    x_mean = np.empty((nT, nmu))
    x_std = np.empty((nT, nmu))
    hist = np.zeros((nT, n_sites + 1), dtype=np.int64)
    for i in range(nT):
        for j in range(nmu):
            x = np.asarray(xs[i][j], dtype=np.float64)
            x_mean[i, j] = x.mean()
            x_std[i, j] = x.std()
            n = np.clip(np.rint(x * n_sites).astype(np.int64), 0, n_sites)
            hist[i] += np.bincount(n, minlength=n_sites + 1)
    return {"T": T, "mu": mu, "x_mean": x_mean, "x_std": x_std,
            "x_bins": np.arange(n_sites + 1) / n_sites, "x_hist": hist}


def model_phase_grid(lm, T_values, mu_values, n_samples: int, generator=None) -> dict:
    """Sample the loaded model ``lm`` at every (T, mu) of the grid: T (nT,), mu (nmu,), x_mean / x_std (nT, nmu) of
    the sampled x_Au, x_bins (N+1,) and x_hist (nT, N+1) counts of sampled compositions per T (pooled over mu)."""
    if isinstance(n_samples, bool) or int(n_samples) != n_samples or n_samples < 1:
        raise LatthermError(f"n_samples must be an integer >= 1, got {n_samples!r}")
    T, mu = _check_axes(T_values, mu_values)
    system = lm.system
    xs = []
    with torch.no_grad():
        for t in T:
            row = []
            for m in mu:
                sb = lm.model.sample(float(t), float(m), batch=int(n_samples), generator=generator)
                row.append(system.composition(sb.spins.cpu()).numpy())
            xs.append(row)
    return _grid(T, mu, system.n_sites, xs)


def mc_phase_grid(system, T_values, mu_values, n_chains: int = 16, sweeps: int = 200, equilibration: int = 100,
                  generator=None) -> dict:
    """The same arrays from semi-grand-canonical Metropolis (the reference); compositions are the recorded chain
    states, all conditions run as one batch of chains."""
    from ..montecarlo import metropolis

    T, mu = _check_axes(T_values, mu_values)
    TT, MM = np.meshgrid(T, mu, indexing="ij")
    Tc = torch.as_tensor(np.repeat(TT.reshape(-1), n_chains))
    Mc = torch.as_tensor(np.repeat(MM.reshape(-1), n_chains))
    res = metropolis(system, Tc, Mc, n_chains * T.size * mu.size, sweeps, equilibration=equilibration,
                     generator=generator)
    obs = system.composition_of_observable(res.observable.cpu().numpy()).reshape(T.size, mu.size, -1)
    return _grid(T, mu, system.n_sites, obs)


# ---- files ------------------------------------------------------------------------------------------------------
def grid_csv(grid: dict) -> str:
    """One row per (T, mu): T, mu, x_mean, x_std, each written with repr so it reads back exactly."""
    lines = ["T,mu,x_mean,x_std"]
    for i, t in enumerate(grid["T"]):
        for j, m in enumerate(grid["mu"]):
            lines.append(",".join(repr(float(v)) for v in (t, m, grid["x_mean"][i, j], grid["x_std"][i, j])))
    return "\n".join(lines) + "\n"


def write_phase_diagram(out_dir, grid: dict, system_name: str, reference=None, x_label: str | None = None,
                        formats=("png", "svg")) -> list[Path]:
    """Write phase_grid.npz/.csv and the figures temperature_composition.<fmt> and isotherms.<fmt> for each of
    ``formats`` (png, svg, pdf) into ``out_dir``.

    reference: optional (T, x_a, x_b) rows (e.g. :func:`lattherm.engine.analysis.composition.phase_boundary`)
    overlaid on the temperature-composition map as the two-phase boundary. ``x_label`` names the composition on
    the axes (default: the system's, e.g. x_Au). Everything is rendered in memory first, then each file is written
    atomically (a new folder appears whole or not at all).
    """
    from . import figures

    missing = [k for k in GRID_KEYS if k not in grid]
    if missing:
        raise LatthermError(f"phase grid lacks {', '.join(missing)}")
    formats = figures.parse_formats(formats)
    info = figures.system_info_of(system_name)
    if x_label:
        info = replace(info, composition=str(x_label))
    buf = io.BytesIO()
    arrays = {k: np.asarray(grid[k]) for k in GRID_KEYS}
    ref = np.asarray([tuple(float(v) for v in r) for r in (reference or [])], dtype=np.float64).reshape(-1, 3)
    np.savez(buf, **arrays, reference=ref, system=np.asarray(info.name))
    files = {"phase_grid.npz": buf.getvalue(), "phase_grid.csv": grid_csv(grid).encode()}
    drawn = {"temperature_composition": figures.temperature_composition(grid, info, reference),
             "isotherms": figures.isotherms(grid, info)}
    for stem, fig in drawn.items():
        for fmt in formats:
            files[f"{stem}.{fmt}"] = figures.render(fig, fmt)
    return figures.write_folder(out_dir, files)
