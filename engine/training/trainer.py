"""The training loop shared by every model kind: lr schedule, clipping, the time budget, pause/stop between steps,
checkpoints (model, optimizer, RNG and the objective's own state), exact resume, metrics.

The loss of one step is a pluggable objective (:func:`make_objectives`): REINFORCE for FO-/AO-ARMs
(:mod:`.reinforce`) or MaM's KL + lambda * self-consistency with persistent chains (:mod:`.mam`), and maximum
likelihood on Monte Carlo data (:mod:`.mle`). ``[training] objective`` picks the phases of one run: ``reinforce``,
``mle``, or ``mle+reinforce`` (MLE for steps < ``switch_step``, REINFORCE from it on). At the switch the Adam moments
are reset (the two losses have unrelated gradient scales); the reset happens at that step itself, so a run resumed
on either side of the switch continues exactly. Every record carries its ``phase`` and, where an exact method is
cheap, ``exact_gap`` (mean F_q - (-log Z) over the logged conditions).

Multilevel warm start (``[training] levels``, :mod:`.levels`): a size-agnostic model trains at each level's size in
turn; at a level's first step the model is rebuilt for the new cell from the current weights and Adam starts fresh.
``self.cfg`` and ``self.system`` are the current level's (``self.run_cfg`` the run's own config); records carry the
``level`` and ``size``, and ``exact_gap`` is taken at that size.

Data parallel (:mod:`lattherm.engine.distributed`): in a world of W ranks every rank builds the same model from the
run's seed, then draws from its own seed stream its M / W share of each condition's samples; the objectives
all-reduce their per-condition sums and gather what the logged metrics need, gradients are averaged, so a step is
the single-process step of the union batch. Rank 0 owns the run folder (lock, metrics, status, checkpoints); a
checkpoint records the world size and every rank's random state and objective state (MaM's chains, re-split by
condition when a run resumes with another world size, which the run's log then says). A stop requested on any rank
(Ctrl-C, SIGTERM, the time budget) is agreed by all before the step, so all stop after the same step with one
checkpoint; a failing rank stops the others at their next collective, and the run keeps its last good checkpoint.
"""

from __future__ import annotations

import math
import os
import time
from typing import Callable

import torch

from .. import __version__
from ..devices import pick_device
from ..distributed import (World, average_gradients, barrier, broadcast_object, broadcast_parameters, current_world,
                           follower_error, gather_objects, max_over_ranks, mean_of_floats, rank_device, rank_seed,
                           sum_over_ranks)
from ..errors import CheckpointError, LatthermError
from ..models import model_for_system
from ..models.io import model_from_tensors, model_meta, model_tensors
from ..progress import Cancelled, Control
from ..store import Run, load_tensors, save_tensors, this_host
from ..store.checkpoint import is_complete
from ..store.runs import RunFilesError
from ..store.lock import RunLock
from ..systems import make_system
from .conditions import ConditionSchedule
from ..config import RunConfig, parse_config, self_contained, system_of
from .exact_gap import ExactBounds
from .levels import LevelSchedule, LevelSpan
from .precision import Precision, compile_sampling
from .reinforce import ReinforceObjective

#: checkpoint keys of one rank's own state (besides its objectives'): its random streams
RANK_RNG_KEYS = ("rng.torch", "rng.cuda")


def make_objective(trainer: "Trainer"):
    """The reverse-KL objective of the run's model kind: MaM's for ao-mam, REINFORCE for FO-/AO-ARMs."""
    if trainer.cfg.model.kind == "ao-mam":
        from .mam import MAMObjective

        return MAMObjective(trainer)
    return ReinforceObjective(trainer)


def make_objectives(trainer: "Trainer") -> dict:
    """{phase: objective} for the phases the run's ``[training] objective`` names ("mle", "reinforce")."""
    out = {}
    if trainer.cfg.training.objective in ("mle", "mle+reinforce"):
        from .mle import MLEObjective

        out["mle"] = MLEObjective(trainer)  # checks the MC sampler and a given data set: before any run folder
    if trainer.cfg.training.objective in ("reinforce", "mle+reinforce"):
        out["reinforce"] = make_objective(trainer)
    return out


def check_shares(cfg: RunConfig, nproc: int) -> None:
    """Each of ``nproc`` ranks draws the same share of every condition's samples (and of an MLE batch): a world the
    batch cannot be split over evenly is a one-line error (checked for every level's batch)."""
    if nproc <= 1:
        return
    for level_cfg in LevelSchedule(cfg).configs():
        _check_batch_shares(level_cfg, nproc)


