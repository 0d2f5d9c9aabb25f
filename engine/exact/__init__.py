"""Exact references: Kaufman's torus formula (mu = 0), the row transfer matrix (field), brute-force enumeration, and
the HOTRG tensor network (Ising in a field at any size, with an error estimate).

They give the floor -log Z under every variational estimate and the exact <E>, <order parameter>, C that trained
models are judged against; ``exact_reference`` picks whichever applies.
"""

from .enumeration import MAX_ENUMERATION_SITES, enumerate_exact
from .kaufman import kaufman_exact, kaufman_log_z
from .reference import exact_grid, exact_reference
from .result import EXACT_METHODS, ExactResult
from .tensor_network import DEFAULT_CHI, DEFAULT_CHI_CHECK, MAX_CHI, hotrg_log_z, tensor_network
from .transfer import MAX_TM_WIDTH, transfer_matrix, transfer_matrix_log_z

__all__ = [
    "ExactResult",
    "kaufman_log_z",
    "kaufman_exact",
    "transfer_matrix",
    "transfer_matrix_log_z",
    "enumerate_exact",
    "exact_reference",
    "exact_grid",
    "MAX_TM_WIDTH",
    "MAX_ENUMERATION_SITES",
    "EXACT_METHODS",
    "hotrg_log_z",
    "tensor_network",
    "DEFAULT_CHI",
    "DEFAULT_CHI_CHECK",
    "MAX_CHI",
]
