"""Swendsen-Wang and Wolff cluster updates for the square-lattice Ising model in a field, batched over chains.

Single-site Metropolis decorrelates slowly near T_c (critical slowing down, tau ~ L^2); cluster updates flip
correlated domains at once. Both algorithms here rest on the Fortuin-Kasteleyn bond representation of
log f = beta * (eps * sum_<ij> s_i s_j + mu * sum_i s_i), beta = 1 / k_B T, with the field carried by a **ghost
spin** g = sign(mu) coupled to every site with strength |mu|:

- a lattice bond <ij> whose term is satisfied (eps s_i s_j > 0: aligned spins for the ferromagnet) is activated
  with p = 1 - exp(-2 beta |eps|); a ghost bond (i, g) is activated with p_g = 1 - exp(-2 beta |mu|) when
  s_i = sign(mu). Every other bond stays inactive.
- **Swendsen-Wang** (:meth:`ClusterChains.swendsen_wang`): given the bonds, the spins are uniform over the
  assignments that keep every active bond satisfied. The cluster holding the ghost is pinned (the ghost's value is
  fixed), every other cluster is flipped with probability 1/2. Clusters come from :func:`connected_components`,
  a batched root-hooking / pointer-jumping labelling with no loop over sites.
- **Wolff** (:meth:`ClusterChains.wolff`): the cluster of one uniformly random seed site is its connected component
  in the percolation of satisfied lattice bonds -- the same law as growing it and testing each bond when the
  cluster first reaches it. The bonds are drawn once per update and the component found by the same labelling
  as SW: a breadth-first growth front needs one vectorised pass per step of the cluster's chemical radius (about
  64 at 20x20, T_c), the labelling about the log of it (measured 5x faster there). The cluster is flipped unless
  it reached the ghost.
  The ghost is not grown explicitly: a cluster C reaches it unless all of its ghost bonds stay inactive, which has
  probability exp(-2 beta mu sum_{i in C} s_i) when C is aligned with the field and 1 otherwise, i.e. the flip is
  accepted with probability min(1, exp(-2 beta mu sum_{i in C} s_i)) -- the Metropolis acceptance of the field
  term of the flip. Both views are the same kernel; this one draws one uniform per cluster instead of |C|.

Each update is reversible with respect to exp(log f). Bonds come from the lattice's own bond list, so the doubled
bonds of a 2-wide torus are two independent bonds, exactly as they enter the energy.

Time unit: one SW update is one sweep; a Wolff sweep is ``clusters_per_sweep`` single-cluster updates per chain,
by default N / <|C|> with <|C|> measured per chain during equilibration (where each sweep grows clusters until it
has touched N sites); the count is then fixed, since a data-dependent stopping rule would bias the records.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from ..errors import LatthermError
from ..systems.base import System, check_condition
from .metropolis import MCResult, _per_chain, check_count, initial_spins

__all__ = ["ALGORITHMS", "ClusterChains", "ClusterMCResult", "bond_probability", "cluster_mc",
           "connected_components", "square_ising_bonds"]

#: the cluster algorithms :func:`cluster_mc` offers
ALGORITHMS = ("wolff", "swendsen-wang")
#: adaptive Wolff sweeps of the pilot that sizes clusters_per_sweep when equilibration is shorter (second half used)
PILOT_SWEEPS = 4


def square_ising_bonds(system: System) -> tuple[torch.Tensor, float]:
    """(bonds (M, 2) long, eps) of a square-lattice Ising system, or a LatthermError for any other system.

    The bonds are the lattice's nearest-neighbour list (E = -eps * sum over it of s_i s_j); a bond of a site with
    itself (a 1-wide torus) is the constant s_i^2 and is left out."""
    if not isinstance(system, System):
        raise LatthermError(f"cluster updates need a System, got {type(system).__name__}")
    eps = system.square_ising_coupling
    if eps is None:
        raise LatthermError(f"cluster updates (Wolff, Swendsen-Wang) need the square-lattice Ising model, "
                            f"not {system!r}; use metropolis")
    b = torch.as_tensor(system.lattice.bonds(1), dtype=torch.long)
    return b[b[:, 0] != b[:, 1]].contiguous(), float(eps)


def bond_probability(beta: torch.Tensor, coupling) -> torch.Tensor:
    """Fortuin-Kasteleyn activation probability 1 - exp(-2 beta |J|) of a satisfied bond of coupling J."""
    beta = torch.as_tensor(beta, dtype=torch.float64)
    J = torch.as_tensor(coupling, dtype=torch.float64, device=beta.device)
    return -torch.expm1(-2.0 * beta * J.abs())


def connected_components(edges: torch.Tensor, active: torch.Tensor, n_nodes: int) -> torch.Tensor:
    """Component labels of B graphs on the same ``n_nodes`` nodes: edge k = (edges[k, 0], edges[k, 1]) is present
    in graph b where active[b, k]. Returns (B, n_nodes) long, each node labelled by the smallest node of its
    component.

    All graphs are labelled at once as one disjoint union: every root hooks onto the smallest root across its
    present edges (a scatter-min), then pointer jumping compresses every node onto its root; this repeats until
    no edge joins two roots. Each pass costs O(B * edges) in vectorised ops, and the passes grow slowly with the
    lattice (20, 24, 28 equality checks, hooking and jumping together, for FK clusters at T_c on 10x10, 20x20,
    40x40), where a breadth-first front needs one pass per step of the largest cluster's chemical radius."""
    B = active.shape[0]
    device = active.device
    rows, k = torch.nonzero(active, as_tuple=True)
    offset = rows * n_nodes
    u = offset + edges[k, 0].to(device)
    v = offset + edges[k, 1].to(device)
    parent = torch.arange(B * n_nodes, device=device)
    while True:
        pu, pv = parent[u], parent[v]
        low = torch.minimum(pu, pv)
        hooked = parent.clone()
        hooked.scatter_reduce_(0, pu, low, reduce="amin")
        hooked.scatter_reduce_(0, pv, low, reduce="amin")
        while True:  # pointer jumping to full compression: every node then points at a root
            jumped = hooked[hooked]
            if torch.equal(jumped, hooked):
                break
            hooked = jumped
        if torch.equal(hooked, parent):
            break
        parent = hooked
    return (parent.view(B, n_nodes) - torch.arange(B, device=device)[:, None] * n_nodes)