def _check_batch_shares(cfg: RunConfig, nproc: int) -> None:
    c, t = cfg.conditions, cfg.training
    G = c.T_points * c.mu_points
    M = t.batch // G
    if M % nproc:
        raise LatthermError(f"{nproc} processes cannot share the batch: [training] batch {t.batch} over {G} "
                            f"conditions is {M} samples per condition, not a multiple of {nproc} (use a divisor of "
                            f"{M} processes, or a batch that {nproc} divides per condition)")
    if t.objective in ("mle", "mle+reinforce"):
        b = cfg.data.batch or t.batch
        if b % nproc:
            raise LatthermError(f"{nproc} processes cannot share the MLE batch of {b} rows evenly")


class Trainer:
    def __init__(self, cfg: RunConfig, run: Run | None = None, device: str | None = None, world: World | None = None):
        self.run_cfg = cfg
        self.levels = LevelSchedule(cfg)
        self.level = self.levels.at(0)
        cfg = self.levels.config(self.level) if self.levels.multilevel else cfg  # the first level's size and batch
        self.cfg = cfg
        self.run = run
        self.world = world or current_world()
        t = cfg.training
        check_shares(self.run_cfg, self.world.size)
        if t.threads:
            torch.set_num_threads(t.threads)
        self.device = pick_device(rank_device(device or t.device, self.world))
        self.precision = Precision(t.precision, self.device)
        self.precision.apply()
        torch.manual_seed(t.seed)
        self.system = make_system(system_of(cfg), cfg.system.size)
        m = cfg.model
        self.model = model_for_system(m.kind, m.arch, self.system, m.hidden, m.layers, m.symmetric,
                                      m.heads, mode_weight=cfg.data.gauge > 0).to(self.device)
        if self.world.distributed:
            broadcast_parameters(self.model, self.world)
            torch.manual_seed(rank_seed(t.seed, self.world.rank))  # this rank's own stream from here on
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=t.lr)
        self.schedule = ConditionSchedule.from_config(cfg, self.world.size)
        self.step = 0
        self.elapsed = 0.0  # training seconds over all sessions of this run
        self.best_F_q = math.inf
        self.objectives = make_objectives(self)
        self.bounds = ExactBounds(self.system)
        self.compiled = self._compile() if t.compile else None
        self.resumed_world: int | None = None  # the world size of the checkpoint this trainer resumed from

    @property
    def writes(self) -> bool:
        """Whether this process writes the run's files: rank 0 of a run that has a folder."""
        return self.run is not None and self.world.is_main

    def full_precision(self):
        """A context in which sampling and exact log p run in full precision (whatever ``precision`` says)."""
        return self.precision.full()

    def _compile(self) -> str:
        """Compile the sampling passes (``[training] compile``); a trial sample checks it, else eager. One line."""
        T = torch.full((2,), float(self.cfg.conditions.T[1]), device=self.device)
        mu = torch.zeros(2, device=self.device)
        state = torch.get_rng_state()

        def trial():
            with torch.no_grad():
                self.model.sample(T, mu)

        try:
            return compile_sampling(self.model, trial)
        finally:
            torch.set_rng_state(state)  # the trial draws nothing from the run's stream

    # ---- levels -----------------------------------------------------------------------------------------------
    def _enter_level(self, span: LevelSpan) -> None:
        """Continue at level ``span``'s size: the model rebuilt for its cell with the current weights (a size-agnostic
        model's parameters do not depend on the cell), a fresh Adam, that level's conditions batch, objectives and
        exact bounds. Draws nothing from the run's random stream, so a resumed run switches identically."""
        state = torch.get_rng_state()
        try:
            cfg = self.levels.config(span)
            system = make_system(cfg.system.name, cfg.system.size)
            m = cfg.model
            model = model_for_system(m.kind, m.arch, system, m.hidden, m.layers, m.symmetric, m.heads)
            model = model.to(self.device)
            model.load_state_dict(self.model.state_dict())
        finally:
            torch.set_rng_state(state)
        self.cfg, self.system, self.model, self.level = cfg, system, model, span
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=span.level.lr)
        self.schedule = ConditionSchedule.from_config(cfg, self.world.size)
        self.objectives = make_objectives(self)
        self.bounds = ExactBounds(self.system)
        self.compiled = self._compile() if cfg.training.compile else None

    # ---- phases -----------------------------------------------------------------------------------------------
    def phase_at(self, step: int) -> str:
        """"mle" or "reinforce": the phase that optimisation step ``step`` (0-based) belongs to."""
        t = self.cfg.training
        if t.objective == "mle+reinforce":
            return "mle" if step < t.switch_step else "reinforce"
        return "mle" if t.objective == "mle" else "reinforce"

    @property
    def objective(self):
        """The objective of the current phase."""
        return self.objectives[self.phase_at(self.step)]

    # ---- construction ---------------------------------------------------------------------------------------
    @classmethod
    def create(cls, config_text: str, name_hint: str | None = None, device: str | None = None, root=None,
               init=None, base=None):
        """A new run from a config; ``init`` (run, model folder or bundled name) gives the starting weights;
        ``base``: the folder a relative ``[system] ce`` is resolved from (the config file's)."""
        cfg = parse_config(config_text, base=base)
        config_text, files = self_contained(config_text, cfg)  # the run keeps its own copy of a CE file
        hint = name_hint or f"{cfg.system.name}-{cfg.system.size}-{cfg.model.kind}"
        trainer = cls(cfg, None, device)  # build first: a bad config never leaves a run folder behind
        extra = {}
        if init is not None:
            extra["init_from"] = trainer.init_weights(init)
        world = trainer.world
        made = None
        if world.is_main:  # rank 0 makes the folder; the others learn its path (or rank 0's error)
            try:
                trainer.run = Run.create(config_text, hint, root=root, owned=True, files=files)  # owned until training ends
                trainer.run.set_status("created", system=cfg.system.name, size=cfg.system.size,
                                       model=f"{cfg.model.kind}/{cfg.model.arch}", step=0, world_size=world.size,
                                       **extra)
                made = ("ok", str(trainer.run.path))
            except LatthermError as exc:
                made = ("error", str(exc))
                broadcast_object(made, world)
                raise
        made = broadcast_object(made, world)
        if made[0] == "error":
            raise follower_error(made[1])
        if not world.is_main:
            trainer.run = Run(made[1])
        return trainer

    def init_weights(self, ref) -> str:
        """Copy the weights of a trained model of the same system and architecture (a warm start: continuing a run
        with a new schedule, or a size-agnostic Transformer trained on one lattice size starting on another; the
        model of a fixed cell starts only a run of that cell). Returns its path."""
        from ..models.io import load_model

        lm = load_model(ref, device=str(self.device))
        src, theirs_model = lm.source.path, lm.model
        if lm.system.name != self.system.name:
            raise LatthermError(f"cannot start from {src}: it models {lm.system.name}, this config {self.system.name}")
        mine_name = f"{self.model.kind}/{self.model.arch}"
        theirs_name = f"{theirs_model.kind}/{theirs_model.arch}"
        if mine_name != theirs_name:
            raise LatthermError(f"cannot start from {src}: its {theirs_name} model does not match this config's "
                                f"{mine_name}")
        if theirs_model.n_sites != self.model.n_sites and not (theirs_model.any_size and self.model.any_size):
            raise LatthermError(f"cannot start from {src}: the weights of a {theirs_name} depend on the number of "
                                f"sites ({lm.system.lattice.label}, {theirs_model.n_sites}) and this config trains "
                                f"{self.system.lattice.label} ({self.model.n_sites}); only a Transformer starts on "
                                "another size")
        size_keys = ("n_sites", "size", "period_mode")  # what a size-agnostic model may change
        hp_mine, hp_theirs = self.model.hparams(), theirs_model.hparams()
        differ = [k for k in hp_mine if k not in size_keys and hp_mine[k] != hp_theirs.get(k)]
        if differ:
            raise LatthermError(f"cannot start from {src}: its {theirs_name} model does not match this config's in "
                                + ", ".join(f"{k} ({hp_theirs.get(k)} vs {hp_mine[k]})" for k in differ))
        mine, theirs = self.model.state_dict(), theirs_model.state_dict()
        shape = {k: tuple(v.shape) for k, v in mine.items()}
        other = {k: tuple(v.shape) for k, v in theirs.items()}
        if shape != other:
            diff = sorted(set(shape.items()) ^ set(other.items()))[:3]
            raise LatthermError(f"cannot start from {src}: its {theirs_name} model does not match this config's "
                                f"(differs in {', '.join(dict.fromkeys(k for k, _ in diff))}: check [model] "
                                "hidden, layers and heads)")
        self.model.load_state_dict(theirs)
        return str(src)

    @classmethod
    def resume(cls, ref, device: str | None = None, root=None, world: World | None = None):
        world = world or current_world()
        opened = None
        if world.is_main:  # rank 0 owns the run; the others follow it (or stop with its error)
            try:
                run = Run.open(ref, root=root)
                run.lock = RunLock(run.path).acquire()  # a second process resuming the run is refused here
                opened = ("ok", str(run.path))
            except LatthermError as exc:
                broadcast_object(("error", str(exc)), world)
                raise
        opened = broadcast_object(opened, world)
        if opened[0] == "error":
            raise follower_error(opened[1])
        if not world.is_main:
            run = Run(opened[1])
        try:
            cfg = parse_config(run.config_text(), source=str(run.config_path))
            trainer = cls(cfg, run, device, world)
            trainer._load_latest_valid()
            if world.is_main:
                run.truncate_metrics(trainer.step)  # the steps after the checkpoint are trained (and logged) again
        except BaseException:
            if run.lock is not None:
                run.lock.release()
            raise
        return trainer

    def _load_latest_valid(self) -> None:
        """Load the newest checkpoint that reads; a damaged newer one is noted in the run's log and skipped."""
        candidates = self.run.resume_candidates()
        for i, ckpt in enumerate(candidates):
            try:
                if not is_complete(ckpt) and i < len(candidates) - 1:
                    raise CheckpointError(f"{ckpt}: truncated checkpoint")
                self.load_checkpoint(ckpt)
            except CheckpointError as exc:
                if i == len(candidates) - 1:
                    raise
                _note(self.run, f"resuming from an older checkpoint: {exc}")
                continue
            return

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def rank_state(self) -> dict[str, torch.Tensor]:
        """This rank's own state: its random streams and its objectives' state (MaM's chains)."""
        tensors = {"rng.torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            tensors["rng.cuda"] = torch.cuda.get_rng_state(self.device)
        for objective in self.objectives.values():
            tensors.update({k: v.cpu() for k, v in objective.state_tensors().items()})
        return tensors

    def save_checkpoint(self, name: str | None = None):
        """Write a checkpoint (rank 0; in a distributed run every rank must call it: it gathers their states).
        World size 1 stores the rank state under its plain keys, a larger world under ``rank<r>.<key>``."""
        if self.run is None:
            return None
        check_weights_finite(self.model, self.step)  # diverged weights never replace the last good checkpoint
        states = gather_objects(self.rank_state(), self.world)
        if not self.world.is_main:
            return None
        tensors = model_tensors(self.model)
        opt = self.optimizer.state_dict()
        for pid, st in opt["state"].items():
            for k, v in st.items():
                tensors[f"optim.state.{pid}.{k}"] = torch.as_tensor(v)
        if self.world.size == 1:
            tensors.update(states[0])
        else:
            for r, st in enumerate(states):
                tensors.update({f"rank{r}.{k}": v for k, v in st.items()})
        meta = {**model_meta(self.model, self.system), "type": "training-checkpoint", "step": self.step,
                "elapsed_s": self.elapsed, "best_F_q": None if math.isinf(self.best_F_q) else self.best_F_q,
                "optim_param_groups": opt["param_groups"], "config": self.run_cfg.to_dict(), "version": __version__,
                "world_size": self.world.size}
        path = self.run.named_checkpoint_path(name) if name else self.run.checkpoint_path(self.step)
        save_tensors(path, tensors, meta)
        self.run.prune_checkpoints(self.cfg.training.keep_checkpoints)
        return path

    def load_checkpoint(self, path) -> None:
        tensors, meta = load_tensors(path)
        model, system = model_from_tensors(tensors, meta, path,
                                           ce=system_of(self.cfg) if self.cfg.system.ce else None)
        try:
            span = self.levels.trained_at(int(meta["step"]))
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: no step ({exc})") from None
        if span.index != self.level.index:
            self._enter_level(span)  # the level the checkpoint's model was trained in
        if system.lattice.size != self.system.lattice.size:
            raise CheckpointError(f"{path}: a model of the {system.lattice.label} cell, but the run trains "
                                  f"{self.system.lattice.label} at step {meta['step']}")
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
        saved_world = int(meta.get("world_size", 1))
        mine = self._rank_state_from(tensors, saved_world)
        if "rng.torch" in mine:
            torch.set_rng_state(mine["rng.torch"].to(torch.uint8))
        if "rng.cuda" in mine and self.device.type == "cuda":
            torch.cuda.set_rng_state(mine["rng.cuda"].to(torch.uint8), self.device)
        for objective in self.objectives.values():
            objective.load_state_tensors(mine)
        self.resumed_world = saved_world
        if saved_world != self.world.size and self.world.is_main and self.run is not None:
            _note(self.run, f"resumed with {self.world.size} process(es) from a checkpoint of {saved_world}: every "
                            "rank draws a new random stream; the persistent chains are re-split by condition")

    def _rank_state_from(self, tensors: dict, saved_world: int) -> dict[str, torch.Tensor]:
        """This rank's state from a checkpoint written by ``saved_world`` ranks: its own keys when the world is the
        same; otherwise fresh random streams (from the seed and the step) and the chains of all ranks re-split."""
        if saved_world == 1 == self.world.size:
            return tensors  # the single-process checkpoint, read as it always was
        if saved_world == 1:
            by_rank = [{k: v for k, v in tensors.items() if k in RANK_RNG_KEYS or k.startswith("mam.")}]
        else:
            by_rank = [{k[len(f"rank{r}."):]: v for k, v in tensors.items() if k.startswith(f"rank{r}.")}
                       for r in range(saved_world)]
        if saved_world == self.world.size:
            return by_rank[self.world.rank]
        from .mam import ROW_KEYS

        out = {k: v for k, v in by_rank[0].items() if k not in RANK_RNG_KEYS and k not in ROW_KEYS}
        G, W, r = self.schedule.n_conditions, self.world.size, self.world.rank
        for k in ROW_KEYS:
            if all(k in st for st in by_rank):  # (G, M_old) per old rank -> (G, M) -> this rank's (G, M / W)
                parts = [st[k].reshape(G, -1, *st[k].shape[1:]) for st in by_rank]
                whole = torch.cat(parts, 1)
                share = whole.shape[1] // W
                out[k] = whole[:, r * share:(r + 1) * share].reshape(-1, *whole.shape[2:])
        seed = rank_seed(self.cfg.training.seed * 1_000_003 + self.step, r)
        out["rng.torch"] = torch.Generator().manual_seed(seed).get_state()
        return out

    # ---- one step ---------------------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """The lr of ``step``: cosine decay from its level's lr to ``lr_final`` over that level's steps (one level:
        the whole run); in an mle+reinforce run (one level: levels are REINFORCE-only) each phase has its own cosine
        (the fine-tune from ``finetune_lr``, or lr), so the REINFORCE phase does not start at the end of the MLE
        phase's decay, where it could no longer move the weights."""
        t = self.cfg.training
        span = self.levels.at(step)
        start, end, lr0 = span.start, span.end, span.level.lr
        if t.objective == "mle+reinforce":
            if step < t.switch_step:
                end = t.switch_step
            else:
                start, lr0 = t.switch_step, t.finetune_lr or lr0
        if t.lr_final <= 0:
            return lr0
        frac = min((step - start) / max(end - start, 1), 1.0)
        return t.lr_final + 0.5 * (lr0 - t.lr_final) * (1 + math.cos(math.pi * frac))

    def beta_factor(self, step: int) -> float:
        a = self.cfg.training.beta_anneal
        return 1.0 if a <= 0 else 1.0 - a ** (step + 1)

    def train_step(self, log: bool = True) -> dict:
        """One optimisation step of the run's objective. ``log``: also compute the (possibly costly) diagnostics
        that only logged records carry (the ARM objective always has them for free)."""
        t0 = time.perf_counter()
        span = self.levels.at(self.step)
        if span.index != self.level.index:
            self._enter_level(span)  # the next size, from these weights (see :mod:`.levels`)
        lr = self.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        phase = self.phase_at(self.step)
        if self.step > 0 and phase != self.phase_at(self.step - 1):
            self.optimizer.state.clear()  # fresh Adam moments for the new loss (see the module docstring)
        self.model.train()
        try:
            with self.precision.autocast():
                loss, info = self.objectives[phase].loss(self.step, log)
        except RuntimeError as exc:  # sampling from diverged weights fails inside torch: name the divergence
            check_weights_finite(self.model, self.step)
            if "nan" in str(exc).lower() or "inf" in str(exc).lower():
                raise Diverged(f"diverged by step {self.step}: the model's probabilities are not finite (lower "
                               "[training] lr; the run resumes from its last checkpoint)") from None
            raise
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.model.parameters(), self.world)  # the gradient of the whole batch's mean loss
        if self.world.distributed:  # the logged loss and scalars: means over the whole batch
            loss = sum_over_ranks(loss.detach().float(), self.world) / self.world.size
            info = mean_of_floats(info, self.world)
        clip = self.cfg.training.clip_grad
        gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip if clip > 0 else float("inf"))
        check_finite(self.step, loss=loss, grad_norm=gnorm)  # divergence guard: nothing non-finite is applied
        self.optimizer.step()
        self.step += 1
        dt = time.perf_counter() - t0
        self.elapsed += dt
        c = self.schedule.conditions(self.step - 1)
        if self.levels.multilevel:
            info["level"], info["size"] = span.index + 1, span.level.size
        if "F_q_per_condition" in info:
            gap = self.bounds.gap(c[:, 0].tolist(), c[:, 1].tolist(), info["F_q_per_condition"])
            if gap is not None:
                info["exact_gap"] = gap
        return {"step": self.step, "phase": phase, "loss": float(loss.detach()), **info, "grad_norm": float(gnorm),
                "lr": lr,
                "beta_factor": self.beta_factor(self.step - 1), "sec_per_step": dt, "elapsed_s": self.elapsed,
                "T": [round(float(v), 4) for v in c[:, 0]], "mu": [round(float(v), 4) for v in c[:, 1]]}

    # ---- the loop ---------------------------------------------------------------------------------------------
    def train(self, on_log: Callable[[dict], None] | None = None, control: Control | None = None) -> str:
        """Train until ``steps`` or the time budget; returns the final status ('finished' or 'stopped')."""
        t = self.cfg.training
        control = control or Control()
        run = self.run if self.writes else None  # rank 0 writes; the others train and take part in checkpoints
        budget = t.max_minutes * 60.0
        if run is not None:
            if run.lock is None or not run.lock.held:
                run.lock = RunLock(run.path).acquire()  # whoever trains the run owns it
            world = {"world_size": self.world.size} if self.world.distributed else {}
            run.set_status("running", step=self.step, pid=os.getpid(), host=this_host(), device=str(self.device),
                           **world)
        pending: list[dict] = []
        status, reason = "finished", "steps reached"
        try:
            self._prepare_data()
            while self.step < t.steps:
                control.wait_if_paused(self.step)
                stop, over = self._agree(control.stop, bool(budget and self.elapsed >= budget))
                if stop:
                    status, reason = "stopped", control.reason or stop_reason(stop)
                    break
                if over:
                    reason = f"time budget of {t.max_minutes:g} min reached"
                    break
                nxt = self.step + 1
                try:
                    rec = self.train_step(log=nxt % t.log_every == 0 or nxt == t.steps)
                except Cancelled:  # a Stop inside the step (see progress.interruptible): the partial step is
                    if not control.stop or self.world.distributed:  # dropped before any weight changed
                        raise
                    status, reason = "stopped", control.reason or "stopped"
                    break
                if self.step % t.log_every == 0 or self.step == t.steps:
                    rec["time"] = time.time()
                    pending.append(rec)
                    self.best_F_q = min(self.best_F_q, rec.get("F_q", math.inf))
                    if run is not None:
                        run.append_metrics(pending)
                    pending = []
                    if on_log:
                        on_log(rec)
                if self.run is not None and self.step % t.checkpoint_every == 0:
                    self.save_checkpoint()  # every rank: rank 0 gathers their states
                    if run is not None:  # an interrupted run reads as resumable from here
                        run.set_status("running", step=self.step,
                                       best_F_q=None if math.isinf(self.best_F_q) else self.best_F_q)
            if run is not None:
                self._finish(status, reason)
            elif self.run is not None:
                self.save_checkpoint()  # the other ranks' part of rank 0's final checkpoint
            barrier(self.world)  # no rank leaves (and looks finished to a launcher) before rank 0 has written
        except Diverged as exc:  # the last finite checkpoint stays the latest: nothing is saved
            if run is not None:
                run.set_status("failed", step=self.step, reason="diverged", message=str(exc),
                               elapsed_s=round(self.elapsed, 1))
            raise
        except (OSError, RunFilesError) as exc:  # disk full: one line, no checkpoint ahead of the metrics
            text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if run is not None:
                self._finish("failed", f"cannot write the run's files: {text}", save=False)
            raise RunFilesError(f"{text}; the run resumes from its last checkpoint") from None
        except BaseException as exc:  # Ctrl-C, a crash: keep what was learned, say what happened
            if run is not None:
                # a distributed run cannot gather the ranks' states any more: its last good checkpoint stays
                self._finish("stopped" if isinstance(exc, KeyboardInterrupt) else "failed",
                             failure_text(exc, self.world), save=not self.world.distributed)
            raise
        finally:
            if run is not None and run.lock is not None:
                run.lock.release()  # the run may be deleted or resumed by anyone from now on
        return status

    def _agree(self, stop: bool, over_budget: bool) -> tuple[int, bool]:
        """(stop, over budget) as all ranks see them together: a stop asked on any rank stops every rank after the
        same step (rank 0's clock decides the budget). ``stop`` is 1 for a local request, 2 when it came from
        another rank."""
        if not self.world.distributed:
            return int(stop), over_budget
        flags = torch.tensor([float(stop), float(over_budget and self.world.is_main)])
        agreed = max_over_ranks(flags, self.world)
        return (int(stop) or 2 * int(agreed[0] > 0)), bool(agreed[1] > 0)

    def _prepare_data(self) -> None:
        """Make or read back the MC data set when an MLE phase is still ahead; its generation time counts in the
        run's elapsed time (the wall cost of the data is part of the cost of the model). In a distributed run
        rank 0 makes it (into the run folder) while the others wait, then they read it back."""
        mle = self.objectives.get("mle")
        if mle is None or self.phase_at(self.step) != "mle":
            return
        made = mle.prepare() if self.world.is_main else None
        if self.world.distributed:
            made = broadcast_object(made, self.world)  # the others wait here for rank 0's data set
            if not self.world.is_main:
                mle.prepare()
        if made is not None:
            self.elapsed += made["seconds"]
            if self.writes:
                self.run.set_status("running", step=self.step, message="training", dataset=made)

    def _finish(self, status: str, message: str, save: bool = True) -> None:
        if save:
            try:
                self.save_checkpoint()
            except (Diverged, OSError, LatthermError) as exc:  # keep the previous checkpoint; still say what happened
                message = f"{message}; no final checkpoint ({exc})"
        try:
            self.run.set_status(status, step=self.step, message=message, elapsed_s=round(self.elapsed, 1),
                                best_F_q=None if math.isinf(self.best_F_q) else self.best_F_q)
        except OSError:  # the disk is full: status.json keeps its last good state (and the lock tells it's dead)
            pass


