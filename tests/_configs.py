"""The one builder of small run configs for the tests (seconds to train on one CPU thread), and the engine
process's settings for the tests that start one.

A plain module, so a test module can build configs at import or parametrize time; tests/conftest.py offers the same
function as the ``tiny_config`` fixture. Each test states what it changes as ``"table.key": value`` overrides on
top of one base config, so a test's numbers are visible where it runs.
"""

from __future__ import annotations

from lattherm.engine.config import toml_text

#: the environment of every engine process the tests start: one thread, as in-process tests have
ENGINE_ENV = {"OMP_NUM_THREADS": "1", "LATTHERM_THREADS": "1"}

#: the GUI and engine-server runs: a one-layer net over the paper's Ising ranges, a metric record every step, and
#: no thread count (the engine process takes it from LATTHERM_THREADS)
ENGINE_RUN = {"model.layers": 1, "conditions.T": [1.5, 3.5], "conditions.mu": [-0.4, 0.4], "training.lr": 2e-3,
              "training.log_every": 1, "training.checkpoint_every": 20, "training.threads": None}


def tiny_config(size: str = "3x3", kind: str = "ao-arm", arch: str = "mlp", steps: int = 10, **overrides) -> str:
    """TOML text of a tiny Ising run: hidden 16 x 2 layers, a 2 x 2 condition grid, batch 16, seed 0, one CPU thread.

    ``overrides`` map ``"table.key"`` to a Python value (a new table or key is added; None removes the key), e.g.
    ``tiny_config(steps=5, **{"training.lr": 3e-3, "training.seed": None})``.
    """
    tables: dict[str, dict] = {
        "system": {"name": "ising", "size": size},
        "model": {"kind": kind, "arch": arch, "hidden": 16, "layers": 2},
        "conditions": {"T": [2.0, 3.0], "T_points": 2, "mu": [0.0, 0.2], "mu_points": 2},
        "training": {"batch": 16, "steps": steps, "checkpoint_every": 5, "log_every": 2, "device": "cpu",
                     "threads": 1, "seed": 0},
    }
    for dotted, value in overrides.items():
        table, sep, key = dotted.partition(".")
        if not sep or not key:
            raise ValueError(f"override {dotted!r} is not 'table.key'")
        if value is None:
            tables.get(table, {}).pop(key, None)
        else:
            tables.setdefault(table, {})[key] = value
    return toml_text(tables)
