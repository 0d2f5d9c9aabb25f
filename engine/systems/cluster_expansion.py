"""Binary cluster expansions on any one-site Bravais lattice (SCIENCE.md, CuAu), evaluated in batches on torch tensors.

Definition (the reference JSON's ``energy_formula``): for cluster type alpha with figures F_alpha (each a list of
site offsets in lattice units -- a/2 for the cubic lattices, a for square -- containing the origin),

    cf_alpha(s) = 1/(N |F_alpha|) * sum_i sum_{f in F_alpha} prod_{v in f} s(r_i + v, wrapped periodically),
    E_raw(s)    = N * sum_alpha ECI_alpha * cf_alpha(s),
    E_form(s)   = E_raw(s) - (1 - c) U_Cu - c U_Au,   c = N_Au / N,  U_X = E_raw(all X) of the same cell.

In small cells two offsets of one figure may land on the same site; then s_j * s_j = 1, as in the reference.

Evaluation. Expanding the sums, E_raw is a polynomial in the spins. At construction every orbit term is reduced
(a site occurring twice drops out), identical monomials are merged, and each unique monomial m keeps an integer
count n[m, alpha] of how often it occurs in cluster alpha's orbit sum; monomials with equal count vectors form
one group. At run time the spins are transposed to (N, B) int8, each degree's monomials are products of gathered
rows (exact: +-1), each group is summed in an integer type (exact), and only the final contraction of the group
sums with the counts and the ECIs is floating point (float64). So energies are batch-independent and accurate to
float64 rounding; no Python loop runs over sites or monomials.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import LatthermError
from ..lattices import Lattice
from .base import System
from .catalog import CLUSTER_EXPANSION, CUAU, CUAU_JSON, SystemInfo
from .ce_file import energy_definition_of, lattice_of, load_json

_FIGURES_KEY = "figures_offsets_in_units_of_half_a"


@dataclass
class _Terms:
    """All unique monomials of one degree d: sites (d, M), grouped into slices of equal per-cluster counts."""

    sites: torch.Tensor  # (d, M) long
    patterns: torch.Tensor  # (G, A) float64: count of each monomial of group g in cluster alpha's orbit sum
    sizes: list[int]  # (G,) monomials per group, in the order of the columns of ``sites``
    acc: torch.dtype  # integer type that holds a group's sum exactly

    def to(self, device) -> "_Terms":
        return _Terms(self.sites.to(device), self.patterns.to(device), self.sizes, self.acc)


# ---- JSON parsing and validation ----------------------------------------------------------------------------------
def _parse_clusters(data: dict, source: str, dim: int = 3) -> list[dict]:
    """Validate the JSON and return [{name, size, eci, figures (F, k, dim) int array or None}] in file order."""
    for key in ("eci_eV_per_site", "clusters"):
        if key not in data:
            raise LatthermError(f"cluster-expansion file {source} lacks the key {key!r}")
    ecis = data["eci_eV_per_site"]
    if not isinstance(ecis, dict) or not ecis:
        raise LatthermError(f"cluster-expansion file {source}: 'eci_eV_per_site' must be a non-empty object")
    clusters = data["clusters"]
    if not isinstance(clusters, list) or not clusters:
        raise LatthermError(f"cluster-expansion file {source}: 'clusters' must be a non-empty list")
    out, used = [], set()
    for n, c in enumerate(clusters):
        if not isinstance(c, dict):
            raise LatthermError(f"cluster-expansion file {source}: clusters[{n}] is not an object")
        name = str(c.get("name", f"clusters[{n}]"))
        for key in ("eci_key", "size"):
            if key not in c:
                raise LatthermError(f"cluster-expansion file {source}: cluster {name!r} lacks the key {key!r}")
        eci_key = c["eci_key"]
        if eci_key not in ecis:
            raise LatthermError(f"cluster-expansion file {source}: cluster {name!r} names ECI {eci_key!r}, "
                                "which is not in 'eci_eV_per_site'")
        if eci_key in used:
            raise LatthermError(f"cluster-expansion file {source}: ECI {eci_key!r} is used by two clusters")
        used.add(eci_key)
        try:
            eci = float(ecis[eci_key])
        except (TypeError, ValueError):
            raise LatthermError(f"cluster-expansion file {source}: ECI {eci_key!r} is not a number") from None
        if not np.isfinite(eci):
            raise LatthermError(f"cluster-expansion file {source}: ECI {eci_key!r} is not finite")
        size = c["size"]
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise LatthermError(f"cluster-expansion file {source}: cluster {name!r} has a bad size {size!r}")
        figures = c.get(_FIGURES_KEY)
        if figures is None:
            if size == 0:
                fig = None  # the empty cluster: cf = 1
            elif size == 1:
                fig = np.zeros((1, 1, dim), dtype=np.int64)  # the point cluster: cf = mean spin
            else:
                raise LatthermError(f"cluster-expansion file {source}: cluster {name!r} of size {size} "
                                    f"lacks {_FIGURES_KEY!r}")
        else:
            if size == 0:
                raise LatthermError(f"cluster-expansion file {source}: the empty cluster {name!r} cannot have figures")
            try:
                arr = np.asarray(figures, dtype=np.float64)
            except (TypeError, ValueError):
                arr = None
            if arr is None or arr.ndim != 3 or arr.shape[0] < 1 or arr.shape[1:] != (size, dim):
                raise LatthermError(f"cluster-expansion file {source}: cluster {name!r} needs {_FIGURES_KEY!r} "
                                    f"as a non-empty list of figures of {size} {dim}-component offsets")
            fig = np.rint(arr).astype(np.int64)
            if not np.array_equal(fig, arr):
                raise LatthermError(f"cluster-expansion file {source}: cluster {name!r} has non-integer offsets "
                                    "(offsets are in lattice units, a/2 for the cubic lattices)")
            declared = c.get("n_figures_per_site")
            if declared is not None and declared != fig.shape[0]:
                raise LatthermError(f"cluster-expansion file {source}: cluster {name!r} lists {fig.shape[0]} "
                                    f"figures but declares n_figures_per_site = {declared}")
        out.append({"name": name, "size": size, "eci": eci, "figures": fig})
    unused = sorted(set(ecis) - used)
    if unused:
        raise LatthermError(f"cluster-expansion file {source}: ECI(s) {', '.join(map(repr, unused))} belong to no cluster")
    return out


# ---- the orbit polynomial ----------------------------------------------------------------------------------------
def _reduced_monomials(idx: np.ndarray):
    """Rows (R, k) of site indices -> per row its reduced monomial: sites occurring an odd number of times, sorted.

    Returns {degree: (r_d, degree) monomial sites}; degree 0 rows (every site paired off) are constants."""
    rows = np.sort(idx, axis=1)
    count = (rows[:, :, None] == rows[:, None, :]).sum(-1)
    keep = count % 2 == 1
    degree = keep.sum(1)
    out = {}
    for d in np.unique(degree):
        sel = np.flatnonzero(degree == d)
        out[int(d)] = rows[sel][keep[sel]].reshape(len(sel), int(d))
    return out


class ClusterExpansion(System):
    """Binary cluster expansion on a supercell of the file's lattice; energy() is the formation energy E_form
    (whole cell, eV). Spins: species index 0 (spin -1) and 1 (spin +1), named by the catalog entry."""

    info = CLUSTER_EXPANSION  # a named system (cuau) replaces it with its own catalog entry

    def __init__(self, lattice: Lattice, data: dict, source: str = "<dict>", info: SystemInfo | None = None):
        if not isinstance(lattice, Lattice):
            raise LatthermError(f"a cluster expansion needs a Lattice, got {type(lattice).__name__}")
        if not isinstance(data, dict):
            raise LatthermError(f"cluster-expansion data {source} must be a JSON object")
        if "lattice" in data:
            kind, _ = lattice_of(data, source)
        else:
            kind = "fcc"  # the CuAu format before lattices had names
        if lattice.kind != kind:
            raise LatthermError(f"the cluster expansion {source} is defined on the {kind} lattice, "
                                f"not on a {lattice.kind} lattice {lattice.label}")
        #: which energy the file's source code reports per site ("formation" or "raw"; :mod:`.ce_file`)
        self.energy_definition = energy_definition_of(data, source)
        super().__init__(lattice)
        if info is not None:
            self.info = info
        self.source = source
        clusters = _parse_clusters(data, source, lattice.dim)
        self.cluster_names = tuple(c["name"] for c in clusters)
        self.cluster_sizes = tuple(c["size"] for c in clusters)
        self.eci = torch.tensor([c["eci"] for c in clusters], dtype=torch.float64)
        N = lattice.n_sites
        n_fig = np.array([1 if c["figures"] is None else c["figures"].shape[0] for c in clusters], dtype=np.int64)
        self._n_fig = torch.as_tensor(n_fig, dtype=torch.float64)
        #: E_raw = counts(s) @ weights, counts[alpha] = sum_i sum_f prod (an integer), weight = ECI / |F|
        self._weights = self.eci / self._n_fig
        A = len(clusters)
        const = np.zeros(A, dtype=np.float64)
        blocks: dict[int, list] = {}  # degree -> [(monomials (r, d), cluster id)]
        for a, c in enumerate(clusters):
            if c["figures"] is None:
                const[a] = N
                continue
            orbit = lattice.orbit(c["figures"]).reshape(-1, c["size"])  # (N*F, k)
            for d, mono in _reduced_monomials(orbit).items():
                if d == 0:
                    const[a] += len(mono)
                else:
                    blocks.setdefault(d, []).append((mono, a))
        self._const = torch.as_tensor(const, dtype=torch.float64)
        self._terms: list[_Terms] = []
        for d in sorted(blocks):
            monos = np.concatenate([m for m, _ in blocks[d]])
            owner = np.concatenate([np.full(len(m), a) for m, a in blocks[d]])
            uniq, inverse = np.unique(monos, axis=0, return_inverse=True)
            counts = np.zeros((len(uniq), A), dtype=np.int64)
            np.add.at(counts, (inverse.reshape(-1), owner), 1)
            # group monomials with the same per-cluster counts ("pattern") so that each group is one slice
            patterns, pid = np.unique(counts, axis=0, return_inverse=True)
            pid = pid.reshape(-1)
            order = np.argsort(pid, kind="stable")
            sizes = np.bincount(pid, minlength=len(patterns))
            self._terms.append(_Terms(
                sites=torch.as_tensor(np.ascontiguousarray(uniq[order].T), dtype=torch.long),
                patterns=torch.as_tensor(patterns, dtype=torch.float64),
                sizes=[int(v) for v in sizes],
                acc=torch.int16 if sizes.max() < 2**15 else (torch.int32 if sizes.max() < 2**31 else torch.int64),
            ))
        self._device_cache: dict = {}
        # reference energies of the pure cells: E_raw(all spin -1), E_raw(all spin +1); every product is (-1)^k
        sign = torch.tensor([(-1.0) ** k for k in self.cluster_sizes], dtype=torch.float64)
        self.U_minus_per_site = float((self.eci * sign).sum())
        self.U_plus_per_site = float(self.eci.sum())
        formula = data.get("energy_formula")
        if isinstance(formula, dict):
            for key, mine in (("U_Cu_per_site_eV", self.U_minus_per_site), ("U_Au_per_site_eV", self.U_plus_per_site)):
                if key in formula:
                    try:
                        theirs = float(formula[key])
                    except (TypeError, ValueError):
                        raise LatthermError(f"cluster-expansion file {source}: energy_formula.{key} is not a number") from None
                    if abs(theirs - mine) > 1e-12 * max(1.0, abs(mine)):
                        raise LatthermError(f"cluster-expansion file {source}: energy_formula.{key} = {theirs!r} "
                                            f"disagrees with the ECIs (sum gives {mine!r})")

    # ---- construction --------------------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, path, lattice: Lattice, info: SystemInfo | None = None) -> "ClusterExpansion":
        """Load an expansion file in the format of shared/reference/cuau_cluster_expansion.json."""
        return cls(lattice, load_json(path), source=repr(str(path)), info=info)

    # ---- evaluation ----------------------------------------------------------------------------------------------
    def _on(self, device: torch.device):
        key = str(device)
        hit = self._device_cache.get(key)
        if hit is None:
            hit = ([terms.to(device) for terms in self._terms], self._const.to(device), self._weights.to(device))
            self._device_cache[key] = hit
        return hit

    def spin_polynomial(self):
        """E_form as linear terms plus the unique monomials of degree >= 2 with their coefficients."""
        linear = np.zeros(self.n_sites)
        monos = []
        weights = self._weights.numpy()
        for t in self._terms:
            coef = np.repeat(t.patterns.numpy() @ weights, t.sizes)  # per monomial, in E_raw
            sites = t.sites.numpy().T  # (M, d)
            if sites.shape[1] == 1:
                np.add.at(linear, sites[:, 0], coef)
            else:
                monos.append((sites, coef))
        # E_form = E_raw - N U_- - (U_+ - U_-)(sum s + N)/2: a linear term -(U_+ - U_-)/2 on every site
        linear -= 0.5 * (self.U_plus_per_site - self.U_minus_per_site)
        return linear, monos

    def cluster_counts(self, s: torch.Tensor) -> torch.Tensor:
        """(B, A) float64: per cluster type, sum_i sum_f prod_v s (integers; cf = counts / (N |F|)).

        Spins are transposed to (N, B) int8 so that each monomial gathers whole contiguous rows; products of
        +-1 are exact in int8 and group sums exact in the accumulator type; only the final tiny contraction with
        the per-group counts is floating point (float64)."""
        if s.ndim != 2 or s.shape[1] != self.n_sites:
            raise LatthermError(f"configurations must have shape (batch, {self.n_sites}), got {tuple(s.shape)}")
        terms, const, _ = self._on(s.device)
        x = s.t().to(torch.int8).contiguous()  # (N, B)
        total = const.expand(s.shape[0], -1).clone()
        for t in terms:
            p = x.index_select(0, t.sites[0])
            for j in range(1, t.sites.shape[0]):
                p.mul_(x.index_select(0, t.sites[j]))
            g = torch.stack([q.sum(0, dtype=t.acc) for q in p.split(t.sizes)])  # (G, B)
            total += g.t().to(torch.float64) @ t.patterns
        return total

    def correlation_functions(self, s: torch.Tensor) -> torch.Tensor:
        """(B, A) float64 correlation functions cf_alpha, in the order of :attr:`cluster_names`."""
        return self.cluster_counts(s) / (self.n_sites * self._n_fig.to(s.device))

    def raw_energy(self, s: torch.Tensor) -> torch.Tensor:
        """E_raw(s) = N sum_alpha ECI_alpha cf_alpha(s): float64 (B,), whole cell, eV."""
        _, _, w = self._on(s.device)
        return self.cluster_counts(s) @ w

    def source_energy(self, s: torch.Tensor) -> torch.Tensor:
        """The energy the file's source code reports (:attr:`energy_definition`): E_form or E_raw, (B,), eV."""
        return self.energy(s) if self.energy_definition == "formation" else self.raw_energy(s)

    def energy(self, s: torch.Tensor) -> torch.Tensor:
        """Formation energy E_form = E_raw - (1 - c) U_Cu - c U_Au, c = N_Au/N: float64 (B,), whole cell, eV."""
        N = self.n_sites
        n_plus = (s.to(torch.float64).sum(-1) + N) / 2
        c = n_plus / N
        ref = N * ((1 - c) * self.U_minus_per_site + c * self.U_plus_per_site)
        return self.raw_energy(s) - ref

    def observable(self, s: torch.Tensor) -> torch.Tensor:
        """x of the spin +1 species (x_Au for CuAu): fraction of sites with spin +1, float64 (B,)."""
        return self.composition(s)

    def composition_of_observable(self, v):
        return v  # the observable is x_Au already

    def describe(self) -> dict:
        return {**super().describe(), "clusters": list(self.cluster_names)}


def cuau(lattice: Lattice) -> ClusterExpansion:
    """The CuAu fcc cluster expansion (SCIENCE.md) on ``lattice`` (an fcc supercell, e.g. fcc(2, 2, 4))."""
    return ClusterExpansion.from_json(CUAU_JSON, lattice, info=CUAU)
