"""EngineClient: the GUI's only way to the engine process (QProcess, JSON lines).

``request(method, params, on_result, on_error)`` for widgets, ``await call(method, **params)`` under qasync;
events arrive as the ``event(name, job, data)`` signal. If the process dies, pending requests fail with
EngineCrashed, ``crashed(info)`` carries the exit code, the tail of stderr and any fault logs, and ``restart()``
starts a fresh engine.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections import deque
from pathlib import Path
from typing import Callable

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, Signal

from lattherm.engine.server import PROTOCOL_VERSION


class EngineError(Exception):
    def __init__(self, type_: str, message: str):
        super().__init__(f"{type_}: {message}")
        self.type, self.message = type_, message


class EngineCrashed(EngineError):
    def __init__(self, message: str):
        super().__init__("EngineCrashed", message)


#: signal numbers a dead engine is commonly killed by, and what each most likely means
SIGNALS = {9: "SIGKILL", 6: "SIGABRT", 11: "SIGSEGV", 15: "SIGTERM", 7: "SIGBUS"}
MEMORY_WORDS = ("MemoryError", "out of memory", "CUDA error: out of memory", "Cannot allocate memory")


def exit_reason(info: dict) -> str:
    """One line on why the engine died, for the crash banner: a kill by signal 9 (what the kernel's out-of-memory
    killer sends) or a memory error in its stderr says "out of memory", not just an exit code."""
    code, stderr = info.get("exit_code"), info.get("stderr") or ""
    if any(w in stderr for w in MEMORY_WORDS):
        return "out of memory: the engine could not allocate what the job needed"
    if info.get("exit_status") == "crashed" and code in SIGNALS:
        if code == 9:
            return ("killed by signal 9 (SIGKILL): most likely out of memory (the kernel's out-of-memory killer "
                    "sends this signal; a smaller batch, lattice or model needs less)")
        return f"killed by signal {code} ({SIGNALS[code]})"
    return f"{info.get('exit_status')}, exit code {code}"


def engine_command() -> list[str]:
    """How to start the engine: this interpreter with ``-m``, or a frozen app relaunching itself with a flag."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "--engine-server"]  # handled by packaging/lattherm_frozen.py
    return [sys.executable, "-m", "lattherm.engine.server"]


