"""The `lattherm` command end to end: exact references, train / resume, runs, evaluate, sample, and bad input.

Everything runs in-process through ``main([...])`` on tiny Ising models (3x3, hidden 16, a dozen steps), plus two
real subprocesses that prove the exit code and the absence of a traceback. LATTHERM_HOME is a per-test tmp dir
(tests/conftest.py), so no test sees another's runs.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lattherm.engine.store import Run

from _configs import tiny_config
from _training import train_until_stopped
from _cli import cli  # noqa: E402

GRID = "2.0,3.0:0,0.2"
REQUIRED_CONDITION_KEYS = ("T", "mu", "mean_log_p", "mean_log_f", "F_q", "neg_log_Z_nis", "ess_fraction",
                           "exact_neg_log_Z")
REQUIRED_AVERAGE_KEYS = ("F_q", "neg_log_Z_nis", "exact_neg_log_Z")


# ---- helpers ----------------------------------------------------------------------------------------------------




def assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    """Exit code 2, exactly one stderr line 'lattherm: error: ...' naming every needle, and no traceback."""
    assert rc == 2, err
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("lattherm: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)


def runs_root(home: Path) -> Path:
    return home / "runs"


def run_folders(home: Path) -> list[Path]:
    root = runs_root(home)
    return sorted(p for p in root.iterdir()) if root.is_dir() else []


def snapshot(folder: Path) -> dict[str, bytes]:
    """relative path -> bytes of every file below ``folder``."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def train(capsys, tmp_path: Path, kind: str = "ao-arm", name: str = "cfg.toml", **kw) -> Run:
    """`lattherm train` on ``tiny_config(kind=kind, **kw)``; the run it made."""
    cfg = tmp_path / name
    cfg.write_text(tiny_config(kind=kind, **kw), encoding="utf-8")
    rc, _, err = cli(capsys, "train", cfg)
    assert rc == 0, err
    (run_line,) = [line for line in err.splitlines() if line.startswith("run ")]
    return Run.open(run_line.split()[1])


def truncate_latest_checkpoint(run: Run) -> Path:
    """Cut the run's latest checkpoint in half (a write killed midway); its path."""
    latest = run.latest_checkpoint()
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])
    return latest


def ising_log_f(spins: np.ndarray, T: float, mu: float) -> np.ndarray:
    """Own Ising weights on an (n, L1, L2) periodic grid: (sum_<ij> s_i s_j + mu sum_i s_i) / T, each bond once
    (valid for extents >= 3, where rolling by one never pairs the same two sites twice)."""
    s = spins.astype(np.float64)
    bonds = (s * np.roll(s, 1, axis=1)).sum((1, 2)) + (s * np.roll(s, 1, axis=2)).sum((1, 2))
    return (bonds + mu * s.sum((1, 2))) / T


def brute_force_ising(L1: int, L2: int, T: float, mu: float) -> dict:
    """log Z, <E>/N and <M>/N of the periodic L1 x L2 Ising model by summing all 2^N states."""
    states = np.array(list(itertools.product((-1, 1), repeat=L1 * L2)), dtype=np.int8).reshape(-1, L1, L2)
    log_f = ising_log_f(states, T, mu)
    log_z = float(np.logaddexp.reduce(log_f))
    w = np.exp(log_f - log_z)
    s = states.astype(np.float64)
    energy = -((s * np.roll(s, 1, axis=1)).sum((1, 2)) + (s * np.roll(s, 1, axis=2)).sum((1, 2)))
    n = L1 * L2
    return {"log_Z": log_z, "mean_energy_per_site": float((w * energy).sum()) / n,
            "mean_observable": float((w * s.sum((1, 2))).sum()) / n}


# ---- exact ------------------------------------------------------------------------------------------------------


def test_exact_ising_10x10_json_contract(capsys):
    """`exact ising --size 10x10 --T 2.5 --mu 0.2 --json` prints one JSON object with log Z, f and the method."""
    rc, out, err = cli(capsys, "exact", "ising", "--size", "10x10", "--T", "2.5", "--mu", "0.2", "--json")
    assert rc == 0, err
    assert len(out.strip().splitlines()) == 1
    d = json.loads(out)
    for key in ("log_Z", "free_energy_per_site", "method"):
        assert key in d
    assert d["n_sites"] == 100 and d["size"] == "10x10" and d["system"] == "ising"
    # f = -T log Z / N, and log Z lies between the ground state's log f and that plus N log 2
    assert d["free_energy_per_site"] == pytest.approx(-2.5 * d["log_Z"] / 100, rel=1e-12)
    ground = (200 + 0.2 * 100) / 2.5
    assert ground < d["log_Z"] < ground + 100 * math.log(2)


