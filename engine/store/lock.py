"""The owner lock of a run folder: ``<run>/lock.json`` holds the pid and host of the process that trains the run.

A run is owned from the moment a trainer creates or resumes it until its training ends, in whatever process that is
(the engine, a separate ``lattherm train``, a cluster job). Deleting and resuming check the lock, so a live run is
never deleted and never trained by two processes at once. The file is created exclusively (``O_EXCL``); a lock whose
owner is gone (kill -9, a crash, a reboot) is stale and may be taken over. A lock from another host cannot be checked
and is respected.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ..errors import LatthermError

LOCK = "lock.json"


class RunBusy(LatthermError):
    """The run is owned by a live process (training, or being deleted)."""


def read_lock(folder: str | os.PathLike) -> dict | None:
    """The lock's content, or None when there is none; a damaged lock (cut write) reads as an empty owner."""
    try:
        data = json.loads((Path(folder) / LOCK).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def live_owner(folder: str | os.PathLike) -> dict | None:
    """The owner of a live lock (pid, host, purpose), or None when the folder is free or its owner is gone."""
    from .runs import pid_alive, this_host

    owner = read_lock(folder)
    if owner is None or not owner:
        return None
    if owner.get("host") != this_host():
        return owner  # another machine's pid cannot be checked: respect it
    return owner if pid_alive(owner.get("pid")) else None


def describe(owner: dict) -> str:
    return f"{owner.get('purpose', 'training')} by pid {owner.get('pid')} on {owner.get('host')}"


class RunLock:
    """Ownership of one run folder by this process; ``release`` (or leaving the ``with`` block) gives it up."""

    def __init__(self, folder: str | os.PathLike, purpose: str = "training"):
        self.folder = Path(folder)
        self.purpose = purpose
        self.held = False

    @property
    def path(self) -> Path:
        return self.folder / LOCK

    def acquire(self) -> "RunLock":
        """Take the lock, taking over a stale one; RunBusy naming the live owner otherwise."""
        from .runs import this_host

        me = {"pid": os.getpid(), "host": this_host(), "purpose": self.purpose, "since": time.time()}
        text = json.dumps(me).encode("utf-8")
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner = live_owner(self.folder)
                if owner is not None:
                    if owner.get("pid") == os.getpid() and owner.get("host") == this_host() and self.held:
                        return self
                    raise RunBusy(f"run {self.folder.name} is in use ({describe(owner)})") from None
                _remove(self.path)  # stale: its owner is gone
                continue
            except FileNotFoundError:
                raise LatthermError(f"run folder {self.folder} is gone") from None
            try:
                os.write(fd, text)
            finally:
                os.close(fd)
            self.held = True
            return self
        raise RunBusy(f"run {self.folder.name}: could not take its lock (another process keeps taking it)")

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        owner = read_lock(self.folder)
        if owner and owner.get("pid") == os.getpid():
            _remove(self.path)

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
