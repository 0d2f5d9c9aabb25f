"""Pick the exact method a system and condition allow, so callers ask for "the exact answer" and nothing else.

Order of preference for the square-lattice Ising torus: Kaufman at mu = 0 (any size, closed form), the row transfer
matrix with a field (shorter side <= MAX_TM_WIDTH); for any system, enumeration when N <= 24; and last, for the Ising
torus in a field at any larger size, the HOTRG tensor network, whose result says so (method "tensor_network") and
carries its error estimate (``error``; 0.0 for the exact methods).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..errors import LatthermError
from ..systems.base import System, check_condition
from .enumeration import MAX_ENUMERATION_SITES, enumerate_exact
from .kaufman import kaufman_exact
from .result import METHODS, ExactResult
from .tensor_network import DEFAULT_CHI, DEFAULT_CHI_CHECK, tensor_network
from .transfer import MAX_TM_WIDTH, transfer_matrix


def _scalar(value, name: str) -> float:
    t = torch.as_tensor(value, dtype=torch.float64)
    if t.numel() != 1:
        raise LatthermError(f"{name} must be a single number for an exact reference, got {t.numel()} values")
    return float(t.reshape(()))


def _is_square_ising(system: System) -> bool:
    return system.square_ising_coupling is not None


def exact_reference(system: System, T, mu, method: str = "auto", chi: int = DEFAULT_CHI,
                    chi_check: int = DEFAULT_CHI_CHECK, derivatives: bool = True) -> ExactResult:
    """Exact (or tensor-network) thermodynamics of ``system`` at (T, mu).

    method: "auto" (Kaufman for Ising at mu = 0, else the transfer matrix when the torus is narrow enough, else
    enumeration when N <= 24, else the tensor network for Ising), or force "kaufman", "transfer_matrix",
    "enumeration" or "tensor_network" (bond dimensions chi and chi_check). ``derivatives=False`` lets the tensor
    network compute log Z alone (2 contractions instead of 18; <E>, <M>, C then None); the exact methods always give
    everything. Raises LatthermError when the condition is invalid or no method applies.
    """
    check_condition(T, mu)
    T, mu = _scalar(T, "T"), _scalar(mu, "mu")
    ising = _is_square_ising(system)
    n = int(system.n_sites)
    if method == "auto":
        if ising and mu == 0.0:
            method = "kaufman"
        elif ising and min(system.lattice.size) <= MAX_TM_WIDTH:
            method = "transfer_matrix"
        elif n <= MAX_ENUMERATION_SITES:
            method = "enumeration"
        elif ising:
            method = "tensor_network"
        else:
            raise LatthermError(f"no exact method for {system!r} (N={n}) at T={T:g}, mu={mu:g}: Kaufman, the "
                                f"transfer matrix and the tensor network cover only the square-lattice Ising model, "
                                f"enumeration needs N <= {MAX_ENUMERATION_SITES}")
    if method == "kaufman":
        if not ising:
            raise LatthermError(f"Kaufman's formula is only for the square-lattice Ising model, not {system!r}")
        if mu != 0.0:
            raise LatthermError(f"Kaufman's formula needs zero field, got mu={mu:g}; use the transfer matrix")
        L1, L2 = system.lattice.size
        return kaufman_exact(L1, L2, T, eps=float(system.square_ising_coupling), k_B=float(system.k_B))
    if method == "transfer_matrix":
        return transfer_matrix(system, T, mu)
    if method == "enumeration":
        return enumerate_exact(system, T, mu)
    if method == "tensor_network":
        return tensor_network(system, T, mu, chi=chi, chi_check=chi_check, derivatives=derivatives)
    raise LatthermError(f"unknown exact method {method!r} (choose from: auto, {', '.join(METHODS)})")


def exact_grid(system: System, conditions: Iterable[tuple[float, float]], method: str = "auto",
               **options) -> list[ExactResult]:
    """exact_reference at each (T, mu) in ``conditions``, in order; all are validated before any is computed."""
    conds = [(T, mu) for T, mu in conditions]
    for T, mu in conds:
        check_condition(T, mu)
    return [exact_reference(system, T, mu, method=method, **options) for T, mu in conds]
