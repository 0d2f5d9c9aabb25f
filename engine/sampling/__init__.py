"""Sampling beyond plain ancestral draws: in-/out-painting of (larger) lattices with any-order models.
(The samples-file layout every writer uses is :mod:`lattherm.engine.store.samples`.)"""

from .mc import (CompositionProfile, FlipTables, MCResult, composition_free_energy, estimate, flip_tables,
                 integrated_autocorrelation_time, lower_hull, metropolis, phase_boundary)
from .painting import (LAYOUTS, PaintPlan, PaintResult, centered_plan, load_constraints, make_plan, paint,
                       paint_log_prob, paint_with_model, save_paint_npz, window_offsets, window_plan)

__all__ = ["PaintPlan", "PaintResult", "paint", "paint_log_prob", "paint_with_model", "make_plan", "window_plan", "window_offsets",
           "centered_plan", "LAYOUTS",
           "load_constraints", "save_paint_npz", "MCResult", "metropolis", "flip_tables", "FlipTables", "estimate",
           "integrated_autocorrelation_time", "CompositionProfile", "composition_free_energy", "lower_hull",
           "phase_boundary"]
