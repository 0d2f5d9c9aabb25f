"""Periodic axial rotary position embeddings for 2D / 3D lattice supercells (ALGORITHMS.md §6, PAPER App. E).

The head dimension d_h is split into one contiguous chunk per lattice axis, each of even size d_a = 2 * floor(d_h /
(2 D)); the remainder d_h - D * d_a stays unrotated (a content-only channel). Pair k of chunk a is rotated by

    theta_{a,k}(g) = 2 pi * n_{a,k} * g_a / L_a,     n_{a,k} in {1, ..., floor(L_a / 2)} (cycled)

where g are the site's integer cell coordinates (so g_a / L_a is its fractional coordinate along supercell vector a)
and L_a is the period used on that axis. Because the phase is computed as ((n g) mod L) / L from integers, positions
g and g + L e_a give bit-identical rotations, and q_i . k_j depends only on (g_i - g_j) mod L up to rounding.

The frequency integers n_{a,k} are fixed by the training cell; which period L_a is used on a bigger cell is a choice
("trained": the training cell's periods, exact only if the target is a multiple of them; "target": the target
cell's own periods), see :func:`rope_periods`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import LatthermError

PERIOD_MODES = ("trained", "target")


def axis_chunk(head_dim: int, dim: int) -> int:
    """Even size of each axis' chunk of the head dimension (the remainder stays unrotated)."""
    d_a = 2 * (int(head_dim) // (2 * int(dim)))
    if d_a < 2:
        raise ValueError(f"head dimension {head_dim} is too small for {dim} rotated axes (needs >= {2 * dim})")
    return d_a


def axial_frequencies(train_periods, pairs_per_axis: int) -> np.ndarray:
    """(D, pairs_per_axis) integer frequencies n_{a,k}: 1..floor(L_a/2) cycled (L_a = 1 gives n = 1, a constant)."""
    out = np.zeros((len(train_periods), pairs_per_axis), dtype=np.int64)
    for a, L in enumerate(train_periods):
        top = max(1, int(L) // 2)
        out[a] = 1 + (np.arange(pairs_per_axis) % top)
    return out


def rope_periods(train_size, target_size, mode: str = "trained") -> tuple[int, ...]:
    """Per-axis periods to use on a cell ``target_size`` for a model trained on ``train_size``.

    "trained" keeps the training periods (valid only if every target extent is a multiple of the trained one);
    "target" uses the target's own extents (always exactly periodic on the target)."""
    if mode not in PERIOD_MODES:
        raise LatthermError(f"unknown RoPE period mode {mode!r} (choose from: {', '.join(PERIOD_MODES)})")
    train_size, target_size = tuple(int(v) for v in train_size), tuple(int(v) for v in target_size)
    if len(train_size) != len(target_size):
        raise LatthermError(f"a {len(train_size)}D model cannot run on a {len(target_size)}D cell")
    if mode == "target":
        return target_size
    if any(t % L for t, L in zip(target_size, train_size)):
        raise LatthermError(
            f"cell {'x'.join(map(str, target_size))} is not a multiple of the training cell "
            f"{'x'.join(map(str, train_size))}; use RoPE period mode 'target'")
    return train_size


def rope_angles(grid, periods, freqs: np.ndarray) -> torch.Tensor:
    """(N, D * pairs) float64 angles for integer cell coordinates ``grid`` (N, D), chunk-major (axis a's pairs
    are contiguous). Computed from integers modulo the period, so it is exactly periodic in every coordinate."""
    g = torch.as_tensor(np.asarray(grid), dtype=torch.long)
    n = torch.as_tensor(freqs, dtype=torch.long)  # (D, P)
    L = torch.as_tensor([int(v) for v in periods], dtype=torch.long)  # (D,)
    phase = torch.remainder(g[:, :, None] * n[None], L[None, :, None])  # (N, D, P) in 0..L-1
    ang = (2.0 * math.pi) * phase.to(torch.float64) / L[None, :, None].to(torch.float64)
    return ang.reshape(g.shape[0], -1)


def rope_tables(grid, periods, freqs: np.ndarray, dtype=torch.float32, device=None):
    """Tables (C, S), each (N, 2 P), for :func:`apply_rope`: C = (cos_0, cos_0, cos_1, cos_1, ...) and
    S = (-sin_0, sin_0, -sin_1, sin_1, ...) of :func:`rope_angles`, cast to ``dtype`` on ``device``."""
    ang = rope_angles(grid, periods, freqs)
    c, s = ang.cos(), ang.sin()
    C = torch.stack([c, c], -1).flatten(-2)
    S = torch.stack([-s, s], -1).flatten(-2)
    return C.to(dtype=dtype, device=device), S.to(dtype=dtype, device=device)


def apply_rope(x: torch.Tensor, C: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (x_{2k}, x_{2k+1}) of the first 2P channels of x (..., N, d_h) by the angles of the
    :func:`rope_tables` (C, S) (N, 2P): out = x C + swap(x) S with swap exchanging each pair, i.e.
    (u cos - v sin, u sin + v cos). Channels beyond 2P pass through unchanged."""
    R = C.shape[-1]
    rot = x[..., :R]
    swapped = rot.unflatten(-1, (R // 2, 2)).flip(-1).flatten(-2)
    out = rot * C.to(x.dtype) + swapped * S.to(x.dtype)
    return out if R == x.shape[-1] else torch.cat([out, x[..., R:]], dim=-1)
