"""Stop reaches inside a long step: through the real engine protocol, a cancel ends a training step, a sample draw
and a painting walk that would each run for many seconds within about a second, the partial work is discarded,
and the engine answers the next request."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch

from _configs import tiny_config
from test_server import Engine

from lattherm.engine.progress import Cancelled, Control, check_interrupt, interruptible

#: the longest a cancel may take to end a step that is in flight (the engine checks once per generated site)
STOP_WITHIN_S = 1.5


@pytest.fixture
def engine(lattherm_home):
    e = Engine(lattherm_home)
    e.event("ready", timeout=60)
    yield e
    e.close()


def test_check_interrupt_is_scoped_to_its_block_and_thread():
    """Outside an ``interruptible`` block the check never raises; inside it raises once the Control stops, with the
    Control's reason; the block's end restores the outer (absent) Control."""
    check_interrupt()
    c = Control()
    with interruptible(c):
        check_interrupt()  # not stopped yet
        c.request_stop("cancelled by test")
        with pytest.raises(Cancelled, match="cancelled by test"):
            check_interrupt()
    check_interrupt()  # the block is over: nothing to obey


def test_model_sampling_stops_mid_draw():
    """A stop set from another thread while a model draws ends the draw at the next site, not at its end."""
    import threading

    from lattherm.engine.models import build_model

    torch.manual_seed(0)
    model = build_model("ao-arm", "mlp", n_sites=400, hidden=32, layers=1)
    c = Control()
    threading.Timer(0.3, c.request_stop).start()
    t0 = time.perf_counter()
    with interruptible(c), pytest.raises(Cancelled):
        for _ in range(10_000):  # far longer than the test: only the interrupt can end it
            model.sample(2.0, 0.0, batch=256)
    assert time.perf_counter() - t0 < 0.3 + STOP_WITHIN_S


def _cancel_timed(engine, jid) -> float:
    t0 = time.monotonic()
    engine.call("cancel", job=jid)
    engine.event("cancelled", jid, timeout=30)
    return time.monotonic() - t0


def _ping_answers(engine) -> bool:
    return "result" in engine.call("ping", timeout=10)


@pytest.mark.slow
def test_stop_inside_a_long_training_step(engine, lattherm_home):
    """A 10x10 AO-ARM step on a batch of 3000 takes seconds on one thread. After the first step (a checkpoint) a
    cancel sent inside the second ends the job within about a second; step 2 leaves no record, the run says
    stopped at step 1 and its only checkpoint is step 1."""
    cfg = tiny_config("10x10", steps=50, **{"model.hidden": 64, "model.layers": 1, "training.batch": 3000,
                                           "training.log_every": 1, "training.checkpoint_every": 1})
    jid = engine.call("start_training", config=cfg)["result"]["job"]
    engine.event("started", jid, timeout=60)
    engine.wait(lambda m: m.get("event") == "metrics" and m.get("job") == jid, timeout=120)  # step 1 done
    t_step1 = time.monotonic()
    time.sleep(0.5)  # well inside step 2
    dt = _cancel_timed(engine, jid)
    assert dt < STOP_WITHIN_S, f"cancel took {dt:.2f} s to end a step in flight"
    steps = [r["step"] for m in engine.events if m["event"] == "metrics" and m["job"] == jid for r in m["data"]["records"]]
    assert steps == [1], f"step 2 must be discarded, got records for {steps} ({time.monotonic() - t_step1:.1f} s)"
    assert _ping_answers(engine)
    run = engine.call("open_run", run=engine.event("started", jid)["data"]["run"])["result"]
    assert run["status"]["status"] == "stopped" and run["status"]["step"] == 1, run["status"]
    assert [int(Path(c).stem.split("-")[1]) for c in run["checkpoints"]] == [1], run["checkpoints"]


@pytest.mark.slow
def test_stop_inside_a_long_sample_draw(engine, lattherm_home):
    """One batch of 5000 10x10 samples from the bundled model (width 512) takes many seconds on one thread (100
    passes of a tenth of a second or more); a cancel ends it within about a second, writes no samples file, and
    the engine answers a ping after."""
    jid = engine.call("sample", model="ising-10x10-ao-mlp", conditions=[[2.5, 0.0]], n=5000, batch=5000)
    jid = jid["result"]["job"]
    engine.event("started", jid, timeout=60)
    time.sleep(1.0)
    dt = _cancel_timed(engine, jid)
    assert dt < STOP_WITHIN_S, f"cancel took {dt:.2f} s to end a draw in flight"
    assert not any(m["event"] in ("finished", "samples_ready") and m["job"] == jid for m in engine.events)
    assert not list(lattherm_home.rglob("*.npz"))
    assert _ping_answers(engine)


@pytest.mark.slow
def test_stop_inside_a_long_painting_walk(engine, lattherm_home):
    """Painting one batch of 64x64 lattices from the 10x10 model walks 4096 sites per sample; a cancel ends the
    walk within about a second and the engine answers a ping after."""
    jid = engine.call("paint", model="ising-10x10-ao-mlp", T=2.5, mu=0.0, n=2000, batch=2000, size="64x64")
    jid = jid["result"]["job"]
    engine.event("started", jid, timeout=60)
    time.sleep(1.0)
    dt = _cancel_timed(engine, jid)
    assert dt < STOP_WITHIN_S, f"cancel took {dt:.2f} s to end a painting walk in flight"
    assert not any(m["event"] == "finished" and m["job"] == jid for m in engine.events)
    assert _ping_answers(engine)
