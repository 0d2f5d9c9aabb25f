"""Reference Monte Carlo in the semi-grand-canonical ensemble: batched Metropolis and a composition free energy.

Metropolis (:func:`metropolis`)
    Single-spin-flip Metropolis on any supercell of any :class:`System`, batched over many independent chains on
    torch (CPU or GPU). Each chain may have its own (T, mu). One *sub-step* picks ONE uniformly random site per
    chain (independently per chain) and accepts the flip with probability min(1, exp(Delta log f)),
    Delta log f = -(Delta E + 2 mu s_i) / (k_B T); N sub-steps make a *sweep*. Random-site selection needs no
    checkerboard colouring, so it is exact for cluster expansions with arbitrary (multi-site, long-range,
    self-wrapping) clusters. The energy change of a flip is evaluated locally: the energy is a polynomial in the
    spins, E(s) = const + sum_m c_m prod_{v in m} s_v, so flipping s_i changes it by
    Delta E_i = -2 s_i * sum_{m containing i} c_m prod_{v in m, v != i} s_v. :func:`flip_tables` builds, from the
    system, per site and per degree the padded list of the other sites of every monomial containing it and its
    coefficient (for :class:`ClusterExpansion` from its reduced orbit polynomial plus the linear reference term of
    E_form; for :class:`Ising` from its bonds). A system of unknown form falls back to full energy differences.
    The tables are self-checked against full energy differences on random configurations when built.

Statistics (:class:`MCResult`)
    Per-chain time series of E/N and of the observable (x_Au or magnetisation), the final configurations and the
    acceptance rates. :func:`integrated_autocorrelation_time` uses Sokal's automatic window (smallest W with
    W >= c * tau(W), c = 5) on the chain-averaged autocorrelation function; :func:`estimate` gives the pooled mean
    and the error sigma * sqrt(2 tau / n_total). :meth:`MCResult.summary` groups chains with equal (T, mu).

Composition free energy (:func:`composition_free_energy`)
    Wang-Landau over the number n of +1 spins (Au atoms) at fixed T and mu = 0, with many walkers per
    temperature sharing one bias (multiple-walker WL). The bias ln W(n) estimates
    ln Z(n) = ln sum_{s: n(s)=n} exp(-E(s)/k_B T); a flip n -> n' is accepted with
    min(1, exp(-Delta E/k_B T + ln W(n) - ln W(n'))), and every visit adds ln f to ln W of the current bin. When the
    histogram of a temperature is flat (min >= ``flatness`` * mean) its ln f is halved and the histogram reset,
    until ln f < ``ln_f_final``. This is the metadynamics of Appendix K with a bias per composition bin, but the
    final profile does not rely on WL convergence: a production run with the bias FROZEN samples the histogram
    H(n) of the flat-histogram (multicanonical) ensemble, and ln Z(n) = ln W(n) + ln H(n) exactly in expectation.
    Error bars come from splitting the walkers into independent blocks. F(n) = -k_B T ln Z(n) (up to a constant).
    Then (a) in the semi-grand ensemble, P(n | mu) is proportional to exp(-(F(n) - mu (2n - N)) / k_B T), giving
    <x_Au>(mu) for any mu by reweighting (:meth:`CompositionProfile.mean_fraction`), and (b) compositions whose
    F(x) lies above the lower convex hull of F(x) are two-phase: a run of such points between two hull vertices
    x_a < x_b is a two-phase region (x_a, x_b) at that T (:meth:`CompositionProfile.two_phase_regions`,
    :func:`phase_boundary`).
"""

from __future__ import annotations

import math
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import LatthermError
from ..systems.base import System, check_condition

__all__ = ["FlipTables", "flip_tables", "MCResult", "metropolis", "integrated_autocorrelation_time", "estimate",
           "CompositionProfile", "composition_free_energy", "lower_hull", "phase_boundary"]


