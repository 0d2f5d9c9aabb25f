"""The engine process over its JSON-lines protocol, driven like the GUI drives it (a pipe, no Qt)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from _configs import ENGINE_ENV, ENGINE_RUN, tiny_config

from lattherm.engine.server import PROTOCOL_VERSION

pytestmark = pytest.mark.slow  # every test drives a real engine process (seconds each)

#: the engine's tiny training runs, checkpointed only at their end (or at a cancel)
SERVER_RUN = {**ENGINE_RUN, "training.checkpoint_every": 50}


class Engine:
    def __init__(self, home):
        env = dict(os.environ, **ENGINE_ENV, LATTHERM_HOME=str(home))
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
    hello = engine.call("hello", protocol=PROTOCOL_VERSION)["result"]
    assert hello["protocol"] == PROTOCOL_VERSION and hello["pid"] == engine.proc.pid
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
    engine.call("hello", protocol=PROTOCOL_VERSION)
    job = engine.call("start_training", config=tiny_config(steps=5000, **SERVER_RUN))["result"]["job"]
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


def job(engine, method, timeout=60.0, **params) -> tuple[str, dict]:
    """Submit a job; (job id, its last event: finished, failed or cancelled)."""
    jid = engine.call(method, **params)["result"]["job"]
    end = engine.wait(lambda m: m.get("job") == jid and m.get("event") in ("finished", "failed", "cancelled"),
                      timeout)
    return jid, end


def test_paint_keeps_fixed_sites_and_sampling_writes_npz(engine):
    engine.call("hello", protocol=PROTOCOL_VERSION)
    _, fin = job(engine, "start_training", config=tiny_config(steps=20, **SERVER_RUN))
    run = fin["data"]["path"]
    fixed = [1, 0, -1, 0, 0, 0, -1, 0, 1]
    _, end = job(engine, "paint", model=run, T=2.0, mu=0.1, n=6, fixed=fixed)
    res = end["data"]
    with np.load(res["path"]) as z:
        spins = z["samples"].reshape(6, 9)
        assert (spins[:, np.array(fixed) != 0] == np.array(fixed)[np.array(fixed) != 0]).all()
        assert set(np.unique(spins)) <= {-1, 1}
    assert all(lp <= 0 for lp in res["log_p"])  # a probability of the 5 free sites: log p <= 0
    assert res["n_fixed"] == 4
    # all sites fixed: nothing to paint, a clear failure (and the engine lives on)
    _, full = job(engine, "paint", model=run, T=2.0, mu=0.0, n=2, fixed=[1] * 9)
    assert full["event"] == "failed"
    assert full["data"]["type"] == "LatthermError" and "every site is fixed" in full["data"]["message"]
    _, bad = job(engine, "paint", model=run, T=2.0, mu=0.0, n=2, fixed=[2] * 9)
    assert "fixed must list 9 values" in bad["data"]["message"]
    assert "takes no colour" in engine.call("paint", model=run, T=2.0, colour="red")["error"]["message"]
    # a larger target than the model's 3x3 goes through the same painting, window by window
    big = np.zeros((6, 6), int)
    big[0, :] = 1
    big[5, 5] = -1
    _, end = job(engine, "paint", model=run, T=2.5, mu=0.0, n=3, size=[6, 6], fixed=big.reshape(-1).tolist())
    assert end["event"] == "finished", end
    with np.load(end["data"]["path"]) as z:
        assert z["samples"].shape == (3, 6, 6)
        assert (z["samples"][:, big != 0] == big[big != 0]).all()
    sjob = engine.call("sample", model=run, conditions=[[2.0, 0.0], [3.0, 0.2]], n=50)["result"]["job"]
    fin = engine.event("finished", sjob)["data"]
    with np.load(fin["path"]) as z:
        assert z["samples"].shape == (2, 50, 3, 3)
    row = fin["table"][0]
    # the variational bound: F_q >= -log Z, with the exact value from Kaufman at mu = 0
    assert row["exact_method"] == "kaufman" and row["F_q"] >= row["exact_neg_log_Z"] - 3 * row["F_q_stderr"]


def test_evaluate_and_sample_jobs_give_the_cli_numbers_for_one_seed(engine, capsys):
    """One seed, one batch size: the server's evaluate job, its sample job's table and `lattherm evaluate --json`
    draw the same samples, so every estimate agrees; and each respects the variational bound F_q >= -log Z."""
    from lattherm.engine.cli.main import main

    engine.call("hello", protocol=PROTOCOL_VERSION)
    _, fin = job(engine, "start_training", config=tiny_config(steps=20, **SERVER_RUN))
    run = fin["data"]["path"]
    # on one thread, like the engine (tests/conftest.py)
    assert main(["evaluate", run, "--grid", "2.0,3.0:0,0.2", "--samples", "300", "--batch", "128", "--seed", "7",
                 "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    _, ev = job(engine, "evaluate", model=run, grid="2.0,3.0:0,0.2", samples=300, batch=128, seed=7)
    assert ev["event"] == "finished", ev
    server = ev["data"]["result"]
    conds = [[c["T"], c["mu"]] for c in cli["conditions"]]
    _, sam = job(engine, "sample", model=run, conditions=conds, n=300, batch=128, seed=7)
    table = sam["data"]["table"]
    keys = ("T", "mu", "n_samples", "mean_log_p", "mean_log_f", "F_q", "neg_log_Z_nis", "ess_fraction",
            "exact_neg_log_Z")
    for a, b, c in zip(cli["conditions"], server["conditions"], table, strict=True):
        for k in keys:
            assert a[k] == pytest.approx(b[k], rel=1e-9, abs=1e-12) == pytest.approx(c[k], rel=1e-9, abs=1e-12)
        assert a["F_q"] >= a["exact_neg_log_Z"] - 3 * a["F_q_stderr"]
    assert server["average"]["F_q"] == pytest.approx(cli["average"]["F_q"], rel=1e-9)
    # a different seed draws other samples
    _, other = job(engine, "evaluate", model=run, grid="2.0:0", samples=300, batch=128, seed=8)
    assert other["data"]["result"]["conditions"][0]["F_q"] != cli["conditions"][0]["F_q"]


def test_sample_job_far_above_the_batch_is_drawn_in_chunks(engine):
    """n = 250 at batch 60: five chunks of at most 60 samples (progress counts chunks and ends at 5 of 5), yet one
    file of 250 samples whose log f is the Ising weight of each."""
    engine.call("hello", protocol=PROTOCOL_VERSION)
    _, fin = job(engine, "start_training", config=tiny_config(steps=10, **SERVER_RUN))
    jid, end = job(engine, "sample", model=fin["data"]["path"], conditions=[[2.5, 0.1]], n=250, batch=60)
    assert end["event"] == "finished", end
    steps = [m["data"] for m in engine.events if m["event"] == "progress" and m["job"] == jid]
    assert steps and all(p["total"] == 5 for p in steps)
    assert [p["step"] for p in steps] == sorted({p["step"] for p in steps}) and steps[-1]["step"] == 5
    assert steps[-1]["fraction"] == 1.0 and steps[-1]["eta_s"] == 0.0
    with np.load(end["data"]["path"]) as z:
        assert z["samples"].shape == (1, 250, 3, 3)
        s = z["samples"][0].astype(float)
        energy = -(s * np.roll(s, 1, 1) + s * np.roll(s, 1, 2)).sum((1, 2)) - 0.1 * s.sum((1, 2))
        np.testing.assert_allclose(z["log_f"][0], -energy / 2.5, atol=1e-9)
    assert end["data"]["table"][0]["n_samples"] == 250


def test_paint_job_reports_progress_and_can_be_cancelled(engine):
    """Painting 6x6 lattices one at a time: progress comes per batch, and a cancel ends the job between batches
    with a 'cancelled' event, no 'finished', and no samples file."""
    engine.call("hello", protocol=PROTOCOL_VERSION)
    _, fin = job(engine, "start_training", config=tiny_config(steps=10, **SERVER_RUN))
    run = fin["data"]["path"]
    jid = engine.call("paint", model=run, T=2.5, mu=0.0, n=500, batch=1, size=[6, 6])["result"]["job"]
    first = engine.event("progress", jid)["data"]
    assert first["total"] == 500 and 1 <= first["step"] < 500 and first["painted"] == first["step"]
    engine.call("cancel", job=jid)
    # a long wait returns as soon as the event comes; 30 s timed out once with both cores taken by other jobs
    end = engine.wait(lambda m: m.get("job") == jid and m.get("event") in ("finished", "failed", "cancelled"), 120.0)
    assert end["event"] == "cancelled"
    assert engine.call("jobs")["result"][-1]["state"] == "cancelled"
    assert not list((Path(run) / "samples").glob("paint-*.npz"))
