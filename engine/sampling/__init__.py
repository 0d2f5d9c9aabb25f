"""Sampling beyond plain ancestral draws: in-/out-painting of (larger) lattices with any-order models, and the
one samples-file layout every writer uses."""

from .files import read_samples, write_samples
from .painting import (LAYOUTS, PaintPlan, PaintResult, centered_plan, load_constraints, make_plan, paint,
                       paint_log_prob, paint_with_model, save_paint_npz, window_offsets, window_plan)

__all__ = ["read_samples", "write_samples", "PaintPlan", "PaintResult", "paint", "paint_log_prob", "paint_with_model", "make_plan", "window_plan", "window_offsets",
           "centered_plan", "LAYOUTS",
           "load_constraints", "save_paint_npz"]
