"""Small GUI preferences (last folders of file dialogs) in a JSON file in the platform's config folder.

``LATTHERM_HOME`` (tests, portable setups) keeps the file beside the runs instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from lattherm.engine.store import atomic_write_json


def settings_path() -> Path:
    home = os.environ.get("LATTHERM_HOME")
    if home:
        return Path(home).expanduser() / "gui-settings.json"
    from platformdirs import user_config_dir

    return Path(user_config_dir("lattherm")) / "gui-settings.json"


def load() -> dict:
    try:
        data = json.loads(settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def get(key: str, default=None):
    return load().get(key, default)


def put(key: str, value) -> None:
    data = load()
    data[key] = value
    path = settings_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, data)
    except OSError:
        pass  # preferences are a convenience; never fail an action over them
