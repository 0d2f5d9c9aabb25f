"""Checkpoints: one ``.safetensors`` file holding the tensors plus our JSON metadata in its header.

safetensors stores raw tensor bytes and a JSON header, so loading can never execute code (unlike pickle). Our meta
(model kind, hyper-parameters, system, lattice, versions, step) travels in the header's string metadata under
``"lattherm"``, with ``"format"`` marking the layout version, so weights and their description cannot drift apart.
Every failure to read becomes a one-line :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CheckpointError
from .atomic import atomic_write_bytes

if TYPE_CHECKING:  # torch is imported lazily so listing runs (e.g. from the GUI process) stays torch-free
    import torch

FORMAT = "lattherm-checkpoint/1"
META_KEY = "lattherm"
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit; a bigger length prefix means garbage


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> Path:
    """Write ``tensors`` and JSON-serialisable ``meta`` to ``path`` atomically; returns the path."""
    from safetensors.torch import save

    meta_text = json.dumps(meta, ensure_ascii=False)  # raises TypeError before anything is written
    data = save(_prepare(tensors), metadata={"format": FORMAT, META_KEY: meta_text})
    return atomic_write_bytes(path, data)


def load_tensors(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a checkpoint written by :func:`save_tensors`; returns ``(tensors, meta)``."""
    from safetensors.torch import load

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint is a folder, not a file: {path}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror or e}") from None

    meta = _lattherm_meta(path, _read_header(path, data), check_format=True)

    try:
        tensors = load(data)
    except Exception as e:  # safetensors raises its own (Rust) error type for bad offsets / short data
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({_one_line(e)})") from None
    if str(device) != "cpu":
        tensors = {k: v.to(device) for k, v in tensors.items()}
    return tensors, meta


def read_meta(path: str | os.PathLike) -> dict:
    """Only the metadata (cheap: reads the header, not the tensors) - for listings and 'info' commands."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
            data = head + (f.read(n) if 0 < n <= _MAX_HEADER else b"")
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint not found: {path}") from None
    except OSError as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {e.strerror or e}") from None
    return _lattherm_meta(path, _read_header(path, data, check_size=False), check_format=False)


def is_complete(path: str | os.PathLike) -> bool:
    """Whether the file holds a whole checkpoint: a readable header and every byte it promises (cheap: the header
    and the file size, not the tensors)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return False
            n = struct.unpack("<Q", head)[0]
            if not 2 <= n <= _MAX_HEADER:
                return False
            data = head + f.read(n)
        size = path.stat().st_size
        header = _read_header(path, data, check_size=False)
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, CheckpointError, TypeError, KeyError, IndexError, ValueError):
        return False
    return 8 + n + end <= size


def check_weights(tensors: dict, path, prefix: str = "model.") -> None:
    """Model weights must be floating point and finite: integer weights would be cast silently (wrong samples),
    NaN or inf ones give NaN probabilities. A CheckpointError names the first bad tensor."""
    import torch

    for name, t in tensors.items():
        if not name.startswith(prefix):
            continue
        if not t.is_floating_point():
            raise CheckpointError(f"{path}: weight {name} is {str(t.dtype).replace('torch.', '')}, not floating point")
        if not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: weight {name} holds NaN or infinite values")


def _lattherm_meta(path: Path, header: dict, check_format: bool) -> dict:
    """Our JSON metadata from a parsed safetensors header, or a CheckpointError saying what is wrong."""
    extra = header.get("__metadata__") or {}
    if not isinstance(extra, dict) or META_KEY not in extra:
        raise CheckpointError(f"{path}: not a lattherm checkpoint (safetensors file without lattherm metadata)")
    fmt = extra.get("format")
    if check_format and fmt != FORMAT:
        raise CheckpointError(f"{path}: unsupported checkpoint format {fmt!r} (this lattherm reads {FORMAT!r})")
    try:
        meta = json.loads(extra[META_KEY])
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt lattherm metadata ({_one_line(e)})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path}: corrupt lattherm metadata (expected a JSON object)")
    return meta


def _prepare(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detach, move to CPU, make contiguous, and un-share storage (safetensors refuses tied/aliased tensors)."""
    import torch

    if not isinstance(tensors, dict):
        raise TypeError("tensors must be a dict of name -> torch.Tensor")
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, t in tensors.items():
        if not isinstance(name, str) or not isinstance(t, torch.Tensor):
            raise TypeError(f"tensor entry {name!r} must be str -> torch.Tensor")
        t = t.detach().cpu().contiguous()
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr in seen or storage.nbytes() != t.nbytes:
            t = t.clone()
            ptr = t.untyped_storage().data_ptr()
        if t.numel():
            seen.add(ptr)
        out[name] = t
    return out


def _read_header(path: Path, data: bytes, check_size: bool = True) -> dict:
    """Parse the safetensors header ourselves so a wrong file is named clearly before safetensors sees it."""
    if len(data) == 0:
        raise CheckpointError(f"{path}: empty checkpoint file (0 bytes)")
    if len(data) < 8:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n < 2 or n > _MAX_HEADER:
        raise CheckpointError(f"{path}: not a safetensors checkpoint (bad header length)")
    if 8 + n > len(data):
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint (header cut off)")
    try:
        header = json.loads(data[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"{path}: not a safetensors checkpoint (unreadable header)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors checkpoint (unreadable header)")
    if check_size:
        end = 0
        for name, info in header.items():
            if name == "__metadata__":
                continue
            try:
                end = max(end, int(info["data_offsets"][1]))
            except (TypeError, KeyError, IndexError, ValueError):
                raise CheckpointError(f"{path}: truncated or corrupt checkpoint (bad entry {name!r})") from None
        if 8 + n + end > len(data):
            raise CheckpointError(
                f"{path}: truncated checkpoint ({len(data)} bytes on disk, header expects {8 + n + end})"
            )
    return header


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split()) or type(e).__name__