@pytest.mark.parametrize("size,T,mu,method", [
    ("3x3", 2.5, 0.0, "auto"),          # Kaufman's closed form at zero field
    ("3x3", 2.5, 0.2, "auto"),          # row transfer matrix with a field
    ("3x3", 1.7, -0.3, "enumeration"),  # forced brute force
    ("3x4", 2.2, 0.15, "auto"),         # non-square torus through the transfer matrix
])
def test_exact_ising_log_z_matches_own_brute_force_sum(capsys, size, T, mu, method):
    """log Z, <E>/N and <M>/N from `exact --json` equal a direct sum over all 2^N spin states of the torus."""
    rc, out, err = cli(capsys, "exact", "ising", "--size", size, "--T", T, "--mu", mu, "--method", method, "--json")
    assert rc == 0, err
    d = json.loads(out)
    L1, L2 = (int(v) for v in size.split("x"))
    ref = brute_force_ising(L1, L2, T, mu)
    assert d["log_Z"] == pytest.approx(ref["log_Z"], rel=1e-10, abs=1e-10)
    assert d["free_energy_per_site"] == pytest.approx(-T * ref["log_Z"] / (L1 * L2), rel=1e-10)
    assert d["mean_energy_per_site"] == pytest.approx(ref["mean_energy_per_site"], abs=1e-9)
    if d["mean_observable"] is not None:
        assert d["mean_observable"] == pytest.approx(ref["mean_observable"], abs=1e-9)
    if method == "auto":
        assert d["method"] == ("kaufman" if mu == 0 else "transfer_matrix")
    else:
        assert d["method"] == method


def test_exact_cuau_2x2x4_keys_and_partition_sum(capsys):
    """`exact cuau --size 2x2x4 --T 600 --mu 0.02 --json`: the JSON keys, f = -k_B T log Z / N, and log Z equal to
    the sum of the system's Boltzmann weights over all 2^16 configurations."""
    from lattherm.engine.systems import make_system

    rc, out, err = cli(capsys, "exact", "cuau", "--size", "2x2x4", "--T", "600", "--mu", "0.02", "--json")
    assert rc == 0, err
    d = json.loads(out)
    for key in ("log_Z", "free_energy_per_site", "method", "mean_energy_per_site", "mean_observable"):
        assert key in d and d[key] is not None
    assert d["system"] == "cuau" and d["n_sites"] == 16 and d["T_unit"] == "K"
    system = make_system("cuau", "2x2x4")
    assert d["free_energy_per_site"] == pytest.approx(-system.k_B * 600 * d["log_Z"] / 16, rel=1e-10)
    states = torch.tensor(list(itertools.product((-1, 1), repeat=16)), dtype=torch.float64)
    log_z = float(torch.logsumexp(system.log_f(states, 600.0, 0.02), 0))
    assert d["log_Z"] == pytest.approx(log_z, rel=1e-9)
    assert 0.0 <= d["mean_observable"] <= 1.0  # x_Au is a fraction


@pytest.mark.parametrize("args,needles", [
    (["ising", "--size", "3x3", "--T", "0"], ["T=0"]),
    (["ising", "--size", "3x3", "--T=-1.5"], ["T=-1.5"]),
    (["cuau", "--size", "2x2x4", "--T", "nan"], ["T=nan"]),
    (["potts", "--size", "3x3", "--T", "2"], ["potts"]),
    (["ising", "--size", "3x3x3", "--T", "2"], ["3x3x3"]),
    (["cuau", "--size", "4x4", "--T", "600"], ["4x4"]),
    (["ising", "--size", "0x3", "--T", "2"], ["0x3"]),
    (["cuau", "--size", "4x4x8", "--T", "600"], ["4x4x8", "no exact method"]),
    (["ising", "--size", "3x3", "--T", "2", "--mu", "0.1", "--method", "kaufman"], ["mu=0.1"]),
])
def test_exact_bad_input_is_one_line_exit_2(capsys, args, needles):
    """Non-positive/NaN temperature, unknown system, wrong or impossible size, inapplicable method: one line, code 2."""
    rc, out, err = cli(capsys, "exact", *args, "--json")
    assert out == ""
    assert_one_line_error(rc, err, *needles)


