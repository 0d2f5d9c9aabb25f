"""The use cases, one function each, under both front doors (``lattherm`` and the engine server).

Each takes plain arguments, ``progress`` (a callable receiving :class:`~lattherm.engine.progress.Progress`) and
``control`` (:class:`~lattherm.engine.progress.Control`: stop, pause), and returns a result with ``to_dict()``.
Draws go ``batch`` samples at a time with progress and cancel between chunks, and every task seeds in one place,
so one seed gives the same numbers from the CLI, the GUI or Python.
"""

from .evaluate import EvaluateResult, evaluate
from .exact import ExactResult, exact, exact_references
from .export import ModelFolderResult, StructuresResult, export_model, export_structures
from .paint import PaintTaskResult, paint
from .phase_diagram import PhaseDiagramResult, phase_diagram
from .runs import bundled_models, delete_run, describe_model, list_runs, model_info, open_run
from .sample import SampleResult, sample
from .train import TrainResult, open_trainer, train

__all__ = ["EvaluateResult", "ExactResult", "ModelFolderResult", "PaintTaskResult", "PhaseDiagramResult",
           "SampleResult", "StructuresResult", "TrainResult", "bundled_models", "delete_run", "describe_model",
           "evaluate", "exact", "exact_references", "export_model", "export_structures", "list_runs", "model_info",
           "open_run", "open_trainer", "paint", "phase_diagram", "sample", "train"]