@dataclass
class _Counts:
    """Per-chain bookkeeping of one batch of cluster updates."""

    grown: torch.Tensor  # (B,) sites in the clusters built (SW: N per update)
    flipped: torch.Tensor  # (B,) sites flipped
    clusters: torch.Tensor  # (B,) clusters built (SW: clusters of real sites)


class ClusterChains:
    """B square-lattice Ising configurations at per-chain (T, mu), updated by Swendsen-Wang or Wolff moves.

    ``s`` is the (B, N) float32 spin batch; ``beta`` and ``mu`` are (B,) float64."""

    def __init__(self, system: System, spins: torch.Tensor, T, mu, device="cpu"):
        self.system = system
        self.device = torch.device(device)
        bonds, self.eps = square_ising_bonds(system)
        self.bonds = bonds.to(self.device)
        B = int(spins.shape[0])
        N = system.n_sites
        self.s = spins.to(self.device, torch.float32).clone()
        self.T = _per_chain(T, B, "T", self.device)
        self.beta = 1.0 / (system.k_B * self.T)
        self.mu = _per_chain(mu, B, "mu", self.device)
        self.p_bond = bond_probability(self.beta, self.eps)
        self.p_ghost = bond_probability(self.beta, self.mu)
        self.ghost_spin = torch.sign(self.mu).to(torch.float32)
        # SW's graph: the ghost is node N, bonded to every site
        ghost = torch.stack([torch.arange(N, device=self.device), torch.full((N,), N, device=self.device)], 1)
        self.graph = torch.cat([self.bonds, ghost])
        self.rows = torch.arange(B, device=self.device)

    @property
    def n_chains(self) -> int:
        return int(self.s.shape[0])

    def _satisfied(self) -> torch.Tensor:
        """(B, M) bool: bond terms eps s_i s_j > 0 of the current spins (the bonds FK may activate)."""
        return self.eps * self.s[:, self.bonds[:, 0]] * self.s[:, self.bonds[:, 1]] > 0

    def swendsen_wang(self, generator: torch.Generator | None = None) -> _Counts:
        """One Swendsen-Wang update of every chain: FK bonds (ghost included), components, and every component
        without the ghost flipped with probability 1/2."""
        B, N, M = self.n_chains, self.system.n_sites, self.bonds.shape[0]
        u = torch.rand(B, M + N, generator=generator, device=self.device)
        active = torch.empty(B, M + N, dtype=torch.bool, device=self.device)
        active[:, :M] = self._satisfied() & (u[:, :M] < self.p_bond[:, None])
        active[:, M:] = (self.s == self.ghost_spin[:, None]) & (u[:, M:] < self.p_ghost[:, None])
        labels = connected_components(self.graph, active, N + 1)
        coin = torch.rand(B, N + 1, generator=generator, device=self.device) < 0.5
        site = labels[:, :N]
        flip = coin.gather(1, site) & (site != labels[:, N:])
        self.s = torch.where(flip, -self.s, self.s)
        roots = (site == torch.arange(N, device=self.device)).sum(1)
        return _Counts(grown=torch.full((B,), N, device=self.device), flipped=flip.sum(1), clusters=roots)

    def wolff(self, go: torch.Tensor | None = None, generator: torch.Generator | None = None) -> _Counts:
        """One Wolff single-cluster update of each chain where ``go`` (B,) bool (default all): the FK cluster of a
        uniformly random seed, flipped with the ghost's acceptance min(1, exp(-2 beta mu sum_C s))."""
        B, N = self.n_chains, self.system.n_sites
        if go is None:
            go = torch.ones(B, dtype=torch.bool, device=self.device)
        seed = torch.randint(0, N, (B,), generator=generator, device=self.device)
        u = torch.rand(B, self.bonds.shape[0], generator=generator, device=self.device)
        act = self._satisfied() & (u < self.p_bond[:, None])  # the percolation the cluster grows through
        labels = connected_components(self.bonds, act, N)
        cluster = (labels == labels[self.rows, seed][:, None]) & go[:, None]
        size = cluster.sum(1)
        spin_sum = (self.s * cluster).sum(1).to(torch.float64)
        logu = torch.rand(B, generator=generator, device=self.device, dtype=torch.float64).log_()
        accept = go & (logu < -2.0 * self.beta * self.mu * spin_sum)
        flip = cluster & accept[:, None]
        self.s = torch.where(flip, -self.s, self.s)
        return _Counts(grown=size, flipped=flip.sum(1), clusters=go.to(torch.long))

    def wolff_sweep(self, counts: torch.Tensor | None = None, generator: torch.Generator | None = None) -> _Counts:
        """Wolff updates per chain: ``counts[b]`` of them (B,) long, or, with counts None, as many as it takes for
        the grown clusters to total >= N sites (used only where the records are discarded)."""
        B, N = self.n_chains, self.system.n_sites
        zero = torch.zeros(B, dtype=torch.long, device=self.device)
        total = _Counts(zero.clone(), zero.clone(), zero.clone())
        k = 0
        while True:
            go = total.grown < N if counts is None else k < counts
            if not bool(go.any()):
                return total
            c = self.wolff(go, generator)
            total.grown += c.grown
            total.flipped += c.flipped
            total.clusters += c.clusters
            k += 1


