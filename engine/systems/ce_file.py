"""The cluster-expansion JSON file without torch: reading it, and what it says about its lattice and species.

The file (format of shared/reference/cuau_cluster_expansion.json) names the lattice in ``lattice``: ``kind`` (one of
:data:`lattherm.engine.lattices.BRAVAIS`; without it the kind is found from
``primitive_vectors_in_units_of_half_a``) and ``conventional_lattice_constant_angstrom``; ``species`` lists the two
element symbols as [spin -1, spin +1]; ``energy_definition`` says which energy its source code reports per site
("formation": E_form, the CuAu file's ``energy_formula``; "raw": sum_alpha ECI_alpha cf_alpha, what icet and CLEASE
predict). The catalog builds a system's metadata from this header; :mod:`.cluster_expansion` builds the numerics.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import LatthermError
from ..lattices import BRAVAIS

ENERGY_DEFINITIONS = ("formation", "raw")
_SYMBOL = re.compile(r"[A-Z][a-z]?")


def _read_json(path) -> dict:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise LatthermError(f"cannot read cluster-expansion file {str(p)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LatthermError(f"cluster-expansion file {str(p)!r} is not a text (JSON) file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LatthermError(f"cluster-expansion file {str(p)!r} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict):
        raise LatthermError(f"cluster-expansion file {str(p)!r} must hold a JSON object")
    return data


@lru_cache(maxsize=16)
def _cached_json(path: str, mtime_ns: int) -> dict:
    return _read_json(path)


def load_json(path) -> dict:
    """Parsed expansion file, cached per (path, modification time). Treat the result as read-only."""
    p = Path(path).expanduser().resolve()
    try:
        mtime = p.stat().st_mtime_ns
    except OSError as exc:
        raise LatthermError(f"cannot read cluster-expansion file {str(p)!r}: {exc.strerror or exc}") from None
    return _cached_json(str(p), mtime)


def lattice_of(data: dict, source: str) -> tuple[str, float]:
    """(Bravais kind, conventional lattice constant in angstrom) the file declares."""
    geometry = data.get("lattice")
    if not isinstance(geometry, dict):
        raise LatthermError(f"cluster-expansion file {source} lacks the 'lattice' object (kind and lattice constant)")
    kind = geometry.get("kind")
    vectors = geometry.get("primitive_vectors_in_units_of_half_a")
    if kind is None and vectors is not None:
        try:
            v = np.asarray(vectors, dtype=np.float64)
        except (TypeError, ValueError):
            v = None
        kind = next((k for k, (vec, _) in BRAVAIS.items() if v is not None and v.shape == vec.shape
                     and np.array_equal(v, vec)), None)
        if kind is None:
            raise LatthermError(f"cluster-expansion file {source}: primitive vectors {vectors!r} are none of the "
                                f"one-site lattices {', '.join(BRAVAIS)} in their standard orientation")
    if kind not in BRAVAIS:
        raise LatthermError(f"cluster-expansion file {source}: lattice kind {kind!r} is not supported "
                            f"(one-site lattices: {', '.join(BRAVAIS)})")
    if vectors is not None:
        try:
            ok = np.array_equal(np.asarray(vectors, dtype=np.float64), BRAVAIS[kind][0].astype(np.float64))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise LatthermError(f"cluster-expansion file {source}: its primitive vectors {vectors!r} differ from the "
                                f"{kind} lattice's {BRAVAIS[kind][0].tolist()}")
    a = geometry.get("conventional_lattice_constant_angstrom")
    if isinstance(a, bool) or not isinstance(a, (int, float)) or not np.isfinite(a) or a <= 0:
        raise LatthermError(f"cluster-expansion file {source}: lattice.conventional_lattice_constant_angstrom "
                            f"must be a positive number, got {a!r}")
    return str(kind), float(a)


def species_of(data: dict, source: str, default=None) -> tuple[str, str]:
    """The two element symbols [spin -1, spin +1]; a ternary or multi-sublattice file is refused by name."""
    species = data.get("species", default)
    if species is None:
        raise LatthermError(f"cluster-expansion file {source} lacks 'species' (two element symbols, spin -1 first)")
    if not isinstance(species, (list, tuple)) or len(species) != 2:
        n = len(species) if isinstance(species, (list, tuple)) else "?"
        raise LatthermError(f"cluster-expansion file {source}: lattherm handles binary expansions (two species), "
                            f"this one lists {n}: {species!r}")
    names = tuple(str(s) for s in species)
    if not all(_SYMBOL.fullmatch(s) for s in names) or names[0] == names[1]:
        raise LatthermError(f"cluster-expansion file {source}: species {list(names)} are not two distinct element "
                            "symbols")
    return names  # type: ignore[return-value]


def energy_definition_of(data: dict, source: str) -> str:
    definition = data.get("energy_definition", "formation")
    if definition not in ENERGY_DEFINITIONS:
        raise LatthermError(f"cluster-expansion file {source}: energy_definition {definition!r} is not one of "
                            f"{', '.join(ENERGY_DEFINITIONS)}")
    return definition


__all__ = ["ENERGY_DEFINITIONS", "load_json", "lattice_of", "species_of", "energy_definition_of"]
