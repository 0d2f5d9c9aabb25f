"""Where bundled resources and user runs live."""

from __future__ import annotations

import os
from pathlib import Path

#: Folder of bundled data (configs, the CuAu expansion, trained models). The same relative place in a
#: source checkout (repo/resources beside repo/engine) and in a wheel (lattherm/resources beside lattherm/engine).
RESOURCES = Path(__file__).resolve().parent.parent / "resources"


def lattherm_home() -> Path:
    """Root of user data: ``$LATTHERM_HOME`` if set, else the platform's user data folder."""
    env = os.environ.get("LATTHERM_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("lattherm"))


def runs_dir() -> Path:
    return lattherm_home() / "runs"
