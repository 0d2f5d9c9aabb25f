"""Where a model's config and weights come from: a run folder, a run id, a model folder, or a bundled model name.

Sampling and analysis only need "a config plus weights". A *model folder* ships a trained model without its run
history (``config.toml``, ``model.safetensors``, ``model.json`` with provenance and reference numbers), e.g. the
models bundled under ``resources/models/``. Resolving every kind of reference here keeps the CLI, the server and
Python users agreeing on what ``--model X`` means.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .. import paths
from ..errors import CheckpointError, LatthermError
from .runs import CONFIG, Run, _find_run_dir, _root, is_run_dir

MODEL_WEIGHTS = "model.safetensors"
MODEL_INFO = "model.json"


@dataclass(frozen=True)
class ModelSource:
    """A resolved reference. ``weights_path`` is None for a run without checkpoints yet (the caller decides)."""

    kind: Literal["run", "model"]
    path: Path
    config_path: Path
    weights_path: Path | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name


def bundled_models_dir() -> Path:
    # Read paths.RESOURCES at call time so a frozen app (or a test) can point it elsewhere.
    return Path(paths.RESOURCES) / "models"


#: The bundled example: fast to sample on a CPU, so `lattherm demo` and the GUI's first start use it.
EXAMPLE_MODEL = "ising-5x5-ao-mlp"


def bundled_models() -> list[str]:
    """Names of the models shipped with lattherm: the example model first, then the others by name."""
    base = bundled_models_dir()
    if not base.is_dir():
        return []
    return sorted((d.name for d in base.iterdir() if is_model_dir(d)), key=lambda n: (n != EXAMPLE_MODEL, n))


def is_model_dir(path: str | os.PathLike) -> bool:
    p = Path(path)
    return (p / CONFIG).is_file() and (p / MODEL_WEIGHTS).is_file()


def _model_source(path: Path) -> ModelSource:
    path = path.resolve()
    info_path = path / MODEL_INFO
    info: Any = {}
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise CheckpointError(f"{info_path}: unreadable model description ({' '.join(str(e).split())})") from None
        if not isinstance(info, dict):
            raise CheckpointError(f"{info_path}: model description must be a JSON object")
    return ModelSource("model", path, path / CONFIG, path / MODEL_WEIGHTS, info)


def _run_source(run: Run) -> ModelSource:
    return ModelSource("run", run.path, run.config_path, run.latest_checkpoint(), run.status())


def resolve_model_source(ref: str | os.PathLike, root: str | os.PathLike | None = None) -> ModelSource:
    """Resolve, in order: a model or run folder path, a run id under ``root``, a bundled model name."""
    text = os.fspath(ref)
    runs_root = _root(root)
    p = Path(text).expanduser()
    tried: list[str] = []

    if p.is_dir():
        if is_model_dir(p):
            return _model_source(p)
        if is_run_dir(p):
            return _run_source(Run(p))
        tried.append(f"folder {p} (has no {CONFIG} + {MODEL_WEIGHTS}, and no {CONFIG} for a run)")
    else:
        tried.append(f"path {p}")

    bare = bool(text) and not isinstance(ref, os.PathLike) and len(p.parts) == 1 and not text.startswith((".", "~"))
    if bare:
        try:
            return _run_source(Run(_find_run_dir(text, runs_root)))
        except LatthermError:
            tried.append(f"run id in {runs_root}")
        bundled = bundled_models_dir() / text
        if is_model_dir(bundled):
            return _model_source(bundled)
        names = bundled_models()
        tried.append(f"bundled model (available: {', '.join(names) if names else 'none'})")
    raise LatthermError(f"no run or model '{text}': tried " + "; ".join(tried))