# ---- train, runs, resume ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ao-arm", "fo-arm"])
def test_train_writes_config_metrics_checkpoints_and_finished_status(capsys, tmp_path, lattherm_home, kind):
    """`train CONFIG.toml` makes one run folder holding the config verbatim, one metrics line per log step, the
    final-step checkpoint, and status 'finished' at the configured step count; `runs --json` lists it."""
    run = train(capsys, tmp_path, kind, steps=10)
    assert run_folders(lattherm_home) == [run.path]
    assert run.config_text() == tiny_config(kind=kind, steps=10)

    lines = run.metrics_path.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["step"] for r in records] == [2, 4, 6, 8, 10]
    for r in records:
        assert math.isfinite(r["F_q"]) and math.isfinite(r["loss"]) and 0 < r["ess_fraction"] <= 1

    ckpts = run.checkpoints()
    assert ckpts and ckpts[-1].name == "step-00000010.safetensors"
    assert run.latest_checkpoint() == ckpts[-1]
    st = run.status()
    assert st["status"] == "finished" and st["step"] == 10
    assert not list(run.path.rglob(".*.tmp"))  # no leftover temp files from atomic writes

    rc, out, err = cli(capsys, "runs", "--json")
    assert rc == 0, err
    (row,) = json.loads(out)
    assert row["id"] == run.id and row["status"] == "finished" and row["step"] == 10
    assert row["system"] == "ising" and row["size"] == "3x3" and row["model"].startswith(kind)

    rc, out, err = cli(capsys, "runs")
    assert rc == 0 and run.id in out and "finished" in out


def test_runs_with_no_runs(capsys):
    """An empty LATTHERM_HOME lists nothing: [] in JSON, a hint in text."""
    assert cli(capsys, "runs", "--json")[:2] == (0, "[]\n")
    rc, out, _ = cli(capsys, "runs")
    assert rc == 0 and "no runs" in out


def test_resume_of_a_stopped_run_continues_exactly_where_it_stopped(capsys, tmp_path):
    """A run stopped through Control after step 6 is 'stopped' at step 6; `train --resume RUN` carries it to the
    configured steps, appends only the missing metric steps, and — with model, optimizer, RNG and condition
    jitter restored — reproduces the uninterrupted run's metrics exactly."""
    from lattherm.engine.training import Trainer

    text = tiny_config(steps=12, **{"conditions.samples_per_epoch": 32})  # jitter every 2 steps
    straight = Trainer.create(text, name_hint="straight")
    assert straight.train() == "finished"

    trainer = Trainer.create(text, name_hint="stopped")
    assert train_until_stopped(trainer, 6) == "stopped"
    run = trainer.run
    assert run.status()["status"] == "stopped" and run.status()["step"] == 6
    assert run.latest_checkpoint().name == "step-00000006.safetensors"

    rc, _, err = cli(capsys, "train", "--resume", run.id)
    assert rc == 0, err
    assert "step 6" in err  # it announced where it picked up
    st = run.status()
    assert st["status"] == "finished" and st["step"] == 12
    assert run.latest_checkpoint().name == "step-00000012.safetensors"
    resumed = run.read_metrics()
    assert [r["step"] for r in resumed] == [2, 4, 6, 8, 10, 12]
    reference = straight.run.read_metrics()
    assert [r["F_q"] for r in resumed] == [r["F_q"] for r in reference]
    assert [r["T"] for r in resumed] == [r["T"] for r in reference]


def test_resume_and_config_together_is_refused(capsys, tmp_path):
    """Giving both CONFIG.toml and --resume is ambiguous: one-line error, nothing created."""
    run = train(capsys, tmp_path, steps=4)
    before = snapshot(run.path)
    cfg = tmp_path / "other.toml"
    cfg.write_text(tiny_config(), encoding="utf-8")
    rc, _, err = cli(capsys, "train", cfg, "--resume", run.id)
    assert_one_line_error(rc, err, "--resume")
    assert snapshot(run.path) == before


