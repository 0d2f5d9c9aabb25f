"""Run folders: one training run = one folder under the runs root, readable with a text editor.

Layout of ``<root>/<id>/``::

    config.toml     the exact config the run was started with (source of truth for rebuilding the model)
    status.json     small, rewritten atomically: status, created, step, best_F_q, system, model, message, and
                    while training the owner's pid and host (a reader tells a live run from an interrupted one)
    metrics.jsonl   one JSON object per line, appended in batches (tail -f friendly, survives a kill)
    checkpoints/    step-00001000.safetensors ..., plus optional best/final.safetensors
    samples/        <stem>-<n>.npz arrays handed to the GUI by path
    engine.log      the engine's stderr for this run
    lock.json       pid and host of the process that owns the run while it trains (see :mod:`.lock`)
    fault.log       faulthandler output if the engine process crashes

The folder name is the id: ``YYYYmmdd-HHMMSS-<hint>-<4 hex>`` sorts by time and stays unique across processes.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import socket
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

from .. import paths
from ..errors import LatthermError
from .atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from .lock import RunBusy, RunLock, describe, live_owner

log = logging.getLogger(__name__)

CONFIG = "config.toml"
STATUS = "status.json"
METRICS = "metrics.jsonl"
_STEP_RE = re.compile(r"^step-(\d+)\.safetensors$")
_ID_RE = re.compile(r"^(\d{8}-\d{6})-")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class RunFilesError(LatthermError):
    """A run's files could not be written (a full disk, a quota): the run stops at its last checkpoint."""


def _now() -> str:
    return datetime.now().astimezone().isoformat(timespec="seconds")


def _slug(text: str, default: str) -> str:
    """File-name-safe fragment (no separators, no leading dot) so hints/stems cannot escape their folder."""
    s = _UNSAFE.sub("-", str(text)).strip("-.")[:40]
    return s or default


def _root(root: str | os.PathLike | None) -> Path:
    return Path(root) if root is not None else paths.runs_dir()


