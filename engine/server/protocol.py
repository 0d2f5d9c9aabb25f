"""The wire: one JSON object per line, written under a lock by any thread, to a private duplicate of fd 1.

``guard_stdout`` must run before anything else can print: it keeps the real stdout for the protocol and points
fd 1 and ``sys.stdout`` at stderr, so a stray ``print`` (ours, torch's, a C library's) lands in the log, never
in the stream the GUI parses.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading


def _clean(value):
    """JSON cannot carry NaN/inf: send null instead (the GUI treats it as 'no value')."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class Channel:
    def __init__(self, stream):
        self._stream = stream
        self._lock = threading.Lock()
        self.closed = False

    def send(self, message: dict) -> None:
        line = json.dumps(_clean(message), separators=(",", ":"), allow_nan=False) + "\n"
        with self._lock:
            if self.closed:
                return
            try:
                self._stream.write(line)
                self._stream.flush()
            except (BrokenPipeError, OSError, ValueError):
                self.closed = True  # the GUI went away; the main loop ends on stdin EOF

    def result(self, rid, result) -> None:
        self.send({"id": rid, "result": result})

    def error(self, rid, type_: str, message: str) -> None:
        self.send({"id": rid, "error": {"type": type_, "message": message}})

    def event(self, name: str, job: str | None = None, data: dict | None = None) -> None:
        self.send({"event": name, "job": job, "data": data or {}})


def guard_stdout() -> Channel:
    """Protocol on a dup of fd 1; fd 1 and sys.stdout now point at stderr."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return Channel(os.fdopen(proto_fd, "w", encoding="utf-8", buffering=1))
