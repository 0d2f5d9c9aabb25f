"""Data-parallel training and sharded evaluation over torch.distributed ranks (gloo on CPU): the estimator of W ranks
is the single-process estimator of the union batch, a launched run writes one run folder, resumes exactly (with the
same or another world size), stops together, and reports a dead rank; bad input is one line and exit code 2."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import _configs
from _ranks import rank_pids
from lattherm.engine.config import parse_config
from lattherm.engine.distributed import (World, all_gather_objects, backend_for, detect_world, gather_by_condition,
                                         rank_seed, strip_nproc)
from lattherm.engine.errors import LatthermError
from lattherm.engine.models.base import SampleBatch
from lattherm.engine.store import load_tensors
from lattherm.engine.training import Trainer

PY = sys.executable
ENV = {**os.environ, **_configs.ENGINE_ENV}


def _cli(args, home, timeout=240, env=None):
    e = {**ENV, "LATTHERM_HOME": str(home), **(env or {})}
    return subprocess.run([PY, "-m", "lattherm.engine.cli", *args], capture_output=True, text=True, env=e,
                          timeout=timeout)


# ---- helpers and world detection ----------------------------------------------------------------------------------
def test_world_from_torchrun_environment(monkeypatch):
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert detect_world() == World(0, 1, 0) and not detect_world().distributed
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    w = detect_world()
    assert (w.rank, w.size, w.local_rank, w.is_main, w.distributed) == (3, 4, 1, False, True)
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(LatthermError, match="RANK=4 and WORLD_SIZE=4"):
        detect_world()


def test_backend_from_device_and_nccl_without_gpu_is_one_line(monkeypatch):
    monkeypatch.delenv("LATTHERM_DIST_BACKEND", raising=False)
    assert backend_for("cpu") == "gloo"
    if not torch.cuda.is_available():
        assert backend_for("auto") == "gloo"
        monkeypatch.setenv("LATTHERM_DIST_BACKEND", "nccl")
        with pytest.raises(LatthermError, match="NCCL backend was requested but no CUDA GPU") as e:
            backend_for("cpu")
        assert "\n" not in str(e.value)
    monkeypatch.setenv("LATTHERM_DIST_BACKEND", "mpi")
    with pytest.raises(LatthermError, match="must be gloo or nccl"):
        backend_for("cpu")


def test_rank_seeds_are_distinct_and_stable_and_nproc_is_stripped():
    seeds = {rank_seed(s, r) for s in range(4) for r in range(8)}
    assert len(seeds) == 32 and rank_seed(0, 1) == rank_seed(0, 1)
    assert strip_nproc(["train", "c.toml", "--nproc", "2", "--name", "x"]) == ["train", "c.toml", "--name", "x"]
    assert strip_nproc(["evaluate", "m", "--nproc=4"]) == ["evaluate", "m"]


# ---- one step of W ranks = one step of one rank on the union batch -----------------------------------------------
def _one_step(trainer, inject=None):
    """One train_step recording (or replacing) what the step drew and the gradient it applied (before Adam)."""
    seen = {}
    if "mle" in trainer.objectives:
        obj = trainer.objectives["mle"]
        obj._tensors = ()  # no data set: the rows come from here

        def batch(size):
            if inject is not None:
                return inject
            s = torch.where(torch.rand(size, trainer.system.n_sites) < 0.5, -1.0, 1.0)
            rows = (s, 2.0 + torch.rand(size), 0.2 * torch.rand(size))
            seen["rows"] = rows
            return rows

        obj.batch = batch
    else:
        sample = trainer.model.sample

        def recording(T, mu, *args, **kw):
            sb = sample(T, mu, *args, **kw) if inject is None else SampleBatch(*inject)
            seen["rows"] = (sb.spins, sb.log_p, sb.ranks, sb.flip, sb.responsibility)
            return sb

        trainer.model.sample = recording
    step = trainer.optimizer.step

    def recording_step(*args, **kw):
        seen["grads"] = [p.grad.clone() for p in trainer.model.parameters()]
        return step(*args, **kw)

    trainer.optimizer.step = recording_step
    rec = trainer.train_step(log=True)
    seen["params"] = [p.detach().clone() for p in trainer.model.parameters()]
    seen["record"] = {k: rec[k] for k in ("loss", "F_q", "ess_fraction", "F_q_per_condition", "nll_per_site")
                      if k in rec}
    return seen


STEP_CASES = {"reinforce": ("ao-arm", "reinforce"), "mle": ("fo-arm", "mle")}
EVAL_GRID = "1.5,2.5,3.5:0,0.3"


def _step_config(case: str) -> str:
    kind, objective = STEP_CASES[case]
    # the REINFORCE case is Z2-symmetric: its gradient comes from each row's drawn component (SampleBatch.flip)
    return _configs.tiny_config(kind=kind, steps=1, **{"training.clip_grad": 0.0, "training.objective": objective,
                                                      "model.symmetric": objective == "reinforce"})


def _world_worker(rank, store, home, out):
    """Everything the 2-rank checks need, in one spawned world (starting processes is the slow part): one training
    step of each case, and a sharded evaluation."""
    os.environ["LATTHERM_HOME"] = home
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        from lattherm.engine import tasks

        result = {}
        for case in STEP_CASES:
            result[case] = all_gather_objects(_one_step(Trainer(parse_config(_step_config(case)), None, "cpu",
                                                                World(rank, 2))))
        ev = tasks.evaluate("ising-5x5-ao-mlp", EVAL_GRID, 40, batch=16, seed=7)  # None off rank 0
        result["evaluate"] = None if ev is None else ev.to_dict()
        from lattherm.engine.training.mam import standardise_per_condition
        from lattherm.engine.training.reinforce import leave_one_out_advantage

        x = torch.randn(3 * 5, dtype=torch.float64, generator=torch.Generator().manual_seed(rank))  # 3 x 5 per rank
        result["estimators"] = all_gather_objects((x, standardise_per_condition(x, 3, World(rank, 2)),
                                                   leave_one_out_advantage(x, 3, World(rank, 2))))
        if rank == 0:
            torch.save(result, out)
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_rank_world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("world")
    (tmp / "home").mkdir()
    # fork: the ranks inherit the imported modules (spawning re-imports torch and lattherm twice: most of the time)
    mp.start_processes(_world_worker, args=(str(tmp / "store"), str(tmp / "home"), str(tmp / "out.pt")), nprocs=2,
                       start_method="fork", join=True)
    return torch.load(tmp / "out.pt", weights_only=False)


def _union(rows_by_rank, groups: int):
    """The union batch in condition-major, rank-minor order (rows of each rank grouped by condition)."""
    return tuple(None if rows_by_rank[0][j] is None else
                 torch.stack([r[j].reshape(groups, -1, *r[j].shape[1:]) for r in rows_by_rank], 1)
                 .reshape(-1, *rows_by_rank[0][j].shape[1:]) for j in range(len(rows_by_rank[0])))


@pytest.mark.parametrize("case", list(STEP_CASES))
def test_two_rank_step_equals_one_rank_step_on_the_union_batch(two_rank_world, case):
    """Leave-one-out baselines, F_q, ESS and the averaged gradient of 2 ranks x 4 samples per condition are those of
    1 rank with the 8 samples (same rows, condition-major): parameters after the step agree to 1e-6."""
    text = _step_config(case)
    parts = two_rank_world[case]
    if case == "reinforce":
        union = _union([p["rows"] for p in parts], 4)
    else:  # maximum likelihood: a mean over rows, in any order
        union = tuple(torch.cat([p["rows"][j] for p in parts]) for j in range(3))
    assert not torch.equal(parts[0]["rows"][0], parts[1]["rows"][0])  # each rank drew its own share
    one = _one_step(Trainer(parse_config(text), None, "cpu"), inject=union)
    for r in (0, 1):
        for a, b in zip(parts[r]["params"], one["params"]):
            assert torch.allclose(a, b, atol=1e-6, rtol=0)
        for a, b in zip(parts[r]["grads"], one["grads"]):
            assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
        for k, v in one["record"].items():
            if case == "mle" and k not in ("loss", "nll_per_site"):
                continue  # MLE logs F_q from fresh model samples, not from the data rows
            assert parts[r]["record"][k] == pytest.approx(v, rel=1e-6, abs=1e-6), k
    assert max(float(g.abs().max()) for g in one["grads"]) > 1e-3  # a real gradient, not a vacuous match


def test_mam_standardisation_and_leave_one_out_over_ranks_are_those_of_the_union(two_rank_world):
    from lattherm.engine.training.mam import standardise_per_condition
    from lattherm.engine.training.reinforce import leave_one_out_advantage

    parts = two_rank_world["estimators"]
    union = _union([(p[0], p[1], p[2]) for p in parts], 3)  # x, standardised, advantage: (3 x 10) condition-major
    assert torch.allclose(union[1], standardise_per_condition(union[0], 3), atol=1e-12)
    assert torch.allclose(union[2], leave_one_out_advantage(union[0], 3), atol=1e-12)
    assert not torch.allclose(parts[0][1], standardise_per_condition(parts[0][0], 3))  # not the per-rank value


def test_gather_by_condition_is_condition_major_in_a_world_of_one():
    x = torch.arange(8.0)
    assert torch.equal(gather_by_condition(x, 4, World()), x)


# ---- sharded evaluation ------------------------------------------------------------------------------------------
def test_sharded_evaluate_over_two_ranks_equals_one_rank(two_rank_world):
    from lattherm.engine import tasks

    two = two_rank_world["evaluate"]
    one = tasks.evaluate("ising-5x5-ao-mlp", EVAL_GRID, 40, batch=16, seed=7).to_dict()
    assert json.loads(json.dumps(two)) == json.loads(json.dumps(one))
    assert len(one["conditions"]) == 6 and len({c["F_q"] for c in one["conditions"]}) == 6


# ---- bad input ---------------------------------------------------------------------------------------------------
def test_bad_nproc_is_one_line_and_creates_nothing(tmp_path, lattherm_home, capsys):
    from lattherm.engine.cli.main import main

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(_configs.tiny_config())
    assert main(["train", str(cfg), "--nproc", "0"]) == 2
    assert capsys.readouterr().err.strip() == "lattherm: error: --nproc must be >= 1, got 0"
    assert main(["train", str(cfg), "--nproc", "3"]) == 2  # batch 16 over 4 conditions: 4 per condition
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "3 processes cannot share the batch" in err and "4 samples per condition" in err
    assert main(["evaluate", "ising-5x5-ao-mlp", "--nproc", "0"]) == 2
    assert "--nproc must be >= 1" in capsys.readouterr().err
    assert main(["evaluate", "no-such-model", "--nproc", "2"]) == 2  # refused before any rank starts
    err = capsys.readouterr().err.strip()
    assert err.startswith("lattherm: error: no run or model 'no-such-model'") and "\n" not in err
    assert not (lattherm_home / "runs").exists() or not any((lattherm_home / "runs").iterdir())


def test_nproc_one_trains_in_this_process(tmp_path, lattherm_home, capsys):
    from lattherm.engine.cli.main import main

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(_configs.tiny_config(steps=2, **{"training.log_every": 1}))
    assert main(["train", str(cfg), "--nproc", "1"]) == 0
    (run,) = (lattherm_home / "runs").iterdir()
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    assert _ckpt(run, 2)[1]["world_size"] == 1 and "x 1 processes" not in capsys.readouterr().err


def test_world_size_the_batch_cannot_share_fails_in_the_trainer_too():
    with pytest.raises(LatthermError, match="5 processes cannot share the batch"):
        Trainer(parse_config(_configs.tiny_config()), None, "cpu", World(0, 5))


# ---- GPU fast path switches on CPU -------------------------------------------------------------------------------
def test_tf32_is_a_no_op_on_cpu_and_bf16_keeps_sampling_exact():
    trained = []
    for precision in ("float32", "tf32"):  # one after the other: each seeds torch's global stream
        tr = Trainer(parse_config(_configs.tiny_config(steps=2, **{"training.precision": precision})), None, "cpu")
        tr.train_step(log=False)
        tr.train_step(log=False)
        trained.append(tr)
    base, tf32 = trained
    assert tf32.precision.describe() == "float32"
    assert all(torch.equal(a, b) for a, b in zip(base.model.parameters(), tf32.model.parameters()))

    bf = Trainer(parse_config(_configs.tiny_config(steps=2, **{"training.precision": "bf16"})), None, "cpu")
    assert bf.precision.describe() == "bf16 autocast on cpu"
    T, mu = torch.full((8,), 2.0), torch.zeros(8)
    torch.manual_seed(3)
    ref = bf.model.sample(T, mu)
    torch.manual_seed(3)
    with bf.precision.autocast(), bf.full_precision():
        inside = bf.model.sample(T, mu)
    assert torch.equal(ref.spins, inside.spins) and torch.equal(ref.log_p, inside.log_p)
    rec = bf.train_step(log=True)
    assert all(map(lambda v: v == v and abs(v) < 1e6, (rec["loss"], rec["F_q"], rec["grad_norm"])))
    with pytest.raises(LatthermError, match="precision must be one of float32, tf32, bf16"):
        parse_config(_configs.tiny_config(**{"training.precision": "fp8"}))


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_training_closes_the_exact_gap_as_float32_does(device):
    """KL(q || p) by enumeration on 3x3 after 80 steps: bf16 autocast of the gradient passes learns as float32 does
    (the estimator and the sampler's log p stay in full precision), and q stays normalised."""
    import _training

    conds = [(2.0, 0.0), (3.0, 0.2)]
    gaps = {}
    for precision in ("float32", "bf16"):
        over = {"training.precision": precision, "training.lr": 3e-3, "training.batch": 64}
        tr = Trainer(parse_config(_configs.tiny_config(steps=80, **over)), None, device)
        def exact(model):  # enumeration runs on the CPU, in float32
            return [_training.enumerated_F_q(copy.deepcopy(model).cpu(), tr.system, T, mu) for T, mu in conds]

        start = exact(tr.model)
        for _ in range(80):
            tr.train_step(log=False)
        end = exact(tr.model)
        assert all(abs(total - 1.0) < 1e-5 for _, total, _ in end)
        gaps[precision] = [(a[0] - a[2], b[0] - b[2]) for a, b in zip(start, end)]
    for (g0, f32), (_, bf16) in zip(gaps["float32"], gaps["bf16"]):
        assert bf16 < 0.5 * g0 and abs(bf16 - f32) < 0.2, gaps


@pytest.mark.slow
@pytest.mark.parametrize("device", DEVICES)
def test_compiled_sampler_matches_eager_or_falls_back_with_one_line(device):
    tr = Trainer(parse_config(_configs.tiny_config(steps=2, **{"training.compile": True})), None, device)
    assert tr.compiled.startswith("compiled ") or "sampling runs eagerly" in tr.compiled
    eager = Trainer(parse_config(_configs.tiny_config(steps=2)), None, device)
    T, mu = torch.full((6,), 2.5, device=device), torch.full((6,), 0.1, device=device)
    ranks = torch.arange(9, device=device).repeat(6, 1)
    torch.manual_seed(5)
    a = tr.model.sample(T, mu, ranks=ranks)
    torch.manual_seed(5)
    b = eager.model.sample(T, mu, ranks=ranks)
    assert torch.equal(a.spins, b.spins) and torch.allclose(a.log_p, b.log_p, atol=1e-4)
    fq = []
    for trainer in (tr, eager):
        torch.manual_seed(6)
        fq.append(trainer.train_step(log=True)["F_q"])
    assert fq[0] == pytest.approx(fq[1], abs=1e-3), tr.compiled


# ---- launched runs (the CLI over torch's elastic launcher) -------------------------------------------------------
@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory):
    """A 2-rank training of a tiny config through ``lattherm train --nproc 2``: 6 steps, checkpoints at 3 and 6."""
    home = tmp_path_factory.mktemp("ddp-home")
    cfg = home / "tiny.toml"
    cfg.write_text(_configs.tiny_config(steps=6, **{"training.log_every": 1, "training.checkpoint_every": 3}))
    p = _cli(["train", str(cfg), "--nproc", "2"], home)
    assert p.returncode == 0, p.stderr
    runs = list((home / "runs").iterdir())
    return home, runs, p


