"""Model-based generation: in-/out-painting of (larger) lattices with any-order models (plan, constraints, walk).
Samples files are :mod:`lattherm.engine.store.samples`; classical Monte Carlo is :mod:`lattherm.engine.montecarlo`."""

from .constraints import constraints_from_arrays, constraints_from_fixed, load_constraints
from .painting import PaintResult, make_plan, paint, paint_log_prob, paint_with_model
from .plan import LAYOUTS, PaintPlan, PaintStep, centered_plan, window_offsets, window_plan

__all__ = ["LAYOUTS", "PaintPlan", "PaintResult", "PaintStep", "centered_plan", "constraints_from_arrays",
           "constraints_from_fixed", "load_constraints", "make_plan", "paint", "paint_log_prob", "paint_with_model",
           "window_offsets", "window_plan"]
