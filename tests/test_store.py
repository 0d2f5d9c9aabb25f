"""Run folders, checkpoints and atomic writes (engine/store): fast, all on tmp_path with LATTHERM_HOME patched."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest
import torch

from lattherm.engine import paths
from lattherm.engine.errors import CheckpointError, LatthermError
from lattherm.engine.store import (
    ModelSource,
    Run,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    delete_run,
    list_runs,
    load_tensors,
    pid_alive,
    read_meta,
    resolve_model_source,
    save_tensors,
    this_host,
)

CONFIG = '[system]\nkind = "ising"\nsize = "5x5"\n\n[model]\nkind = "ao-mlp"\n'


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LATTHERM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def snapshot(folder):
    """name -> bytes of every file below folder, to prove that nothing else was touched."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def write_model_folder(folder, info=None):
    folder.mkdir(parents=True)
    (folder / "config.toml").write_text(CONFIG)
    save_tensors(folder / "model.safetensors", {"w": torch.ones(2)}, {"kind": "ao-mlp"})
    (folder / "model.json").write_text(json.dumps(info or {"F_q": -2.1}))
    return folder


# ---- atomic writes ---------------------------------------------------------------------------------------------


def test_atomic_json_keeps_old_file_when_serialisation_fails(tmp_path):
    """A value that cannot be serialised raises before the disk is touched: old content stays, no temp file."""
    tmp_path = tmp_path / "d"
    target = tmp_path / "status.json"
    atomic_write_json(target, {"status": "running"})
    before = target.read_bytes()
    with pytest.raises(TypeError):
        atomic_write_json(target, {"status": "ok", "bad": object()})
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]


def test_atomic_bytes_keeps_old_file_when_write_fails_midway(tmp_path, monkeypatch):
    """If the write dies after the temp file got data (fsync fails), the target is intact and the temp removed."""
    tmp_path = tmp_path / "d"
    target = tmp_path / "config.toml"
    atomic_write_text(target, "old = 1\n")

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new = 2\n" * 1000)
    assert target.read_text() == "old = 1\n"
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def test_atomic_write_replaces_content_and_creates_parents(tmp_path):
    """A successful write replaces the whole content, creating missing folders."""
    target = tmp_path / "a" / "b" / "x.txt"
    atomic_write_text(target, "long old text")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"


# ---- checkpoints -----------------------------------------------------------------------------------------------


def test_checkpoint_round_trip_values_dtypes_and_meta(tmp_path):
    """Tensors come back bit-identical with their dtypes (incl. uint8/int64/float64), meta as saved."""
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    tensors = {
        "w": base.t(),  # non-contiguous
        "tied": base,  # shares storage with "w"
        "u8": torch.tensor([0, 7, 255], dtype=torch.uint8),
        "i64": torch.tensor([-(2**40), 3], dtype=torch.int64),
        "f64": torch.tensor([1e-300, 3.141592653589793], dtype=torch.float64),
        "grad": torch.ones(2, requires_grad=True),
    }
    meta = {"model": "ao-mlp", "step": 1200, "hyper": {"hidden": [64, 64]}, "lattice": "5x5", "T": 2.269}
    path = save_tensors(tmp_path / "ck.safetensors", tensors, meta)
    got, got_meta = load_tensors(path)
    assert got_meta == meta
    assert set(got) == set(tensors)
    for k, t in tensors.items():
        assert got[k].dtype == t.dtype
        assert torch.equal(got[k], t.detach())
    assert read_meta(path) == meta


def make_checkpoint(folder):
    folder.mkdir(parents=True, exist_ok=True)
    return save_tensors(folder / "good.safetensors", {"w": torch.randn(64, 64)}, {"step": 1})


