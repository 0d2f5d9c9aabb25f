"""Progress on a terminal (one redrawn bar with ETA) or a log file / pipe (plain lines), from task ``Progress``."""

from __future__ import annotations

import sys

from ..progress import Progress, format_duration


class Bar:
    """``Bar(unit)`` is a task's ``progress`` callable; training records (an ``F_q`` in the extras) add their
    numbers to the line. On a pipe, lines come at most every ``every`` reports of a non-training task."""

    def __init__(self, unit: str = "step", stream=None, every: int = 1):
        self.unit, self.every = unit, every
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.drawn = False

    def __call__(self, p: Progress) -> None:
        r = p.extra
        text = f"{self.unit} {p.step}/{p.total}"
        if "F_q" in r:
            text += (f"  F_q {r['F_q']:.4f}  ESS {r['ess_fraction']:.3f}  |g| {r['grad_norm']:.2f}  "
                     f"{r['sec_per_step']:.2f}s/step")
        text += f"  ETA {format_duration(p.eta_s)}"
        if self.tty:
            width = 24
            bar = "#" * int(p.fraction * width) + "-" * (width - int(p.fraction * width))
            self.stream.write(f"\r[{bar}] {100 * p.fraction:5.1f}% {text}\x1b[K")
            self.drawn = True
        elif "F_q" in r or p.step % self.every == 0 or p.step == p.total:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
