"""Progress of a task on the terminal: a tqdm bar with the task's ETA on a terminal, plain lines on a pipe or a log
file (no carriage returns, no escape codes), both fed from the task's :class:`~lattherm.engine.progress.Progress`."""

from __future__ import annotations

import sys

from ..progress import Progress, format_duration


def describe(unit: str, p: Progress) -> str:
    """The numbers of one report after the count: a training record's F_q, ESS, gradient norm and pace, and the
    task's ETA (its Meter leaves pauses out and caps it by a time budget, which tqdm's own rate cannot know)."""
    r = p.extra
    text = ""
    if "F_q" in r:
        text += (f"F_q {r['F_q']:.4f}  ESS {r['ess_fraction']:.3f}  |g| {r['grad_norm']:.2f}  "
                 f"{r['sec_per_step']:.2f}s/step  ")
    return text + f"ETA {format_duration(p.eta_s)}"


class Bar:
    """``Bar(unit)`` is a task's ``progress`` callable; ``close()`` ends it. On a terminal a tqdm bar is redrawn in
    place; otherwise each training record is one line, and other tasks write a line every ``every`` reports and at
    the end."""

    def __init__(self, unit: str = "step", stream=None, every: int = 1):
        self.unit, self.every = unit, every
        self.stream = stream or sys.stderr
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.tqdm = None

    def _bar(self, p: Progress):
        from tqdm import tqdm

        return tqdm(total=p.total, initial=0, unit=self.unit, file=self.stream, dynamic_ncols=True, leave=True,
                    bar_format="{percentage:5.1f}%|{bar:24}| {n_fmt}/{total_fmt} {unit} [{elapsed}] {postfix}")

    def __call__(self, p: Progress) -> None:
        if self.tty:
            if self.tqdm is None:
                self.tqdm = self._bar(p)
            if self.tqdm.total != p.total:
                self.tqdm.total = p.total
            self.tqdm.n = p.step
            self.tqdm.set_postfix_str(describe(self.unit, p), refresh=False)
            self.tqdm.refresh()
        elif "F_q" in p.extra or p.step % self.every == 0 or p.step == p.total:
            self.stream.write(f"{self.unit} {p.step}/{p.total}  {describe(self.unit, p)}\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tqdm is not None:
            self.tqdm.close()
            self.tqdm = None
