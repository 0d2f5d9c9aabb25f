"""The engine process over its JSON-lines protocol, driven like the GUI drives it (a pipe, no Qt)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from _configs import tiny_ising


class Engine:
    def __init__(self, home):
        env = dict(os.environ, OMP_NUM_THREADS="1", LATTHERM_THREADS="1", LATTHERM_HOME=str(home))
        self.proc = subprocess.Popen([sys.executable, "-m", "lattherm.engine.server"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.q: queue.Queue = queue.Queue()
        self.events: list[dict] = []
        self.ids = iter(range(1, 10**6))
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.q.put(json.loads(line))  # every stdout line must be protocol JSON

    def send(self, method, **params) -> int:
        rid = next(self.ids)
        self.proc.stdin.write(json.dumps({"id": rid, "method": method, "params": params}) + "\n")
        self.proc.stdin.flush()
        return rid

    def wait(self, pred, timeout=30.0) -> dict:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                msg = self.q.get(timeout=0.1)
            except queue.Empty:
                continue
            if "event" in msg:
                self.events.append(msg)
            if pred(msg):
                return msg
        raise AssertionError("timed out waiting for the engine")

    def call(self, method, timeout=30.0, **params):
        rid = self.send(method, **params)
        return self.wait(lambda m: m.get("id") == rid, timeout)

    def event(self, name, job=None, timeout=30.0) -> dict:
        for m in self.events:
            if m["event"] == name and (job is None or m["job"] == job):
                return m
        return self.wait(lambda m: m.get("event") == name and (job is None or m.get("job") == job), timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def engine(lattherm_home):
    e = Engine(lattherm_home)
    yield e
    e.close()


def test_hello_errors_as_data_and_stdout_guard(engine):
    hello = engine.call("hello", protocol=1)["result"]
    assert hello["protocol"] == 1 and hello["pid"] == engine.proc.pid
    assert engine.call("hello", protocol=99)["error"]["type"] == "LatthermError"
    assert engine.call("no_such_method")["error"]["type"] == "MethodNotFound"
    bad = engine.call("start_training", config="[system]\nname = 'potts'\n")
    assert "potts" in bad["error"]["message"]  # a bad config is a reply, the engine lives on
    # Ising 3x3 at mu=0: Kaufman's closed form equals the transfer matrix at tiny mu (continuity in mu)
    a = engine.call("exact", system="ising", size="3x3", T=[2.0], mu=0.0)["result"][0]
    b = engine.call("exact", system="ising", size="3x3", T=[2.0], mu=1e-9)["result"][0]
    assert a["method"] == "kaufman" and b["method"] == "transfer_matrix"
    assert a["log_Z"] == pytest.approx(b["log_Z"], rel=1e-8)
    engine.proc.stdin.write("not json\n")
    engine.proc.stdin.flush()
    assert engine.wait(lambda m: m.get("id") is None and "error" in m)["error"]["type"] == "ProtocolError"
    engine.proc.stdin.close()  # EOF: the engine leaves cleanly
    assert engine.proc.wait(20) == 0


def test_training_pause_cancel_checkpoint_and_quick_requests(engine, lattherm_home):
    engine.call("hello", protocol=1)
    job = engine.call("start_training", config=tiny_ising(5000, checkpoint_every=50))["result"]["job"]
    started = engine.event("started", job)["data"]
    engine.event("metrics", job)
    t0 = time.monotonic()
    runs = engine.call("list_runs")["result"]  # answered while training runs
    assert time.monotonic() - t0 < 2.0
    assert [r["id"] for r in runs] == [started["run"]]
    engine.call("pause", job=job)
    paused = engine.event("paused", job)["data"]
    time.sleep(0.5)
    jobs = engine.call("jobs")["result"]
    assert jobs[0]["state"] == "paused"
    # no step while paused: the run's metrics file stops at the paused step
    steps = [json.loads(line)["step"] for line in open(os.path.join(started["path"], "metrics.jsonl"))]
    assert max(steps) == paused["step"]
    engine.call("resume", job=job)
    engine.event("resumed", job)
    engine.call("cancel", job=job)
    done = engine.event("cancelled", job)["data"]
    assert done["status"] == "stopped" and os.path.isfile(done["checkpoint"])
    assert done["checkpoint"].endswith(f"step-{done['step']:08d}.safetensors")
    metrics = [m for m in engine.events if m["event"] == "metrics"]
    # batched: far fewer messages than steps, each carrying several records
    assert sum(len(m["data"]["records"]) for m in metrics) >= len(metrics)
    assert engine.call("list_runs")["result"][0]["status"] == "stopped"


def test_paint_keeps_fixed_sites_and_sampling_writes_npz(engine):
    engine.call("hello", protocol=1)
    job = engine.call("start_training", config=tiny_ising(20, checkpoint_every=50))["result"]["job"]
    run = engine.event("finished", job)["data"]["path"]
    fixed = [1, 0, -1, 0, 0, 0, -1, 0, 1]
    res = engine.call("paint", model=run, T=2.0, mu=0.1, n=6, fixed=fixed)["result"]
    with np.load(res["path"]) as z:
        spins = z["samples"].reshape(6, 9)
        assert (spins[:, np.array(fixed) != 0] == np.array(fixed)[np.array(fixed) != 0]).all()
        assert set(np.unique(spins)) <= {-1, 1}
    assert all(lp <= 0 for lp in res["log_p"])  # a probability of the 5 free sites: log p <= 0
    assert res["n_fixed"] == 4
    # all sites fixed: nothing to paint, a clear error (and the engine lives on)
    full = engine.call("paint", model=run, T=2.0, mu=0.0, n=2, fixed=[1] * 9)
    assert "result" not in full
    assert full["error"]["type"] == "LatthermError" and "every site is fixed" in full["error"]["message"]
    bad = engine.call("paint", model=run, T=2.0, mu=0.0, n=2, fixed=[2] * 9)
    assert "fixed must list 9 values" in bad["error"]["message"]
    # a larger target than the model's 3x3 goes through the same painting, window by window
    big = np.zeros((6, 6), int)
    big[0, :] = 1
    big[5, 5] = -1
    res = engine.call("paint", model=run, T=2.5, mu=0.0, n=3, size=[6, 6], fixed=big.reshape(-1).tolist())
    assert "result" in res, res
    with np.load(res["result"]["path"]) as z:
        assert z["samples"].shape == (3, 6, 6)
        assert (z["samples"][:, big != 0] == big[big != 0]).all()
    sjob = engine.call("sample", model=run, conditions=[[2.0, 0.0], [3.0, 0.2]], n=50)["result"]["job"]
    fin = engine.event("finished", sjob)["data"]
    with np.load(fin["path"]) as z:
        assert z["samples"].shape == (2, 50, 3, 3)
    row = fin["table"][0]
    # the variational bound: F_q >= -log Z, with the exact value from Kaufman at mu = 0
    assert row["exact_method"] == "kaufman" and row["F_q"] >= row["exact_neg_log_Z"] - 3 * row["F_q_stderr"]