@pytest.mark.parametrize(
    "damage",
    ["truncated_half", "truncated_header", "empty", "garbage", "foreign", "bad_meta_json", "huge_length"],
)
def test_damaged_checkpoint_raises_one_line_error_naming_file(tmp_path, damage):
    """Every kind of broken file gives a one-line CheckpointError naming it, and no other file changes."""
    folder = tmp_path / "checkpoints"
    good = make_checkpoint(folder)
    bad = folder / "bad.safetensors"
    data = good.read_bytes()
    if damage == "truncated_half":
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "truncated_header":
        bad.write_bytes(data[:20])
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "garbage":
        bad.write_bytes(os.urandom(4096))
    elif damage == "huge_length":
        bad.write_bytes(struct.pack("<Q", 2**62) + b"{}")
    elif damage == "foreign":
        from safetensors.torch import save_file

        save_file({"x": torch.zeros(3)}, str(bad), metadata={"format": "pt"})
    elif damage == "bad_meta_json":
        from safetensors.torch import save

        bad.write_bytes(save({"x": torch.zeros(3)}, metadata={"format": "lattherm-checkpoint/1", "lattherm": "{nope"}))
    before = snapshot(folder)
    with pytest.raises(CheckpointError) as exc:
        load_tensors(bad)
    msg = str(exc.value)
    assert str(bad) in msg and "\n" not in msg
    if damage == "foreign":
        assert "not a lattherm checkpoint" in msg
    assert snapshot(folder) == before
    assert load_tensors(good)[1] == {"step": 1}


def test_missing_checkpoint_is_checkpoint_error(tmp_path):
    """A missing file is a CheckpointError naming the path (not a bare FileNotFoundError)."""
    with pytest.raises(CheckpointError, match="nope.safetensors"):
        load_tensors(tmp_path / "nope.safetensors")


# ---- runs ------------------------------------------------------------------------------------------------------


def test_run_create_and_open_by_id_path_and_prefix(home):
    """create() lays out the folder under LATTHERM_HOME/runs; open() finds it by id, path and unique prefix."""
    run = Run.create(CONFIG, name_hint="ising 5x5/ao")
    assert run.path.parent == (home / "runs").resolve()
    assert "/" not in run.id and "ising-5x5-ao" in run.id
    assert run.config_path.read_text() == CONFIG
    assert run.checkpoints_dir.is_dir() and run.samples_dir.is_dir()
    st = run.status()
    assert st["status"] == "created" and "created" in st
    assert Run.open(run.id) == run
    assert Run.open(str(run.path)) == run
    assert Run.open(run.path) == run
    assert Run.open(run.id[:-3]) == run
    for p in (run.metrics_path, run.log_path, run.fault_path):
        assert p.parent == run.path


def test_run_open_errors(tmp_path):
    """Unknown ids and folders without config.toml give a LatthermError that says so."""
    with pytest.raises(LatthermError, match="no run 'nope'"):
        Run.open("nope")
    (tmp_path / "plain").mkdir()
    with pytest.raises(LatthermError, match="not a lattherm run"):
        Run.open(tmp_path / "plain")


def test_status_merges_and_tolerates_damage():
    """set_status merges extra keys; a missing or corrupt status.json reads as 'unknown' instead of raising."""
    run = Run.create(CONFIG)
    created = run.status()["created"]
    run.set_status("running", step=10, system="ising")
    run.set_status("running", step=20, best_F_q=-2.1)
    st = run.status()
    got = (st["status"], st["step"], st["system"], st["best_F_q"], st["created"])
    assert got == ("running", 20, "ising", -2.1, created)
    run.status_path.write_text('{"status": "runn')
    assert run.status() == {"status": "unknown"}
    run.status_path.unlink()
    assert run.status() == {"status": "unknown"}
    assert run.set_status("failed", message="boom")["status"] == "failed"


