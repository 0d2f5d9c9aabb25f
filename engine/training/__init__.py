"""Training: condition schedules, REINFORCE for FO-/AO-ARMs and KL + self-consistency for AO-MAMs, the trainer.
(The run-config schema is :mod:`lattherm.engine.config`.)"""

from .conditions import ConditionSchedule, grid, paper_grid, parse_grid
from ..devices import pick_device
from .trainer import Trainer

__all__ = ["ConditionSchedule", "Trainer", "grid", "paper_grid", "parse_grid", "pick_device"]
