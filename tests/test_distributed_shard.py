"""Sharded sampling, painting, phase diagrams and Monte Carlo over torch.distributed ranks (gloo on CPU): 2 ranks
write bitwise the files 1 rank writes for the same seed; a user error on any rank is one line from rank 0; bad
``--nproc`` is one line and exit code 2 before any process starts; a rank that dies stops the others and leaves no
file; the commands run unchanged under torchrun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import _configs
from _ranks import rank_pids
from lattherm.engine.distributed import World, check_shardable, shard_map, sharded_task
from lattherm.engine.errors import LatthermError

PY = sys.executable
ENV = {**os.environ, **_configs.ENGINE_ENV}
MODEL = "ising-5x5-ao-mlp"


def _tasks(out: Path) -> dict:
    """The four sharded tasks, small: each writes into ``out``; returns what each returned (None off rank 0)."""
    from lattherm.engine import tasks
    from lattherm.engine.tasks.mcmc import mcmc

    out.mkdir(parents=True, exist_ok=True)
    return {
        "sample": tasks.sample(MODEL, (2.5, 0.1), n=24, batch=8, seed=3, out=out / "sample.npz"),
        "sample-grid": tasks.sample(MODEL, [(2.0, 0.0), (3.0, -0.2), (3.5, 0.3)], n=6, batch=4, seed=5,
                                    out=out / "grid.npz"),
        "paint": tasks.paint(MODEL, 2.5, 0.0, 6, size="7x7", batch=2, seed=4, out=out / "paint.npz"),
        "phase": tasks.phase_diagram(MODEL, out / "phase", T_points=3, mu_points=2, samples=6, boundary="none",
                                     seed=2, formats="svg"),
        "phase-mc": tasks.phase_diagram("mc", out / "phase-mc", system="ising", lattice_size="4x4", T_points=2,
                                        mu_points=2, chains=2, sweeps=4, boundary="none", seed=6, formats="svg"),
        "metropolis": mcmc("metropolis", 2.5, 0.1, 12, size="5x5", chains=6, chain_batch=2, seed=7,
                           out=out / "metropolis.npz"),
        "nmcmc": mcmc(MODEL, 2.5, 0.0, 6, chains=4, chain_batch=2, seed=8, out=out / "nmcmc.npz"),
    }


def _errors(rank: int) -> dict:
    """What each rank raises for a bad temperature (every rank), an error on rank 1 only, and too many ranks."""
    from lattherm.engine import tasks

    got = {}

    def record(name, fn):
        try:
            with sharded_task(World(rank, 2)):  # as the command line runs a task
                fn()
            got[name] = None
        except LatthermError as exc:
            got[name] = (str(exc), bool(getattr(exc, "from_rank0", False)))

    record("bad-T", lambda: tasks.sample(MODEL, (-1.0, 0.0), n=8, batch=4))

    def only_rank1(i):
        if rank == 1:
            raise LatthermError(f"item {i} cannot be drawn here")
        return i

    record("rank1", lambda: shard_map(4, only_rank1))
    record("too-many", lambda: shard_map(1, lambda i: i, what="chunks of samples"))
    got["squares"] = shard_map(5, lambda i: i * i)
    return got


def _worker(rank, store, home, out):
    os.environ["LATTHERM_HOME"] = home
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        returned = {k: v is not None for k, v in _tasks(Path(out) / "two").items()}
        torch.save({"returned": returned, "errors": _errors(rank)}, Path(out) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """The tasks in a spawned world of 2 (fork: the ranks inherit the imports) and in this process."""
    tmp = tmp_path_factory.mktemp("shard")
    home = tmp / "home"
    home.mkdir()
    mp.start_processes(_worker, args=(str(tmp / "store"), str(home), str(tmp)), nprocs=2, start_method="fork",
                       join=True)
    one = _tasks(tmp / "one")
    return tmp, one, [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in (0, 1)]


def _same_npz(a: Path, b: Path) -> None:
    x, y = np.load(a), np.load(b)
    assert sorted(x.files) == sorted(y.files)
    for k in x.files:
        assert x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]), (a.name, k)


@pytest.mark.parametrize("name", ["sample.npz", "grid.npz", "paint.npz", "metropolis.npz", "nmcmc.npz",
                                  "phase/phase_grid.npz", "phase/phase_grid.csv", "phase-mc/phase_grid.npz"])
def test_two_ranks_write_the_file_one_rank_writes(worlds, name):
    tmp, _, _ = worlds
    one, two = tmp / "one" / name, tmp / "two" / name
    if name.endswith(".csv"):
        assert one.read_bytes() == two.read_bytes()
    else:
        _same_npz(one, two)


def test_only_rank_0_writes_and_returns(worlds):
    tmp, one, ranks = worlds
    assert all(ranks[0]["returned"].values()) and not any(ranks[1]["returned"].values())
    assert all(v is not None for v in one.values())
    assert sorted(p.name for p in (tmp / "two").iterdir()) == sorted(p.name for p in (tmp / "one").iterdir())


def test_the_shards_are_real_draws(worlds):
    """Chunks, rows and chain groups differ from one another (each from its own seed), and the statistics that
    rank 0 combines are those of all of them."""
    tmp, one, _ = worlds
    s = np.load(tmp / "two" / "sample.npz")["samples"].reshape(3, 8, -1)  # 3 chunks of 8
    assert not np.array_equal(s[0], s[1]) and not np.array_equal(s[1], s[2])
    m = np.load(tmp / "two" / "metropolis.npz")
    assert m["energy_per_site"].shape == (6, 12) and m["final"].shape[0] == 6
    res = one["metropolis"]
    assert res.chains == 6 and res.observables["energy_per_site"]["mean"] == pytest.approx(
        float(m["energy_per_site"].mean()), abs=1e-12)
    nm = one["nmcmc"]
    assert nm.method == "nmcmc" and 0.0 < nm.acceptance <= 1.0
    grid = np.load(tmp / "two" / "phase" / "phase_grid.npz")
    assert grid["x_mean"].shape == (3, 2) and grid["x_hist"].sum() == 3 * 2 * 6


def test_one_group_keeps_the_seed_of_an_unsharded_run():
    """chain_batch / batch at their defaults: one group or chunk, drawn from the task's seed as before sharding."""
    from lattherm.engine.tasks.mcmc import mcmc

    a = mcmc("metropolis", 2.5, 0.0, 8, size="4x4", chains=4, seed=11)
    b = mcmc("metropolis", 2.5, 0.0, 8, size="4x4", chains=4, chain_batch=4, seed=11)
    c = mcmc("metropolis", 2.5, 0.0, 8, size="4x4", chains=4, chain_batch=2, seed=11)
    d = mcmc("metropolis", 2.5, 0.0, 8, size="4x4", chains=2, seed=11)
    assert torch.equal(a.series["energy_per_site"], b.series["energy_per_site"])
    e = c.series["energy_per_site"]
    assert torch.equal(e[:2], d.series["energy_per_site"])  # group 0 is the 2-chain run of the task's seed
    assert not torch.equal(e[:2], e[2:])  # group 1 has a seed of its own


