"""Fault injection and bad input (issue 17): the engine server survives every line, a live run is never deleted or
trained twice, divergence and full disks stop a run with one line and its last good checkpoint, SIGTERM checkpoints,
resume keeps the history exact, and every bad input is one line on stderr with exit code 2."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from _configs import ENGINE_ENV, ENGINE_RUN, tiny_config

from lattherm.engine.errors import LatthermError
from lattherm.engine.store import Run, load_tensors, save_tensors
from _cli import cli  # noqa: E402

PY = sys.executable


# ---- helpers -----------------------------------------------------------------------------------------------------


def one_line_error(rc: int, err: str, *needles: str) -> None:
    """Exit 2, one stderr line 'lattherm: error: ...' naming every needle, no traceback (training's own lines
    before it, the run's name and its progress, are left out)."""
    assert rc == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("run ", "  step ", "step "))]
    assert len(lines) == 1 and lines[0].startswith("lattherm: error: "), err
    for n in needles:
        assert n in lines[0], (n, err)


def config(steps=20, checkpoint_every=4, **changes) -> str:
    """The engine tests' tiny Ising run, ``changes`` ("training.lr": 1e30) replacing or adding keys."""
    return tiny_config(steps=steps, **{**ENGINE_RUN, "training.checkpoint_every": checkpoint_every, **changes})


def env(home) -> dict:
    return dict(os.environ, **ENGINE_ENV, LATTHERM_HOME=str(home))


