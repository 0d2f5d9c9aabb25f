"""What the engine does for each request: JSON params onto the task functions of :mod:`lattherm.engine.tasks`, and
task results and progress onto replies and events.

Quick methods are ``do_<name>(params)``; jobs (training, sampling, painting, evaluation, phase diagrams) run through
:func:`run_job`. Arrays go to ``.npz`` files whose paths are returned.
"""

from __future__ import annotations

import faulthandler
import sys
import time
from pathlib import Path

from .. import tasks
from ..errors import LatthermError
from ..progress import Cancelled, Control, interruptible
from ..store import Run, resolve_model_source
from ..tasks.runs import METRIC_KEYS

#: exceptions that are the user's business (shown as they are), not engine bugs (which also go to the log)
USER_ERRORS = (LatthermError, FileNotFoundError, ValueError, KeyError)

_MISSING = object()
_TYPES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list",
          dict: "an object"}


def param(params: dict, name: str, kind, default=_MISSING, method: str = ""):
    """``params[name]`` checked against ``kind`` (a type or a tuple of types; an int is a valid float); a missing
    or mistyped parameter is a LatthermError naming it, never a raw KeyError or TypeError."""
    where = f"{method}: " if method else ""
    if name not in params or params[name] is None:
        if default is _MISSING:
            raise LatthermError(f"{where}parameter '{name}' is required")
        return default
    value = params[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    ok = any(isinstance(value, k) and not (isinstance(value, bool) and k is not bool) for k in kinds) or (
        float in kinds and isinstance(value, int) and not isinstance(value, bool))
    if not ok:
        want = " or ".join(_TYPES.get(k, k.__name__) for k in kinds)
        raise LatthermError(f"{where}parameter '{name}' must be {want}, got {type(value).__name__} {_short(value)}")
    return float(value) if kinds == (float,) else value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def error_text(exc: BaseException) -> str:
    """One line for an error reply: a LatthermError as it is; a raw Python error says what kind it is."""
    text = " ".join(str(exc).split())
    if isinstance(exc, LatthermError):
        return text or type(exc).__name__
    if isinstance(exc, KeyError):
        return f"missing key {text}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

METRICS_INTERVAL = 0.1  # at most ~10 metrics (and progress) messages a second

#: the parameters of each task job, named as the CLI names its options
JOB_PARAMS = {
    "sample": ("model", "conditions", "n", "batch", "seed", "device"),
    "paint": ("model", "T", "mu", "n", "size", "fixed", "batch", "seed", "device", "method", "layout", "stride",
              "views", "period_mode"),
    "evaluate": ("model", "grid", "samples", "batch", "no_exact", "size", "layout", "stride", "views", "method",
                 "device", "seed"),
    "phase_diagram": ("model", "out", "system", "lattice_size", "chains", "sweeps", "boundary", "boundary_size",
                      "boundary_T_points", "T_points", "mu_points", "samples", "T_range", "mu_range", "device",
                      "seed", "overwrite", "formats", "size", "boundary_sweeps"),
    "mcmc": ("model", "T", "mu", "steps", "size", "system", "block", "chains", "sweeps_between", "equilibration",
             "positions", "init", "seed", "device"),
}


# ---- quick requests ----------------------------------------------------------------------------------------------
def do_list_runs(params) -> list:
    return tasks.list_runs()


def do_bundled_models(params) -> list:
    return tasks.bundled_models()


def do_delete_run(params) -> dict:
    return tasks.delete_run(param(params, "run", str, method="delete_run"))


def do_open_run(params) -> dict:
    return tasks.open_run(param(params, "run", str, method="open_run"))


def do_model_info(params) -> dict:
    return tasks.describe_model(param(params, "model", str, method="model_info"))


def do_exact(params) -> list:
    """Exact references at T (a number or a list of at most ``limits.MAX_TEMPERATURES``) and mu; null entries
    where no exact method applies; a non-positive T is an error."""
    T = param(params, "T", (float, list), method="exact")
    Ts = T if isinstance(T, list) else [T]
    for i, t in enumerate(Ts):
        param({"T": t}, "T", float, method=f"exact (T entry {i})")
    return tasks.exact_references(param(params, "system", str, method="exact"),
                                  param(params, "size", str, method="exact"), [float(t) for t in Ts],
                                  param(params, "mu", float, 0.0, method="exact"))


def do_paper_grid(params) -> list:
    from ..training import paper_grid

    return [list(c) for c in paper_grid(param(params, "system", str, method="paper_grid"))]


def do_export_structures(params) -> dict:
    """An alloy (fcc) samples .npz -> extended XYZ (default) or CIF at ``out``: a path the user chose, which is
    never overwritten unless the request says ``overwrite: true``."""
    m = "export_structures"
    out = Path(param(params, "out", str, method=m)).expanduser()
    if out.exists() and not param(params, "overwrite", bool, False, method=m):
        raise LatthermError(f"{m}: {out} exists; send overwrite: true to replace it")
    return tasks.export_structures(param(params, "samples", str, method=m), out,
                                   param(params, "format", str, "extxyz", method=m),
                                   param(params, "max", int, None, method=m)).to_dict()


# ---- jobs --------------------------------------------------------------------------------------------------------
def validate_job(method: str, params: dict) -> None:
    """Checks answered at once (a bad config or an unknown model is an error reply, not a failed job)."""
    from ..config import parse_config

    from ..config import read_config_text
    from ..tasks.limits import check_config

    if method == "start_training":
        text = param(params, "config", str, None, method=method)
        for key in ("name_hint", "device"):
            param(params, key, str, None, method=method)
        if not text and param(params, "config_path", str, None, method=method):
            text = read_config_text(params["config_path"])  # a file the user chose; UTF-8 and size checked
            params["config"] = text
        if not text:
            raise LatthermError("start_training needs 'config' (TOML text) or 'config_path'")
        check_config(parse_config(text))
        return
    if method == "resume_training":
        param(params, "device", str, None, method=method)
        Run.open(param(params, "run", str, method=method))
        return
    unknown = sorted(set(params) - set(JOB_PARAMS[method]))
    if unknown:
        raise LatthermError(f"{method} takes no {', '.join(unknown)} (it takes {', '.join(JOB_PARAMS[method])})")
    param(params, "model", str, method=method)
    if method in ("paint", "mcmc"):
        param(params, "T", float, method=method)
    for key in ("n", "batch", "seed", "samples", "views", "chains", "sweeps", "T_points", "mu_points",
                "boundary_T_points", "steps", "sweeps_between", "equilibration"):
        param(params, key, int, None, method=method)
    for key in ("stride", "size"):  # a number / a text, or one entry per axis
        param(params, key, (int, list) if key == "stride" else (str, list), None, method=method)
    param(params, "mu", float, None, method=method)
    for key in ("device", "method", "layout", "period_mode", "system", "lattice_size", "boundary",
                "boundary_size", "out", "block", "positions", "init", "formats"):
        param(params, key, str, None, method=method)
    if method == "phase_diagram":
        out = Path(param(params, "out", str, method=method)).expanduser()
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and not param(params, "overwrite", bool, False):
            raise LatthermError(f"phase_diagram: {out} exists and is not empty; send overwrite: true to write there")
    if method == "mcmc" and params["model"] in ("metropolis", "wolff", "swendsen-wang"):
        pass
    elif params["model"] != "mc" or method != "phase_diagram":
        resolve_model_source(params["model"])
    if method == "sample":
        n = int(params.get("n", 1000))
        if not 1 <= n <= 1_000_000:
            raise LatthermError(f"n must be in 1..1000000, got {n}")


class _Reporter:
    """A task's ``progress`` callable: at most ~10 'progress' events a second (the first and the last always go);
    for training each flush also sends the batched records as one 'metrics' event."""

    def __init__(self, ch, job, records: bool = False):
        self.ch, self.job, self.records = ch, job, records
        self.pending: list[dict] = []
        self.latest = None
        self.last = 0.0

    def __call__(self, p) -> None:
        if self.records:
            self.pending.append({k: p.extra[k] for k in METRIC_KEYS if k in p.extra})
        self.latest = p
        if time.perf_counter() - self.last >= METRICS_INTERVAL:
            self.flush()

    def flush(self) -> None:
        p, self.latest = self.latest, None
        if p is None:
            return
        run = {"run": self.job.run_id} if self.job.run_id else {}
        if self.records:
            self.ch.event("metrics", self.job.id, {**run, "records": self.pending})
            self.pending = []
            data = {**run, "step": p.step, "total": p.total, "fraction": p.fraction, "eta_s": p.eta_s}
        else:
            data = {**run, **p.to_dict()}
        self.ch.event("progress", self.job.id, data)
        self.last = time.perf_counter()


class _JobControl(Control):
    """The Control of a job: a pause (which takes effect between steps, so within one step of the request) is
    announced with a 'paused' event before waiting and a 'resumed' event after, and sets the job's state."""

    def __init__(self, ch, job, reporter: _Reporter):
        super().__init__()
        self.ch, self.job, self.reporter = ch, job, reporter

    def wait_if_paused(self, step: int) -> None:
        if not self.pause or self.stop:
            return
        self.reporter.flush()
        self.job.state = "paused"
        self.ch.event("paused", self.job.id, {"run": self.job.run_id, "step": step})
        super().wait_if_paused(step)
        self.job.state = "running"
        self.ch.event("resumed", self.job.id, {"run": self.job.run_id, "step": step})


def run_job(engine, job) -> None:
    reporter = _Reporter(engine.ch, job, records=job.kind == "train")
    job.control = control = _JobControl(engine.ch, job, reporter)
    if job.cancel_requested:
        control.request_stop("cancelled")
    control.pause = job.pause_requested
    with interruptible(control):  # Stop (cancel) reaches inside a step: the sampling loops check it per site
        if job.kind == "train":
            _train(engine.ch, job, control, reporter)
        else:
            _task(engine.ch, job, control, reporter)


def _train(ch, job, control, reporter) -> None:
    p = job.params
    resume = p["run"] if job.method == "resume_training" else None
    trainer = tasks.open_trainer(None if resume else p["config"], resume=resume, name=p.get("name_hint"),
                                 device=p.get("device") or "cpu")
    run = trainer.run
    job.run_id = run.id
    fault_file = open(run.fault_path, "a", encoding="utf-8")
    faulthandler.enable(file=fault_file)  # a hard crash during this job leaves its trace in the run folder
    with open(run.log_path, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {job.method} as {job.id} from step {trainer.step}\n")
    ch.event("started", job.id, {"run": run.id, "path": str(run.path), "step": trainer.step,
                                 "total": trainer.cfg.training.steps, "fault_log": str(run.fault_path),
                                 "method": job.method})
    try:
        res = tasks.train(trainer, progress=reporter, control=control)
    finally:
        reporter.flush()
        faulthandler.enable(file=sys.__stderr__)
        fault_file.close()
    job.state = "cancelled" if control.stop else "finished"
    ch.event(job.state, job.id, res.to_dict())


def _task_call(method: str, p: dict):
    """The task function of a job with its keyword arguments from the JSON params."""
    kw = {k: v for k, v in p.items() if k not in ("model", "overwrite")}
    if method == "sample":
        return tasks.sample, {"conditions": "paper", **kw}
    if method == "paint":
        return tasks.paint, kw
    if method == "mcmc":
        from ..tasks.mcmc import mcmc

        return mcmc, kw
    if method == "evaluate":
        exact = not kw.pop("no_exact", False)  # popped before kw is unpacked: evaluate() takes no no_exact
        return tasks.evaluate, {**kw, "exact": exact}
    return tasks.phase_diagram, kw


def _task(ch, job, control, reporter) -> None:
    fn, kw = _task_call(job.method, job.params)
    ch.event("started", job.id, {"method": job.method, "model": str(job.params["model"])})
    try:
        res = fn(job.params["model"], **kw, progress=reporter, control=control)
    except Cancelled:
        reporter.flush()
        job.state = "cancelled"
        ch.event("cancelled", job.id, {"run": None})
        return
    reporter.flush()
    data = res.to_dict()
    if job.method == "sample":
        ch.event("samples_ready", job.id, {"path": data["path"], "conditions": len(data["table"]), "n": res.n})
    elif job.method == "evaluate":
        data = {"result": data}
    job.state = "finished"
    ch.event("finished", job.id, data)
