import os

# Before anything imports Qt: no test may need a screen.
os.environ["QT_QPA_PLATFORM"] = "offscreen"

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def lattherm_home(tmp_path, monkeypatch):
    """Every test gets its own empty LATTHERM_HOME, so no test reads or writes the user's runs."""
    home = tmp_path / "lattherm-home"
    home.mkdir()
    monkeypatch.setenv("LATTHERM_HOME", str(home))
    return home