BAD_CONFIGS = [
    ({"model.hiden": 16}, "hiden"),                        # typo in a key
    ({"trainig.steps": 5}, "trainig"),                     # typo in a table name
    ({"training.batch": "16"}, "batch"),                   # wrong type
    ({"training.steps": 0}, "steps"),                      # impossible value
    ({"training.batch": 18}, "batch"),                     # not a multiple of the 4 conditions
    ({"system.name": "potts"}, "potts"),                   # unknown system
    ({"model.kind": "xx-arm"}, "xx-arm"),                  # unknown model
    ({"conditions.T": [-1.0, 3.0]}, "-1.0"),               # non-positive temperature
    ({"system.size": "3x3x3"}, "3x3x3"),                   # a size the system cannot have
    ({"training.device": "gpu"}, "gpu"),                   # unknown device
]


@pytest.mark.parametrize("extra,needle", BAD_CONFIGS, ids=[n for _, n in BAD_CONFIGS])
def test_invalid_config_is_one_line_exit_2_and_creates_no_run(capsys, tmp_path, lattherm_home, extra, needle):
    """Every malformed config is refused before anything is written: no folder appears under LATTHERM_HOME/runs."""
    cfg = tmp_path / "bad.toml"
    cfg.write_text(tiny_config(**extra), encoding="utf-8")
    rc, _, err = cli(capsys, "train", cfg)
    assert_one_line_error(rc, err, needle)
    assert run_folders(lattherm_home) == []


def test_config_that_is_not_toml_names_the_file(capsys, tmp_path, lattherm_home):
    """A file that does not parse as TOML: the error names the file; no run folder."""
    cfg = tmp_path / "garbage.toml"
    cfg.write_text("this = is = not toml\n", encoding="utf-8")
    rc, _, err = cli(capsys, "train", cfg)
    assert_one_line_error(rc, err, "garbage.toml", "not valid TOML")
    assert run_folders(lattherm_home) == []


@pytest.mark.parametrize("args,needle", [
    (["train", "missing.toml"], "missing.toml"),
    (["train", "--resume", "no-such-run"], "no-such-run"),
    (["train"], "CONFIG.toml"),
])
def test_train_missing_inputs_are_one_line_exit_2(capsys, lattherm_home, args, needle):
    """A missing config file or unknown run id is named in one line; nothing is created."""
    rc, _, err = cli(capsys, *args)
    assert_one_line_error(rc, err, needle)
    assert run_folders(lattherm_home) == []


# ---- evaluate ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ao-arm", "fo-arm"])
def test_evaluate_json_has_every_key_and_respects_the_variational_bound(capsys, tmp_path, kind):
    """`evaluate RUN --grid ... --json`: every required key, finite values, exact -log Z equal to a brute-force sum,
    F_q >= -log Z within 5 standard errors at each condition (KL(q||p) >= 0), and averages that are the means."""
    run = train(capsys, tmp_path, kind, steps=10)
    rc, out, err = cli(capsys, "evaluate", run.id, "--grid", GRID, "--samples", 200, "--json")
    assert rc == 0, err
    ev = json.loads(out)
    conds = ev["conditions"]
    assert [(c["T"], c["mu"]) for c in conds] == [(2.0, 0.0), (2.0, 0.2), (3.0, 0.0), (3.0, 0.2)]
    for c in conds:
        for key in REQUIRED_CONDITION_KEYS:
            assert key in c and c[key] is not None and math.isfinite(c[key]), (key, c)
        assert c["F_q"] == pytest.approx(c["mean_log_p"] - c["mean_log_f"], abs=1e-9)
        assert 0 < c["ess_fraction"] <= 1
        assert c["mean_log_p"] <= 0  # a probability of a discrete state
        exact = -brute_force_ising(3, 3, c["T"], c["mu"])["log_Z"]
        assert c["exact_neg_log_Z"] == pytest.approx(exact, abs=1e-9)
        assert c["F_q"] >= c["exact_neg_log_Z"] - 5 * c["F_q_stderr"]
    av = ev["average"]
    for key in REQUIRED_AVERAGE_KEYS:
        assert key in av and math.isfinite(av[key])
        assert av[key] == pytest.approx(sum(c[key] for c in conds) / len(conds), rel=1e-12)
    assert ev["source"]["kind"] == "run" and ev["source"]["step"] == 10


