"""Classical Monte Carlo references: single-site Metropolis in the semi-grand-canonical ensemble, the Wang-Landau
composition free energy (both on one shared single-site update), Wolff and Swendsen-Wang cluster updates for the
square-lattice Ising model in a field, local flip energies, autocorrelation statistics, and -log Z by
thermodynamic integration over beta."""

from .cluster import ClusterChains, ClusterMCResult, cluster_mc, connected_components
from .flips import FlipTables, flip_energy_pairs, flip_tables
from .metropolis import MCResult, SpinChains, metropolis, semi_grand_ratio
from .statistics import estimate, integrated_autocorrelation_time
from .thermodynamic_integration import ThermodynamicIntegration, thermodynamic_integration
from .wang_landau import biased_ratio, composition_free_energy

__all__ = ["FlipTables", "flip_tables", "flip_energy_pairs", "SpinChains", "semi_grand_ratio", "biased_ratio",
           "MCResult", "metropolis", "estimate", "integrated_autocorrelation_time", "composition_free_energy",
           "ClusterChains", "ClusterMCResult", "cluster_mc", "connected_components",
           "ThermodynamicIntegration", "thermodynamic_integration"]
