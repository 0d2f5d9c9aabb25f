"""What the engine does for each request: quick methods ``do_<name>(params)`` and the two job kinds.

Every function takes and returns JSON-ready values; arrays go to ``.npz`` files whose paths are returned.
"""

from __future__ import annotations

import faulthandler
import os
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .. import paths
from ..errors import LatthermError
from ..store import Run, bundled_models, delete_run, list_runs, resolve_model_source
from ..training import Control

#: exceptions that are the user's business (shown as they are), not engine bugs (which also go to the log)
USER_ERRORS = (LatthermError, FileNotFoundError, ValueError, KeyError)

METRIC_KEYS = ("step", "loss", "F_q", "grad_norm", "ess_fraction", "lr", "sec_per_step", "elapsed_s", "time",
               "self_consistency")
METRICS_INTERVAL = 0.1  # at most ~10 metrics messages a second


# ---- quick requests ----------------------------------------------------------------------------------------------
def do_list_runs(params) -> list:
    return list_runs()


def do_bundled_models(params) -> list:
    out = []
    for name in bundled_models():
        src = resolve_model_source(name)
        out.append({"name": name, "path": str(src.path), "info": src.info})
    return out


def do_delete_run(params) -> dict:
    run = Run.open(params["run"])
    if run.status().get("status") == "running" and run.status().get("pid") == os.getpid():
        raise LatthermError(f"run {run.id} is training in this engine; stop it first")
    return {"deleted": str(delete_run(run.id))}


def do_open_run(params) -> dict:
    """Status, config and the scalar metrics of a run (for the browser and for curves of a finished run)."""
    run = Run.open(params["run"])
    metrics = [{k: r[k] for k in METRIC_KEYS if k in r} for r in run.read_metrics()]
    ckpt = run.latest_checkpoint()
    return {"id": run.id, "path": str(run.path), "status": run.status(), "config": run.config_text(),
            "metrics": metrics, "checkpoint": None if ckpt is None else str(ckpt),
            "checkpoints": [str(p) for p in run.checkpoints()]}


def do_model_info(params) -> dict:
    from ..models.io import load_model

    lm = load_model(params["model"])
    return _model_info(lm)


def _model_info(lm) -> dict:
    s = lm.system
    return {"source": lm.source.kind, "path": str(lm.source.path), "name": lm.source.name, "model": lm.model.hparams(),
            "system": s.name, "lattice": s.lattice.kind, "size": list(s.lattice.size), "species": list(s.species),
            "observable": s.observable_name, "T_unit": s.temperature_unit, "mu_unit": s.mu_unit,
            "step": lm.step}


def do_exact(params) -> list:
    """Exact references at T (a number or a list) and mu; null entries where no exact method applies."""
    from ..analysis.free_energy import exact_or_none
    from ..systems import make_system

    system = make_system(params["system"], params["size"])
    Ts = params["T"] if isinstance(params["T"], list) else [params["T"]]
    out = []
    for T in Ts:
        ref = exact_or_none(system, float(T), float(params.get("mu", 0.0)))
        out.append(None if ref is None else ref.to_dict())
    return out


def do_paper_grid(params) -> list:
    from ..training import paper_grid

    return [list(c) for c in paper_grid(params["system"])]


def do_paint(params) -> dict:
    """In-paint: fixed sites keep their values, the model fills the rest (``sampling.paint``, any target size, the
    model's own included). Writes an .npz, returns its path and the per-sample log p (of the free sites given the
    fixed ones, along the order used) and log f. Every site fixed is an error: nothing to paint."""
    from ..models.io import load_model
    from ..systems import make_system
    from ..sampling import paint_with_model, save_paint_npz

    lm = load_model(params["model"])
    T, mu, n = float(params["T"]), float(params["mu"]), int(params.get("n", 4))
    if not 1 <= n <= 256:
        raise LatthermError(f"n must be in 1..256, got {n}")
    size = params.get("size") or list(lm.system.lattice.size)
    target = make_system(lm.system.name, "x".join(str(v) for v in size))
    fixed = np.asarray(params.get("fixed") or [0] * target.n_sites, dtype=np.float64)
    if fixed.shape != (target.n_sites,) or not ((fixed == 0) | (np.abs(fixed) == 1)).all():
        raise LatthermError(f"fixed must list {target.n_sites} values in -1, 0 (free), +1")
    gen = torch.Generator().manual_seed(int(params.get("seed", 0)))
    res = paint_with_model(lm, target, T, mu, n, mask=fixed != 0, values=fixed, generator=gen)
    path = _samples_path(lm.source, "paint")
    save_paint_npz(path, res, target)
    return {"path": str(path), "size": list(target.lattice.size), "lattice": target.lattice.kind,
            "log_p": res.log_p.tolist(), "log_f": res.log_f.tolist(), "n_fixed": int((fixed != 0).sum())}


