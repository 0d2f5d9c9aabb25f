"""Engine process main loop: read requests from stdin, answer quick ones on a small thread pool, queue jobs.

Threads: the main thread reads stdin and dispatches; control requests (hello, pause, cancel, jobs ...) are answered
right there; quick requests (run lists, loading a run) go to a 2-thread pool, the ones that compute (exact values,
exporting structures) to a thread of their own, so a long exact call never stalls the run list;
long jobs go to one of two queues, each drained by its own worker: ``train`` (training runs, one at a time) and
``sample`` (sampling, painting, evaluation, phase diagrams), so sampling a bundled model is not stuck behind a
training run. torch releases the GIL in
its kernels, so the reader stays responsive while a worker computes. A heartbeat thread sends one event a second.
"""

from __future__ import annotations

import faulthandler
import itertools
import logging
import os
import queue
import signal
import sys
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor

from .. import __version__
from . import PROTOCOL_VERSION
from .protocol import Channel, guard_stdout

log = logging.getLogger("lattherm.engine.server")

#: requests answered in the reader thread (cheap, must never wait behind anything)
CONTROL = {"hello", "ping", "jobs", "pause", "resume", "cancel", "shutdown"}
#: quick requests that may compute for seconds: their own thread, so listing and opening runs stay instant
HEAVY = {"exact", "export_structures"}
#: the longest request line read (a config is the largest thing a request carries); longer ones are refused unread
MAX_LINE = 1_000_000
#: the deepest nesting of arrays and objects a request may have (real requests have 3 or 4)
MAX_DEPTH = 32
#: requests that become queued jobs: method -> queue name
JOB_METHODS = {"start_training": "train", "resume_training": "train", "sample": "sample", "paint": "sample",
               "evaluate": "sample", "phase_diagram": "sample", "mcmc": "sample"}


class Job:
    def __init__(self, jid: str, method: str, params: dict):
        self.id, self.method, self.params = jid, method, params
        self.kind = JOB_METHODS[method]
        self.state = "queued"  # queued | running | paused | finished | failed | cancelled
        self.run_id: str | None = None
        self.control = None  # the job's Control, set when the job starts
        self.cancel_requested = False
        self.pause_requested = False

    def describe(self) -> dict:
        return {"job": self.id, "method": self.method, "kind": self.kind, "state": self.state, "run": self.run_id}