@dataclass
class ClusterMCResult(MCResult):
    """:class:`MCResult` of :func:`cluster_mc`. ``acceptance`` is flipped / grown sites over the recorded part
    (SW about 1/2, Wolff 1 at mu = 0); ``attempted`` counts grown cluster sites (SW: N per update; a Wolff pilot
    included), so ``updates_per_second`` is site updates per second like Metropolis' attempted flips per second."""

    algorithm: str = "wolff"
    clusters_per_sweep: torch.Tensor | None = None  # (n_chains,) Wolff updates per sweep (SW: 1)
    mean_cluster_size: torch.Tensor | None = None  # (n_chains,) over the recorded part


def _wolff_counts(sizes: torch.Tensor, clusters: torch.Tensor, N: int) -> torch.Tensor:
    """Per chain, round(N / mean cluster size), at least 1."""
    mean = sizes.to(torch.float64) / clusters.clamp(min=1).to(torch.float64)
    return torch.clamp(torch.round(N / mean.clamp(min=1.0)), min=1).to(torch.long)


def _check_counts(value, n_chains: int) -> torch.Tensor:
    """clusters_per_sweep as (n_chains,) long: an integer >= 1 or one per chain, else a LatthermError."""
    if isinstance(value, torch.Tensor) and value.ndim > 0:
        v = value.reshape(-1)
        if v.numel() != n_chains or v.is_floating_point() or v.dtype == torch.bool or bool((v < 1).any()):
            raise LatthermError(f"clusters_per_sweep must be an integer >= 1 or {n_chains} of them (one per chain)")
        return v.to(torch.long)
    return torch.full((n_chains,), check_count(value, "clusters_per_sweep", 1), dtype=torch.long)