def do_export_structures(params) -> dict:
    """An alloy (fcc) samples .npz -> extended XYZ (or CIF) at ``out``: every configuration one frame with the
    real fcc positions and supercell. Spin (Ising) samples are refused with a one-line error."""
    from ..analysis.structures import frames_from_samples, write_cif, write_extxyz
    from ..store.samples import read_samples

    fmt = str(params.get("format", "extxyz"))
    if fmt not in ("extxyz", "cif"):
        raise LatthermError(f"format must be extxyz or cif, got {fmt!r}")
    data = read_samples(params["samples"])
    lattice, species, spins, infos = frames_from_samples(data, params.get("max"))
    write = write_extxyz if fmt == "extxyz" else write_cif
    path = write(params["out"], lattice, species, spins, infos)
    return {"path": str(path), "format": fmt, "frames": int(len(spins)), "atoms": int(lattice.n_sites)}


# ---- files -------------------------------------------------------------------------------------------------------
def _samples_path(source, stem: str) -> Path:
    if source.kind == "run":
        return Run(source.path).new_samples_path(stem)
    folder = paths.lattherm_home() / "samples" / source.name  # bundled models may live in a read-only place
    folder.mkdir(parents=True, exist_ok=True)
    k = 1
    while (folder / f"{stem}-{k}.npz").exists():
        k += 1
    return folder / f"{stem}-{k}.npz"


# ---- jobs --------------------------------------------------------------------------------------------------------
def validate_job(method: str, params: dict) -> None:
    from ..config import parse_config

    if method == "start_training":
        text = params.get("config")
        if not text and params.get("config_path"):
            text = Path(params["config_path"]).read_text(encoding="utf-8")
            params["config"] = text
        if not text:
            raise LatthermError("start_training needs 'config' (TOML text) or 'config_path'")
        parse_config(text)
    elif method == "resume_training":
        Run.open(params["run"])
    elif method == "sample":
        resolve_model_source(params["model"])
        n = int(params.get("n", 1000))
        if not 1 <= n <= 1_000_000:
            raise LatthermError(f"n must be in 1..1000000, got {n}")


def run_job(engine, job) -> None:
    if job.kind == "train":
        _train(engine, job)
    else:
        _sample(engine, job)


class _Metrics:
    """Batches training records into at most ~10 'metrics' events a second, each with a 'progress' event."""

    def __init__(self, ch, job, total: int, start_step: int):
        self.ch, self.job, self.total = ch, job, total
        self.pending: list[dict] = []
        self.last = 0.0
        self.t0, self.step0 = time.perf_counter(), start_step

    def add(self, rec: dict) -> None:
        self.pending.append({k: rec[k] for k in METRIC_KEYS if k in rec})
        if time.perf_counter() - self.last >= METRICS_INTERVAL:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        step = self.pending[-1]["step"]
        self.ch.event("metrics", self.job.id, {"run": self.job.run_id, "records": self.pending})
        done = step - self.step0
        rate = (time.perf_counter() - self.t0) / done if done > 0 else None  # wall seconds per step, pauses too
        eta = None if rate is None else rate * (self.total - step)
        self.ch.event("progress", self.job.id, {"run": self.job.run_id, "step": step, "total": self.total,
                                                "fraction": step / self.total, "eta_s": eta})
        self.pending = []
        self.last = time.perf_counter()