def stop_reason(code: int) -> str:
    return "stopped on another rank" if code == 2 else "stopped"


def failure_text(exc: BaseException, world: World) -> str:
    """What the status says about a failed step: in a distributed run a lost peer is named as such."""
    text = repr(exc)
    if world.distributed and isinstance(exc, RuntimeError) and any(
            w in str(exc).lower() for w in ("connection", "peer", "closed", "gloo", "nccl", "timed out", "broken")):
        return f"another rank of the {world.size} stopped responding ({str(exc).splitlines()[0][:200]})"
    return text


# ---- divergence guard --------------------------------------------------------------------------------------------
class Diverged(LatthermError):
    """Training produced a non-finite loss, gradient or weight: the run stops, its last good checkpoint stays."""


def check_finite(step: int, **values) -> None:
    for name, v in values.items():
        v = float(v.detach()) if isinstance(v, torch.Tensor) else float(v)
        if not math.isfinite(v):
            raise Diverged(f"diverged at step {step + 1}: {name} is {v} (lower [training] lr or set clip_grad; "
                           "the run resumes from its last checkpoint)")


def check_weights_finite(model: torch.nn.Module, step: int) -> None:
    for name, p in model.named_parameters():
        if not bool(torch.isfinite(p).all()):
            raise Diverged(f"diverged by step {step}: weight {name} is not finite (lower [training] lr; the run "
                           "resumes from its last checkpoint)")


def _note(run: Run, text: str) -> None:
    """A line in the run's log (and the process log): what resuming decided on its own."""
    import logging

    logging.getLogger(__name__).warning("%s: %s", run.id, text)
    try:
        with open(run.log_path, "a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")
    except OSError:
        pass