def test_evaluate_table_out_file_and_exported_model_folder(capsys, tmp_path):
    """The table output mentions every grid point; --out writes the same JSON; an exported model folder evaluates
    like its run, and --no-exact leaves the exact column empty."""
    run = train(capsys, tmp_path, steps=6)
    out_json = tmp_path / "ev.json"
    rc, out, err = cli(capsys, "evaluate", run.path, "--grid", "2.5:0", "--samples", 50, "--out", out_json)
    assert rc == 0, err
    assert "average" in out and "2.500" in out
    saved = json.loads(out_json.read_text(encoding="utf-8"))
    assert saved["conditions"][0]["T"] == 2.5

    folder = tmp_path / "exported"
    rc, _, err = cli(capsys, "export-model", run.id, "--out", folder)
    assert rc == 0, err
    rc, out, err = cli(capsys, "evaluate", folder, "--grid", "2.5:0", "--samples", 50, "--json", "--no-exact")
    assert rc == 0, err
    ev = json.loads(out)
    assert ev["source"]["kind"] == "model"
    assert ev["conditions"][0]["exact_neg_log_Z"] is None and ev["average"]["exact_neg_log_Z"] is None
    # the same weights and seed give the same samples as the run itself
    rc, out_run, _ = cli(capsys, "evaluate", run.id, "--grid", "2.5:0", "--samples", 50, "--json", "--no-exact")
    assert json.loads(out_run)["conditions"][0]["F_q"] == ev["conditions"][0]["F_q"]


@pytest.mark.parametrize("args,needle", [
    (["--grid", "0,2:0"], "T=0"),
    (["--grid=-1:0"], "T=-1"),
    (["--grid", "2,3"], "2,3"),
    (["--samples", "0"], "0"),
    (["--batch", "0"], "--batch"),
    (["--device", "foo"], "foo"),
])
def test_evaluate_bad_options_are_one_line_exit_2(capsys, tmp_path, args, needle):
    """Non-positive grid temperature, malformed grid, no samples, zero batch, unknown device: one line, code 2."""
    run = train(capsys, tmp_path, steps=4)
    before = snapshot(run.path)
    rc, out, err = cli(capsys, "evaluate", run.id, "--grid", GRID, "--samples", 20, *args, "--json")  # last wins
    assert out == ""
    assert_one_line_error(rc, err, needle)
    assert snapshot(run.path) == before


def test_evaluate_unknown_model_names_it(capsys):
    """An unknown run id / model name is named in the one-line error."""
    rc, _, err = cli(capsys, "evaluate", "no-such-model", "--samples", 10)
    assert_one_line_error(rc, err, "no-such-model")


def test_evaluate_run_without_checkpoint_is_one_line_exit_2(capsys, tmp_path):
    """A run with no checkpoint (created, never trained, or its checkpoints deleted) says so; the run is untouched."""
    from lattherm.engine.training import Trainer

    fresh = Trainer.create(tiny_config(), name_hint="fresh").run
    before = snapshot(fresh.path)
    rc, _, err = cli(capsys, "evaluate", fresh.id, "--grid", GRID, "--samples", 10)
    assert_one_line_error(rc, err, fresh.id, "no checkpoint")
    assert snapshot(fresh.path) == before

    run = train(capsys, tmp_path, steps=4)
    for p in run.checkpoints_dir.iterdir():
        p.unlink()
    before = snapshot(run.path)
    rc, _, err = cli(capsys, "sample", run.id, "--T", 2, "-n", 5, "--out", tmp_path / "s.npz")
    assert_one_line_error(rc, err, "no checkpoint")
    assert snapshot(run.path) == before and not (tmp_path / "s.npz").exists()


def test_truncated_checkpoint_is_named_and_the_run_left_byte_identical(capsys, tmp_path, lattherm_home):
    """The latest checkpoint cut in half: evaluate, sample and export-model each exit 2 with one line
    naming the file, and every file of the run (the damaged one included) is byte-identical afterwards."""
    run = train(capsys, tmp_path, steps=10)
    latest = truncate_latest_checkpoint(run)
    before = snapshot(run.path)
    before_home = sorted(p.relative_to(lattherm_home) for p in lattherm_home.rglob("*"))

    attempts = [
        ["evaluate", run.id, "--grid", GRID, "--samples", 20, "--json"],
        ["sample", run.id, "--T", 2.5, "-n", 5, "--out", tmp_path / "s.npz"],
        ["export-model", run.id, "--out", tmp_path / "exported"],
    ]  # train --resume falls back to the previous valid checkpoint (tests/test_faults.py)
    for args in attempts:
        rc, out, err = cli(capsys, *args)
        assert_one_line_error(rc, err, latest.name, "truncated")
        assert out == ""
        assert snapshot(run.path) == before, args
    assert sorted(p.relative_to(lattherm_home) for p in lattherm_home.rglob("*")) == before_home
    assert not (tmp_path / "s.npz").exists()
    assert not (tmp_path / "exported" / "model.safetensors").exists()


