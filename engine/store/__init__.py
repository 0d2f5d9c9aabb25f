"""Everything lattherm keeps on disk: atomic writes, safetensors checkpoints, run folders, model folders, samples
files (torch-free).

Plain files a user can read and back up (TOML, JSON, JSON lines, safetensors, npz); nothing is ever pickled, and every
write is atomic so a killed engine leaves the previous good file behind.
"""

from .atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from .checkpoint import FORMAT as CHECKPOINT_FORMAT
from .checkpoint import load_tensors, read_meta, save_tensors
from .models import ModelSource, bundled_models, bundled_models_dir, is_model_dir, resolve_model_source
from .runs import Run, delete_run, is_run_dir, list_runs, pid_alive, this_host
from .samples import load_npz, read_samples, write_samples

__all__ = [
    "CHECKPOINT_FORMAT",
    "ModelSource",
    "Run",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "bundled_models",
    "bundled_models_dir",
    "delete_run",
    "is_model_dir",
    "is_run_dir",
    "list_runs",
    "pid_alive",
    "load_npz",
    "load_tensors",
    "read_meta",
    "read_samples",
    "resolve_model_source",
    "save_tensors",
    "this_host",
    "write_samples",
]
