"""REINFORCE on KL(q || Boltzmann) across (T, mu) for FO-/AO-ARMs (ALGORITHMS.md §2.2, §3.4, §5).

One step: draw a batch from the model (G conditions x M samples, each with its generating order), recompute
log q along the same orders with gradients, and use the per-condition leave-one-out mean of
l = log q - beta_t * log f as the baseline (log Z(c) differs between conditions, so a batch-wide mean is a poor
baseline; leave-one-out removes the O(1/M) bias). Adam, global-norm clipping, optional cosine lr decay and
beta-annealing. Checkpoints carry model, optimizer, RNG and step, so a stopped run resumes where it was.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .. import __version__
from ..errors import CheckpointError, LatthermError
from ..devices import pick_device
from ..models import model_for_system
from ..models.io import model_from_tensors, model_meta, model_tensors
from ..store import Run, load_tensors, save_tensors
from ..systems import make_system
from .conditions import ConditionSchedule
from .config import RunConfig, parse_config


@dataclass
class Control:
    """Flags a front end sets from another thread; the loop reads them between steps: stop (checkpoint, then
    return) and pause (wait, holding everything in memory, until resumed or stopped)."""

    stop: bool = False
    pause: bool = False
    reason: str = ""

    def request_stop(self, reason: str = "stopped") -> None:
        self.reason, self.stop = reason, True

    def wait_if_paused(self, step: int) -> None:
        """Called between steps; blocks while paused. Front ends override it to announce pause/resume."""
        while self.pause and not self.stop:
            time.sleep(0.05)


def leave_one_out_advantage(l: torch.Tensor, groups: int) -> torch.Tensor:
    """l - mean of the other samples of the same condition; rows are grouped contiguously, M = B / groups."""
    x = l.view(groups, -1)
    M = x.shape[1]
    return (x - (x.sum(1, keepdim=True) - x) / (M - 1)).reshape(-1)


class Trainer:
    def __init__(self, cfg: RunConfig, run: Run | None = None, device: str | None = None):
        self.cfg = cfg
        self.run = run
        t = cfg.training
        if t.threads:
            torch.set_num_threads(t.threads)
        self.device = pick_device(device or t.device)
        torch.manual_seed(t.seed)
        self.system = make_system(cfg.system.name, cfg.system.size)
        m = cfg.model
        self.model = model_for_system(m.kind, m.arch, self.system, m.hidden, m.layers, m.symmetric,
                                      m.heads).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=t.lr)
        self.schedule = ConditionSchedule.from_config(cfg)
        self.step = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run
        self.best_F_q = math.inf

    # ---- construction ---------------------------------------------------------------------------------------
    @classmethod
    def create(cls, config_text: str, name_hint: str | None = None, device: str | None = None, root=None):
        cfg = parse_config(config_text)
        hint = name_hint or f"{cfg.system.name}-{cfg.system.size}-{cfg.model.kind}"
        trainer = cls(cfg, None, device)  # build first: a bad config never leaves a run folder behind
        trainer.run = Run.create(config_text, hint, root=root)
        trainer.run.set_status("created", system=cfg.system.name, size=cfg.system.size,
                               model=f"{cfg.model.kind}/{cfg.model.arch}", step=0)
        return trainer

    @classmethod
    def resume(cls, ref, device: str | None = None, root=None):
        run = Run.open(ref, root=root)
        cfg = parse_config(run.config_text(), source=str(run.config_path))
        trainer = cls(cfg, run, device)
        ckpt = run.latest_checkpoint()
        if ckpt is not None:
            trainer.load_checkpoint(ckpt)
        return trainer

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def save_checkpoint(self, name: str | None = None):
        if self.run is None:
            return None
        tensors = model_tensors(self.model)
        opt = self.optimizer.state_dict()
        for pid, st in opt["state"].items():
            for k, v in st.items():
                tensors[f"optim.state.{pid}.{k}"] = torch.as_tensor(v)
        tensors["rng.torch"] = torch.get_rng_state()
        meta = {**model_meta(self.model, self.system), "type": "training-checkpoint", "step": self.step,
                "elapsed_s": self.elapsed, "best_F_q": None if math.isinf(self.best_F_q) else self.best_F_q,
                "optim_param_groups": opt["param_groups"], "config": self.cfg.to_dict(), "version": __version__}
        path = self.run.named_checkpoint_path(name) if name else self.run.checkpoint_path(self.step)
        save_tensors(path, tensors, meta)
        self.run.prune_checkpoints(self.cfg.training.keep_checkpoints)
        return path

    def load_checkpoint(self, path) -> None:
        tensors, meta = load_tensors(path)
        model, _ = model_from_tensors(tensors, meta, path)
        self.model.load_state_dict(model.state_dict())
        state: dict = {}
        for k, v in tensors.items():
            if k.startswith("optim.state."):
                pid, key = k[len("optim.state."):].split(".", 1)
                state.setdefault(int(pid), {})[key] = v.to(self.device) if key != "step" else v
        try:
            self.optimizer.load_state_dict({"state": state, "param_groups": meta["optim_param_groups"]})
            self.step = int(meta["step"])
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: optimizer state unreadable ({exc})") from None
        self.elapsed = float(meta.get("elapsed_s", 0.0))
        best = meta.get("best_F_q")
        self.best_F_q = math.inf if best is None else float(best)
        if "rng.torch" in tensors:
            torch.set_rng_state(tensors["rng.torch"].to(torch.uint8))

    # ---- one step ---------------------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        t = self.cfg.training
        if t.lr_final <= 0:
            return t.lr
        frac = min(step / max(t.steps, 1), 1.0)
        return t.lr_final + 0.5 * (t.lr - t.lr_final) * (1 + math.cos(math.pi * frac))

    def beta_factor(self, step: int) -> float:
        a = self.cfg.training.beta_anneal
        return 1.0 if a <= 0 else 1.0 - a ** (step + 1)

    def train_step(self) -> dict:
        t0 = time.perf_counter()
        G = self.schedule.n_conditions
        T, mu = self.schedule.batch(self.step, self.device)
        self.model.train()
        sample = self.model.sample(T, mu)
        log_q = self.model.log_prob(sample.spins, T, mu, sample.ranks)
        log_f = self.system.log_f(sample.spins, T, mu)
        bf = self.beta_factor(self.step)
        with torch.no_grad():
            l = log_q.detach().double() - bf * log_f
            adv = leave_one_out_advantage(l, G).to(log_q.dtype)
        loss = (adv * log_q).mean()
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg.training.clip_grad
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip > 0 else float("inf"))
        self.optimizer.step()
        self.step += 1
        dt = time.perf_counter() - t0
        self.elapsed += dt
        with torch.no_grad():
            logw = (log_f - sample.log_p).view(G, -1)
            M = logw.shape[1]
            lse = torch.logsumexp(logw, 1)
            ess = torch.exp(2 * lse - torch.logsumexp(2 * logw, 1)) / M
            fq = (sample.log_p - log_f).view(G, -1).mean(1)
        c = self.schedule.conditions(self.step - 1)
        return {"step": self.step, "loss": float(loss.detach()), "F_q": float(fq.mean()), "grad_norm": float(gnorm),
                "lr": self.lr_at(self.step - 1), "beta_factor": bf, "ess_fraction": float(ess.mean()),
                "sec_per_step": dt, "elapsed_s": self.elapsed,
                "F_q_per_condition": [round(float(v), 5) for v in fq],
                "T": [round(float(v), 4) for v in c[:, 0]], "mu": [round(float(v), 4) for v in c[:, 1]]}

    # ---- the loop ---------------------------------------------------------------------------------------------
    def train(self, on_log: Callable[[dict], None] | None = None, control: Control | None = None) -> str:
        """Train until ``steps`` or the time budget; returns the final status ('finished' or 'stopped')."""
        t = self.cfg.training
        control = control or Control()
        run = self.run
        budget = t.max_minutes * 60.0
        if run is not None:
            run.set_status("running", step=self.step, pid=os.getpid(), device=str(self.device))
        pending: list[dict] = []
        status, reason = "finished", "steps reached"
        try:
            while self.step < t.steps:
                control.wait_if_paused(self.step)
                if control.stop:
                    status, reason = "stopped", control.reason or "stopped"
                    break
                if budget and self.elapsed >= budget:
                    reason = f"time budget of {t.max_minutes:g} min reached"
                    break
                rec = self.train_step()
                if self.step % t.log_every == 0 or self.step == t.steps:
                    rec["time"] = time.time()
                    pending.append(rec)
                    self.best_F_q = min(self.best_F_q, rec["F_q"])
                    if run is not None:
                        run.append_metrics(pending)
                    pending = []
                    if on_log:
                        on_log(rec)
                if run is not None and self.step % t.checkpoint_every == 0:
                    self.save_checkpoint()
        except BaseException as exc:  # Ctrl-C, a crash: keep what was learned, say what happened
            if run is not None:
                self._finish("stopped" if isinstance(exc, KeyboardInterrupt) else "failed", repr(exc))
            raise
        if run is not None:
            self._finish(status, reason)
        return status

    def _finish(self, status: str, message: str) -> None:
        self.save_checkpoint()
        self.run.set_status(status, step=self.step, message=message, elapsed_s=round(self.elapsed, 1),
                            best_F_q=None if math.isinf(self.best_F_q) else self.best_F_q)