def test_running_run_whose_process_is_gone_reads_as_interrupted():
    """A run recorded as running by a process that has exited on this host reads as interrupted (last step kept,
    resumable) in status(), run_summary and list_runs, without a byte of the folder written; a live owner (this
    test process) reads as running, and another host's pid is left as recorded since it cannot be checked here."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    dead_pid = int(dead.stdout)
    assert not pid_alive(dead_pid) and pid_alive(os.getpid())
    live, gone, remote = Run.create(CONFIG, "live"), Run.create(CONFIG, "gone"), Run.create(CONFIG, "remote")
    live.set_status("running", step=40, pid=os.getpid(), host=this_host())
    gone.set_status("running", step=300, best_F_q=-1.5, pid=dead_pid, host=this_host())
    remote.set_status("running", step=7, pid=dead_pid, host=this_host() + "-elsewhere")
    before = gone.status_path.read_bytes(), gone.status_path.stat().st_mtime_ns
    st = gone.status()
    assert (st["status"], st["step"], st["best_F_q"], st["resumable"]) == ("interrupted", 300, -1.5, True)
    assert str(dead_pid) in st["message"]
    rows = {r["id"]: r for r in list_runs()}
    assert (rows[gone.id]["status"], rows[gone.id]["step"], rows[gone.id]["resumable"]) == ("interrupted", 300, True)
    assert (rows[live.id]["status"], rows[live.id]["resumable"]) == ("running", False)
    assert (rows[remote.id]["status"], rows[remote.id]["step"]) == ("running", 7)
    assert (gone.status_path.read_bytes(), gone.status_path.stat().st_mtime_ns) == before
    assert json.loads(before[0])["status"] == "running"
    # resuming writes over what was recorded, not over the interpretation
    gone.set_status("running", step=300, pid=os.getpid(), host=this_host())
    written = json.loads(gone.status_path.read_text())
    assert written["status"] == "running" and "resumable" not in written and "message" not in written
    assert gone.status()["status"] == "running"


def test_metrics_append_and_truncated_last_line():
    """read_metrics skips a line cut by a kill; a later append starts on a fresh line so no new record is lost."""
    run = Run.create(CONFIG)
    assert run.read_metrics() == []
    run.append_metrics([{"step": 1, "loss": 0.5}, {"step": 2, "loss": float("nan")}])
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 3, "lo')  # killed mid-write
    recs = run.read_metrics()
    assert [r["step"] for r in recs] == [1, 2]
    run.append_metrics([{"step": 4}])
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 4]


def test_checkpoint_ordering_latest_and_prune():
    """Checkpoints sort by step (not name order); prune keeps the newest `keep` plus best/final."""
    run = Run.create(CONFIG)
    assert run.latest_checkpoint() is None
    run.named_checkpoint_path("final").parent.mkdir(exist_ok=True)
    save_tensors(run.named_checkpoint_path("best"), {"w": torch.zeros(1)}, {"step": 5})
    assert run.latest_checkpoint() == run.named_checkpoint_path("best")
    for step in (5, 100, 20, 100000000, 3):
        save_tensors(run.checkpoint_path(step), {"w": torch.zeros(1)}, {"step": step})
    save_tensors(run.named_checkpoint_path("final"), {"w": torch.zeros(1)}, {"step": 100000000})
    assert run.checkpoint_path(7).name == "step-00000007.safetensors"
    assert [load_tensors(p)[1]["step"] for p in run.checkpoints()] == [3, 5, 20, 100, 100000000]
    assert run.latest_checkpoint() == run.checkpoint_path(100000000)
    removed = run.prune_checkpoints(keep=2)
    assert sorted(p.name for p in removed) == [run.checkpoint_path(s).name for s in (3, 5, 20)]
    left = sorted(p.name for p in run.checkpoints_dir.iterdir())
    assert left == ["best.safetensors", "final.safetensors", "step-00000100.safetensors", "step-100000000.safetensors"]


def test_new_samples_path_is_unique():
    """new_samples_path counts past existing files with the same stem."""
    run = Run.create(CONFIG)
    p1 = run.new_samples_path("T2.27")
    assert p1.name == "T2.27-1.npz" and p1.parent == run.samples_dir
    p1.write_bytes(b"x")
    assert run.new_samples_path("T2.27").name == "T2.27-2.npz"
    assert run.new_samples_path("other").name == "other-1.npz"


def test_list_runs_summaries_sorted_and_skips_non_runs(home):
    """list_runs reads status.json first, config.toml for the rest, skips stray folders, oldest first."""
    assert list_runs() == []
    a = Run.create(CONFIG, "a")
    b = Run.create('[system]\nkind = "cuau"\n[lattice]\nsize = 4\n[model]\nkind = "mam"\n', "b")
    a.set_status("finished", step=500, best_F_q=-2.0, created="2020-01-01T00:00:00+00:00")
    (home / "runs" / "not-a-run").mkdir()
    (home / "runs" / "stray.txt").write_text("x")
    rows = list_runs()
    assert [r["id"] for r in rows] == [a.id, b.id]
    ra, rb = rows
    assert (ra["status"], ra["system"], ra["size"], ra["model"], ra["step"], ra["best_F_q"]) == (
        "finished", "ising", "5x5", "ao-mlp", 500, -2.0
    )
    assert (rb["status"], rb["system"], rb["size"], rb["model"], rb["step"]) == ("created", "cuau", 4, "mam", None)
    assert ra["path"] == str(a.path)
    json.dumps(rows)  # JSON-ready for the engine protocol


# ---- model sources ---------------------------------------------------------------------------------------------


def test_resolve_run_by_id_and_path():
    """A run resolves to its config and newest checkpoint; weights_path is None before any checkpoint."""
    run = Run.create(CONFIG, "r")
    src = resolve_model_source(run.id)
    assert isinstance(src, ModelSource)
    assert (src.kind, src.path, src.config_path, src.weights_path) == ("run", run.path, run.config_path, None)
    save_tensors(run.checkpoint_path(10), {"w": torch.zeros(1)}, {})
    save_tensors(run.checkpoint_path(2), {"w": torch.zeros(1)}, {})
    src = resolve_model_source(str(run.path))
    assert src.kind == "run" and src.weights_path == run.checkpoint_path(10)


def test_resolve_model_folder_and_bundled_name(tmp_path, monkeypatch):
    """A model folder path and a bundled model name both give kind 'model' with model.safetensors and model.json."""
    folder = write_model_folder(tmp_path / "elsewhere" / "my-model", {"F_q": -1.5})
    src = resolve_model_source(folder)
    assert (src.kind, src.weights_path, src.info) == ("model", folder.resolve() / "model.safetensors", {"F_q": -1.5})

    res = tmp_path / "resources"
    write_model_folder(res / "models" / "ising-5x5-ao-mlp")
    monkeypatch.setattr(paths, "RESOURCES", res)
    src = resolve_model_source("ising-5x5-ao-mlp")
    assert src.kind == "model" and src.config_path == (res / "models" / "ising-5x5-ao-mlp" / "config.toml").resolve()
    assert load_tensors(src.weights_path)[1] == {"kind": "ao-mlp"}
    assert src.info == {"F_q": -2.1}


def test_bundled_models_list_the_example_first(tmp_path, monkeypatch):
    """`demo` and the GUI's first start take the first bundled model: the fast example, whatever the names sort to."""
    from lattherm.engine.store import bundled_models
    from lattherm.engine.store.models import EXAMPLE_MODEL

    res = tmp_path / "resources"
    for name in ("zz-model", EXAMPLE_MODEL, "aa-model"):
        write_model_folder(res / "models" / name)
    (res / "models" / "not-a-model").mkdir()
    monkeypatch.setattr(paths, "RESOURCES", res)
    assert bundled_models() == [EXAMPLE_MODEL, "aa-model", "zz-model"]