class EngineClient(QObject):
    ready = Signal(dict)  # hello result
    event = Signal(str, object, dict)  # name, job id (or None), data
    crashed = Signal(dict)  # {"exit_code", "exit_status", "stderr", "fault_logs"}
    stderr_line = Signal(str)
    state_changed = Signal(str)  # starting | ready | crashed | stopped

    def __init__(self, parent=None, env: dict | None = None):
        super().__init__(parent)
        self._env = env or {}
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._buf = b""
        self._errbuf = b""
        self.stderr_tail: deque[str] = deque(maxlen=200)
        self.fault_logs: set[str] = set()  # fault.log files of jobs this engine ran
        self.hello: dict | None = None
        self.state = "stopped"
        self._stopping = False
        self.proc: QProcess | None = None

    # ---- process -------------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.proc is not None and self.proc.state() != QProcess.NotRunning:
            return
        self._stopping = False
        self._buf, self._errbuf = b"", b""
        self.hello = None
        self.proc = proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        for k, v in self._env.items():
            env.insert(k, str(v))
        proc.setProcessEnvironment(env)
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        cmd = engine_command()
        self._set_state("starting")
        proc.start(cmd[0], cmd[1:])
        self.request("hello", {"protocol": PROTOCOL_VERSION, "client": "lattherm-gui"}, self._hello_ok,
                     self._hello_failed)

    def restart(self) -> None:
        self.kill()
        self.start()

    def is_ready(self) -> bool:
        return self.state == "ready"

    def shutdown(self, timeout_ms: int = 5000) -> None:
        """Ask the engine to stop (it checkpoints running training), close its stdin, then kill if it lingers."""
        proc = self.proc
        if proc is None:
            return
        self._stopping = True
        if proc.state() != QProcess.NotRunning:
            self._send({"id": next(self._ids), "method": "shutdown", "params": {}})
            proc.closeWriteChannel()
            if not proc.waitForFinished(timeout_ms):
                proc.kill()
                proc.waitForFinished(2000)
        self._set_state("stopped")

    def kill(self) -> None:
        proc = self.proc
        if proc is None:
            return
        self._stopping = True
        if proc.state() != QProcess.NotRunning:
            proc.kill()
            proc.waitForFinished(3000)
        self._fail_pending("engine stopped")
        self._set_state("stopped")

    def pid(self) -> int | None:
        return None if self.proc is None else int(self.proc.processId()) or None

    # ---- requests ------------------------------------------------------------------------------------------------
    def request(self, method: str, params: dict | None = None, on_result: Callable | None = None,
                on_error: Callable | None = None) -> int:
        rid = next(self._ids)
        self._pending[rid] = (on_result, on_error)
        if self.proc is None or self.proc.state() == QProcess.NotRunning and self.state != "starting":
            self._pending.pop(rid)
            if on_error:
                on_error(EngineCrashed("the engine is not running"))
            return rid
        self._send({"id": rid, "method": method, "params": params or {}})
        return rid

    async def call(self, method: str, **params):
        fut = asyncio.get_event_loop().create_future()

        def ok(result):
            if not fut.done():
                fut.set_result(result)

        def err(exc):
            if not fut.done():
                fut.set_exception(exc)

        self.request(method, params, ok, err)
        return await fut

    def _send(self, msg: dict) -> None:
        self.proc.write((json.dumps(msg) + "\n").encode("utf-8"))

    # ---- incoming ------------------------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        self._buf += bytes(self.proc.readAllStandardOutput())
        *lines, self._buf = self._buf.split(b"\n")
        for line in lines:
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                self.stderr_line.emit(f"[unreadable engine output] {line[:200]!r}")
                continue
            self._dispatch(msg)

    def _dispatch(self, msg: dict) -> None:
        if "event" in msg:
            data = msg.get("data") or {}
            if msg["event"] == "started" and data.get("fault_log"):
                self.fault_logs.add(data["fault_log"])
            self.event.emit(msg["event"], msg.get("job"), data)
            return
        cbs = self._pending.pop(msg.get("id"), None)
        if cbs is None:
            if "error" in msg:
                self.stderr_line.emit(f"[engine error] {msg['error']}")
            return
        on_result, on_error = cbs
        if "error" in msg:
            e = msg["error"] or {}
            if on_error:
                on_error(EngineError(e.get("type", "Error"), e.get("message", "")))
        elif on_result:
            on_result(msg.get("result"))

    def _read_stderr(self) -> None:
        self._errbuf += bytes(self.proc.readAllStandardError())
        *lines, self._errbuf = self._errbuf.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace")
            self.stderr_tail.append(line)
            self.stderr_line.emit(line)

    def _hello_ok(self, result) -> None:
        self.hello = result
        self._set_state("ready")
        self.ready.emit(result)

    def _hello_failed(self, exc) -> None:
        self.stderr_line.emit(f"[hello failed] {exc}")

    def _error(self, err) -> None:
        if err == QProcess.FailedToStart:
            self._finished(-1, QProcess.CrashExit)

    def _finished(self, code, status) -> None:
        if self.proc is not None and self.sender() not in (None, self.proc):
            return  # an old process from before a restart
        if self.proc is not None:
            self._read_stderr()
        expected = self._stopping
        self._fail_pending("the engine process exited" if expected else "the engine process died")
        if expected:
            self._set_state("stopped")
            return
        faults = {}
        for p in sorted(self.fault_logs):
            try:
                text = Path(p).read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                continue
            if text:
                faults[p] = text[-4000:]
        info = {"exit_code": int(code), "exit_status": "crashed" if status == QProcess.CrashExit else "exited",
                "stderr": "\n".join(list(self.stderr_tail)[-30:]), "fault_logs": faults}
        self._set_state("crashed")
        self.crashed.emit(info)

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for _, on_error in pending.values():
            if on_error:
                on_error(EngineCrashed(why))

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)