# ---- local flip energies -------------------------------------------------------------------------------------
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
        """sum_{m containing i} c_m prod_{v in m, v != i} s_v: float64 (B,) for padded spins s (B, N+1), sites i (B,)."""
        out = self.h.index_select(0, i).clone()
        B = s.shape[0]
        for o, c in zip(self.others, self.coefs):
            idx = o.index_select(0, i)  # (B, K, d-1)
            K, m = idx.shape[1], idx.shape[2]
            g = torch.gather(s, 1, idx.reshape(B, K * m)).reshape(B, K, m)
            p = g[..., 0]
            for j in range(1, m):
                p = p * g[..., j]
            out += (p.to(torch.float64) * c.index_select(0, i)).sum(-1)
        return out

    def delta(self, s: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """E(s with s_i flipped) - E(s), float64 (B,), for padded spins s (B, N+1) and one site per row i (B,)."""
        si = s.gather(1, i[:, None]).squeeze(1).to(torch.float64)
        if self.exact:
            return -2.0 * si * self.local(s, i)
        x = s[:, : self.n_sites].to(torch.float64)
        y = x.clone()
        y.scatter_(1, i[:, None], -si[:, None])
        return self.system.energy(y) - self.system.energy(x)


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
    d = tables.delta(_pad(s, torch.float64), i)
    y = s.clone()
    y[torch.arange(batch), i] *= -1
    return d, system.energy(y) - system.energy(s)


def _self_check(system: System, tables: FlipTables, batch: int = 8) -> bool:
    d, full = flip_energy_pairs(system, tables, batch, seed=12345)
    scale = 1.0 + float(full.abs().max())
    return bool(((d - full).abs() <= 1e-9 * scale).all())


def _pad(s: torch.Tensor, dtype) -> torch.Tensor:
    """(B, N) spins -> (B, N+1) in ``dtype`` with a constant +1 last column (the padding target of the tables)."""
    return torch.cat([s.to(dtype), torch.ones(s.shape[0], 1, dtype=dtype, device=s.device)], 1).contiguous()


# ---- statistics ------------------------------------------------------------------------------------------------
def integrated_autocorrelation_time(x, c: float = 5.0) -> float:
    """Integrated autocorrelation time tau = 1/2 + sum_{t=1}^{W} rho(t) of series x, (n,) or (chains, n), in units
    of the series spacing. rho is the autocorrelation averaged over chains (each chain centred on its own mean);
    W is Sokal's automatic window, the smallest W >= c * tau(W). Returns 0.5 for constant or length-<4 series."""
    a = torch.as_tensor(x, dtype=torch.float64).detach().cpu()
    if a.ndim == 1:
        a = a[None]
    n = a.shape[1]
    if n < 4:
        return 0.5
    a = a - a.mean(1, keepdim=True)
    m = 1 << (2 * n - 1).bit_length()
    f = torch.fft.rfft(a, n=m)
    acf = torch.fft.irfft(f * f.conj(), n=m)[:, :n].sum(0)
    acf = acf / torch.arange(n, 0, -1, dtype=torch.float64)  # unbiased lag normalisation
    if not float(acf[0]) > 0:
        return 0.5
    rho = (acf / acf[0]).numpy()
    tau = 0.5
    for W in range(1, n):
        tau += rho[W]
        if W >= c * tau:
            break
    return float(max(tau, 0.5))


def estimate(x) -> tuple[float, float, float]:
    """(mean, error, tau) of a series (n,) or of independent chains (chains, n): pooled mean and
    sigma * sqrt(2 tau / (chains * n)) with tau from :func:`integrated_autocorrelation_time`."""
    a = torch.as_tensor(x, dtype=torch.float64).detach().cpu()
    if a.ndim == 1:
        a = a[None]
    total = a.numel()
    mean = float(a.mean())
    var = float(((a - a.mean(1, keepdim=True)) ** 2).sum() / max(total - a.shape[0], 1))
    # add the between-chain spread (zero in equilibrium up to noise) so that non-equilibrated chains show up
    tau = integrated_autocorrelation_time(a)
    err = math.sqrt(var * 2.0 * tau / total)
    if a.shape[0] > 1:
        chain_err = float(a.mean(1).std()) / math.sqrt(a.shape[0])
        err = max(err, chain_err)
    return mean, err, tau


@dataclass
class MCResult:
    """Output of :func:`metropolis`. Series are (n_chains, n_records), recorded every ``record_every`` sweeps after
    equilibration; ``energy`` is E/N (system unit), ``observable`` the system's observable (x_Au, magnetisation)."""

    energy: torch.Tensor
    observable: torch.Tensor
    final: torch.Tensor  # (n_chains, N) int8 spins
    acceptance: torch.Tensor  # (n_chains,) over the recorded part
    T: torch.Tensor  # (n_chains,) float64
    mu: torch.Tensor
    n_sites: int
    sweeps: int
    equilibration: int
    record_every: int
    seconds: float
    attempted: int  # attempted flips in total (all chains, equilibration included)
    observable_name: str = "observable"

    @property
    def n_chains(self) -> int:
        return int(self.energy.shape[0])

    @property
    def updates_per_second(self) -> float:
        return self.attempted / self.seconds if self.seconds > 0 else float("nan")

    def series(self, which: str) -> torch.Tensor:
        if which in ("energy", "e", "E"):
            return self.energy
        if which in ("observable", "obs", "x", self.observable_name):
            return self.observable
        raise LatthermError(f"unknown series {which!r} (choose 'energy' or 'observable')")

    def mean(self, which: str = "energy", chains=None) -> float:
        x = self.series(which)
        return float((x if chains is None else x[chains]).mean())

    def tau(self, which: str = "energy", chains=None) -> float:
        """Integrated autocorrelation time in sweeps."""
        x = self.series(which)
        return integrated_autocorrelation_time(x if chains is None else x[chains]) * self.record_every

    def error(self, which: str = "energy", chains=None) -> float:
        x = self.series(which)
        return estimate(x if chains is None else x[chains])[1]

    def conditions(self) -> list[tuple[float, float]]:
        pairs = torch.stack([self.T, self.mu], 1).cpu().numpy()
        seen = []
        for t, m in pairs:
            if (float(t), float(m)) not in seen:
                seen.append((float(t), float(m)))
        return seen

    def summary(self) -> list[dict]:
        """Per distinct (T, mu): mean, error and tau (sweeps) of E/N and of the observable, acceptance, chains."""
        out = []
        T, mu = self.T.cpu(), self.mu.cpu()
        for t, m in self.conditions():
            sel = torch.nonzero((T == t) & (mu == m)).reshape(-1)
            row = {"T": t, "mu": m, "n_chains": int(len(sel)), "acceptance": float(self.acceptance.cpu()[sel].mean())}
            for key, x in (("energy", self.energy), ("observable", self.observable)):
                mean, err, tau = estimate(x.cpu()[sel])
                row[key] = mean
                row[key + "_error"] = err
                row[key + "_tau"] = tau * self.record_every
            out.append(row)
        return out


def _per_chain(value, n: int, name: str, device) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float64)
    if t.ndim == 0:
        t = t.expand(n)
    t = t.reshape(-1)
    if t.numel() != n:
        raise LatthermError(f"{name} must be a number or hold one value per chain ({n}), got {t.numel()} values")
    return t.to(device).contiguous()


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise LatthermError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _initial(system: System, n_chains: int, init, generator, device) -> torch.Tensor:
    N = system.n_sites
    if init is None:
        return (2 * torch.randint(0, 2, (n_chains, N), generator=generator, device=device) - 1).to(torch.float32)
    s = torch.as_tensor(init).to(device)
    if s.ndim == 1:
        s = s[None].expand(n_chains, -1)
    if s.ndim != 2 or s.shape != (n_chains, N):
        raise LatthermError(f"init must have shape ({n_chains}, {N}) or ({N},), got {tuple(s.shape)}")
    if not bool(((s == 1) | (s == -1)).all()):
        raise LatthermError("init must hold spins -1/+1 only")
    return s.to(torch.float32)


