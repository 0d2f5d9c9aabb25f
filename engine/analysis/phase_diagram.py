"""Temperature-composition phase diagrams from model samples (the paper's Fig. 4) and <x>(mu) isotherms.

A grid of (T, mu) conditions is sampled; each sample's composition x = n_Au / N (for Ising: the fraction of up
spins) falls in one of the N + 1 bins
0, 1/N, ..., 1. The density of sampled compositions at each T, pooled over mu, is the temperature-composition map;
<x>(mu) per T are the isotherms. Data go to phase_grid.npz / phase_grid.csv, figures to PNG and SVG (matplotlib is
not required: the PNG is encoded with zlib, the SVG written by hand).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
import tempfile
import zlib
from pathlib import Path
from xml.sax.saxutils import escape

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
def _png(rgb: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 image as PNG (8-bit RGB, no filtering)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[r].astype(np.uint8).tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _colour(v: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] from white to dark blue; returns (..., 3) uint8."""
    lo, hi = np.array([255.0, 255.0, 255.0]), np.array([8.0, 48.0, 107.0])
    return np.rint(lo + (hi - lo) * np.clip(v, 0, 1)[..., None]).astype(np.uint8)


def _density(grid: dict) -> np.ndarray:
    hist = np.asarray(grid["x_hist"], dtype=np.float64)
    peak = hist.max(axis=1, keepdims=True)
    return np.divide(hist, peak, out=np.zeros_like(hist), where=peak > 0)


def _series_colour(k: int, n: int) -> str:
    f = k / max(n - 1, 1)  # low T blue, high T red
    return f"rgb({int(30 + 200 * f)},{int(60 + 40 * (1 - abs(2 * f - 1)))},{int(230 - 200 * f)})"


def _ref_points(reference) -> list[tuple[float, float]]:
    pts = []
    for row in reference or []:
        T, *xs = row
        pts.extend((float(x), float(T)) for x in xs)
    return pts


def temperature_composition_png(grid: dict, reference=None, cell: int = 12) -> bytes:
    """Density of sampled compositions: x across (left to right), T up (highest T on the top row)."""
    dens = _density(grid)[::-1]  # top row = highest T
    rgb = _colour(dens)
    T, bins = np.asarray(grid["T"]), np.asarray(grid["x_bins"])
    for x, t in _ref_points(reference):
        i = len(T) - 1 - int(np.argmin(np.abs(T - t)))
        j = int(np.argmin(np.abs(bins - x)))
        rgb[i, j] = (220, 30, 30)
    return _png(np.repeat(np.repeat(rgb, cell, axis=0), cell, axis=1))


def isotherms_png(grid: dict, width: int = 480, height: int = 360) -> bytes:
    """<x>(mu) per T as polylines (drawn by dense point sampling) on a white canvas with a grey frame."""
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    img[[0, -1], :] = 160
    img[:, [0, -1]] = 160
    mu, xm = np.asarray(grid["mu"]), np.asarray(grid["x_mean"])
    span = (mu.max() - mu.min()) or 1.0
    for k, row in enumerate(xm):
        c = [int(v) for v in _series_colour(k, len(xm))[4:-1].split(",")]
        fine = np.linspace(mu.min(), mu.max(), 4 * width)
        ys = np.interp(fine, mu, row)
        px = np.rint(5 + (fine - mu.min()) / span * (width - 11)).astype(int)
        py = np.rint(height - 6 - np.clip(ys, 0, 1) * (height - 11)).astype(int)
        img[py, px] = c
    return _png(img)