def test_errors_on_any_rank_are_said_once_by_rank_0(worlds):
    _, _, (r0, r1) = worlds
    msg0, quiet0 = r0["errors"]["bad-T"]
    msg1, quiet1 = r1["errors"]["bad-T"]
    assert "temperature must be positive" in msg0 and not quiet0 and quiet1  # rank 1 leaves it to rank 0
    assert r0["errors"]["rank1"] == ("rank 1: item 1 cannot be drawn here", False)
    assert r1["errors"]["rank1"][1]
    assert r0["errors"]["too-many"][0] == "2 processes cannot share 1 chunks of samples: use --nproc 1 or fewer"
    assert r0["errors"]["squares"] == [0, 1, 4, 9, 16] and r1["errors"]["squares"] is None


def test_shard_map_in_a_world_of_one_is_the_plain_loop():
    assert shard_map(3, lambda i: -i, world=World()) == [0, -1, -2]
    with pytest.raises(LatthermError, match=r"^3 processes cannot share 2 temperatures: use --nproc 2 or fewer "
                                            r"\(raise --T-points\)$"):
        check_shardable(2, 3, "temperatures", "raise --T-points")


# ---- the command line: bad --nproc before any process starts -----------------------------------------------------
BAD = {
    "sample": ["sample", MODEL, "--T", "2.5", "-n", "10", "--out", "{out}"],
    "paint": ["paint", MODEL, "--size", "6x6", "--T", "2.5", "-n", "4", "--out", "{out}"],
    "phase-diagram": ["phase-diagram", MODEL, "--T-points", "1", "--mu-points", "2", "--samples", "4",
                      "--boundary", "none", "--out", "{out}"],
    "mcmc": ["mcmc", "metropolis", "--size", "4x4", "--T", "2.5", "--steps", "4", "--chains", "3",
             "--chain-batch", "2", "--out", "{out}"],
}
TOO_MANY = {"sample": ("3", "3 processes cannot share 1 chunks of samples: use --nproc 1 or fewer (-n 10 is drawn "
                             "in chunks of --batch 2000: lower --batch for more chunks)"),
            "paint": ("2", "2 processes cannot share 1 chunks of lattices: use --nproc 1 or fewer"),
            "phase-diagram": ("2", "2 processes cannot share 1 temperatures: use --nproc 1 or fewer"),
            "mcmc": ("3", "3 processes cannot share 2 groups of chains: use --nproc 2 or fewer (3 chains in groups "
                          "of --chain-batch 2: lower it)")}


