"""Training: condition schedules, REINFORCE for FO-/AO-ARMs (optionally from K of the N steps), KL +
self-consistency for AO-MAMs, maximum likelihood on Monte Carlo data (:mod:`.mle`), phases and the trainer.
(The run-config schema is :mod:`lattherm.engine.config`.)"""

from .conditions import ConditionSchedule, grid, paper_grid, parse_grid
from ..devices import pick_device
from .trainer import Trainer

__all__ = ["ConditionSchedule", "Trainer", "grid", "paper_grid", "parse_grid", "pick_device"]
