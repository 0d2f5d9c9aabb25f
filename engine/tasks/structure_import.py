"""Import: atomic structures of a system's lattice (any ASE-readable file or folder) as a samples file of
configurations, so that a user's own supercells can be scored, painted from or used as data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import LatthermError
from ._common import npz_out, write_guarded


@dataclass
class ImportResult:
    path: Path
    frames: int
    size: str
    system: str

    def to_dict(self) -> dict:
        return {"path": str(self.path), "frames": self.frames, "size": self.size, "system": self.system}


def structure_configs(structures, system: str, format: str | None = None):
    """Every structure of ``structures`` mapped onto the system's lattice -> (system, (F, N) spins). All frames
    must tile the same n1 x n2 x n3 supercell; the system is a catalog name or a cluster-expansion JSON file."""
    from ..analysis.structures import atoms_to_config, read_structures
    from ..systems import make_system, system_info

    info = system_info(system)
    if info.encoding != "species" or info.lattice_constant is None:
        raise LatthermError(f"system {info.name!r} is a model on a {info.lattice_kind} lattice, not atoms; "
                            "structures import into an alloy (cluster-expansion) system")
    images = read_structures(structures, format)
    sizes, configs = [], []
    for k, atoms in enumerate(images):
        try:
            size, spins = atoms_to_config(atoms, info.lattice_kind, info.lattice_constant, info.species)
        except LatthermError as exc:
            raise LatthermError(f"{structures} (structure {k}): {exc}") from None
        sizes.append(size)
        configs.append(spins)
    if len(set(sizes)) != 1:
        raise LatthermError(f"{structures}: the structures tile different supercells "
                            f"({', '.join(sorted({'x'.join(map(str, s)) for s in sizes}))}); import them separately")
    return make_system(system, "x".join(map(str, sizes[0]))), np.stack(configs)


def import_structures(structures, system: str, out, T: float = float("nan"), mu: float = float("nan"),
                      format: str | None = None) -> ImportResult:
    """Structures -> a samples .npz (engine.store.samples layout) of their configurations with log_f filled when
    T is given and log_p unknown (NaN). Nothing is written on any error."""
    import torch

    from ..store.samples import write_samples

    npz_out(out)
    if out is None:
        raise LatthermError("give --out CONFIGS.npz")
    sys_, spins = structure_configs(structures, system, format)
    s = torch.as_tensor(spins, dtype=torch.float64)
    log_f = sys_.log_f(s, T, mu if np.isfinite(mu) else 0.0) if np.isfinite(T) else torch.full((len(s),), np.nan)
    nan = np.full(len(spins), np.nan)
    path = write_guarded(lambda: write_samples(out, sys_, spins, nan, log_f, np.full(len(spins), T),
                                               np.full(len(spins), mu), observable=sys_.observable(s)), out)
    return ImportResult(Path(path), int(len(spins)), sys_.lattice.label, sys_.name)
