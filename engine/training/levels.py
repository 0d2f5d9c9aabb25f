"""Multilevel warm start (RiGCS-style): train a size-agnostic model on small lattices first, then continue on the
next size from those weights, up to the run's [system] size, in one run (``[training] levels``).

A RoPE Transformer has no parameter that depends on the number of sites, so the same weights serve every cell of
its lattice kind. At the first step of a level the trainer builds the model for the level's cell (the RoPE
frequency integers and the default cell are the new size's, as for ``--init`` from a model of another size) and
loads the previous level's weights into it unchanged.

The Adam moments start fresh at each level: the loss at a new size is another objective (log q and log f are sums
over N sites, so the gradient's scale grows with N), and moments estimated at N = 16 would mis-scale the first
updates at N = 100; the phase switch of ``mle+reinforce`` resets them for the same reason. The lr (and its cosine
decay to ``lr_final``) restarts at each level too. As for the phase switch, everything happens at the level's first
step itself, so a checkpoint taken on either side of a switch resumes exactly: a checkpoint at step s holds the
model of the level step s - 1 trained in.

Torch-free: the trainer asks this schedule which level a step is in and what that level's effective config is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from ..config import Level, RunConfig, run_levels


@dataclass(frozen=True)
class LevelSpan:
    """Level ``index`` (0-based) covers steps ``start`` .. ``start + steps - 1``."""

    index: int
    level: Level
    start: int

    @property
    def steps(self) -> int:
        return self.level.steps

    @property
    def end(self) -> int:
        return self.start + self.level.steps


class LevelSchedule:
    """The run's levels as step spans, and each level's effective config (its size, batch and lr)."""

    def __init__(self, cfg: RunConfig):
        self.cfg = cfg
        self.spans: list[LevelSpan] = []
        start = 0
        for i, lv in enumerate(run_levels(cfg)):
            self.spans.append(LevelSpan(i, lv, start))
            start += lv.steps

    def __len__(self) -> int:
        return len(self.spans)

    @property
    def multilevel(self) -> bool:
        return len(self.spans) > 1

    def at(self, step: int) -> LevelSpan:
        """The level that optimisation step ``step`` (0-based) belongs to; steps past the end: the last level."""
        for span in self.spans:
            if step < span.end:
                return span
        return self.spans[-1]

    def trained_at(self, step: int) -> LevelSpan:
        """The level whose model a checkpoint at ``step`` holds: the level of its last trained step (step - 1)."""
        return self.at(max(step - 1, 0))

    def config(self, span: LevelSpan) -> RunConfig:
        """The run config as level ``span`` trains it: its size, batch and lr; steps and the rest unchanged."""
        out = copy.deepcopy(self.cfg)
        out.system.size = span.level.size
        out.training.batch = span.level.batch
        out.training.lr = span.level.lr
        return out

    def configs(self) -> list[RunConfig]:
        return [self.config(span) for span in self.spans]