def steps_logged(run: Run) -> list[int]:
    return [r["step"] for r in run.read_metrics()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny trained run (checkpoints at 4, 8, 10) and a model folder exported from it."""
    from lattherm.engine.tasks import export_model
    from lattherm.engine.training import Trainer

    root = tmp_path_factory.mktemp("trained")
    tr = Trainer.create(config(steps=10), root=root / "runs")
    assert tr.train() == "finished"
    folder = export_model(tr.run.path, root / "model").path
    return tr.run, folder


# ---- 1. the engine server survives every line -----------------------------------------------------------------
class RawEngine:
    """The engine on binary pipes, so a test can send any bytes."""

    def __init__(self, home):
        self.proc = subprocess.Popen([PY, "-m", "lattherm.engine.server"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env(home))
        self.lines: list[dict] = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for raw in self.proc.stdout:
            msg = json.loads(raw)
            with self.cv:
                self.lines.append(msg)
                self.cv.notify_all()

    def send_raw(self, data: bytes) -> None:
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait(self, pred, timeout=60.0) -> dict:
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for m in self.lines:
                    if pred(m):
                        self.lines.remove(m)
                        return m
                left = end - time.monotonic()
                assert left > 0, "timed out waiting for the engine"
                assert self.proc.poll() is None or self.lines, f"the engine died (exit {self.proc.returncode})"
                self.cv.wait(min(left, 0.5))

    def call(self, rid, method, timeout=60.0, **params) -> dict:
        self.send_raw(json.dumps({"id": rid, "method": method, "params": params}).encode() + b"\n")
        return self.wait(lambda m: m.get("id") == rid, timeout)

    def alive(self, rid) -> bool:
        return "result" in self.call(rid, "ping")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


@pytest.fixture(scope="module")
def raw_engine(tmp_path_factory):
    e = RawEngine(tmp_path_factory.mktemp("engine-home"))
    e.wait(lambda m: m.get("event") == "ready")
    yield e
    e.close()


def _protocol_error(engine) -> dict:
    return engine.wait(lambda m: m.get("id") is None and "error" in m)["error"]


@pytest.mark.slow
def test_server_survives_deep_nesting_long_lines_and_bad_bytes(raw_engine):
    deep = b'{"id":"x","method":"ping","params":' + b"[" * 1000 + b"]" * 1000 + b"}\n"
    raw_engine.send_raw(deep)
    err = _protocol_error(raw_engine)
    assert err["type"] == "ProtocolError" and "nested deeper" in err["message"]
    assert raw_engine.alive(1)

    raw_engine.send_raw(b'{"id":2,"method":"ping","params":{"pad":"' + b"x" * 10_000_000 + b'"}}\n')
    err = _protocol_error(raw_engine)
    assert "longer than" in err["message"]
    assert raw_engine.alive(3)  # the rest of the 10 MB line was skipped, the next line is a request again

    raw_engine.send_raw(b'{"id":4,"method":"ping","params":{"s":"\xff\xfe"}}\n')
    assert "not UTF-8" in _protocol_error(raw_engine)["message"]
    assert raw_engine.alive(5)


@pytest.mark.parametrize("params, needles", [
    ({"size": "3x3", "T": [2.0]}, ("'system'", "required")),
    ({"system": 5, "size": "3x3", "T": [2.0]}, ("'system'", "string")),
    ({"system": "ising", "size": [3, 3], "T": 2.0}, ("'size'", "string")),
    ({"system": "ising", "size": "3x3", "T": "hot"}, ("'T'",)),
    ({"system": "ising", "size": "3x3", "T": [2.0, None]}, ("T entry 1",)),
    ({"system": "ising", "size": "3x3", "T": [-1.0]}, ("T=-1",)),
    ({"system": "ising", "size": "3x3", "T": [1.0] * 501}, ("at most 500",)),
    ({"system": "ising", "size": "1000000x1000000", "T": [2.0]}, ("memory limit",)),
])
def test_server_exact_errors_name_the_parameter(raw_engine, params, needles):
    reply = raw_engine.call(10, "exact", **params)
    assert "error" in reply, reply
    assert reply["error"]["type"] == "LatthermError"
    for n in needles:
        assert n in reply["error"]["message"], reply
    assert raw_engine.alive(11)


@pytest.mark.parametrize("method, params, needle", [
    ("open_run", {"run": ["a"]}, "'run' must be a string"),
    ("delete_run", {}, "'run' is required"),
    ("model_info", {"model": {"x": 1}}, "'model' must be a string"),
    ("start_training", {"config": 7}, "'config' must be a string"),
    ("start_training", {"config": "[model]\nkind = 'ao-arm'\n"}, "no [system] table"),
    ("sample", {"model": "ising-5x5-ao-mlp", "n": "many"}, "'n' must be an integer"),
    ("paint", {"model": "ising-5x5-ao-mlp"}, "'T' is required"),
])
def test_server_job_and_quick_errors_are_data(raw_engine, method, params, needle):
    reply = raw_engine.call(20, method, **params)
    assert "error" in reply and needle in reply["error"]["message"], reply
    assert "KeyError" not in reply["error"]["message"]


def test_server_refuses_to_overwrite_without_overwrite_true(raw_engine, tmp_path):
    victim = tmp_path / "keep.xyz"
    victim.write_text("precious")
    reply = raw_engine.call(30, "export_structures", samples=str(tmp_path / "none.npz"), out=str(victim))
    assert "overwrite: true" in reply["error"]["message"]
    assert victim.read_text() == "precious"


@pytest.mark.slow
def test_shutdown_exits_within_a_second_while_a_long_request_runs(tmp_path):
    e = RawEngine(tmp_path)
    try:
        e.wait(lambda m: m.get("event") == "ready")
        e.send_raw(json.dumps({"id": 1, "method": "exact", "params": {
            "system": "ising", "size": "4x4", "T": [1.0 + 0.01 * i for i in range(300)]}}).encode() + b"\n")
        time.sleep(0.5)  # the exact call is computing (tens of seconds of work)
        t = time.monotonic()
        assert "result" in e.call(3, "list_runs", timeout=5)  # not stuck behind it
        assert time.monotonic() - t < 2.0
        t0 = time.monotonic()
        e.send_raw(b'{"id":2,"method":"shutdown"}\n')
        e.proc.wait(10)
        assert time.monotonic() - t0 < 2.0
    finally:
        e.close()


# ---- 2. a live run is never deleted, nor trained twice ------------------------------------------------------------
def test_created_run_is_owned_and_not_deleted(lattherm_home):
    from lattherm.engine.tasks import delete_run
    from lattherm.engine.training import Trainer

    tr = Trainer.create(config(steps=4))
    assert tr.run.status()["status"] == "created"
    with pytest.raises(LatthermError, match="in use"):
        delete_run(tr.run.id)
    assert tr.run.config_path.is_file()
    tr.train()  # training ends: the lock goes, the delete goes through
    assert not (tr.run.path / "lock.json").exists()
    assert delete_run(tr.run.id)["deleted"] == str(tr.run.path)
    assert not tr.run.path.exists()


def test_delete_acts_on_exactly_the_folder_it_checked(lattherm_home, tmp_path):
    from lattherm.engine.tasks import delete_run
    from lattherm.engine.training import Trainer

    real = Trainer.create(config(steps=4)).run  # live (owned by this process)
    decoy = tmp_path / "x" / real.id
    shutil.copytree(real.path, decoy, ignore=shutil.ignore_patterns("lock.json"))
    Run(decoy).set_status("finished")
    with pytest.raises(LatthermError, match="not a run inside"):
        delete_run(str(decoy))
    assert real.config_path.is_file() and decoy.is_dir()


_HOLD = """
import sys, time
from lattherm.engine.store.lock import RunLock
RunLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""


def test_a_run_owned_by_another_process_is_neither_deleted_nor_resumed(trained, lattherm_home, capsys):
    from lattherm.engine.tasks import delete_run

    src, _ = trained
    folder = lattherm_home / "runs" / src.id
    shutil.copytree(src.path, folder)
    holder = subprocess.Popen([PY, "-c", _HOLD, str(folder)], stdout=subprocess.PIPE, text=True, env=env(lattherm_home))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LatthermError, match=f"pid {holder.pid}"):
            delete_run(src.id)
        rc, _, err = cli(capsys, "train", "--resume", src.id)
        one_line_error(rc, err, "in use", str(holder.pid))
        assert Run(folder).status()["status"] == "finished"
    finally:
        holder.kill()
        holder.wait()
    # kill -9 left a stale lock: its owner is gone, so the run is free again
    assert (folder / "lock.json").is_file()
    delete_run(src.id)
    assert not folder.exists()


