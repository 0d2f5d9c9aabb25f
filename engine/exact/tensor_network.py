"""log Z of the square-lattice Ising torus in a field at any size, by a HOTRG tensor network with an error estimate.

Why HOTRG (Xie et al. 2012), and how a general L1 x L2 torus is handled: each site is a rank-4 tensor
T[l, r, u, d] = sum_s e^{H s} Q[s,l] Q[s,r] Q[s,u] Q[s,d] with Q Q^T = exp(K s s') (every bond split between its
two sites), so Z is the full contraction of the periodic network. A coarse-graining step merges p blocks along one
direction (the p-th "power" of the block tensor by binary doubling, so any prime factor of the side works; a factor
2 is one merge), combining their transverse bonds and truncating the combined bond to chi by the higher-order SVD
projector of the pair (the better of the left and right environments, same isometry on both legs so neighbouring
blocks still connect). Steps alternate between the directions, the shorter block side first, each using the next
prime factor of its side; once one direction spans its whole side its bonds are traced, and the remaining factor of
the other direction is contracted exactly as Tr M^n of a chi x chi transfer matrix (no more truncation). Which
direction and which prime come next matters when a side has a prime factor above 2: :func:`choose_order` compares
the alternating orders by their discarded weight at a small chi (14 x 14 with a field: 8.4e-7 -> 2.3e-10 per site at
chi 32). HOTRG is
chosen over TRG because it keeps the lattice axes (any L1 x L2, not just 2^k x 2^k rotated lattices) and over
CTMRG/boundary MPS because the torus's periodic boundaries are exact in it, not an environment approximation.

Derivatives: <E>, <M> and C by 5-point central finite differences of log Z in K = eps/kT and H = mu/kT with step
h = FD_STEP = 1e-3, the projectors re-chosen at every point: the 5-point stencils at the cheap chi, the 3-point
ones at chi_check corrected by chi's 5-point-minus-3-point difference (Richardson, its correction taken where it is
cheap: the h^2 stencil error belongs to log Z, hardly to the truncation). That is 4 chi_check contractions besides
log Z where 8 were taken (2 at mu = 0): 14 contractions in all instead of 18, and the chi_check ones are ~7/8 of
the time at chi 16/24. Why not differentiate through the contraction: with the
projectors held fixed (autograd through the contraction, or impurity tensors) the derivative is only first order in
the truncation - measured on 12x12 at kT 2.5, mu 0.2, chi 24: <E>/N off by 1e-5 while log Z/N was off by 8e-9.
Why h = 1e-3: the 5-point error h^4 f^(5)/30 is ~1e-11 per site, round-off ~1e-16/h = 1e-13 per site; the 3-point
error h^2 f'''/6 (~7e-6 on 12x12 near T_c, measured) serves as a check. At mu = 0, <M> = 0 exactly (Z(H) = Z(-H),
and the network keeps that symmetry).

Error: the same contraction at a larger bond dimension chi_check; the result reported is the chi_check one. ``error``
is the larger of |chi_check - chi| of log Z / N and the discarded weight per site (sum over merges of blocks x the
discarded fraction of the environment's eigenvalue weight, / N) at chi_check: the difference alone is fooled by
plateaus in chi, the discarded weight was 20-5000x the true error in every case measured. ``errors`` gives the same
for each quantity (derivatives add twice their chi difference, the discarded weight, and a tenth of chi's
3-point-minus-5-point difference, which bounds the 5-point stencil's own error). The tests check the estimates bound
the true error against Kaufman and the transfer matrix. A side that is itself a large prime stays the weak case (its
p-fold merge has no better order). At T_c convergence in chi is slow (64x64: 5.8e-7 at chi 24, 1.4e-7 at 32, 9.4e-8
at 40; 128x128: 6.9e-8 at 40).
Cost: chi^7 per merge, ~log2(L1 L2) merges; log Z at 64x64, chi 24 takes seconds on one thread; <E>, <M> and C
take 12 more contractions (6 at mu = 0), 4 (2) of them at chi_check. The contractions are independent, so they run
concurrently on the caller's torch threads, one thread each (a chi^7 product already runs at one core's
matrix-multiply peak: 19 of 22 GFLOP/s measured): 64x64 at kT 2.5, mu 0.2 with derivatives took 29.4 s on one
thread and 17.8 s on two (the five chi_check contractions are the critical path).
"""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor

