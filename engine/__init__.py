"""lattherm engine: lattices, systems, exact references, models, training, sampling, analysis, runs.

No Qt in here: the engine runs headless (CLI, cluster jobs) and inside the GUI's engine process.
"""

__version__ = "0.1.0"
