"""Local flip energies from a system's spin polynomial.

The energy is a polynomial in the spins, E(s) = const + sum_m c_m prod_{v in m} s_v, so flipping s_i changes it by
Delta E_i = -2 s_i * sum_{m containing i} c_m prod_{v in m, v != i} s_v: a single-site update only needs the
monomials touching that site, not a full energy. :func:`flip_tables` builds, per site and per degree, the padded
list of the other sites of every monomial containing it and its coefficient (from :meth:`System.spin_polynomial`:
for a cluster expansion its reduced orbit polynomial plus the linear reference term of E_form, for Ising its
bonds). The tables are self-checked against full energy differences on random configurations when built; a system
without a polynomial (or failing the check) falls back to full energy differences.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field

import numpy as np
import torch

from ..systems.base import System

__all__ = ["FlipTables", "flip_tables", "flip_energy_pairs", "pad_spins"]


@dataclass
class FlipTables:
    """Per-site polynomial terms: Delta E_i = -2 s_i (h_i + sum_d sum_k coef_d[i, k] prod_j s[others_d[i, k, j]]).

    ``others`` index a spin vector padded with one constant +1 entry at index N (padding points there with coef 0).
    ``exact`` False means no polynomial form is known; :meth:`delta` then uses full energy differences."""

    n_sites: int
    h: torch.Tensor  # (N,) float64 linear coefficients
    others: list  # per degree d >= 2: (N, K_d, d-1) long
    coefs: list  # per degree d >= 2: (N, K_d) float64
    system: System | None = None
    exact: bool = True
    _cache: dict = field(default_factory=dict, repr=False)

    def on(self, device) -> "FlipTables":
        """These tables on ``device`` (copied once per device, then cached)."""
        key = str(torch.device(device))
        if str(self.h.device) == key:
            return self
        hit = self._cache.get(key)
        if hit is None:
            hit = FlipTables(self.n_sites, self.h.to(device), [o.to(device) for o in self.others],
                             [c.to(device) for c in self.coefs], self.system, self.exact)
            self._cache[key] = hit
        return hit

    def local(self, s: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """sum_{m containing i} c_m prod_{v in m, v != i} s_v, float64 of i's shape, for padded spins s (B, N+1)
        and sites i (B,) or (B, M) (M sites per row, each against the row's unchanged spins)."""
        B, shape = s.shape[0], i.shape
        flat = i.reshape(-1)
        out = self.h.index_select(0, flat).view(shape).clone()
        for o, c in zip(self.others, self.coefs):
            idx = o.index_select(0, flat)  # (B*M, K, d-1)
            K, m = idx.shape[1], idx.shape[2]
            g = torch.gather(s, 1, idx.reshape(B, -1)).reshape(*shape, K, m)
            p = g[..., 0]
            for j in range(1, m):
                p = p * g[..., j]
            out += (p.to(torch.float64) * c.index_select(0, flat).view(*shape, K)).sum(-1)
        return out

    def delta(self, s: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """E(s with s_i flipped) - E(s), float64 of i's shape, for padded spins s (B, N+1) and one site per row i
        (B,), or M sites per row (B, M), each flipped alone (M > 1: exact tables only)."""
        si = s.gather(1, i if i.ndim == 2 else i[:, None]).view(i.shape).to(torch.float64)
        if self.exact:
            return -2.0 * si * self.local(s, i)
        if i.ndim == 2 and i.shape[1] != 1:
            raise ValueError("several flips per row need a spin polynomial")
        x = s[:, : self.n_sites].to(torch.float64)
        y = x.clone()
        y.scatter_(1, i.view(-1, 1), -si.view(-1, 1))
        return (self.system.energy(y) - self.system.energy(x)).view(i.shape)

    def partners(self) -> list[np.ndarray] | None:
        """Per site, the other sites it shares a monomial with (what its flip energy reads); None without a
        polynomial."""
        if not self.exact:
            return None
        if "partners" in self._cache:  # a loop over sites: the layout and the colouring both ask
            return self._cache["partners"]
        out = [set() for _ in range(self.n_sites)]
        for o, c in zip(self.others, self.coefs):
            o, live = o.cpu().numpy(), c.cpu().numpy() != 0
            for i in range(self.n_sites):
                out[i].update(int(v) for v in o[i][live[i]].reshape(-1) if v < self.n_sites)
        self._cache["partners"] = [np.array(sorted(v - {i}), dtype=np.int64) for i, v in enumerate(out)]
        return self._cache["partners"]


def pad_spins(s: torch.Tensor, dtype) -> torch.Tensor:
    """(B, N) spins -> (B, N+1) in ``dtype`` with a constant +1 last column (the padding target of the tables)."""
    return torch.cat([s.to(dtype), torch.ones(s.shape[0], 1, dtype=dtype, device=s.device)], 1).contiguous()


def _tables_from_monomials(n: int, linear: np.ndarray, monos: list) -> FlipTables:
    """linear (N,) coefficients and [(sites (M, d), coef (M,))] for d >= 2 -> padded per-site tables."""
    by_degree: dict[int, list] = {}
    for sites, coef in monos:
        sites = np.asarray(sites, dtype=np.int64)
        coef = np.asarray(coef, dtype=np.float64)
        if sites.ndim != 2 or len(sites) == 0:
            continue
        d = sites.shape[1]
        for j in range(d):  # the monomial seen from each of its sites
            rest = np.delete(sites, j, axis=1)
            by_degree.setdefault(d, []).append((sites[:, j], rest, coef))
    others, coefs = [], []
    for d in sorted(by_degree):
        site = np.concatenate([a for a, _, _ in by_degree[d]])
        rest = np.concatenate([b for _, b, _ in by_degree[d]])
        coef = np.concatenate([c for _, _, c in by_degree[d]])
        order = np.argsort(site, kind="stable")
        site, rest, coef = site[order], rest[order], coef[order]
        count = np.bincount(site, minlength=n)
        K = int(count.max())
        start = np.concatenate([[0], np.cumsum(count)[:-1]])
        rank = np.arange(len(site)) - start[site]
        O = np.full((n, K, d - 1), n, dtype=np.int64)  # padding -> the constant +1 entry
        C = np.zeros((n, K), dtype=np.float64)
        O[site, rank] = rest
        C[site, rank] = coef
        others.append(torch.as_tensor(O))
        coefs.append(torch.as_tensor(C))
    return FlipTables(n, torch.as_tensor(np.asarray(linear, dtype=np.float64)), others, coefs)


_TABLES: "weakref.WeakKeyDictionary[System, FlipTables]" = weakref.WeakKeyDictionary()


def flip_tables(system: System, check: bool = True) -> FlipTables:
    """Per-site flip tables of ``system`` (cached on the object) from its :meth:`System.spin_polynomial`; a system
    without one (or whose tables fail the self-check) uses full energy differences."""
    hit = _TABLES.get(system)
    if hit is not None:
        return hit
    tables = None
    poly = system.spin_polynomial()
    if poly is not None:
        linear, monos = poly
        tables = _tables_from_monomials(system.n_sites, np.asarray(linear, dtype=np.float64), monos)
    if tables is not None:
        tables.system = system
        if check and not _self_check(system, tables):
            tables = None
    if tables is None:
        n = system.n_sites
        tables = FlipTables(n, torch.zeros(n, dtype=torch.float64), [], [], system, exact=False)
    tables.system = system
    _TABLES[system] = tables
    return tables


def flip_energy_pairs(system: System, tables: FlipTables, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(table flip energy, full energy difference) for ``batch`` random configurations and random sites."""
    g = torch.Generator().manual_seed(seed)
    n = system.n_sites
    s = (2 * torch.randint(0, 2, (batch, n), generator=g) - 1).to(torch.float64)
    i = torch.randint(0, n, (batch,), generator=g)
    d = tables.delta(pad_spins(s, torch.float64), i)
    y = s.clone()
    y[torch.arange(batch), i] *= -1
    return d, system.energy(y) - system.energy(s)


def _self_check(system: System, tables: FlipTables, batch: int = 8) -> bool:
    d, full = flip_energy_pairs(system, tables, batch, seed=12345)
    scale = 1.0 + float(full.abs().max())
    return bool(((d - full).abs() <= 1e-9 * scale).all())
