"""Train a model: a new run from a config (optionally starting from another model's weights), or resume a run."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import LatthermError
from ..progress import Control, Meter


@dataclass
class TrainResult:
    run: str
    path: Path
    step: int
    status: str  # finished | stopped
    reason: str
    checkpoint: Path | None
    best_F_q: float | None

    def to_dict(self) -> dict:
        return {"run": self.run, "path": str(self.path), "step": self.step, "status": self.status,
                "checkpoint": None if self.checkpoint is None else str(self.checkpoint), "best_F_q": self.best_F_q}


def open_trainer(config: str | None = None, *, config_path=None, resume=None, name: str | None = None,
                 device: str | None = None, init=None):
    """The Trainer of a new run (``config`` TOML text or ``config_path``; ``init``: starting weights) or of a run to
    resume; a bad config is an error naming its source, and creates nothing."""
    from ..config import parse_config
    from ..training import Trainer

    from ..config import read_config_text
    from ..store import Run

    if resume is not None:
        if config or config_path or init:
            raise LatthermError("--resume continues a run as it was: it takes neither CONFIG.toml nor --init")
        run = Run.open(resume)
        check_levels(parse_config(read_config_text(run.config_path), source=str(run.config_path)))
        return Trainer.resume(run.path, device=device)
    source = None
    if config is None and config_path is not None:
        config, source = read_config_text(config_path), str(config_path)
    if not config:
        raise LatthermError("training needs CONFIG.toml (a config) or a run to resume")
    check_levels(parse_config(config, source=source))  # errors name the file; nothing is created for a bad config
    return Trainer.create(config, name_hint=name, device=device, init=init,
                          base=None if source is None else Path(source).parent)


def check_launch(nproc: int, config_path=None, resume=None, init=None, device: str | None = None) -> None:
    """Everything that can be checked before ``nproc`` ranks are launched: the count, the config (or the run to
    resume) and whether the batch splits over that many ranks. One line, and nothing created, when it cannot."""
    from ..config import parse_config, read_config_text
    from ..distributed import check_nproc
    from ..store import Run
    from ..training.trainer import check_shares

    nproc = check_nproc(nproc)
    if resume is not None:
        if config_path or init:
            raise LatthermError("--resume continues a run as it was: it takes neither CONFIG.toml nor --init")
        run = Run.open(resume)
        cfg = parse_config(read_config_text(run.config_path), source=str(run.config_path))
    elif config_path is not None:
        cfg = parse_config(read_config_text(config_path), source=str(config_path))
    else:
        raise LatthermError("train needs CONFIG.toml or --resume RUN")
    check_levels(cfg)
    check_shares(cfg, nproc)
    check_gpus(nproc, device or cfg.training.device)


def check_levels(cfg) -> None:
    """The memory limits of every level of a run (a warm-up level may take a larger batch at its smaller size)."""
    from ..training.levels import LevelSchedule
    from .limits import check_config

    for level_cfg in LevelSchedule(cfg).configs():
        check_config(level_cfg)


def check_gpus(nproc: int, device: str) -> None:
    """One GPU per rank: ``nproc`` CUDA ranks on a node with fewer GPUs is a one-line error before any starts."""
    import torch

    from ..devices import pick_device

    if nproc > 1 and pick_device(device).type == "cuda" and torch.cuda.device_count() < nproc:
        raise LatthermError(f"{nproc} processes need {nproc} GPUs on this node, found {torch.cuda.device_count()} "
                            "(launch fewer, or train on the CPU with --device cpu)")


def train(trainer, progress=None, control: Control | None = None) -> TrainResult:
    """Run ``trainer`` (from :func:`open_trainer`) to its step count or time budget. ``progress`` gets one
    ``Progress`` per logged record (the record is its ``extra``); ETA from wall seconds per step since the start or
    the last resume, capped by the budget. Stop through ``control`` saves a checkpoint first."""
    control = control or Control()
    cfg = trainer.cfg.training
    meter = Meter(cfg.steps, progress, start=trainer.step, budget_s=cfg.max_minutes * 60, control=control)
    status = trainer.train(on_log=lambda rec: meter.update(rec["step"], rec.get("elapsed_s", 0.0), rec),
                           control=control)
    run = trainer.run
    return TrainResult(run.id, run.path, trainer.step, status, control.reason, run.latest_checkpoint(),
                       None if math.isinf(trainer.best_F_q) else trainer.best_F_q)
