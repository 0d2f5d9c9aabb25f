"""Training progress for a terminal (one redrawn bar with ETA) or a log file / pipe (plain lines)."""

from __future__ import annotations

import sys
import time


def _fmt_time(seconds: float) -> str:
    seconds = max(0, int(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Progress:
    def __init__(self, total: int, start: int = 0, budget_s: float = 0.0, stream=None):
        self.total, self.start, self.budget = total, start, budget_s
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.t0 = time.perf_counter()

    def eta(self, step: int, elapsed_run: float) -> float:
        done = step - self.start
        rate = (time.perf_counter() - self.t0) / max(done, 1)
        eta = rate * (self.total - step)
        if self.budget:
            eta = min(eta, max(self.budget - elapsed_run, 0.0))
        return eta

    def __call__(self, rec: dict) -> None:
        step = rec["step"]
        frac = step / max(self.total, 1)
        text = (f"step {step}/{self.total}  F_q {rec['F_q']:.4f}  ESS {rec['ess_fraction']:.3f}  "
                f"|g| {rec['grad_norm']:.2f}  {rec['sec_per_step']:.2f}s/step  "
                f"ETA {_fmt_time(self.eta(step, rec.get('elapsed_s', 0.0)))}")
        if self.tty:
            width = 24
            bar = "#" * int(frac * width) + "-" * (width - int(frac * width))
            self.stream.write(f"\r[{bar}] {100 * frac:5.1f}% {text}\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