import torch

from ..errors import LatthermError
from ..systems.base import check_condition
from ._threads import single_threaded
from .result import ExactResult

#: default bond dimension, and the larger one whose difference is the error estimate
DEFAULT_CHI = 16
DEFAULT_CHI_CHECK = 24
#: largest bond dimension accepted (a merge holds a few chi^5 float64 tensors)
MAX_CHI = 64


def _normalise(t: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Divide by the largest |entry|; returns the tensor and the log of that scale (Z gains N_blocks times it)."""
    c = float(t.abs().max())
    if not c > 0 or not math.isfinite(c):
        raise LatthermError(f"tensor network block tensor is zero or not finite (scale {c:g})")
    return t / c, math.log(c)


def _site_tensor(K: float, H: float) -> tuple[torch.Tensor, float]:
    """The scaled site tensor and the log of the scale taken out per site.

    exp(K s s') = e^K Q Q^T with Q = [[c, s], [c, -s]], c = sqrt((1 + e^{-2K})/2), s = sqrt((1 - e^{-2K})/2), and
    e^{H s} = e^{|H|} e^{H s - |H|}: per site (two bonds) log Z gains 2K + |H|, and the entries stay <= 1 at any
    temperature.
    """
    c = math.sqrt(0.5 * (1.0 + math.exp(-2.0 * K)))
    s = math.sqrt(-0.5 * math.expm1(-2.0 * K))
    q = torch.tensor([[c, s], [c, -s]], dtype=torch.float64)                   # Q[spin, bond]
    w = torch.tensor([math.exp(H - abs(H)), math.exp(-H - abs(H))], dtype=torch.float64)
    return torch.einsum("s,sa,sb,sc,sd->abcd", w, q, q, q, q), 2.0 * K + abs(H)


# ---- one merge: two blocks stacked along y (a above b), their x bonds combined and truncated ------------------------

def _projector(a: torch.Tensor, b: torch.Tensor, chi: int, cuts: list | None = None) -> torch.Tensor:
    """Isometry U[(l_a l_b), l'] onto the chi leading eigenvectors of the better (smaller discarded weight) of the
    left and right environments of the stacked pair; T[l, r, u, d] index order."""
    da, db = a.shape[0], b.shape[0]
    if da * db <= chi:
        return torch.eye(da * db, dtype=a.dtype).reshape(da, db, da * db)
    # left: sum over r, u of a and r, d of b, keeping (l_a, l_b) x (l_a', l_b'), O(chi^6)
    xa = torch.einsum("aiux,biuy->abxy", a, a)
    xb = torch.einsum("cjxd,ejyd->cexy", b, b)
    left = torch.einsum("abxy,cexy->acbe", xa, xb).reshape(da * db, da * db)
    # right: the same for the r legs
    xa = torch.einsum("iaux,ibuy->abxy", a, a)
    xb = torch.einsum("jcxd,jeyd->cexy", b, b)
    right = torch.einsum("abxy,cexy->acbe", xa, xb).reshape(da * db, da * db)
    best, best_cut = None, math.inf
    for env in (left, right):
        lam, vec = torch.linalg.eigh(0.5 * (env + env.T))
        lam, vec = lam.flip(0), vec.flip(1)
        cut = float(lam[chi:].clamp_min(0).sum()) / max(float(lam.clamp_min(0).sum()), 1e-300)
        if cut < best_cut:
            best, best_cut = vec[:, :chi], cut
    if cuts is not None:
        cuts.append(best_cut)
    return best.reshape(da, db, -1)


def _merge_y(a: torch.Tensor, b: torch.Tensor, chi: int, cuts: list | None = None) -> torch.Tensor:
    """The block ``a`` on top of ``b`` (a's d leg joined to b's u leg), its x legs projected to <= chi."""
    u = _projector(a, b, chi, cuts)
    t = torch.einsum("abl,aium->lbium", u, a)           # U_l . A
    t = torch.einsum("lbium,bjmd->liujd", t, b)         # . B   (the chi^7 step)
    return torch.einsum("liujd,ijr->lrud", t, u)        # . U_r


def _swap(t: torch.Tensor) -> torch.Tensor:
    return t.permute(2, 3, 0, 1)


def _merge(a: torch.Tensor, b: torch.Tensor, chi: int, axis: int, cuts: list | None = None) -> torch.Tensor:
    """Merge along y (axis 0, the L1 direction of rows) or x (axis 1) by swapping the leg pairs."""
    if axis == 0:
        return _merge_y(a, b, chi, cuts)
    return _swap(_merge_y(_swap(a), _swap(b), chi, cuts))


def _binary_power(x: torch.Tensor, p: int, product) -> tuple[torch.Tensor, float]:
    """``x`` multiplied by itself p times with ``product`` by binary doubling (about 2 log2 p products),
    normalised after every product so a large p cannot overflow; returns it and the log of the scale taken out."""
    result, base, log_r, log_b = None, x, 0.0, 0.0
    while True:
        if p & 1:
            if result is None:
                result, log_r = base, log_b
            else:
                result, c = _normalise(product(result, base))
                log_r += log_b + c
        p >>= 1
        if not p:
            return result, log_r
        base, c = _normalise(product(base, base))
        log_b = 2.0 * log_b + c


def _power(t: torch.Tensor, p: int, chi: int, axis: int, cuts: list | None = None) -> tuple[torch.Tensor, float]:
    """The block of p copies of ``t`` along ``axis``, merged by binary doubling; returns it and its log scale."""
    return _binary_power(t, p, lambda a, b: _merge(a, b, chi, axis, cuts))


def _prime_factors(n: int) -> list[int]:
    out, f = [], 2
    while f * f <= n:
        while n % f == 0:
            out.append(f)
            n //= f
        f += 1
    if n > 1:
        out.append(n)
    return out


def _log_trace_power(m: torch.Tensor, n: int) -> float:
    """log Tr M^n by binary powers, rescaled at every product so nothing overflows."""
    result, log_r = _binary_power(m, n, torch.matmul)
    return log_r + _log_positive(float(result.diagonal().sum()))


def _log_positive(v: float) -> float:
    if not v > 0 or not math.isfinite(v):
        raise LatthermError(f"tensor network contraction gave a non-positive or non-finite trace ({v:g})")
    return math.log(v)


def _heuristic_order(L1: int, L2: int, chi: int) -> list[tuple[int, int]]:
    """The default sequence of (axis, prime) coarse-graining steps, up to the point where one direction spans its
    side: the shorter block side grows; a tie goes to the longer side of the torus (12 x 16 at kT 2, mu 0.1, chi 24:
    4e-11 against 3e-9 the other way), unless the shorter side is so narrow (2^side <= chi) that completing it first
    is exact and leaves the long side to an exact Tr M^n; either way L1 x L2 and L2 x L1 run the same merges
    transposed."""
    extent, todo, sides, order = [1, 1], [_prime_factors(L1), _prime_factors(L2)], (L1, L2), []
    sign = 1 if 2 ** min(sides) <= chi else -1
    while todo[0] and todo[1]:
        axis = min((0, 1), key=lambda a: (extent[a], sign * sides[a], a))
        p = todo[axis].pop(0)
        extent[axis] *= p
        order.append((axis, p))
    return order


def _candidate_orders(L1: int, L2: int, chi: int, per_side: int = 8) -> list[list[tuple[int, int]]]:
    """The heuristic order first, then every strict alternation of the two directions (either first) over distinct
    orderings of each side's prime factors (at most ``per_side`` each), cut where one direction is complete."""
    out = [_heuristic_order(L1, L2, chi)]
    perms = [sorted(set(itertools.permutations(_prime_factors(L))))[:per_side] for L in (L1, L2)]
    for p0 in perms[0]:
        for p1 in perms[1]:
            for first in (0, 1):
                seq, i = [], [0, 0]
                axis, facs = first, (p0, p1)
                while i[0] < len(p0) and i[1] < len(p1):
                    seq.append((axis, facs[axis][i[axis]]))
                    i[axis] += 1
                    axis = 1 - axis
                if seq not in out:
                    out.append(seq)
    return out


#: bond dimension at which candidate orders are compared (their discarded weight ranks them as the error does)
ORDER_PROBE_CHI = 8


def choose_order(L1: int, L2: int, K: float, H: float, chi: int) -> list[tuple[int, int]]:
    """The coarse-graining order for an L1 x L2 torus: for sides with a prime factor above 2 the candidate with the
    least discarded weight at bond dimension min(chi, ORDER_PROBE_CHI); powers of two keep the heuristic.

    Why: the order decides where truncations fall. On 14 x 14 (kT 2.5, mu 0.2) the heuristic (x2, y2, then a 7-fold
    merge into a 2 x 14 strip whose bond a chi-state transfer matrix must carry) is 8.4e-7 per site off at chi 32;
    x2, y7, x7 (a 7 x 2 block grown to 7 x 14, the last factor 2 exact) is 2.3e-10. The discarded weight at chi 8
    picked the best order at chi 16 for 14x14, 10x10, 12x12 and 10x14 (measured against the transfer matrix)."""
    factors = _prime_factors(L1) + _prime_factors(L2)
    if all(f == 2 for f in factors):
        return _heuristic_order(L1, L2, chi)
    probe = min(int(chi), ORDER_PROBE_CHI)
    best, best_cut = None, math.inf
    for order in _candidate_orders(L1, L2, chi):
        info: dict = {}
        _contract(L1, L2, K, H, probe, order, info)
        if info["discarded"] < best_cut * (1 - 1e-9):
            best, best_cut = order, info["discarded"]
    return best


def hotrg_log_z(L1: int, L2: int, K: float, H: float, chi: int = DEFAULT_CHI, info: dict | None = None,
                order: list[tuple[int, int]] | None = None) -> float:
    """log Z(K, H) of the Ising torus with L1 rows and L2 columns (log f = K sum_<ij> s_i s_j + H sum_i s_i) at
    bond dimension ``chi``, coarse-grained in ``order`` ((axis, prime) steps until one direction spans its side;
    default :func:`choose_order`). ``info`` (a dict) receives "discarded": the sum over merges of (blocks of that
    size) x (discarded fraction of the environment's weight), per site."""
    L1, L2, chi = int(L1), int(L2), int(chi)
    if L1 < 1 or L2 < 1:
        raise LatthermError(f"the tensor network needs a torus of positive size, got {L1}x{L2}")
    if order is None:
        order = choose_order(L1, L2, K, H, chi)
    return _contract(L1, L2, K, H, chi, order, info)


def _contract(L1: int, L2: int, K: float, H: float, chi: int, order, info: dict | None) -> float:
    with single_threaded(), torch.no_grad():
        t, site_log = _site_tensor(float(K), float(H))
        n_sites = L1 * L2
        log_z = n_sites * site_log
        extent = [1, 1]                        # block extent along axis 0 (rows, L1) and axis 1 (columns, L2)
        discarded = 0.0
        sides = (L1, L2)
        for axis, p in order:
            cuts: list[float] = []
            t, c = _power(t, p, chi, axis, cuts)
            extent[axis] *= p
            blocks = n_sites // (extent[0] * extent[1])
            log_z += blocks * c
            discarded += blocks * sum(cuts)
        if info is not None:
            info["discarded"] = discarded / n_sites
        if extent == [L1, L2]:
            return log_z + _log_positive(float(torch.einsum("lluu->", t)))
        if extent[0] != L1 and extent[1] != L2:
            raise ValueError(f"order {order} leaves both sides of {L1}x{L2} incomplete")
        # one direction spans its side: trace its legs; the other direction's remaining factor is exact, Tr M^n
        axis = 0 if extent[0] != L1 else 1
        m, c = _normalise(torch.einsum("llud->ud" if axis == 0 else "lruu->lr", t))
        log_z += (n_sites // (extent[0] * extent[1])) * c
        return log_z + _log_trace_power(m, sides[axis] // extent[axis])


def check_chi(chi, chi_check=None) -> tuple[int, int]:
    """Bond dimensions as integers 2 <= chi < chi_check <= MAX_CHI (chi_check defaults to chi + chi/3)."""
    try:
        chi = int(chi)
        chi_check = int(chi_check) if chi_check is not None else chi + max(4, chi // 3)
    except (TypeError, ValueError):
        raise LatthermError(f"chi must be an integer, got {chi!r}") from None
    if chi < 2 or chi_check <= chi or chi_check > MAX_CHI:
        raise LatthermError(f"the tensor network needs 2 <= chi < chi_check <= {MAX_CHI}, got chi={chi}, "
                            f"chi_check={chi_check}")
    return chi, chi_check


#: finite-difference step in K = eps/kT and H = mu/kT for the derivatives (see the module docstring)
FD_STEP = 1e-3


def _stencil(f, h: float, five: bool) -> tuple:
    """(f', f'') at 0 from f(k) = f(k h), k in -2..2: the 3-point central stencil, then (when ``five``) the 5-point
    ones."""
    d3, s3 = (f(1) - f(-1)) / (2 * h), (f(1) - 2 * f(0) + f(-1)) / (h * h)
    if not five:
        return d3, s3, None, None
    return (d3, s3, (-f(2) + 8 * f(1) - 8 * f(-1) + f(-2)) / (12 * h),
            (-f(2) + 16 * f(1) - 30 * f(0) + 16 * f(-1) - f(-2)) / (12 * h * h))


def _contract_all(points: list, contract, workers: int) -> list:
    """``contract(*point)`` for every point, on ``workers`` threads (each contraction single-threaded: its chi^7
    products run at one core's matrix-multiply peak already, and the points are independent), longest first."""
    if workers <= 1 or len(points) <= 1:
        return [contract(*p) for p in points]
    with ThreadPoolExecutor(max_workers=min(workers, len(points))) as pool:
        return list(pool.map(lambda p: contract(*p), points))


def tensor_network(system, T: float, mu: float, chi: int = DEFAULT_CHI, chi_check: int | None = DEFAULT_CHI_CHECK,
                   derivatives: bool = True) -> ExactResult:
    """log Z, <E>/N, <M>/N, C/N of an Ising torus at (T, mu) by HOTRG at chi_check, with the error estimate.

    ``error`` = max(|log Z(chi_check) - log Z(chi)| / N, discarded weight per site at chi_check). Derivatives: the
    5-point stencils at the cheap chi, the 3-point ones at chi_check corrected by chi's (5-point - 3-point)
    difference (the stencil error hardly depends on the truncation, so this is 5-point accurate for 4 chi_check
    contractions instead of 8: at 64x64 the chi_check contractions are 7/8 of the time). ``errors`` for each
    derivative: twice its chi_check - chi difference plus the discarded weight plus a tenth of chi's 3-point-minus-5-point
    difference (the 5-point stencil's own h^4 error is far below that). Without ``derivatives`` only log Z is
    computed (2 contractions; <E>, <M>, C None); with them 14 (8 at mu = 0, where <M> = 0 exactly).
    """
    check_condition(T, mu)
    if system.square_ising_coupling is None:
        raise LatthermError(f"the tensor network is only for the square-lattice Ising model, not {system!r}")
    chi, chi_check = check_chi(chi, chi_check)
    from ..tasks.limits import require_memory

    require_memory(f"the tensor network at chi={chi_check}", 4 * 8.0 * chi_check ** 5)
    L1, L2 = (int(v) for v in system.lattice.size)
    T, mu = float(T), float(mu)
    eps = float(system.square_ising_coupling)
    beta = 1.0 / (system.k_B * T)
    K, H = eps * beta, mu * beta
    if not (K > 2 * FD_STEP and math.isfinite(K) and math.isfinite(H)):
        raise LatthermError(f"the tensor network needs a finite ferromagnetic coupling K = eps/kT > {2 * FD_STEP:g}, "
                            f"got K={K:g}")
    n = L1 * L2
    order = choose_order(L1, L2, K, H, chi)  # one order for every contraction: differences stay smooth

    # the points: (chi, k, j) is log Z/N at (K + k h, H + j h); chi_check ones first (they take ~7/8 of the time)
    steps = {chi_check: (1,), chi: (1, 2)} if derivatives else {chi_check: (), chi: ()}
    points = []
    for c in (chi_check, chi):
        points.append((c, 0, 0))
        for k in steps[c]:
            points += [(c, k, 0), (c, -k, 0)]
            if H != 0.0:  # Z(H) = Z(-H) exactly, and the network keeps that symmetry: <M> = 0 at H = 0
                points += [(c, 0, k), (c, 0, -k)]
    cut = {}  # the discarded weight per site of each chi's central point

    def contract(c: int, k: int, j: int) -> float:
        info: dict = {}
        v = hotrg_log_z(L1, L2, K + k * FD_STEP, H + j * FD_STEP, c, info, order) / n
        if k == j == 0:
            cut[c] = info["discarded"]
        return v

    workers = torch.get_num_threads()  # the caller's thread budget, spent as concurrent single-threaded contractions
    with single_threaded():  # entered once here: the workers' own single_threaded() then restore 1, not a race
        log_z = dict(zip(points, _contract_all(points, contract, workers)))

    def thermo(c: int, five: bool):
        """log Z/N, the K stencil (d3, s3, d5, s5) and the H stencil (None at H = 0) at bond dimension c."""
        if not derivatives:
            return log_z[c, 0, 0], None, None
        sk = _stencil(lambda k: log_z[c, k, 0], FD_STEP, five)
        sh = None if H == 0.0 else _stencil(lambda j: log_z[c, 0, j], FD_STEP, five)
        return log_z[c, 0, 0], sk, sh

    coarse, ck, ch = thermo(chi, True)
    fine, fk, fh = thermo(chi_check, False)
    discarded = cut[chi_check]
    # the chi difference alone misses plateaus (12x16, kT 2, mu 0.1: chi 16 and 24 agree to 8e-11, both 2.8e-9
    # off); the discarded weight, first order in the truncation, is larger than the true error in every case measured
    error = max(abs(fine - coarse), discarded)
    values, errs = [None, None, None], [None, None, None]
    if derivatives:
        zero = (0.0, 0.0, 0.0, 0.0)
        for i, (f, c, scale, second) in enumerate([(fk, ck, -eps, False), (fh or zero, ch or zero, 1.0, False),
                                                   (fk, ck, K * K, True)]):
            j = 1 if second else 0                        # (d3, s3, d5, s5): first or second derivative
            value = f[j] + (c[j + 2] - c[j])              # chi_check 3-point + chi's 5-point correction
            values[i] = scale * value
            # the chi difference doubled: at a small chi the chi_check error can equal it (6x8, kT 2.5, mu 0.2,
            # chi 6/8: C/N off by 3.3e-3 with a difference of 3.2e-3)
            errs[i] = abs(scale) * (2 * abs(value - c[j + 2]) + abs(c[j] - c[j + 2]) / 10) + discarded
    names = ("log_Z_per_site", "mean_energy_per_site", "mean_observable", "heat_capacity_per_site")
    return ExactResult.from_log_z("tensor_network", T, mu, n, system.k_B, fine * n,
                                  mean_energy_per_site=values[0], mean_observable=values[1],
                                  heat_capacity_per_site=values[2], error=error,
                                  errors=dict(zip(names, [error] + errs)), chi=(chi, chi_check))