def test_resolve_unknown_lists_what_was_tried(tmp_path, monkeypatch):
    """Nothing matching: one-line LatthermError naming the runs root and the bundled models available."""
    res = tmp_path / "resources"
    write_model_folder(res / "models" / "ising-5x5-ao-mlp")
    monkeypatch.setattr(paths, "RESOURCES", res)
    with pytest.raises(LatthermError) as exc:
        resolve_model_source("no-such-thing")
    msg = str(exc.value)
    assert "no-such-thing" in msg and "run id" in msg and "ising-5x5-ao-mlp" in msg and "\n" not in msg


# ---- deletion --------------------------------------------------------------------------------------------------


def test_delete_run_only_inside_runs_root(tmp_path, home):
    """delete_run removes a run under the root, but refuses a run-looking folder elsewhere and leaves it intact."""
    run = Run.create(CONFIG)
    outside = tmp_path / "precious"
    outside.mkdir()
    (outside / "config.toml").write_text(CONFIG)
    with pytest.raises(LatthermError, match="refusing"):
        delete_run(outside)
    with pytest.raises(LatthermError, match="refusing"):
        delete_run(Run(outside))
    link = home / "runs" / "link"
    try:
        link.symlink_to(outside, target_is_directory=True)
    except OSError:
        pass
    else:
        with pytest.raises(LatthermError, match="refusing"):
            delete_run("link")
    assert (outside / "config.toml").is_file()
    delete_run(run.id)
    assert not run.path.exists()
    with pytest.raises(LatthermError):
        delete_run(run.id)
