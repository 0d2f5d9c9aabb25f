"""Cluster-expansion files: import from icet / CLEASE into lattherm's CE JSON, and energies of structures in the
source code's own definition (so a user checks an import against the library that fitted it)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import LatthermError
from ._common import write_guarded


@dataclass
class CEImportResult:
    path: Path
    lattice: str
    lattice_constant: float
    species: list
    clusters: int

    def to_dict(self) -> dict:
        return {"path": str(self.path), "lattice": self.lattice, "lattice_constant": self.lattice_constant,
                "species": self.species, "clusters": self.clusters}


def ce_import(path, source: str, out, eci=None) -> CEImportResult:
    """Convert an icet ClusterExpansion file or CLEASE settings + ECI JSON into a CE JSON at ``out``; the result is
    loaded back as a system before it is written, so a written file always works."""
    from ..store import atomic_write_text
    from ..systems.ce_import import import_ce
    from ..systems.cluster_expansion import ClusterExpansion

    if not str(out).endswith(".json"):
        raise LatthermError(f"--out must name a .json file, got {str(out)!r}")
    data = import_ce(path, source, eci)
    kind = data["lattice"]["kind"]
    from ..lattices import lattice_for

    ClusterExpansion(lattice_for(kind, (2, 2, 2), data["lattice"]["conventional_lattice_constant_angstrom"]), data,
                     source=repr(str(path)))
    text = json.dumps(data, indent=1) + "\n"
    p = write_guarded(lambda: atomic_write_text(out, text), out)
    return CEImportResult(Path(p), kind, float(data["lattice"]["conventional_lattice_constant_angstrom"]),
                          list(data["species"]), len(data["clusters"]))


def ce_energies(ce_file, structures, format: str | None = None) -> dict:
    """Energy per site (eV) of every structure of an ASE-readable file (or folder) under the expansion
    ``ce_file``, in the file's own definition (``energy_definition``: "raw" = sum ECI cf, what icet and CLEASE
    predict; "formation" = E_form), with E_raw and E_form per site and each structure's supercell and
    composition."""
    import torch

    from ..analysis.structures import atoms_to_config, read_structures
    from ..systems import info_from_ce_file, make_system

    info = info_from_ce_file(ce_file)
    images = read_structures(structures, format)
    systems, rows = {}, []
    for k, atoms in enumerate(images):
        try:
            size, spins = atoms_to_config(atoms, info.lattice_kind, info.lattice_constant, info.species)
        except LatthermError as exc:
            raise LatthermError(f"{structures} (structure {k}): {exc}") from None
        label = "x".join(map(str, size))
        if label not in systems:
            systems[label] = make_system(str(ce_file), label)
        system = systems[label]
        s = torch.as_tensor(spins[None], dtype=torch.float64)
        N = system.n_sites
        raw, form = float(system.raw_energy(s)[0]) / N, float(system.energy(s)[0]) / N
        rows.append({"index": k, "atoms": len(atoms), "supercell": label, "n_sites": N,
                     f"x_{info.species[1]}": float((spins > 0).mean()),
                     "energy_per_site_eV": raw if system.energy_definition == "raw" else form,
                     "raw_energy_per_site_eV": raw, "formation_energy_per_site_eV": form})
    definition = next(iter(systems.values())).energy_definition
    return {"ce": str(ce_file), "definition": definition, "species": list(info.species),
            "lattice": info.lattice_kind, "structures": rows,
            "energies_per_site_eV": [r["energy_per_site_eV"] for r in rows]}