# ---- sample -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["ao-arm", "fo-arm"])
def test_sample_npz_holds_spins_exact_log_f_and_path_log_p(capsys, tmp_path, kind):
    """`sample RUN --T --mu -n N --out FILE.npz`: samples (n, 3, 3) in {-1, +1}; log_f equal to the Ising weight
    recomputed here; order a permutation per sample (raster for the FO-ARM); log_p the model's log-probability of
    each sample along its order."""
    from lattherm.engine.models.io import load_model

    run = train(capsys, tmp_path, kind, steps=6)
    out = tmp_path / "draws.npz"
    n, T, mu = 64, 2.3, -0.15
    rc, stdout, err = cli(capsys, "sample", run.id, "--T", T, "--mu", mu, "-n", n, "--out", out, "--size", "3x3")
    assert rc == 0, err
    assert str(out) in stdout
    with np.load(out) as z:
        samples, log_p, log_f, order = z["samples"], z["log_p"], z["log_f"], z["order"].reshape(n, -1)
        assert str(z["system"]) == "ising" and str(z["encoding"]) == "spin"
        assert float(z["T"]) == T and float(z["mu"]) == mu
    assert samples.shape == (n, 3, 3)
    assert set(np.unique(samples)) <= {-1, 1}
    assert log_p.shape == log_f.shape == (n,)
    assert np.all(np.isfinite(log_p)) and np.all(log_p <= 0)
    np.testing.assert_allclose(log_f, ising_log_f(samples, T, mu), rtol=0, atol=1e-9)
    assert order.shape == (n, 9)
    assert np.all(np.sort(order, axis=1) == np.arange(9))
    if kind == "fo-arm":
        assert np.all(order == np.arange(9))

    model = load_model(run.id).model
    spins = torch.as_tensor(samples.reshape(n, 9), dtype=torch.float32)
    with torch.no_grad():
        lp = model.log_prob(spins, T, mu, torch.as_tensor(order)).double().numpy()
    np.testing.assert_allclose(lp, log_p, atol=1e-4)


def test_sample_other_size_is_refused_and_nothing_written(capsys, tmp_path):
    """An MLP model serves only its own lattice: --size 4x4 for a 3x3 model is one line naming 4x4, code 2."""
    run = train(capsys, tmp_path, steps=4)
    out = tmp_path / "big.npz"
    rc, _, err = cli(capsys, "sample", run.id, "--T", 2, "-n", 5, "--out", out, "--size", "4x4")
    assert_one_line_error(rc, err, "4x4", "3x3")
    assert not out.exists()
    rc, _, err = cli(capsys, "sample", run.id, "--T", 2, "-n", 5, "--out", out, "--size", "four")
    assert_one_line_error(rc, err, "four")
    assert not out.exists()


@pytest.mark.parametrize("args,needle", [
    (["--T", "0"], "T=0"),
    (["--T=-2"], "T=-2"),
    (["--T", "2", "-n", "0"], "-n"),
    (["--T", "2", "--device", "tpu"], "tpu"),
])
def test_sample_bad_condition_is_refused_and_nothing_written(capsys, tmp_path, args, needle):
    """Non-positive temperature, no samples or an unknown device: one line, code 2, no output file."""
    run = train(capsys, tmp_path, steps=4)
    out = tmp_path / "s.npz"
    rc, _, err = cli(capsys, "sample", run.id, *args, "--out", out)
    assert_one_line_error(rc, err, needle)
    assert not out.exists()


