"""Saving and loading models: safetensors weights under ``model.*`` plus JSON hyper-parameters and system.

The same loader serves run checkpoints (which also carry optimizer state) and model folders, so every command that
takes a run also takes a bundled model. Nothing is unpickled; a file whose tensors don't fit the declared
architecture is a CheckpointError naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..devices import pick_device
from ..errors import CheckpointError, LatthermError
from ..store import ModelSource, load_tensors, resolve_model_source, save_tensors
from ..store.checkpoint import check_weights
from ..systems import make_system
from ..systems.base import System
from . import AutoregressiveModel, build_model

PREFIX = "model."


def model_tensors(model: AutoregressiveModel) -> dict[str, torch.Tensor]:
    return {PREFIX + k: v.detach() for k, v in model.state_dict().items()}


def model_meta(model: AutoregressiveModel, system: System) -> dict:
    return {"model": model.hparams(), "system": system.describe()}


def model_from_tensors(tensors: dict, meta: dict, path, device="cpu", ce=None) -> tuple[AutoregressiveModel, System]:
    """``ce``: the SystemInfo of the cluster-expansion file the folder's config names (its own copy): a user's
    alloy has no catalog name to build it by."""
    from ..tasks.limits import check_lattice, check_model  # crafted sizes are refused before allocating

    check_weights(tensors, path, PREFIX)  # int32 or NaN weights are refused, never cast
    try:
        hp = dict(meta["model"])
        sysd = meta["system"]
        check_lattice(ce or sysd["system"], sysd["size"])
        system = make_system(ce or sysd["system"], sysd["size"])
    except (KeyError, TypeError):
        raise CheckpointError(f"{path}: checkpoint lacks the model/system description") from None
    if ce is not None and system.name != sysd["system"]:
        raise CheckpointError(f"{path}: the weights are for system {sysd['system']!r} but the cluster-expansion "
                              f"file beside them is {system.name!r}")
    kind, arch = hp.pop("kind", None), hp.pop("arch", "mlp")
    check_model({**hp, "arch": arch}, system.n_sites, what=f"the model in {path}")
    model = build_model(kind, arch, **hp)
    state = {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: weights do not fit a {kind}/{arch} model ({first})") from None
    if model.n_sites != system.n_sites:
        raise CheckpointError(f"{path}: model has {model.n_sites} sites but its system has {system.n_sites}")
    return model.to(device).eval(), system


@dataclass
class LoadedModel:
    model: AutoregressiveModel
    system: System
    source: ModelSource
    meta: dict = field(default_factory=dict)

    @property
    def step(self) -> int | None:
        return self.meta.get("step")

    def trained_range(self) -> dict | None:
        """{"T": (low, high), "mu": (low, high)} of the training grid from the config beside the weights (the
        per-epoch jitter spreads a little beyond it); None when no readable config says so."""
        import tomllib

        try:
            c = tomllib.loads(self.source.config_path.read_text(encoding="utf-8"))["conditions"]
            return {"T": tuple(float(v) for v in c["T"]), "mu": tuple(float(v) for v in c["mu"])}
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def extrapolates(self, T: float, mu: float) -> bool:
        """True when (T, mu) lies outside the trained range: allowed, but the results are an extrapolation."""
        r = self.trained_range()
        return r is not None and not (r["T"][0] <= T <= r["T"][1] and r["mu"][0] <= mu <= r["mu"][1])


def load_model(ref, device: str = "cpu") -> LoadedModel:
    """Load the model of a run (latest checkpoint), a model folder, or a bundled model by name."""
    device = pick_device(str(device))
    source = resolve_model_source(ref)
    if source.weights_path is None:
        raise LatthermError(f"run {source.path.name} has no checkpoint yet")
    from ..config import ce_beside

    tensors, meta = load_tensors(source.weights_path, device="cpu")
    model, system = model_from_tensors(tensors, meta, source.weights_path, device, ce=ce_beside(source.config_path))
    return LoadedModel(model, system, source, meta)


def save_model_folder(folder, model: AutoregressiveModel, system: System, config_text: str, info: dict,
                      files: dict[str, bytes] | None = None) -> Path:
    """Write a self-contained model folder (config.toml, model.safetensors, model.json, and ``files``: a copy of
    the run's cluster-expansion file), each file atomically."""
    from ..store import atomic_write_bytes, atomic_write_json, atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in (files or {}).items():
        atomic_write_bytes(folder / name, blob)
    save_tensors(folder / "model.safetensors", model_tensors(model), {**model_meta(model, system), **info})
    atomic_write_text(folder / "config.toml", config_text)
    atomic_write_json(folder / "model.json", info)
    return folder