class _JobControl(Control):
    """The training Control of a job: a pause (which takes effect between steps, so within one step of the request)
    is announced with a 'paused' event before waiting and a 'resumed' event after, and sets the job's state."""

    def __init__(self, ch, job, metrics: _Metrics):
        super().__init__()
        self.ch, self.job, self.metrics = ch, job, metrics

    def wait_if_paused(self, step: int) -> None:
        if not self.pause or self.stop:
            return
        self.metrics.flush()
        self.job.state = "paused"
        self.ch.event("paused", self.job.id, {"run": self.job.run_id, "step": step})
        super().wait_if_paused(step)
        self.job.state = "running"
        self.ch.event("resumed", self.job.id, {"run": self.job.run_id, "step": step})
        self.metrics.t0, self.metrics.step0 = time.perf_counter(), step  # the rate leaves the pause out


def _train(engine, job) -> None:
    from ..training import Trainer

    ch, p = engine.ch, job.params
    device = p.get("device") or "cpu"
    if job.method == "resume_training":
        trainer = Trainer.resume(p["run"], device=device)
    else:
        trainer = Trainer.create(p["config"], p.get("name_hint"), device=device)
    run = trainer.run
    job.run_id = run.id
    total = trainer.cfg.training.steps
    metrics = _Metrics(ch, job, total, trainer.step)
    job.control = control = _JobControl(ch, job, metrics)
    if job.cancel_requested:
        control.request_stop("cancelled")
    control.pause = job.pause_requested
    fault_file = open(run.fault_path, "a", encoding="utf-8")
    faulthandler.enable(file=fault_file)  # a hard crash during this job leaves its trace in the run folder
    with open(run.log_path, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {job.method} as {job.id} from step {trainer.step}\n")
    ch.event("started", job.id, {"run": run.id, "path": str(run.path), "step": trainer.step, "total": total,
                                 "fault_log": str(run.fault_path), "method": job.method})
    try:
        status = trainer.train(on_log=metrics.add, control=control)
    finally:
        metrics.flush()
        faulthandler.enable(file=sys.__stderr__)
        fault_file.close()
    ckpt = run.latest_checkpoint()
    data = {"run": run.id, "path": str(run.path), "step": trainer.step, "status": status,
            "checkpoint": None if ckpt is None else str(ckpt),
            "best_F_q": None if math.isinf(trainer.best_F_q) else trainer.best_F_q}
    if control.stop:
        job.state = "cancelled"
        ch.event("cancelled", job.id, data)
    else:
        job.state = "finished"
        ch.event("finished", job.id, data)


def _sample(engine, job) -> None:
    from ..analysis.free_energy import estimate_condition, exact_or_none
    from ..models.io import load_model
    from ..store.samples import write_samples
    from ..training import paper_grid

    ch, p = engine.ch, job.params
    lm = load_model(p["model"])
    system = lm.system
    conds = p.get("conditions", "paper")
    conds = paper_grid(system.name) if conds == "paper" else [(float(T), float(mu)) for T, mu in conds]
    for T, mu in conds:
        system.check(T, mu)
    n = int(p.get("n", 1000))
    gen = torch.Generator().manual_seed(int(p.get("seed", 0)))
    ch.event("started", job.id, {"model": str(lm.source.path), "conditions": len(conds), "n": n})
    t0 = time.perf_counter()
    spins, log_p, log_f, table = [], [], [], []
    for i, (T, mu) in enumerate(conds):
        if job.cancel_requested:
            job.state = "cancelled"
            ch.event("cancelled", job.id, {"done": i})
            return
        sb = lm.model.sample(T, mu, batch=n, generator=gen)
        est = estimate_condition(system, T, mu, sb.spins, sb.log_p, exact_or_none(system, T, mu))
        spins.append(sb.spins.to(torch.int8).numpy())
        log_p.append(sb.log_p.numpy())
        log_f.append(system.log_f(sb.spins, T, mu).numpy())
        table.append({**est.to_dict(), "extrapolation": lm.extrapolates(T, mu)})
        el = time.perf_counter() - t0
        ch.event("progress", job.id, {"step": i + 1, "total": len(conds), "fraction": (i + 1) / len(conds),
                                      "eta_s": el / (i + 1) * (len(conds) - i - 1)})
    path = _samples_path(lm.source, "samples")
    write_samples(path, system, np.stack(spins), np.stack(log_p), np.stack(log_f),
                  np.array([c[0] for c in conds]), np.array([c[1] for c in conds]))
    ch.event("samples_ready", job.id, {"path": str(path), "conditions": len(conds), "n": n})
    job.state = "finished"
    ch.event("finished", job.id, {"path": str(path), "table": table, "model": _model_info(lm)})