def test_sample_out_must_be_npz_and_nothing_is_written(capsys, tmp_path):
    """`--out` not ending in .npz is refused before sampling; the folder is unchanged."""
    run = train(capsys, tmp_path, steps=4)
    work = tmp_path / "work"
    work.mkdir()
    for name in ("draws.txt", "draws.npz.tmp", "draws"):
        rc, _, err = cli(capsys, "sample", run.id, "--T", 2, "-n", 5, "--out", work / name)
        assert_one_line_error(rc, err, name)
    assert list(work.iterdir()) == []


def test_sample_unwritable_out_is_one_line(capsys, tmp_path):
    """An --out that names an existing folder is a one-line error, not an OSError traceback."""
    run = train(capsys, tmp_path, steps=4)
    folder = tmp_path / "taken.npz"
    folder.mkdir()
    rc, _, err = cli(capsys, "sample", run.id, "--T", 2, "-n", 5, "--out", folder)
    assert_one_line_error(rc, err, "taken.npz")
    assert list(folder.iterdir()) == []


# ---- real processes ---------------------------------------------------------------------------------------------


def lattherm_process(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lattherm.engine.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_process_non_positive_temperature_exits_2_without_traceback():
    """A real `python -m lattherm.engine.cli exact ... --T 0`: exit status 2, one stderr line, empty stdout."""
    proc = lattherm_process("exact", "ising", "--size", "3x3", "--T", "0", "--json")
    assert proc.stdout == ""
    assert_one_line_error(proc.returncode, proc.stderr, "T=0")


@pytest.mark.slow
def test_process_truncated_checkpoint_exits_2_naming_the_file(capsys, tmp_path):
    """A real process evaluating a run whose latest checkpoint is cut short: exit 2, one line naming the file,
    no traceback, and the run folder unchanged."""
    run = train(capsys, tmp_path, steps=5)
    latest = truncate_latest_checkpoint(run)
    before = snapshot(run.path)
    proc = lattherm_process("evaluate", run.id, "--grid", GRID, "--samples", "10", "--json")
    assert proc.stdout == ""
    assert_one_line_error(proc.returncode, proc.stderr, latest.name)
    assert snapshot(run.path) == before


def test_samples_file_round_trips_through_the_common_layout(tmp_path):
    """write_samples/read_samples: Ising keeps spins, CuAu stores species 0/1 and decodes back to spins."""
    import numpy as np
    import torch

    from lattherm.engine.store.samples import read_samples, write_samples
    from lattherm.engine.systems import make_system

    for name, size in (("ising", "3x3"), ("cuau", "2x2x4")):
        system = make_system(name, size)
        spins = torch.where(torch.rand(4, system.n_sites) < 0.5, -1.0, 1.0)
        path = write_samples(tmp_path / f"{name}.npz", system, spins, torch.zeros(4), system.log_f(spins, 2.0, 0.0),
                             2.0, 0.0, mask=np.zeros(system.n_sites, bool))
        data = read_samples(path)
        assert data["samples"].shape == (4, *system.lattice.size)
        assert set(np.unique(data["samples"])) <= ({-1, 1} if name == "ising" else {0, 1})
        assert (data["spins"].reshape(4, -1) == spins.numpy()).all()
        assert str(data["system"]) == name and list(data["species"]) == list(system.species)


def test_evaluate_painted_lattices_reports_the_same_table_against_the_larger_exact_bound(capsys):
    """`evaluate --size 6x6` paints 6x6 lattices with the bundled 5x5 AO-ARM: the table carries the exact 6x6
    -log Z (transfer matrix) and F_q sits above it (variational bound of the painting path)."""
    rc, out, err = cli(capsys, "evaluate", "ising-5x5-ao-mlp", "--size", "6x6", "--grid", "2.5,3.5:0,0.2",
                       "--samples", "60", "--json")
    assert rc == 0, err
    ev = json.loads(out)
    assert ev["system"]["size"] == [6, 6] and ev["source"]["painted_from"] == "5x5"
    for c in ev["conditions"]:
        assert c["exact_neg_log_Z"] is not None
        assert c["F_q"] > c["exact_neg_log_Z"] - 5 * c["F_q_stderr"]


@pytest.mark.slow  # ~7 s alone: a Transformer painted window by window
def test_evaluate_a_transformer_painted_through_centered_windows_beats_the_direct_pass(capsys):
    """The bundled 5x5 AO-MAM Transformer on 10x10 at kT 2.5, mu 0: generated directly it knows only 5x5
    correlations (gap about 4.6); through centered 5x5 windows each site sees its true neighbourhood (about 0.5)."""
    gaps = {}
    for method in ("direct", "windows"):
        rc, out, err = cli(capsys, "evaluate", "ising-5x5-ao-mam-transformer", "--size", "10x10", "--grid",
                           "2.5:0", "--samples", "80", "--method", method, "--json")
        assert rc == 0, err
        ev = json.loads(out)
        assert ev["source"]["method"] == method and ev["source"]["layout"] == "auto"
        c = ev["conditions"][0]
        gaps[method] = c["F_q"] - c["exact_neg_log_Z"]
        assert gaps[method] > -5 * c["F_q_stderr"]
    assert gaps["windows"] < 1.5 < 3.0 < gaps["direct"]


def test_evaluate_painted_refuses_a_lattice_of_another_kind(capsys):
    """A square-lattice model cannot paint an fcc supercell: one-line error, exit 2."""
    rc, out, err = cli(capsys, "evaluate", "ising-5x5-ao-mlp", "--size", "2x2x4", "--samples", "5")
    assert rc == 2 and "lattherm: error:" in err


def test_conditions_outside_the_trained_range_are_allowed_but_flagged(capsys, tmp_path):
    """T above the bundled CuAu model's training range: sampling works (exit 0) and stderr says extrapolation;
    evaluate marks exactly the out-of-range condition."""
    rc, out, err = cli(capsys, "sample", "cuau-2x2x4-ao-mlp", "--T", "1500", "--mu", "0", "-n", "5",
                       "--out", tmp_path / "x.npz")
    assert rc == 0 and "extrapolation" in err and "(200.0, 1200.0)" in err
    rc, out, err = cli(capsys, "evaluate", "ising-5x5-ao-mlp", "--grid", "2.0,4.0:0", "--samples", "20", "--json")
    assert rc == 0, err
    ev = json.loads(out)
    assert [c["extrapolation"] for c in ev["conditions"]] == [False, True]
    assert ev["trained_range"] == {"T": [1.5, 3.5], "mu": [-0.4, 0.4]}


# ---- progress and seeding (shared by the CLI and the engine server) --------------------------------------------


def test_meter_eta_from_rate_since_start_or_resume_capped_by_budget(monkeypatch):
    """ETA = wall seconds per unit since the start (or the last resume) times the units left, never beyond the time
    budget left; a pause is left out of the rate."""
    from lattherm.engine import progress as pr

    now = [0.0]
    monkeypatch.setattr(pr.time, "perf_counter", lambda: now[0])
    control = pr.Control()
    seen = []
    meter = pr.Meter(10, seen.append, control=control)
    now[0] = 8.0
    assert meter.update(4).eta_s == pytest.approx(12.0)  # 2 s per unit, 6 left
    capped = pr.Meter(10, budget_s=10.0)
    now[0] = 16.0
    assert capped.update(4, elapsed_s=5.0).eta_s == pytest.approx(5.0)  # 12 s by the rate, but 5 s of budget left
    control.resumed_at = (100.0, 4)  # paused from t = 8 to t = 100 at unit 4
    now[0] = 104.0
    p = meter.update(6, extra={"painted": 6})  # 2 s per unit since the resume, 4 left
    assert p.eta_s == pytest.approx(8.0) and p.to_dict()["fraction"] == pytest.approx(0.6)
    assert p.to_dict()["painted"] == 6 and len(seen) == 2
    assert [pr.format_duration(s) for s in (None, 59.4, 3725)] == ["–", "0:59", "1:02:05"]


def test_tasks_draw_from_their_own_seeded_generator_whatever_the_global_one():
    """One seed, the same numbers whatever state torch's global RNG is in (a run training beside a sampling task
    moves it); another seed, other samples."""
    from lattherm.engine import tasks

    def fq(seed, global_seed):
        torch.manual_seed(global_seed)
        return tasks.evaluate("ising-5x5-ao-mlp", "2.0:0", 60, batch=25, seed=seed).to_dict()["conditions"][0]

    a, b = fq(3, 1), fq(3, 2)
    assert a["F_q"] == b["F_q"] and a["n_samples"] == 60
    assert fq(4, 1)["F_q"] != a["F_q"]
    assert a["F_q"] >= a["exact_neg_log_Z"] - 3 * a["F_q_stderr"]  # the variational bound
