"""Export: configurations of a samples file as atomic structures through ASE (extended XYZ, CIF, VASP POSCAR,
LAMMPS data), and a run's weights as a self-contained model folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import LatthermError
from ._common import check_positive, write_guarded

#: the structure formats, in the order a user is offered them (engine.analysis.structures.FORMATS)
STRUCTURE_FORMATS = ("extxyz", "cif", "vasp", "lammps-data")


@dataclass
class StructuresResult:
    path: Path
    format: str
    frames: int
    atoms: int
    lattice: str
    kind: str = ""
    files: int = 1

    def to_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "frames": self.frames, "atoms": self.atoms,
                "lattice": self.lattice, "kind": self.kind, "files": self.files}


def export_structures(samples, out, format: str | None = None, max: int | None = None) -> StructuresResult:
    """An alloy samples .npz -> structure files at ``out`` through ase.io (format from the suffix when not given):
    every configuration with the real positions and supercell of the system's lattice and lattice constant; a
    multi-structure format (extxyz, cif) is one file, a single-structure one (vasp, lammps-data) a folder of
    files. Spin (Ising) samples are refused; nothing is written on any error."""
    from ..analysis.structures import SUFFIXES, format_of, frames_from_samples, write_structures
    from ..store.samples import read_samples

    if format is None:
        name = Path(out).name.lower()
        format = SUFFIXES.get(Path(out).suffix.lower()) or ("vasp" if "poscar" in name else None)
        if format is None:
            raise LatthermError(f"cannot tell the format from {str(out)!r}: give format "
                                f"{', '.join(STRUCTURE_FORMATS)}")
    fmt = format_of(format)
    check_positive(max=max)
    lattice, species, spins, infos = frames_from_samples(read_samples(samples), max)
    path, files = write_guarded(lambda: write_structures(out, fmt.name, lattice, species, spins, infos), out)
    return StructuresResult(Path(path), fmt.name, int(len(spins)), int(lattice.n_sites), lattice.label,
                            lattice.kind, files)


@dataclass
class ModelFolderResult:
    path: Path

    def to_dict(self) -> dict:
        return {"path": str(self.path)}


def export_model(run, out, info=None) -> ModelFolderResult:
    """A run's latest weights, system and config as a model folder; ``info`` (a dict or a JSON file) adds
    provenance, e.g. measured numbers, to its model.json."""
    from ..models.io import load_model, save_model_folder
    from ..store import Run, is_model_dir

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise LatthermError(f"--out {out} is an existing file; a model folder needs a folder")
    if out.is_dir() and any(out.iterdir()) and not is_model_dir(out):
        raise LatthermError(f"--out {out} is a folder with other files in it; choose a new or empty folder")
    r = Run.open(run)
    lm = load_model(str(r.path))
    meta = {"source_run": r.id, "step": lm.step, "status": r.status().get("status")}
    if isinstance(info, dict):
        meta.update(info)
    elif info is not None:
        try:
            meta.update(json.loads(Path(info).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise LatthermError(f"info {info}: {exc}") from None
    from ..config import parse_config, self_contained

    text, files = self_contained(r.config_text(), parse_config(r.config_text(), source=str(r.config_path)))
    return ModelFolderResult(save_model_folder(out, lm.model, lm.system, text, meta, files))
