"""Export: configurations of a samples file as atomic structures (extended XYZ or CIF), and a run's weights as a
self-contained model folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import LatthermError
from ._common import check_positive, write_guarded

FORMATS = {".xyz": "extxyz", ".extxyz": "extxyz", ".cif": "cif"}


@dataclass
class StructuresResult:
    path: Path
    format: str
    frames: int
    atoms: int
    lattice: str

    def to_dict(self) -> dict:
        return {"path": str(self.path), "format": self.format, "frames": self.frames, "atoms": self.atoms}


def export_structures(samples, out, format: str | None = None, max: int | None = None) -> StructuresResult:
    """An alloy (fcc) samples .npz -> extended XYZ or CIF at ``out`` (format from the suffix when not given): every
    configuration one frame with the real fcc positions and supercell. Spin (Ising) samples are refused."""
    from ..analysis.structures import frames_from_samples, write_cif, write_extxyz
    from ..store.samples import read_samples

    if format is None:
        format = FORMATS.get(Path(out).suffix.lower())
        if format is None:
            raise LatthermError(f"cannot tell the format from {str(out)!r}: give format extxyz or cif")
    if format not in ("extxyz", "cif"):
        raise LatthermError(f"format must be extxyz or cif, got {format!r}")
    check_positive(max=max)
    lattice, species, spins, infos = frames_from_samples(read_samples(samples), max)
    write = write_extxyz if format == "extxyz" else write_cif
    path = write_guarded(lambda: write(out, lattice, species, spins, infos), out)  # atomic: no half-file
    return StructuresResult(Path(path), format, int(len(spins)), int(lattice.n_sites), lattice.label)


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
    return ModelFolderResult(save_model_folder(out, lm.model, lm.system, r.config_text(), meta))
