"""Sampling beyond plain ancestral draws: in-/out-painting of (larger) lattices with any-order models, and the
one samples-file layout every writer uses."""

from .constraints import constraints_from_arrays, constraints_from_fixed, load_constraints
from .files import read_samples, save_paint_npz, write_samples
from .mc import (CompositionProfile, FlipTables, MCResult, composition_free_energy, estimate, flip_tables,
                 integrated_autocorrelation_time, lower_hull, metropolis, phase_boundary)
from .painting import PaintResult, make_plan, paint, paint_log_prob, paint_with_model
from .plan import LAYOUTS, PaintPlan, PaintStep, centered_plan, window_offsets, window_plan

__all__ = ["read_samples", "write_samples", "PaintPlan", "PaintResult", "paint", "paint_log_prob", "paint_with_model", "make_plan", "window_plan", "window_offsets",
           "centered_plan", "LAYOUTS",
           "PaintStep", "load_constraints", "constraints_from_arrays", "constraints_from_fixed", "save_paint_npz", "MCResult", "metropolis", "flip_tables", "FlipTables", "estimate",
           "integrated_autocorrelation_time", "CompositionProfile", "composition_free_energy", "lower_hull",
           "phase_boundary"]