def _ckpt(run: Path, step: int):
    return load_tensors(run / "checkpoints" / f"step-{step:08d}.safetensors")


@pytest.mark.slow
def test_two_rank_training_writes_one_run_with_one_metrics_stream(two_rank_run):
    home, runs, p = two_rank_run
    assert len(runs) == 1
    run = runs[0]
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "finished" and status["step"] == 6 and status["world_size"] == 2
    tensors, meta = _ckpt(run, 6)
    assert meta["world_size"] == 2 and {"rank0.rng.torch", "rank1.rng.torch"} <= set(tensors)
    assert not torch.equal(tensors["rank0.rng.torch"], tensors["rank1.rng.torch"])
    assert p.stderr.count("finished: run") == 1 and "x 2 processes" in p.stderr


def _resumable_copy(run: Path, home: Path, name: str) -> Path:
    """The run as it was at step 3: a copy without the step-6 checkpoint."""
    dst = home / "runs" / f"{run.name}-{name}"
    shutil.copytree(run, dst)
    (dst / "checkpoints" / "step-00000006.safetensors").unlink()
    st = json.loads((dst / "status.json").read_text())
    st.update(status="stopped", step=3)
    (dst / "status.json").write_text(json.dumps(st))
    return dst


@pytest.mark.slow
def test_resume_with_two_ranks_continues_exactly(two_rank_run):
    home, runs, _ = two_rank_run
    run = runs[0]
    dst = _resumable_copy(run, home, "resume2")
    p = _cli(["train", "--resume", str(dst), "--nproc", "2"], home)
    assert p.returncode == 0, p.stderr
    a, _ = _ckpt(run, 6)
    b, meta = _ckpt(dst, 6)
    assert meta["world_size"] == 2 and set(a) == set(b)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert [json.loads(x)["F_q"] for x in (dst / "metrics.jsonl").read_text().splitlines()] == \
           [json.loads(x)["F_q"] for x in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_resume_with_one_rank_works_and_says_so(two_rank_run):
    home, runs, _ = two_rank_run
    dst = _resumable_copy(runs[0], home, "resume1")
    p = _cli(["train", "--resume", str(dst)], home)
    assert p.returncode == 0, p.stderr
    assert "resuming with 1 process(es) a run checkpointed by 2" in p.stderr
    assert "resumed with 1 process(es) from a checkpoint of 2" in (dst / "engine.log").read_text()
    tensors, meta = _ckpt(dst, 6)
    assert meta["world_size"] == 1 and "rng.torch" in tensors and not any(k.startswith("rank") for k in tensors)
    assert json.loads((dst / "status.json").read_text())["status"] == "finished"
    steps = [json.loads(x)["step"] for x in (dst / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_mam_chains_are_sharded_and_resplit_on_resume(tmp_path, lattherm_home):
    """MaM's persistent chains: per-rank rows in the checkpoint; a 1-rank resume takes them all, in condition order."""
    cfg = tmp_path / "mam.toml"
    cfg.write_text(_configs.tiny_config(kind="ao-mam", steps=4, **{"training.log_every": 2,
                                                                    "training.checkpoint_every": 2}))
    p = _cli(["train", str(cfg), "--nproc", "2"], lattherm_home)
    assert p.returncode == 0, p.stderr
    run = next((lattherm_home / "runs").iterdir())
    t, meta = _ckpt(run, 4)
    assert meta["world_size"] == 2 and t["rank0.mam.chains"].shape == (8, 9) == t["rank1.mam.chains"].shape
    one = Trainer.resume(run)
    ch = one.objectives["reinforce"]
    whole = torch.cat([t[f"rank{r}.mam.chains"].long().reshape(4, 2, 9) for r in (0, 1)], 1).reshape(16, 9)
    assert torch.equal(ch.chains, whole) and one.resumed_world == 2
    T, mu = one.schedule.batch(one.step)
    assert torch.equal(ch.chain_T, T) and torch.equal(ch.chain_mu, mu)  # each row still at its own condition
    one.run.lock.release()



def _start_long_run(tmp_path, home):
    cfg = tmp_path / "long.toml"
    cfg.write_text(_configs.tiny_config(steps=100000, **{"training.log_every": 1, "training.checkpoint_every": 3}))
    proc = subprocess.Popen([PY, "-m", "lattherm.engine.cli", "train", str(cfg), "--nproc", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, "LATTHERM_HOME": str(home)})
    deadline = time.time() + 120
    while time.time() < deadline:
        runs = list((home / "runs").glob("*/checkpoints/step-*.safetensors")) if (home / "runs").exists() else []
        pids = rank_pids(home)
        if runs and len(pids) == 2:
            return proc, pids, next((home / "runs").iterdir())
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the 2-rank run did not start")


@pytest.mark.slow
def test_sigterm_on_one_rank_stops_all_with_one_checkpoint(tmp_path, lattherm_home):
    proc, pids, run = _start_long_run(tmp_path, lattherm_home)
    os.kill(pids[1], signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    st = json.loads((run / "status.json").read_text())
    assert st["status"] == "stopped" and st["message"] == "stopped on another rank"
    tensors, meta = _ckpt(run, st["step"])  # the checkpoint of the very step all ranks stopped after
    assert meta["world_size"] == 2 and meta["step"] == st["step"]


@pytest.mark.slow
def test_a_rank_that_dies_stops_the_others_and_the_run_keeps_its_last_checkpoint(tmp_path, lattherm_home):
    proc, pids, run = _start_long_run(tmp_path, lattherm_home)
    os.kill(pids[1], signal.SIGKILL)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "rank 1 of 2 was killed by signal 9; the other ranks were stopped" in err
    st = json.loads((run / "status.json").read_text())
    assert st["status"] == "failed"
    last = sorted((run / "checkpoints").glob("step-*.safetensors"))[-1]
    tensors, meta = load_tensors(last)  # whole and readable
    assert meta["world_size"] == 2 and meta["step"] % 3 == 0


@pytest.mark.slow
def test_the_same_command_runs_under_torchrun(tmp_path, lattherm_home):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(_configs.tiny_config(steps=4, **{"training.log_every": 2, "training.checkpoint_every": 2}))
    p = subprocess.run([PY, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
                        "lattherm.engine.cli", "train", str(cfg)], capture_output=True, text=True, timeout=240,
                       env={**ENV, "LATTHERM_HOME": str(lattherm_home)})
    assert p.returncode == 0, p.stderr
    (run,) = (lattherm_home / "runs").iterdir()
    assert json.loads((run / "status.json").read_text())["world_size"] == 2
    assert _ckpt(run, 4)[1]["world_size"] == 2
    p = _cli(["train", str(cfg), "--nproc", "2"], lattherm_home, env={"RANK": "0", "WORLD_SIZE": "2"})
    assert p.returncode == 2 and "under torchrun (or srun) leave it out" in p.stderr
