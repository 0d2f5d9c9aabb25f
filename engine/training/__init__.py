"""Training: run configs, condition schedules, REINFORCE for FO-/AO-ARMs and KL + self-consistency for AO-MAMs."""

from .conditions import ConditionSchedule, grid, paper_grid, parse_grid
from .config import RunConfig, load_config, parse_config
from ..devices import pick_device
from .trainer import Trainer

__all__ = ["ConditionSchedule", "RunConfig", "Trainer", "grid", "load_config", "paper_grid",
           "parse_config", "parse_grid", "pick_device"]
