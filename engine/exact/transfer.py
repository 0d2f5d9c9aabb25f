"""Exact Ising torus in a field by the row-to-row transfer matrix, block-diagonalised by row momentum.

Z = tr T^n for the symmetric transfer matrix T(a, b) = exp(K c(a, b) + H m(a, b)) between rows a, b of width w
(n rows), with c = (B_row(a) + B_row(b))/2 + a.b (horizontal bonds split between the two rows, vertical bonds
once) and m = (sum a + sum b)/2, K = eps/(k_B T), H = mu/(k_B T). T commutes with the cyclic shift of a row, so in
the momentum basis |r, k> = p_r^{-1/2} sum_{t<p_r} e^{ikt} S^t |r> (r a necklace representative of period p_r) it
splits into w blocks of size ~2^w / w; blocks k and -k are complex conjugates and share their spectrum. That
turns an O(8^w) dense problem into ~w/2 small Hermitian eigenproblems and makes widths up to 14 practical.

Derivatives are analytic in the eigenbasis (T_K = c o T, T_KK = c^2 o T, T_H = m o T are block-diagonal too):
  d tr T^n = n tr(T^{n-1} dT),
  d^2 tr T^n / dK^2 = n tr(T^{n-1} T_KK) + n sum_ij F_ij |(U^H T_K U)_ij|^2,  F_ij = sum_{a<n-1} l_i^a l_j^{n-2-a},
so <E>, <M> and C are exact to rounding, with no finite differences.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ..errors import LatthermError
from ..systems.base import check_condition
from ._threads import single_threaded
from .result import ExactResult

#: widest row (the shorter side of the torus) the transfer matrix accepts: 2^14 row states, blocks of ~1200
MAX_TM_WIDTH = 14


@dataclass(frozen=True)
class _RowSpace:
    """Necklace structure of the 2^w row states and the (shift, rep', rep) couplings, fixed per width."""

    width: int
    periods: np.ndarray        # (n_reps,) orbit size p_r of each representative
    c2: torch.Tensor           # (w, n_reps, n_reps) int16: 2 c(S^t r', r)
    m2: torch.Tensor           # (w, n_reps, n_reps) int16: 2 m(S^t r', r)


def _rotate(states: np.ndarray, t: int, w: int) -> np.ndarray:
    t %= w
    mask = (1 << w) - 1
    return ((states << t) | (states >> (w - t))) & mask if t else states.copy()


@lru_cache(maxsize=2)
def _row_space(w: int) -> _RowSpace:
    d = 1 << w
    states = np.arange(d, dtype=np.int64)
    popcount = np.zeros(d, dtype=np.int64)
    for j in range(w):
        popcount += (states >> j) & 1
    spin_sum = 2 * popcount - w
    row_bonds = w - 2 * popcount[states ^ _rotate(states, 1, w)]
    rotations = np.stack([_rotate(states, t, w) for t in range(w)])   # (w, d)
    rep_of = rotations.min(0)
    reps = np.flatnonzero(rep_of == states)
    # period = smallest t > 0 with S^t r = r (t = w for an aperiodic row)
    same = np.concatenate([rotations[1:, reps] == reps[None, :], np.ones((1, reps.size), bool)])
    periods = same.argmax(0) + 1
    a = np.stack([_rotate(reps, t, w) for t in range(w)])             # (w, n): S^t r'
    b = reps
    c2 = (row_bonds[a][:, :, None] + row_bonds[b][None, None, :]
          + 2 * (w - 2 * popcount[a[:, :, None] ^ b[None, None, :]]))
    m2 = spin_sum[a][:, :, None] + spin_sum[b][None, None, :]
    return _RowSpace(w, periods, torch.from_numpy(c2.astype(np.int16)), torch.from_numpy(m2.astype(np.int16)))


def _momentum_blocks(space: _RowSpace, weights: list[torch.Tensor]) -> list[tuple[int, list[torch.Tensor]]]:
    """For q = 0..w/2: (multiplicity, [block of each weighted matrix]) in the momentum-q basis."""
    w = space.width
    p = torch.from_numpy(space.periods)
    spectra = [torch.fft.rfft(g, dim=0) for g in weights]             # sum_t e^{-2 pi i q t / w} g[t]
    out = []
    for q in range(w // 2 + 1):
        idx = torch.from_numpy(np.flatnonzero((q * space.periods) % w == 0))
        if idx.numel() == 0:
            continue
        scale = torch.sqrt(p[idx].to(torch.float64))
        scale = (scale[:, None] * scale[None, :]) / w
        blocks = []
        for f in spectra:
            blk = f[q][idx][:, idx] * scale
            blocks.append(0.5 * (blk + blk.conj().T))
        out.append((1 if q == 0 or 2 * q == w else 2, blocks))
    return out


def _ising_dims(system) -> tuple[int, int]:
    if system.square_ising_coupling is None:
        raise LatthermError(f"the transfer matrix is only available for the square-lattice Ising model, "
                            f"not {system!r}")
    return tuple(int(v) for v in system.lattice.size)


def transfer_matrix_log_z(L1: int, L2: int, K: float, H: float, derivatives: bool = True) -> dict:
    """log Z(K, H) of the Ising torus with L1 rows and L2 columns, and d/dK, d^2/dK^2, d/dH of log Z.

    log f = K sum_<ij> s_i s_j + H sum_i s_i. The shorter side is used as the row width (Z is symmetric under
    transposition); it must be at most MAX_TM_WIDTH. Returns a dict with log_Z (and d_log_z_dK, d2_log_z_dK2,
    d_log_z_dH when ``derivatives``).
    """
    if min(L1, L2) > MAX_TM_WIDTH:
        raise LatthermError(f"the transfer matrix needs the shorter side of the torus <= {MAX_TM_WIDTH} "
                            f"(2^{min(L1, L2)} row states are too many), got {L1}x{L2}")
    with single_threaded():
        return _solve(int(L1), int(L2), float(K), float(H), derivatives)


def _solve(L1: int, L2: int, K: float, H: float, derivatives: bool) -> dict:
    n, w = max(L1, L2), min(L1, L2)
    space = _row_space(w)
    K, H = float(K), float(H)
    c = space.c2.to(torch.float64) * 0.5
    m = space.m2.to(torch.float64) * 0.5
    expo = K * c + H * m
    shift = float(expo.max())                                         # T / e^shift has entries <= 1: no overflow
    g = torch.exp(expo - shift)
    del expo
    weights = [g, c * g, c * c * g, m * g] if derivatives else [g]
    del c, m
    blocks = _momentum_blocks(space, weights)
    del weights, g

    eig = []
    for mult, mats in blocks:
        lam, u = torch.linalg.eigh(mats[0])
        eig.append((mult, lam.clamp_min(0.0), u, mats))                # T is positive definite (K > 0)
    top = max(float(lam.max()) for _, lam, _, _ in eig)
    z = 0.0
    dk = dh = dkk = 0.0
    for mult, lam, u, mats in eig:
        mu_ = lam / top
        z += mult * float((mu_ ** n).sum())
        if not derivatives:
            continue
        pw = mu_ ** (n - 1)
        p = (u * pw) @ u.conj().T / top                               # T^{n-1} in the original block basis
        x = (u.conj().T @ mats[1] @ u) / top                          # T_K in the eigenbasis
        dk += mult * n * float((pw * x.diagonal().real).sum())
        dh += mult * n * float((p * mats[3].conj()).sum().real)      # tr(T^{n-1} T_H), T_H Hermitian
        second = n * float((p * mats[2].conj()).sum().real)
        if n >= 2:
            powers = mu_[None, :] ** torch.arange(n - 1, dtype=torch.float64)[:, None]   # (n-1, b): mu^a
            f = powers.T @ powers.flip(0)                                                  # sum_a mu_i^a mu_j^(n-2-a)
            second += n * float((f * (x.real ** 2 + x.imag ** 2)).sum())
        dkk += mult * second
    log_z = n * (shift + math.log(top)) + math.log(z)
    out = {"log_Z": log_z}
    if derivatives:
        d_k = dk / z
        out.update(d_log_z_dK=d_k, d2_log_z_dK2=dkk / z - d_k * d_k, d_log_z_dH=dh / z)
    return out


def transfer_matrix(system, T: float, mu: float) -> ExactResult:
    """Exact log Z, <E>/N, <M>/N and C/N of an Ising torus at (T, mu) from the row-to-row transfer matrix."""
    check_condition(T, mu)
    L1, L2 = _ising_dims(system)
    T, mu = float(T), float(mu)
    eps = float(system.square_ising_coupling)
    beta = 1.0 / (system.k_B * T)
    K, H = eps * beta, mu * beta
    r = transfer_matrix_log_z(L1, L2, K, H)
    n = L1 * L2
    return ExactResult.from_log_z("transfer_matrix", T, mu, n, system.k_B, r["log_Z"],
                                  mean_energy_per_site=-eps * r["d_log_z_dK"] / n,
                                  mean_observable=r["d_log_z_dH"] / n,
                                  heat_capacity_per_site=K * K * r["d2_log_z_dK2"] / n)
