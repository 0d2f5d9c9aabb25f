"""Analysis: variational and importance-sampled free energies, ESS, exact gaps."""

from .free_energy import ConditionEstimate, Evaluation, estimate_condition, evaluate, importance_estimates

__all__ = ["ConditionEstimate", "Evaluation", "estimate_condition", "evaluate", "importance_estimates"]