def test_two_resumes_of_one_run_the_second_is_refused(trained, tmp_path):
    from lattherm.engine.training import Trainer

    src, _ = trained
    folder = tmp_path / src.id
    shutil.copytree(src.path, folder)
    first = Trainer.resume(folder)
    with pytest.raises(LatthermError, match="in use") as info:
        Trainer.resume(folder)
    assert "\n" not in str(info.value)
    first.run.lock.release()
    Trainer.resume(folder).run.lock.release()


# ---- 3. divergence guard and SIGTERM ------------------------------------------------------------------------------
def _all_finite(path) -> bool:
    tensors, _ = load_tensors(path)
    return all(bool(torch.isfinite(t).all()) for k, t in tensors.items() if k.startswith("model."))


def test_lr_1e30_stops_with_diverged_and_keeps_the_last_finite_checkpoint(lattherm_home, tmp_path, capsys):
    cfg = tmp_path / "boom.toml"
    cfg.write_text(config(steps=200, checkpoint_every=1, **{"training.lr": 1e30, "training.clip_grad": 0.0}))
    rc, _, err = cli(capsys, "train", cfg)
    one_line_error(rc, err, "diverged")
    (run_dir,) = (lattherm_home / "runs").iterdir()
    run = Run(run_dir)
    st = run.status()
    assert st["status"] == "failed" and st["reason"] == "diverged"
    latest = run.latest_checkpoint()
    assert latest is not None and _all_finite(latest)
    assert all(math.isfinite(r["loss"]) for r in run.read_metrics())
    assert not (run_dir / "lock.json").exists()