def metropolis(system: System, T, mu, n_chains: int, sweeps: int, equilibration: int = 0, init=None,
               generator: torch.Generator | None = None, device="cpu", record_every: int = 1) -> MCResult:
    """Semi-grand-canonical single-spin-flip Metropolis, batched over ``n_chains`` independent chains.

    T, mu: scalars or (n_chains,) tensors (one condition per chain). ``sweeps`` recorded sweeps follow
    ``equilibration`` discarded ones; a sweep is N sub-steps, each flipping at most one uniformly random site per
    chain. Records E/N and the observable every ``record_every`` sweeps. init: (n_chains, N) or (N,) spins, default
    uniformly random. generator: a torch.Generator on ``device`` for reproducibility."""
    if not isinstance(system, System):
        raise LatthermError(f"metropolis needs a System, got {type(system).__name__}")
    n_chains = _check_int(n_chains, "n_chains", 1)
    sweeps = _check_int(sweeps, "sweeps", 1)
    equilibration = _check_int(equilibration, "equilibration", 0)
    record_every = _check_int(record_every, "record_every", 1)
    device = torch.device(device)
    check_condition(T, mu)
    Tt = _per_chain(T, n_chains, "T", device)
    mut = _per_chain(mu, n_chains, "mu", device)
    N = system.n_sites
    beta = 1.0 / (system.k_B * Tt)
    tables = flip_tables(system).on(device)
    t0 = time.perf_counter()
    with torch.no_grad():
        s = _pad(_initial(system, n_chains, init, generator, device), torch.float32)
        rows = torch.arange(n_chains, device=device)

        def full_energy():
            return system.energy(s[:, :N].to(torch.float64)).to(device)

        E = full_energy()
        accepted = torch.zeros(n_chains, dtype=torch.float64, device=device)
        n_rec = sweeps // record_every
        e_rec = torch.empty(n_chains, n_rec, dtype=torch.float64, device=device)
        o_rec = torch.empty_like(e_rec)
        for sweep in range(equilibration + sweeps):
            sites = torch.randint(0, N, (N, n_chains), generator=generator, device=device)
            logu = torch.rand(N, n_chains, generator=generator, device=device, dtype=torch.float64).log_()
            for k in range(N):
                i = sites[k]
                si = s[rows, i].to(torch.float64)
                dE = tables.delta(s, i)
                acc = logu[k] < -beta * (dE + 2.0 * mut * si)
                s[rows, i] = torch.where(acc, -si, si).to(s.dtype)
                E += torch.where(acc, dE, torch.zeros_like(dE))
                if sweep >= equilibration:
                    accepted += acc
            if sweep + 1 == equilibration:
                E = full_energy()  # resynchronise the running energy (no drift enters the record)
            r = sweep - equilibration + 1
            if r > 0 and r % record_every == 0 and r // record_every <= n_rec:
                if (r // record_every) % 64 == 0:
                    E = full_energy()
                j = r // record_every - 1
                e_rec[:, j] = E / N
                o_rec[:, j] = system.observable(s[:, :N].to(torch.float64)).to(device)
    seconds = time.perf_counter() - t0
    return MCResult(energy=e_rec, observable=o_rec, final=s[:, :N].to(torch.int8), acceptance=accepted / (sweeps * N),
                    T=Tt, mu=mut, n_sites=N, sweeps=sweeps, equilibration=equilibration, record_every=record_every,
                    seconds=seconds, attempted=(equilibration + sweeps) * N * n_chains,
                    observable_name=getattr(system, "observable_name", "observable"))


# ---- composition-resolved free energy (Wang-Landau over N_Au) -------------------------------------------------
def lower_hull(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the vertices of the lower convex hull of points (x, y), x increasing (monotone chain)."""
    hull: list[int] = []
    for k in range(len(x)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # drop b if it lies on or above the segment a -> k
            if (y[b] - y[a]) * (x[k] - x[a]) >= (y[k] - y[a]) * (x[b] - x[a]):
                hull.pop()
            else:
                break
        hull.append(k)
    return np.asarray(hull, dtype=np.int64)


@dataclass
class CompositionProfile:
    """Free energy F(n) (system energy unit, up to a constant, min 0) of the number n = 0..N of +1 spins (Au) at
    temperature T and mu = 0, with its error bar; from :func:`composition_free_energy`."""

    T: float
    n_sites: int
    k_B: float
    F: np.ndarray  # (N+1,)
    F_error: np.ndarray  # (N+1,)
    ln_f_final: float
    sweeps: int
    F_blocks: np.ndarray | None = None  # (n_blocks, N+1) independent block estimates (for error bars)

    @property
    def x(self) -> np.ndarray:
        return np.arange(self.n_sites + 1) / self.n_sites

    def probabilities(self, mu: float) -> np.ndarray:
        """P(n) in the semi-grand ensemble at chemical potential mu: exp(-(F(n) - mu (2n - N)) / k_B T), normalised."""
        n = np.arange(self.n_sites + 1)
        a = -(self.F - float(mu) * (2 * n - self.n_sites)) / (self.k_B * self.T)
        a -= a.max()
        w = np.exp(a)
        return w / w.sum()

    def mean_fraction(self, mu) -> np.ndarray | float:
        """<n>/N (= <x_Au> for an alloy) at chemical potential(s) mu, by reweighting the profile."""
        mus = np.atleast_1d(np.asarray(mu, dtype=np.float64))
        out = np.array([self.probabilities(m) @ self.x for m in mus])
        return float(out[0]) if np.ndim(mu) == 0 else out

    def mean_fraction_error(self, mu) -> float:
        """Error bar of :meth:`mean_fraction` at one mu from the spread of the independent walker blocks."""
        if self.F_blocks is None or not np.isfinite(self.F_blocks).all():
            return float("inf")
        vals = [CompositionProfile(self.T, self.n_sites, self.k_B, f, self.F_error, self.ln_f_final,
                                   self.sweeps).mean_fraction(float(mu)) for f in self.F_blocks]
        return float(np.std(vals, ddof=1) / math.sqrt(len(vals)))

    def two_phase_regions(self, tol: float | None = None) -> list[tuple[float, float]]:
        """Composition intervals (x_a, x_b) where F(x) lies above its lower convex hull by more than ``tol`` (default
        3 error bars, at least 1e-9 in energy): the endpoints are hull vertices, the points between are two-phase."""
        x, F = self.x, self.F
        hull = lower_hull(x, F)
        line = np.interp(x, x[hull], F[hull])
        above = F - line
        tol_arr = np.maximum(3.0 * self.F_error, 1e-9) if tol is None else np.full_like(F, float(tol))
        off = above > tol_arr
        regions, k = [], 0
        while k < len(x):
            if off[k]:
                j = k
                while j + 1 < len(x) and off[j + 1]:
                    j += 1
                regions.append((float(x[k - 1]), float(x[j + 1])))  # endpoints of a hull are always on it
                k = j + 1
            else:
                k += 1
        return regions


def composition_free_energy(system: System, T, n_walkers: int = 64, ln_f_final: float = 1e-3,
                            flatness: float = 0.8, max_sweeps: int = 20000, production_sweeps: int = 200,
                            n_blocks: int = 8, generator: torch.Generator | None = None,
                            device="cpu") -> list[CompositionProfile]:
    """Wang-Landau free energy F(n) over the number of +1 spins (Au atoms) at each temperature in ``T``.

    ``n_walkers`` walkers per temperature share one bias ln W(n); WL stages halve ln f (from 1) whenever the
    temperature's histogram is flat (min >= flatness * mean) until ln f < ln_f_final (or max_sweeps). Then
    ``production_sweeps`` sweeps with the bias frozen give ln Z(n) = ln W(n) + ln H(n); the walkers are split into
    ``n_blocks`` blocks for the error bar. Returns one :class:`CompositionProfile` per temperature."""
    if not isinstance(system, System):
        raise LatthermError(f"composition_free_energy needs a System, got {type(system).__name__}")
    temps = [float(t) for t in np.atleast_1d(np.asarray(T, dtype=np.float64))]
    check_condition(torch.tensor(temps) if temps else 1.0, 0.0)
    if not temps:
        raise LatthermError("composition_free_energy needs at least one temperature")
    n_walkers = _check_int(n_walkers, "n_walkers", 2)
    n_blocks = _check_int(n_blocks, "n_blocks", 2)
    if n_walkers % n_blocks:
        raise LatthermError(f"n_walkers ({n_walkers}) must be a multiple of n_blocks ({n_blocks})")
    max_sweeps = _check_int(max_sweeps, "max_sweeps", 1)
    production_sweeps = _check_int(production_sweeps, "production_sweeps", 1)
    if not (0.0 < flatness < 1.0) or not (ln_f_final > 0):
        raise LatthermError("need 0 < flatness < 1 and ln_f_final > 0")
    device = torch.device(device)
    N = system.n_sites
    nT = len(temps)
    B = nT * n_walkers
    tidx = torch.arange(nT, device=device).repeat_interleave(n_walkers)
    beta = 1.0 / (system.k_B * torch.tensor(temps, dtype=torch.float64, device=device))[tidx]
    tables = flip_tables(system).on(device)
    rows = torch.arange(B, device=device)
    with torch.no_grad():
        s = _pad(_initial(system, B, None, generator, device), torch.float32)
        n = ((s[:, :N] > 0).sum(1)).to(torch.long)
        lnW = torch.zeros(nT, N + 1, dtype=torch.float64, device=device)
        H = torch.zeros(nT, N + 1, dtype=torch.float64, device=device)
        ln_f = torch.ones(nT, dtype=torch.float64, device=device)
        base_T = tidx * (N + 1)

        def sweep(W: torch.Tensor, base: torch.Tensor, hist: torch.Tensor, update: bool):
            """One sweep of biased flips; acceptance uses W[base + n]; visits go to hist[base + n] (flat views)."""
            nonlocal n
            sites = torch.randint(0, N, (N, B), generator=generator, device=device)
            logu = torch.rand(N, B, generator=generator, device=device, dtype=torch.float64).log_()
            ones = torch.ones(B, dtype=torch.float64, device=device)
            for k in range(N):
                i = sites[k]
                si = s[rows, i].to(torch.float64)
                dE = tables.delta(s, i)
                n_new = n - si.to(torch.long)  # flipping -1 -> +1 adds one +1 spin
                acc = logu[k] < -beta * dE + W[base + n] - W[base + n_new]
                s[rows, i] = torch.where(acc, -si, si).to(s.dtype)
                n = torch.where(acc, n_new, n)
                hist.index_add_(0, base + n, ones)
                if update:
                    W.index_add_(0, base + n, ln_f[tidx])

        done = 0
        while done < max_sweeps and bool((ln_f >= ln_f_final).any()):
            sweep(lnW.view(-1), base_T, H.view(-1), True)
            done += 1
            flat = (H.min(1).values >= flatness * H.mean(1)) & (ln_f >= ln_f_final)
            if bool(flat.any()):
                ln_f = torch.where(flat, ln_f / 2, ln_f)
                H[flat] = 0
        lnW -= lnW.max(1, keepdim=True).values
        # production with the bias frozen: per-walker visit histograms, summed into blocks of walkers
        W_walker = lnW[tidx].contiguous().view(-1)
        H_walker = torch.zeros(B * (N + 1), dtype=torch.float64, device=device)
        for _ in range(production_sweeps):
            sweep(W_walker, rows * (N + 1), H_walker, False)
        per = n_walkers // n_blocks
        block = tidx * n_blocks + (rows % n_walkers) // per
        Hb = torch.zeros(nT * n_blocks, N + 1, dtype=torch.float64, device=device)
        Hb.index_add_(0, block, H_walker.view(B, N + 1))
    Hb = Hb.cpu().reshape(nT, n_blocks, N + 1).numpy()
    lnW = lnW.cpu().numpy()
    out = []
    for t, temp in enumerate(temps):
        kT = system.k_B * temp
        total = Hb[t].sum(0)
        with np.errstate(divide="ignore"):
            lnZ = lnW[t] + np.log(total)
            lnZ_blocks = lnW[t][None] + np.log(Hb[t])
        F = -kT * lnZ
        Fb = -kT * lnZ_blocks
        Fb = Fb - Fb.min(1, keepdims=True) if np.isfinite(Fb).all() else Fb
        F = F - F.min()
        err = Fb.std(0, ddof=1) / math.sqrt(n_blocks) if np.isfinite(Fb).all() else np.full(N + 1, np.inf)
        out.append(CompositionProfile(T=temp, n_sites=N, k_B=system.k_B, F=F, F_error=err,
                                      ln_f_final=float(ln_f[t]), sweeps=done, F_blocks=Fb))
    return out


def phase_boundary(profiles: list[CompositionProfile], tol: float | None = None) -> list[tuple[float, float, float]]:
    """(T, x_a, x_b) for every two-phase region of every profile: the two-phase boundary traced over T."""
    return [(p.T, a, b) for p in profiles for a, b in p.two_phase_regions(tol)]