def cluster_mc(system: System, T, mu, n_chains: int, sweeps: int, equilibration: int = 0,
               algorithm: str = "wolff", init=None, generator: torch.Generator | None = None, device="cpu",
               record_every: int = 1, clusters_per_sweep=None) -> ClusterMCResult:
    """Cluster Monte Carlo of the square-lattice Ising model at per-chain (T, mu), batched over ``n_chains``.

    Same conventions as :func:`metropolis`: T, mu scalars or (n_chains,) tensors; ``sweeps`` recorded sweeps after
    ``equilibration`` discarded ones; E/N and the magnetisation recorded every ``record_every`` sweeps; init
    (n_chains, N) or (N,) spins, default uniformly random; generator a torch.Generator on ``device``.
    algorithm: "wolff" or "swendsen-wang". A Wolff sweep is ``clusters_per_sweep`` (an int, or one per chain)
    single-cluster updates per chain; by default round(N / <|C|>) per chain with <|C|> from the second half of
    the equilibration sweeps (each grows clusters until it has touched N sites), or, with equilibration <
    PILOT_SWEEPS, from such sweeps of a pilot on a copy of the start spins. A chain continued over many short calls
    (``init`` = the last ``final``) keeps one fixed kernel only if each call gets the first call's
    ``clusters_per_sweep``: counts re-measured from the current state would make the kernel state-dependent.
    Any system other than the square-lattice Ising model is a LatthermError."""
    square_ising_bonds(system)
    if algorithm not in ALGORITHMS:
        raise LatthermError(f"unknown cluster algorithm {algorithm!r} (choose from: {', '.join(ALGORITHMS)})")
    n_chains = check_count(n_chains, "n_chains", 1)
    sweeps = check_count(sweeps, "sweeps", 1)
    equilibration = check_count(equilibration, "equilibration", 0)
    record_every = check_count(record_every, "record_every", 1)
    if clusters_per_sweep is not None:
        clusters_per_sweep = _check_counts(clusters_per_sweep, n_chains)
    device = torch.device(device)
    check_condition(T, mu)
    N = system.n_sites
    wolff = algorithm == "wolff"
    with torch.no_grad():
        chains = ClusterChains(system, initial_spins(system, n_chains, init, generator, device), T, mu, device)
        t0 = time.perf_counter()
        zero = torch.zeros(n_chains, dtype=torch.long, device=device)
        eq_grown, eq_clusters = zero.clone(), zero.clone()
        grown, flipped, built = zero.clone(), zero.clone(), zero.clone()
        attempted = 0
        if wolff and clusters_per_sweep is None and equilibration < PILOT_SWEEPS:
            pilot = ClusterChains(system, chains.s, T, mu, device)
            for k in range(PILOT_SWEEPS):
                c = pilot.wolff_sweep(None, generator)
                attempted += int(c.grown.sum())
                if k >= PILOT_SWEEPS // 2:
                    eq_grown += c.grown
                    eq_clusters += c.clusters
        counts = None
        if wolff and clusters_per_sweep is not None:
            counts = clusters_per_sweep.to(device)
        n_rec = sweeps // record_every
        e_rec = torch.empty(n_chains, n_rec, dtype=torch.float64, device=device)
        o_rec = torch.empty_like(e_rec)
        for sweep in range(equilibration + sweeps):
            recording = sweep >= equilibration
            if wolff and recording and counts is None:
                counts = _wolff_counts(eq_grown, eq_clusters, N)
            if wolff:
                c = chains.wolff_sweep(counts if recording else None, generator)
            else:
                c = chains.swendsen_wang(generator)
            attempted += int(c.grown.sum())
            if recording:
                grown += c.grown
                flipped += c.flipped
                built += c.clusters
            elif equilibration >= PILOT_SWEEPS and sweep >= equilibration // 2:
                eq_grown += c.grown
                eq_clusters += c.clusters
            r = sweep - equilibration + 1
            if r > 0 and r % record_every == 0 and r // record_every <= n_rec:
                j = r // record_every - 1
                x = chains.s.to(torch.float64)
                e_rec[:, j] = system.energy(x).to(device) / N
                o_rec[:, j] = system.observable(x).to(device)
    seconds = time.perf_counter() - t0
    if not wolff:
        counts = torch.ones(n_chains, dtype=torch.long, device=device)
    return ClusterMCResult(energy=e_rec, observable=o_rec, final=chains.s.to(torch.int8),
                           acceptance=flipped.to(torch.float64) / grown.clamp(min=1), T=chains.T, mu=chains.mu,
                           n_sites=N, sweeps=sweeps, equilibration=equilibration, record_every=record_every,
                           seconds=seconds, attempted=attempted,
                           observable_name=getattr(system, "observable_name", "observable"), algorithm=algorithm,
                           clusters_per_sweep=counts, mean_cluster_size=grown.to(torch.float64) / built.clamp(min=1))