def test_nan_mid_run_stops_and_the_checkpoint_before_it_stays_latest(lattherm_home, monkeypatch):
    from lattherm.engine.training import Trainer
    from lattherm.engine.training.trainer import Diverged

    tr = Trainer.create(config(steps=20, checkpoint_every=4))
    loss = tr.objective.loss

    def poisoned(step, log):
        value, info = loss(step, log)
        return (value * float("nan"), info) if step == 9 else (value, info)  # step 10 goes wrong

    monkeypatch.setattr(tr.objective, "loss", poisoned)
    with pytest.raises(Diverged, match="step 10"):
        tr.train()
    assert tr.run.latest_checkpoint().name == "step-00000008.safetensors"
    assert tr.run.status()["status"] == "failed" and max(steps_logged(tr.run)) == 9
    resumed = Trainer.resume(tr.run.path)
    assert resumed.step == 8 and resumed.train() == "finished"
    assert steps_logged(resumed.run) == list(range(1, 21))


@pytest.mark.slow
def test_sigterm_to_lattherm_train_checkpoints_once_and_stops(lattherm_home, tmp_path):
    cfg = tmp_path / "long.toml"
    cfg.write_text(config(steps=100_000, checkpoint_every=100_000))
    proc = subprocess.Popen([PY, "-m", "lattherm.engine.cli", "train", str(cfg)], stderr=subprocess.PIPE, text=True,
                            env=env(lattherm_home))
    runs = lattherm_home / "runs"
    end = time.monotonic() + 60
    while time.monotonic() < end:
        dirs = list(runs.iterdir()) if runs.is_dir() else []
        if dirs and Run(dirs[0]).metrics_path.is_file() and len(Run(dirs[0]).read_metrics()) >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    run = Run(dirs[0])
    st = run.status()
    assert st["status"] == "stopped" and "SIGTERM" in st["message"]
    assert [p.name for p in run.checkpoints()] == [f"step-{st['step']:08d}.safetensors"]
    assert not (run.path / "lock.json").exists()


# ---- 4. run history ---------------------------------------------------------------------------------------------
def test_resume_after_a_kill_does_not_duplicate_metrics(trained, tmp_path):
    from lattherm.engine.training import Trainer

    src, _ = trained
    folder = tmp_path / src.id
    shutil.copytree(src.path, folder)
    run = Run(folder)
    (run.checkpoints_dir / "step-00000010.safetensors").unlink()  # killed after logging 9, 10: last checkpoint 8
    with open(run.metrics_path, "ab") as f:
        f.write(b'{"step": 11, "loss"')  # and mid-line
    tr = Trainer.resume(folder)
    assert tr.step == 8
    assert steps_logged(run) == list(range(1, 9))
    tr.train()
    assert steps_logged(run) == list(range(1, 11))


def test_truncated_latest_checkpoint_falls_back_with_a_note(trained, tmp_path):
    from lattherm.engine.training import Trainer

    src, _ = trained
    folder = tmp_path / src.id
    shutil.copytree(src.path, folder)
    latest = Run(folder).latest_checkpoint()
    latest.write_bytes(latest.read_bytes()[:1000])
    tr = Trainer.resume(folder)
    assert tr.step == 8
    assert "older checkpoint" in Run(folder).log_path.read_text()
    tr.run.lock.release()