class Engine:
    def __init__(self, channel: Channel):
        self.ch = channel
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self.queues = {"train": queue.Queue(), "sample": queue.Queue()}
        self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="quick")
        self.heavy = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heavy")
        self.stopping = threading.Event()
        self.workers = [threading.Thread(target=self._worker, args=(name,), name=f"jobs-{name}", daemon=True)
                        for name in self.queues]
        from . import handlers  # imports torch: done once, before hello is answered

        self.handlers = handlers

    # ---- main loop -------------------------------------------------------------------------------------------
    def serve(self, stdin) -> int:
        for w in self.workers:
            w.start()
        threading.Thread(target=self._heartbeat, name="heartbeat", daemon=True).start()
        while not self.stopping.is_set():
            line = stdin.readline(MAX_LINE + 1)
            if not line:
                break  # the GUI closed our stdin (or died): shut down cleanly
            if len(line) > MAX_LINE and not line.endswith(b"\n" if isinstance(line, bytes) else "\n"):
                while line and not line.endswith(b"\n" if isinstance(line, bytes) else "\n"):
                    line = stdin.readline(MAX_LINE)  # skip the rest of the line, never holding it whole
                self.ch.error(None, "ProtocolError", f"request line longer than {MAX_LINE:,} bytes: ignored")
                continue
            if line.strip():
                try:
                    self.dispatch(line)
                except Exception as exc:  # a bug in dispatch itself: say so, keep serving
                    self.ch.error(None, "EngineError", f"request not handled: {type(exc).__name__}: {exc}")
                    traceback.print_exc()
        self.shutdown()
        return 0

    def dispatch(self, line) -> None:
        import json

        try:
            if isinstance(line, bytes):
                try:
                    line = line.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise ValueError(f"not UTF-8 (byte 0x{line[exc.start]:02x} at offset {exc.start})") from None
            if _depth(line) > MAX_DEPTH:
                raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
            msg = json.loads(line)
            if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
                raise ValueError("a request is an object with a string 'method'")
        except (ValueError, RecursionError) as exc:
            self.ch.error(None, "ProtocolError", f"unreadable request: {exc}")
            return
        rid, method, params = msg.get("id"), msg["method"], msg.get("params") or {}
        if not isinstance(params, dict):
            self.ch.error(rid, "ProtocolError", "params must be an object")
            return
        if method in CONTROL:
            self._answer(rid, getattr(self, "do_" + method), params)
        elif method in JOB_METHODS:
            job = self._answer(rid, self.submit, method, params)
            if job is not None:
                self.enqueue(job)  # after the reply: the client knows the job's id before its first event
        elif hasattr(self.handlers, "do_" + method):
            pool = self.heavy if method in HEAVY else self.pool  # run lists never wait behind exact sums
            pool.submit(self._answer, rid, getattr(self.handlers, "do_" + method), params)
        else:
            self.ch.error(rid, "MethodNotFound", f"unknown method {method!r}")

    def _answer(self, rid, fn, *args):
        """Reply with fn's result or its error; returns the result (None after an error)."""
        try:
            result = fn(*args)
            self.ch.result(rid, result)
        except Exception as exc:  # errors are data: the engine keeps serving
            self.ch.error(rid, type(exc).__name__, self.handlers.error_text(exc))
            if not isinstance(exc, self.handlers.USER_ERRORS):
                traceback.print_exc()
            return None
        return result

    def _heartbeat(self) -> None:
        while not self.stopping.wait(1.0):
            running = {j.id: j.state for j in self.jobs.values() if j.state in ("queued", "running", "paused")}
            self.ch.event("heartbeat", None, {"time": time.time(), "jobs": running})

    # ---- jobs ------------------------------------------------------------------------------------------------
    def submit(self, method: str, params: dict) -> dict:
        self.handlers.validate_job(method, params)  # a bad config is an error reply, not a failed job
        job = Job(f"job-{next(self._ids)}", method, params)
        ahead = sum(1 for j in self.jobs.values() if j.kind == job.kind and j.state in ("queued", "running", "paused"))
        self.jobs[job.id] = job
        return {"job": job.id, "ahead": ahead}

    def enqueue(self, reply: dict) -> None:
        job = self.jobs[reply["job"]]
        self.ch.event("queued", job.id, {"method": job.method, "ahead": reply["ahead"]})
        self.queues[job.kind].put(job)

    def _worker(self, name: str) -> None:
        q = self.queues[name]
        while True:
            job = q.get()
            if job is None:
                return
            if job.cancel_requested:
                continue  # cancelled while queued; the event was sent then
            job.state = "running"
            try:
                self.handlers.run_job(self, job)
            except Exception as exc:
                job.state = "failed"
                self.ch.event("failed", job.id, {"type": type(exc).__name__, "message": self.handlers.error_text(exc),
                                                 "run": job.run_id,
                                                 "traceback": traceback.format_exc()[-4000:]})
                if not isinstance(exc, self.handlers.USER_ERRORS):
                    traceback.print_exc()

    def _job(self, params) -> Job:
        jid = params.get("job")
        if jid not in self.jobs:
            from ..errors import LatthermError

            raise LatthermError(f"no job {jid!r}")
        return self.jobs[jid]

    # ---- control requests --------------------------------------------------------------------------------------
    def do_hello(self, params) -> dict:
        import torch

        client = params.get("protocol", PROTOCOL_VERSION)
        if client != PROTOCOL_VERSION:
            from ..errors import LatthermError

            raise LatthermError(f"protocol mismatch: engine speaks {PROTOCOL_VERSION}, client {client}")
        return {"protocol": PROTOCOL_VERSION, "engine": "lattherm-engine", "version": __version__, "pid": os.getpid(),
                "python": sys.version.split()[0], "torch": torch.__version__, "threads": torch.get_num_threads(),
                "cuda": torch.cuda.is_available(), "painting": True}

    def do_ping(self, params) -> dict:
        return {"time": time.time()}

    def do_jobs(self, params) -> list:
        return [j.describe() for j in self.jobs.values()]

    def do_pause(self, params) -> dict:
        job = self._job(params)
        if job.kind != "train" or job.state not in ("queued", "running", "paused"):
            from ..errors import LatthermError

            raise LatthermError(f"{job.id} ({job.method}, {job.state}) cannot be paused")
        return self._set_pause(job, True)

    def do_resume(self, params) -> dict:
        return self._set_pause(self._job(params), False)

    @staticmethod
    def _set_pause(job: Job, on: bool) -> dict:
        job.pause_requested = on  # read when the job starts, if it is still queued
        if job.control is not None:
            job.control.pause = on
        return job.describe()

    def do_cancel(self, params) -> dict:
        job = self._job(params)
        if job.state in ("finished", "failed", "cancelled"):
            return job.describe()
        job.cancel_requested = True
        if job.control is not None:
            job.control.request_stop("cancelled")
            job.control.pause = False
        if job.state == "queued":
            job.state = "cancelled"
            self.ch.event("cancelled", job.id, {"run": None, "queued": True})
        return job.describe()

    def do_shutdown(self, params) -> dict:
        self.stopping.set()
        return {"bye": True}

    def shutdown(self) -> None:
        """Stop training with a checkpoint, let the workers finish, then leave."""
        self.stopping.set()
        for job in self.jobs.values():
            if job.state in ("queued", "running", "paused"):
                self.do_cancel({"job": job.id})
        for q in self.queues.values():
            q.put(None)
        for w in self.workers:  # training stops within a step and checkpoints; a sampling job is just dropped
            w.join(timeout=30 if w.name == "jobs-train" else 1)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.heavy.shutdown(wait=False, cancel_futures=True)


def main(argv=None) -> int:
    channel = guard_stdout()  # first: nothing may reach the protocol stream but protocol
    faulthandler.enable(file=sys.__stderr__)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s: %(message)s")
    threads = os.environ.get("LATTHERM_THREADS")
    engine = Engine(channel)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    signal.signal(signal.SIGTERM, _on_sigterm)  # SIGTERM (a logout, systemd) shuts down like 'shutdown'
    channel.event("ready", None, {"protocol": PROTOCOL_VERSION, "pid": os.getpid()})
    try:
        code = engine.serve(sys.stdin.buffer)
    except _Terminated:
        engine.shutdown()  # training stops with a checkpoint, status "stopped"
        code = 0
    # Quick requests still computing (a long exact call) must not keep the process alive: their callers are gone,
    # and every file the engine writes is written atomically. Training was stopped with a checkpoint above.
    sys.stderr.flush()
    os._exit(code)


class _Terminated(BaseException):
    """Raised in the reader thread by SIGTERM: leave the blocking read and shut down."""


def _on_sigterm(signum, frame):
    raise _Terminated


def _depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings, counted without parsing (json.loads recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_DEPTH:
                    return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


if __name__ == "__main__":
    raise SystemExit(main())
