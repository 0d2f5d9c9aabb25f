"""Sampling beyond plain ancestral draws: in-/out-painting of (larger) lattices with any-order models."""

from .painting import (PaintPlan, PaintResult, load_constraints, make_plan, paint, paint_log_prob, paint_with_model, save_paint_npz,
                       window_offsets, window_plan)

__all__ = ["PaintPlan", "PaintResult", "paint", "paint_log_prob", "paint_with_model", "make_plan", "window_plan", "window_offsets",
           "load_constraints", "save_paint_npz"]