def test_disk_full_is_one_line_and_leaves_no_cut_metrics_line(lattherm_home, tmp_path, capsys, monkeypatch):
    import lattherm.engine.store.runs as runs_mod

    real_open = open
    calls = {"n": 0}

    class Full:
        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            calls["n"] += 1
            if calls["n"] >= 5:  # the fifth batch meets a full disk halfway
                self.f.write(data[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.f.write(data)

    def fake_open(path, mode="r", *a, **kw):
        f = real_open(path, mode, *a, **kw)
        return Full(f) if str(path).endswith("metrics.jsonl") else f

    monkeypatch.setattr(runs_mod, "open", fake_open, raising=False)
    cfg = tmp_path / "c.toml"
    cfg.write_text(config(steps=20, checkpoint_every=2))
    rc, _, err = cli(capsys, "train", cfg)
    one_line_error(rc, err, "No space left on device")
    (run_dir,) = (lattherm_home / "runs").iterdir()
    raw = (run_dir / "metrics.jsonl").read_bytes()
    assert raw.endswith(b"\n") and [json.loads(ln)["step"] for ln in raw.splitlines()] == [1, 2, 3, 4]
    run = Run(run_dir)
    assert run.status()["status"] == "failed" and run.latest_checkpoint().name == "step-00000004.safetensors"


# ---- 5. one line, exit 2 ----------------------------------------------------------------------------------------
BAD_CONFIGS = {
    "lr nan": ({"training.lr": math.nan}, "lr must be finite"),
    "lr inf": ({"training.lr": math.inf}, "lr must be finite"),
    "T range nan": ({"conditions.T": [math.nan, 2.0]}, "T must be finite"),
    "mu range inf": ({"conditions.mu": [0.0, math.inf]}, "mu must be finite"),
    "jitter nan": ({"conditions.jitter_T": math.nan}, "jitter_T must be finite"),
    "clip_grad nan": ({"training.clip_grad": math.nan}, "clip_grad must be finite"),
    "lr_final > lr": ({"training.lr_final": 0.5}, "lr_final"),
    "samples_per_epoch 0": ({"conditions.samples_per_epoch": 0}, "samples_per_epoch"),
    "hidden 1e9": ({"model.hidden": 1_000_000_000}, "memory limit"),
    "layers 1e5": ({"model.layers": 100_000, "model.hidden": 4096}, "memory limit"),
    "batch 4e8": ({"training.batch": 400_000_000}, "memory limit"),
    "threads 1e5": ({"training.threads": 100_000}, "threads"),
}


@pytest.mark.parametrize("name", BAD_CONFIGS)
def test_bad_config_numbers_are_one_line_and_create_nothing(name, capsys, tmp_path, lattherm_home):
    changes, needle = BAD_CONFIGS[name]
    cfg = tmp_path / "bad.toml"
    cfg.write_text(config(**changes))
    rc, _, err = cli(capsys, "train", cfg)
    one_line_error(rc, err, needle)
    assert not (lattherm_home / "runs").exists() or not any((lattherm_home / "runs").iterdir())


def test_config_without_system_and_non_utf8_config_are_refused(capsys, tmp_path):
    no_system = tmp_path / "nosys.toml"
    no_system.write_text(config().replace('[system]\nname = "ising"\nsize = "3x3"\n', ""))
    rc, _, err = cli(capsys, "train", no_system)
    one_line_error(rc, err, "[system]")
    latin = tmp_path / "latin.toml"
    latin.write_bytes(config().encode() + b"# caf\xe9\n")
    rc, _, err = cli(capsys, "train", latin)
    one_line_error(rc, err, "not UTF-8", "0xe9")


def test_edited_config_in_a_run_is_one_line_on_resume(trained, tmp_path, capsys):
    src, _ = trained
    folder = tmp_path / src.id
    shutil.copytree(src.path, folder)
    (folder / "config.toml").write_text("")
    rc, _, err = cli(capsys, "train", "--resume", str(folder))
    one_line_error(rc, err, "[system]")


@pytest.mark.parametrize("args, needles", [
    (["exact", "ising", "--size", "1000000x1000000", "--T", "2"], ("memory limit", "TiB")),
    (["exact", "ising", "--size", "4x4", "--T", "1e308"], ("overflows",)),
    (["exact", "ising", "--size", "4x4", "--T", "-1"], ("T=-1",)),
])
def test_exact_limits(args, needles, capsys):
    rc, out, err = cli(capsys, *args)
    one_line_error(rc, err, *needles)
    assert out == ""


@pytest.mark.parametrize("kind", ["sample", "paint", "evaluate"])
def test_counts_and_sizes_are_checked_before_allocating(kind, trained, capsys, tmp_path):
    run, _ = trained
    args = {"sample": ["sample", run.path, "--T", "2", "-n", "1000000000", "--out", tmp_path / "s.npz"],
            "paint": ["paint", run.path, "--T", "2", "--size", "100000x100000", "--out", tmp_path / "p.npz"],
            "evaluate": ["evaluate", run.path, "--samples", "1000000000"]}[kind]
    rc, _, err = cli(capsys, *args)
    one_line_error(rc, err, "memory limit")
    assert not list(tmp_path.glob("*.npz"))


def _rewrite_model(folder: Path, meta_change=None, tensor_change=None) -> None:
    path = folder / "model.safetensors"
    tensors, meta = load_tensors(path)
    if meta_change:
        meta_change(meta)
    if tensor_change:
        tensor_change(tensors)
    save_tensors(path, tensors, meta)


@pytest.mark.parametrize("damage, needle", [
    ("huge hparams", "memory limit"),
    ("huge lattice", "memory limit"),
    ("nan weights", "NaN"),
    ("int32 weights", "int32"),
])
def test_crafted_model_folders_are_refused(damage, needle, trained, tmp_path, capsys):
    _, model = trained
    folder = tmp_path / "crafted"
    shutil.copytree(model, folder)
    first = None

    def nan(t):
        k = next(k for k in t if k.startswith("model."))
        t[k] = torch.full_like(t[k], float("nan"))

    def int32(t):
        k = next(k for k in t if k.startswith("model."))
        t[k] = t[k].to(torch.int32)

    change = {"huge hparams": dict(meta_change=lambda m: m["model"].update(hidden=10**9)),
              "huge lattice": dict(meta_change=lambda m: m["system"].update(size=[10**6, 10**6])),
              "nan weights": dict(tensor_change=nan), "int32 weights": dict(tensor_change=int32)}[damage]
    _rewrite_model(folder, **change)
    rc, _, err = cli(capsys, "sample", folder, "--T", "2", "-n", "5", "--out", tmp_path / "s.npz")
    one_line_error(rc, err, needle)
    assert first is None and not (tmp_path / "s.npz").exists()


def test_export_model_onto_an_existing_file_is_refused(trained, tmp_path, capsys):
    run, _ = trained
    victim = tmp_path / "notes.txt"
    victim.write_text("keep me")
    rc, _, err = cli(capsys, "export-model", run.path, "--out", victim)
    one_line_error(rc, err, "existing file")
    assert victim.read_text() == "keep me"


def test_stale_lock_is_taken_over_and_a_live_one_is_named(tmp_path):
    from lattherm.engine.store.lock import RunLock

    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "lock.json").write_text(json.dumps({"pid": 2**22 + 12345, "host": __import__("socket").gethostname()}))
    lock = RunLock(folder).acquire()
    assert json.loads((folder / "lock.json").read_text())["pid"] == os.getpid()
    with pytest.raises(LatthermError, match=f"pid {os.getpid()}"):
        RunLock(folder).acquire()
    lock.release()
    assert not (folder / "lock.json").exists()


@pytest.mark.slow
def test_sigterm_to_the_engine_stops_training_with_a_checkpoint(tmp_path):
    e = RawEngine(tmp_path)
    try:
        e.wait(lambda m: m.get("event") == "ready")
        e.call(1, "start_training", config=config(steps=100_000, checkpoint_every=100_000))
        run = e.wait(lambda m: m.get("event") == "started")["data"]["path"]
        e.wait(lambda m: m.get("event") == "metrics")
        e.proc.send_signal(signal.SIGTERM)
        assert e.proc.wait(30) == 0
    finally:
        e.close()
    st = Run(run).status()
    assert st["status"] == "stopped" and Run(run).latest_checkpoint() is not None
    assert not (Path(run) / "lock.json").exists()