class Run:
    """Handle on one run folder. Cheap to create; every accessor goes to disk, so several processes can share it."""

    def __init__(self, path: str | os.PathLike):
        self._path = Path(path).resolve()
        self.lock: RunLock | None = None  # held while this process owns (trains) the run

    # ---- creation / lookup -------------------------------------------------------------------------------------

    @classmethod
    def create(cls, config_text: str, name_hint: str = "run", root: str | os.PathLike | None = None,
               owned: bool = False, files: dict[str, bytes] | None = None) -> "Run":
        """Make a new run folder with its config and a ``created`` status; the id is unique even under races.
        ``owned``: take the run's :class:`RunLock` (as ``run.lock``) before anything else is written in it, so a run
        that is about to be trained is owned from its first moment. ``files``: {name: bytes} written beside the
        config before it (a run's copy of its cluster-expansion file)."""
        base = _root(root)
        base.mkdir(parents=True, exist_ok=True)
        hint = _slug(name_hint, "run")
        for _ in range(100):
            rid = f"{datetime.now():%Y%m%d-%H%M%S}-{hint}-{secrets.token_hex(2)}"
            try:
                (base / rid).mkdir()  # exclusive: a clash with another process just draws again
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 100 clashes in one second
            raise LatthermError(f"could not create a unique run folder in {base}")
        run = cls(base / rid)
        if owned:
            run.lock = RunLock(run.path).acquire()
        run.checkpoints_dir.mkdir()
        run.samples_dir.mkdir()
        for name, blob in (files or {}).items():
            atomic_write_bytes(run.path / name, blob)
        atomic_write_text(run.config_path, config_text)
        atomic_write_json(run.path / STATUS, {"status": "created", "created": _now(), "id": rid})
        return run

    @classmethod
    def open(cls, ref: str | os.PathLike, root: str | os.PathLike | None = None) -> "Run":
        """Open by folder path, by id under ``root``, or by a unique id prefix; LatthermError if none fits."""
        path = _find_run_dir(ref, _root(root))
        return cls(path)

    # ---- paths -------------------------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def id(self) -> str:
        return self._path.name

    @property
    def config_path(self) -> Path:
        return self._path / CONFIG

    @property
    def status_path(self) -> Path:
        return self._path / STATUS

    @property
    def metrics_path(self) -> Path:
        return self._path / METRICS

    @property
    def checkpoints_dir(self) -> Path:
        return self._path / "checkpoints"

    @property
    def samples_dir(self) -> Path:
        return self._path / "samples"

    @property
    def log_path(self) -> Path:
        return self._path / "engine.log"

    @property
    def fault_path(self) -> Path:
        return self._path / "fault.log"

    def config_text(self) -> str:
        return self.config_path.read_text(encoding="utf-8")

    def __repr__(self) -> str:
        return f"Run({str(self._path)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other._path == self._path

    def __hash__(self) -> int:
        return hash(self._path)

    # ---- status ------------------------------------------------------------------------------------------------

    def recorded_status(self) -> dict[str, Any]:
        """status.json as written; ``{"status": "unknown"}`` if the file is missing or damaged (never raises)."""
        try:
            data = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"status": "unknown"}
        if not isinstance(data, dict) or not isinstance(data.get("status"), str):
            return {"status": "unknown"}
        return data

    def status(self) -> dict[str, Any]:
        """The run's status as it really is: a "running" run whose training process is gone on this host reads as
        ``"interrupted"`` with ``resumable: true`` (its last step kept), so a killed engine or a lost cluster job needs
        nobody to repair the folder. Reading never writes; another host's run is left as recorded."""
        data = self.recorded_status()
        if data["status"] in ("running", "created") and live_owner(self._path) is not None:
            return data
        if data["status"] == "running" and data.get("host") == this_host() and not pid_alive(data.get("pid")):
            data = {**data, "status": "interrupted", "resumable": True,
                    "message": f"the training process (pid {data.get('pid')}) is gone"}
        return data

    def set_status(self, status: str, **extra: Any) -> dict[str, Any]:
        """Set ``status`` and merge ``extra`` keys (step, best_F_q, message ...) into status.json, atomically."""
        data = self.recorded_status()
        if data.get("status") == "unknown" and "created" not in data:
            data.setdefault("created", _created_from_id(self.id) or _now())
        data.update(extra)
        data["status"] = status
        data["id"] = self.id
        data["updated"] = _now()
        atomic_write_json(self.status_path, data)
        return data

    # ---- metrics -----------------------------------------------------------------------------------------------

    def append_metrics(self, records: Iterable[dict[str, Any]]) -> None:
        """Append one JSON line per record in a single write, then flush (a kill loses at most this batch's tail)."""
        text = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
        if not text:
            return
        with open(self.metrics_path, "a+b") as f:
            size = f.tell()
            # A run killed mid-write leaves a line without "\n"; start on a fresh line so the new records survive.
            if size > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    text = "\n" + text
            try:
                f.write(text.encode("utf-8"))
                f.flush()
            except OSError as exc:  # disk full, quota: no cut line stays behind, and the error is one line
                try:
                    f.truncate(size)
                except OSError:
                    pass
                raise RunFilesError(f"cannot write {self.metrics_path}: {exc.strerror or exc}") from None

    def truncate_metrics(self, step: int) -> int:
        """Drop the records logged after ``step`` (a resume from the checkpoint at ``step`` logs them again), and a
        cut last line; rewritten atomically. Returns the number of records dropped."""
        try:
            raw = self.metrics_path.read_bytes()
        except FileNotFoundError:
            return 0
        keep, dropped = [], 0
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                dropped += 1
                continue
            if isinstance(rec, dict) and isinstance(rec.get("step"), (int, float)) and rec["step"] > step:
                dropped += 1
                continue
            keep.append(line + b"\n")
        if dropped:
            atomic_write_bytes(self.metrics_path, b"".join(keep))
        return dropped

    def read_metrics(self) -> list[dict[str, Any]]:
        """All metric records; a truncated or damaged line (a run killed mid-write) is skipped, not fatal."""
        try:
            raw = self.metrics_path.read_bytes()
        except FileNotFoundError:
            return []
        lines = raw.split(b"\n")
        out: list[dict[str, Any]] = []
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                rec = json.loads(line.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                if i < len(lines) - 1:  # the final partial line is expected after a kill; others are worth a note
                    log.warning("%s: skipping damaged line %d", self.metrics_path, i + 1)
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    # ---- checkpoints -------------------------------------------------------------------------------------------

    def checkpoint_path(self, step: int) -> Path:
        if int(step) < 0:
            raise ValueError("step must be >= 0")
        return self.checkpoints_dir / f"step-{int(step):08d}.safetensors"

    def named_checkpoint_path(self, name: str) -> Path:
        """``checkpoints/<name>.safetensors`` for kept-forever checkpoints such as ``best`` and ``final``."""
        return self.checkpoints_dir / f"{_slug(name, 'named')}.safetensors"

    def checkpoints(self) -> list[Path]:
        """Step checkpoints, oldest step first (named ones like best/final are not included)."""
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for p in self.checkpoints_dir.iterdir():
            m = _STEP_RE.match(p.name)
            if m and p.is_file():
                found.append((int(m.group(1)), p))
        return [p for _, p in sorted(found)]

    def latest_checkpoint(self) -> Path | None:
        """Highest-step checkpoint; falls back to final/best if only those exist; None for a fresh run."""
        steps = self.checkpoints()
        if steps:
            return steps[-1]
        for name in ("final", "best"):
            p = self.named_checkpoint_path(name)
            if p.is_file():
                return p
        return None

    def resume_candidates(self) -> list[Path]:
        """Checkpoints to resume from, best first: step checkpoints newest first, then final and best. Resuming
        takes the first that reads, so a cut latest file (a full disk, a kill) costs one interval, not the run."""
        named = [p for p in (self.named_checkpoint_path(n) for n in ("final", "best")) if p.is_file()]
        return self.checkpoints()[::-1] + named

    def prune_checkpoints(self, keep: int = 3) -> list[Path]:
        """Delete all but the newest ``keep`` step checkpoints; named ones (best, final) are never touched."""
        steps = self.checkpoints()
        doomed = steps[: max(0, len(steps) - max(0, int(keep)))]
        for p in doomed:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        return doomed

    # ---- samples -----------------------------------------------------------------------------------------------

    def new_samples_path(self, stem: str = "samples") -> Path:
        """``samples/<stem>-<n>.npz`` of this run (see :func:`new_samples_path`)."""
        return new_samples_path(self.samples_dir, stem)


def new_samples_path(folder: str | os.PathLike, stem: str = "samples") -> Path:
    """``<folder>/<stem>-<n>.npz`` with n one past the highest existing (not reserved; write it atomically)."""
    folder = Path(folder)
    stem = _slug(stem, "samples")
    folder.mkdir(parents=True, exist_ok=True)
    pat = re.compile(rf"^{re.escape(stem)}-(\d+)\.npz$")
    used = [int(m.group(1)) for p in folder.iterdir() if (m := pat.match(p.name))]
    return folder / f"{stem}-{max(used, default=0) + 1}.npz"


# ---- liveness ----------------------------------------------------------------------------------------------------


def this_host() -> str:
    """The name a training process records as ``host``: pids are only comparable on the same machine."""
    return socket.gethostname()


def pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` exists on this machine and is not a zombie (an exited child nobody has reaped)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if os.name == "nt":  # os.kill would terminate the process there
        return _windows_pid_alive(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    except OSError:
        return False
    try:  # Linux: an exited but unreaped process still answers kill(0); its state letter is Z
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def _windows_pid_alive(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # access denied: it exists
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


# ---- lookup, listing, deletion ------------------------------------------------------------------------------------


def is_run_dir(path: str | os.PathLike) -> bool:
    return (Path(path) / CONFIG).is_file()


def _find_run_dir(ref: str | os.PathLike, root: Path, prefix: bool = True) -> Path:
    """A bare name is an id under ``root`` first (then a folder in the cwd); anything path-like is only a path."""
    text = os.fspath(ref)
    if not text:
        raise LatthermError("no run given")
    p = Path(text).expanduser()
    bare = not isinstance(ref, os.PathLike) and len(p.parts) == 1 and not text.startswith((".", "~"))
    candidates = ([root / text] if bare else []) + [p]
    for cand in candidates:
        if cand.is_dir():
            if is_run_dir(cand):
                return cand
            raise LatthermError(f"{cand} is not a lattherm run (no {CONFIG})")
    if bare and prefix and root.is_dir():  # unique prefix, so the CLI can take "20250101-1200" instead of the whole id
        hits = sorted(d for d in root.iterdir() if d.name.startswith(text) and is_run_dir(d))
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            names = ", ".join(d.name for d in hits[:5]) + (" ..." if len(hits) > 5 else "")
            raise LatthermError(f"run '{text}' is ambiguous: {names}")
        raise LatthermError(f"no run '{text}' (no such id in {root}, and no such folder)")
    if bare:
        raise LatthermError(f"no run '{text}' (runs folder {root} does not exist)")
    raise LatthermError(f"run folder not found: {p}")


def _created_from_id(rid: str) -> str | None:
    m = _ID_RE.match(rid)
    if not m:
        return None
    try:
        return datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").astimezone().isoformat(timespec="seconds")
    except ValueError:
        return None


def _load_toml(path: Path) -> dict:
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, ValueError):
        return {}


def _pick(table: Any, *keys: str) -> Any:
    if isinstance(table, str):
        return table
    if isinstance(table, dict):
        for k in keys:
            if k in table and not isinstance(table[k], dict):
                return table[k]
    return None


def config_summary(config: dict) -> dict[str, Any]:
    """system / size / model from a parsed config, tolerant of layout (``[system] kind=``, ``model = "..."``)."""
    system = _pick(config.get("system"), "kind", "name", "type")
    size = _pick(config.get("system"), "size", "L") or _pick(config.get("lattice"), "size", "L")
    if size is None:
        size = _pick(config, "size")
    model = _pick(config.get("model"), "kind", "name", "type")
    return {"system": system, "size": size, "model": model}


def run_summary(run: Run) -> dict[str, Any]:
    """One row for a run list: status.json values win, config.toml fills the gaps."""
    st = run.status()
    cfg = config_summary(_load_toml(run.config_path))
    row: dict[str, Any] = {"id": run.id, "path": str(run.path), "status": st.get("status", "unknown")}
    for key in ("system", "size", "model"):
        row[key] = st.get(key, cfg[key])
    row["step"] = st.get("step")
    row["best_F_q"] = st.get("best_F_q")
    row["resumable"] = bool(st.get("resumable", False))
    row["created"] = st.get("created") or _created_from_id(run.id)
    return row


def _sort_key(row: dict[str, Any]) -> tuple[float, str]:
    try:
        t = datetime.fromisoformat(row["created"]).timestamp()
    except (TypeError, ValueError):
        try:
            t = Path(row["path"]).stat().st_mtime
        except OSError:
            t = 0.0
    return (t, row["id"])


def list_runs(root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Summaries (JSON-ready: ``path`` is a str) of every run under ``root``, oldest first; other folders skipped."""
    base = _root(root)
    if not base.is_dir():
        return []
    rows = [run_summary(Run(d)) for d in base.iterdir()
            if not d.name.startswith(".") and d.is_dir() and is_run_dir(d)]  # .deleting-* are on their way out
    return sorted(rows, key=_sort_key)


def delete_run(ref: str | os.PathLike | Run, root: str | os.PathLike | None = None) -> Path:
    """Remove a run folder, but only one that is a run directly inside the runs root (never an arbitrary path).

    Takes an exact id or path (no prefix matching: deleting is not the place for guesses).
    """
    base = _root(root).resolve()
    path = ref.path if isinstance(ref, Run) else _find_run_dir(ref, base, prefix=False)
    path = path.resolve()  # follows symlinks: a link in the root pointing elsewhere is refused too
    if path.parent != base:
        raise LatthermError(f"refusing to delete {path}: not a run inside {base}")
    if not is_run_dir(path):
        raise LatthermError(f"refusing to delete {path}: not a lattherm run (no {CONFIG})")
    lock = RunLock(path, purpose="deletion")
    try:
        lock.acquire()  # a trainer starting now finds the run taken; a live owner refuses the delete
    except RunBusy:
        owner = live_owner(path) or {}
        raise LatthermError(f"refusing to delete run {path.name}: it is in use ({describe(owner)}); stop it first")
    st = Run(path).recorded_status()  # a run trained by an older lattherm has no lock, only its status
    if st.get("status") == "running" and st.get("host") == this_host() and pid_alive(st.get("pid")) \
            and st.get("pid") != os.getpid():
        lock.release()
        raise LatthermError(f"refusing to delete run {path.name}: pid {st.get('pid')} is training it; stop it first")
    doomed = base / f".deleting-{path.name}-{secrets.token_hex(2)}"
    try:
        os.replace(path, doomed)  # the exact folder checked: gone from the listing at once, then removed
    except OSError as exc:
        lock.release()
        raise LatthermError(f"cannot delete {path}: {exc.strerror or exc}") from None
    shutil.rmtree(doomed, ignore_errors=True)
    return path
