"""Progress of a long task and the flags that steer it, torch-free (the GUI imports this too).

``interruptible(control)`` makes a Control reach *inside* a long step: the inner loops that dominate one (a model's
per-site generation, the painting walk, NMCMC proposals) call ``check_interrupt()``, which raises :class:`Cancelled`
once the Control of the enclosing ``interruptible`` block (in this thread) asks to stop. Nothing is passed down:
the loops stay free of front-end arguments, and outside such a block the check is a no-op.
``Meter`` turns "done so far" into a ``Progress`` record with an ETA from the wall seconds per unit since the start
or the last resume (a pause is left out), capped by an optional time budget. ``Control`` is what a front end sets
from another thread and a task reads between chunks: stop with a reason, pause / resume. ``format_duration`` is the
one way an ETA is written, by the CLI's bar and the GUI's progress bars alike.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


class Cancelled(Exception):
    """Raised inside a task between chunks once its Control asks it to stop; nothing half-done is written."""


@dataclass
class Progress:
    """One report: ``step`` units of ``total`` done, the ETA in seconds (None before the first unit), and the task's
    extras (a training record, the condition being drawn ...)."""

    step: int
    total: int
    eta_s: float | None = None
    extra: dict = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return min(self.step / self.total, 1.0) if self.total > 0 else 1.0

    def to_dict(self) -> dict:
        return {**self.extra, "step": self.step, "total": self.total, "fraction": self.fraction, "eta_s": self.eta_s}


@dataclass
class Control:
    """Flags a front end sets from another thread; a task reads them between steps or chunks: stop (training saves a
    checkpoint, then returns; other tasks raise :class:`Cancelled`) and pause (wait, holding everything in memory,
    until resumed or stopped). ``resumed_at`` (clock, step) tells a Meter where the rate starts again."""

    stop: bool = False
    pause: bool = False
    reason: str = ""
    resumed_at: tuple[float, int] | None = None

    def request_stop(self, reason: str = "stopped") -> None:
        self.reason, self.stop = reason, True

    def wait_if_paused(self, step: int) -> None:
        """Called between steps; blocks while paused. Front ends override it to announce pause/resume."""
        if not self.pause or self.stop:
            return
        while self.pause and not self.stop:
            time.sleep(0.05)
        self.resumed_at = (time.perf_counter(), step)

    def raise_if_stopped(self) -> None:
        if self.stop:
            raise Cancelled(self.reason or "cancelled")


_ACTIVE: ContextVar[Control | None] = ContextVar("lattherm_interruptible", default=None)


@contextmanager
def interruptible(control: Control | None):
    """Within this block (this thread / context), ``check_interrupt()`` raises Cancelled once ``control.stop`` is
    set. The caller must be able to drop a partial step: a trainer discards it and keeps its weights."""
    token = _ACTIVE.set(control)
    try:
        yield control
    finally:
        _ACTIVE.reset(token)


def check_interrupt() -> None:
    """Called inside long loops: raise Cancelled if the enclosing ``interruptible`` Control asks to stop."""
    control = _ACTIVE.get()
    if control is not None and control.stop:
        raise Cancelled(control.reason or "cancelled")


class Meter:
    """Counts units of a task towards ``total`` (from ``start``, e.g. the step a resumed run is at) and calls
    ``report(Progress)`` for each update."""

    def __init__(self, total: int, report=None, start: int = 0, budget_s: float = 0.0, control: Control | None = None):
        self.total, self.report, self.budget_s, self.control = int(total), report, float(budget_s or 0.0), control
        self.t0, self.step0 = time.perf_counter(), int(start)
        self._resume = None

    def eta(self, step: int, elapsed_s: float = 0.0) -> float | None:
        resumed = self.control.resumed_at if self.control is not None else None
        if resumed is not None and resumed != self._resume:
            self._resume = resumed
            self.t0, self.step0 = resumed
        done = step - self.step0
        if done <= 0:
            return None
        eta = (time.perf_counter() - self.t0) / done * max(self.total - step, 0)
        if self.budget_s:
            eta = min(eta, max(self.budget_s - elapsed_s, 0.0))
        return eta

    def update(self, step: int, elapsed_s: float = 0.0, extra: dict | None = None) -> Progress:
        """``elapsed_s``: the seconds already spent against the budget (a training run's over all its sessions);
        ``extra``: what the task adds to the record."""
        p = Progress(int(step), self.total, self.eta(step, elapsed_s), dict(extra or {}))
        if self.report is not None:
            self.report(p)
        return p


def format_duration(seconds: float | None) -> str:
    """``m:ss`` below an hour, ``h:mm:ss`` above; "–" when unknown."""
    if seconds is None:
        return "–"
    s = max(0, int(round(seconds)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


__all__ = ["Cancelled", "Control", "Meter", "Progress", "format_duration"]