def temperature_composition_svg(grid: dict, system_name: str, reference=None, x_label: str = "x_Au") -> str:
    T, bins, dens = np.asarray(grid["T"]), np.asarray(grid["x_bins"]), _density(grid)
    W, H, L, B, R, Tp = 520, 420, 70, 50, 20, 30
    pw, ph = W - L - R, H - B - Tp
    cw, ch = pw / len(bins), ph / len(T)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">',
           f'<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="18" text-anchor="middle" font-size="14">'
           f'{escape(system_name)}: sampled composition density</text>']
    for i in range(len(T)):
        for j in range(len(bins)):
            r, g, b = (int(v) for v in _colour(dens[i, j]))
            y = Tp + ph - (i + 1) * ch
            out.append(f'<rect x="{L + j * cw:.2f}" y="{y:.2f}" width="{cw:.2f}" height="{ch:.2f}" '
                       f'fill="rgb({r},{g},{b})"/>')
    for x, t in _ref_points(reference):
        i = int(np.argmin(np.abs(T - t)))
        cx, cy = L + (x * (len(bins) - 1) + 0.5) * cw, Tp + ph - (i + 0.5) * ch
        out.append(f'<circle cx="{cx:.2f}" cy="{cy:.2f}" r="3" fill="rgb(220,30,30)"/>')
    out.append(f'<rect x="{L}" y="{Tp}" width="{pw}" height="{ph}" fill="none" stroke="black"/>')
    for j in (0, len(bins) // 2, len(bins) - 1):
        out.append(f'<text x="{L + (j + 0.5) * cw:.2f}" y="{Tp + ph + 16}" text-anchor="middle" font-size="11">'
                   f'{bins[j]:.2f}</text>')
    for i in sorted({0, len(T) // 2, len(T) - 1}):
        out.append(f'<text x="{L - 6}" y="{Tp + ph - (i + 0.5) * ch + 4:.2f}" text-anchor="end" font-size="11">'
                   f'{T[i]:g}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 12}" text-anchor="middle" font-size="12">{escape(x_label)}</text>')
    out.append(f'<text x="16" y="{Tp + ph / 2}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 16 {Tp + ph / 2})">T</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def isotherms_svg(grid: dict, system_name: str, x_label: str = "x_Au") -> str:
    mu, xm = np.asarray(grid["mu"]), np.asarray(grid["x_mean"])
    W, H, L, B, R, Tp = 520, 420, 70, 50, 110, 30
    pw, ph = W - L - R, H - B - Tp
    lo, span = mu.min(), (mu.max() - mu.min()) or 1.0
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">',
           f'<rect x="0" y="0" width="{W}" height="{H}" fill="white"/>',
           f'<text x="{(L + W - R) / 2}" y="18" text-anchor="middle" font-size="14">'
           f'{escape(system_name)}: &lt;{escape(x_label)}&gt;(mu) isotherms</text>',
           f'<rect x="{L}" y="{Tp}" width="{pw}" height="{ph}" fill="none" stroke="black"/>']
    for k, row in enumerate(xm):
        pts = " ".join(f"{L + (m - lo) / span * pw:.2f},{Tp + ph - float(np.clip(x, 0, 1)) * ph:.2f}"
                       for m, x in zip(mu, row))
        col = _series_colour(k, len(xm))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{col}" stroke-width="1.5"/>')
        out.append(f'<text x="{W - R + 8}" y="{Tp + 14 + 14 * k}" font-size="11" fill="{col}">'
                   f'T={float(grid["T"][k]):g}</text>')
    for v in (0.0, 0.5, 1.0):
        out.append(f'<text x="{L - 6}" y="{Tp + ph - v * ph + 4:.2f}" text-anchor="end" font-size="11">{v:g}</text>')
    for m in (mu.min(), mu.max()):
        out.append(f'<text x="{L + (m - lo) / span * pw:.2f}" y="{Tp + ph + 16}" text-anchor="middle" '
                   f'font-size="11">{m:g}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 12}" text-anchor="middle" font-size="12">mu</text>')
    out.append(f'<text x="16" y="{Tp + ph / 2}" text-anchor="middle" font-size="12" '
               f'transform="rotate(-90 16 {Tp + ph / 2})">&lt;{escape(x_label)}&gt;</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def grid_csv(grid: dict) -> str:
    """One row per (T, mu): T, mu, x_mean, x_std, each written with repr so it reads back exactly."""
    lines = ["T,mu,x_mean,x_std"]
    for i, t in enumerate(grid["T"]):
        for j, m in enumerate(grid["mu"]):
            lines.append(",".join(repr(float(v)) for v in (t, m, grid["x_mean"][i, j], grid["x_std"][i, j])))
    return "\n".join(lines) + "\n"


def write_phase_diagram(out_dir, grid: dict, system_name: str, reference=None, x_label: str = "x_Au") -> list[Path]:
    """Write phase_grid.npz/.csv, temperature_composition.png/.svg and isotherms.png/.svg into ``out_dir``.

    reference: optional (T, x_a, x_b) rows (e.g. :func:`lattherm.engine.analysis.composition.phase_boundary`)
    overlaid on the temperature-composition map. Everything is rendered in memory first, then each file is written
    atomically.
    """
    from ..store import atomic_write_bytes

    missing = [k for k in GRID_KEYS if k not in grid]
    if missing:
        raise LatthermError(f"phase grid lacks {', '.join(missing)}")
    buf = io.BytesIO()
    arrays = {k: np.asarray(grid[k]) for k in GRID_KEYS}
    ref = np.asarray([tuple(float(v) for v in r) for r in (reference or [])], dtype=np.float64).reshape(-1, 3)
    np.savez(buf, **arrays, reference=ref, system=np.asarray(system_name))
    files = {
        "phase_grid.npz": buf.getvalue(),
        "phase_grid.csv": grid_csv(grid).encode(),
        "temperature_composition.png": temperature_composition_png(grid, reference),
        "temperature_composition.svg": temperature_composition_svg(grid, system_name, reference, x_label).encode(),
        "isotherms.png": isotherms_png(grid),
        "isotherms.svg": isotherms_svg(grid, system_name, x_label).encode(),
    }
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise LatthermError(f"{out} exists and is not a folder")
        return [atomic_write_bytes(out / name, data) for name, data in files.items()]
    # A new folder appears whole or not at all: fill a hidden sibling, then rename it.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        for name, data in files.items():
            atomic_write_bytes(tmp / name, data)
        os.chmod(tmp, 0o755)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / name for name in files]