@pytest.mark.parametrize("command", list(BAD))
def test_bad_nproc_is_one_line_exit_2_and_writes_nothing(command, tmp_path, capsys):
    from lattherm.engine.cli.main import main

    out = tmp_path / ("out" if command == "phase-diagram" else "out.npz")
    args = [a.format(out=out) for a in BAD[command]]
    assert main([*args, "--nproc", "0"]) == 2
    assert capsys.readouterr().err == "lattherm: error: --nproc must be >= 1, got 0\n"
    n, message = TOO_MANY[command]
    assert main([*args, "--nproc", n]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"lattherm: error: {message}")
    assert not out.exists()


def test_nproc_under_torchrun_is_refused(tmp_path, capsys, monkeypatch):
    from lattherm.engine.cli.main import main

    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    out = tmp_path / "out.npz"
    assert main([a.format(out=out) for a in BAD["sample"]] + ["--nproc", "2"]) == 2
    assert "under torchrun (or srun) leave it out" in capsys.readouterr().err and not out.exists()


# ---- launched for real (slow: each start is a few seconds per rank) -----------------------------------------------
def _cli(args, home, timeout=600, env=None, launcher=("-m", "lattherm.engine.cli")):
    e = {**ENV, "LATTHERM_HOME": str(home), **(env or {})}
    return subprocess.run([PY, *launcher, *args], capture_output=True, text=True, env=e, timeout=timeout)


@pytest.mark.slow
def test_launched_and_torchrun_commands_write_the_one_process_files(tmp_path, lattherm_home):
    sample = ["sample", MODEL, "--T", "2.2", "--mu", "0.1", "-n", "12", "--batch", "4", "--seed", "9"]
    p = _cli([*sample, "--out", str(tmp_path / "two.npz"), "--nproc", "2"], lattherm_home)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout.count("wrote 12 samples") == 1  # rank 0 alone reports
    p = _cli([*sample, "--out", str(tmp_path / "one.npz")], lattherm_home)
    assert p.returncode == 0, p.stderr
    _same_npz(tmp_path / "one.npz", tmp_path / "two.npz")
    mc = ["mcmc", "metropolis", "--size", "4x4", "--T", "2.5", "--steps", "10", "--chains", "4", "--chain-batch", "2",
          "--json"]
    p = _cli([*mc, "--out", str(tmp_path / "mc2.npz")], lattherm_home,
             launcher=("-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m",
                       "lattherm.engine.cli"))
    assert p.returncode == 0, p.stderr
    two = json.loads(p.stdout)
    p = _cli([*mc, "--out", str(tmp_path / "mc1.npz")], lattherm_home)
    one = json.loads(p.stdout)
    _same_npz(tmp_path / "mc1.npz", tmp_path / "mc2.npz")
    for k in ("seconds", "effective_samples_per_second", "path"):
        one.pop(k), two.pop(k)
    assert one == two
    p = _cli(["sample", MODEL, "--T", "-2", "-n", "8", "--batch", "4", "--out", str(tmp_path / "bad.npz"),
              "--nproc", "2"], lattherm_home)
    assert p.returncode == 2 and p.stderr == "lattherm: error: temperature must be positive and finite, got T=-2\n"
    assert not (tmp_path / "bad.npz").exists()



@pytest.mark.slow
def test_a_rank_that_dies_stops_the_others_with_one_line_and_no_file(tmp_path, lattherm_home):
    out = tmp_path / "s.npz"
    proc = subprocess.Popen([PY, "-m", "lattherm.engine.cli", "sample", "ising-10x10-ao-mlp-cpu", "--T", "2.5",
                             "-n", "200000", "--batch", "50", "--out", str(out), "--nproc", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**ENV, "LATTHERM_HOME": str(lattherm_home)})
    deadline = time.time() + 400
    pids = {}
    while time.time() < deadline and len(pids) < 2:
        time.sleep(0.5)
        pids = rank_pids(lattherm_home)
    assert len(pids) == 2, "the ranks did not start"
    time.sleep(3)  # both are drawing
    os.kill(pids[1], signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 1
    assert err == "lattherm: error: rank 1 of 2 was killed by signal 9; the other ranks were stopped\n"
    assert not out.exists() and not list(tmp_path.glob("*.tmp*"))
