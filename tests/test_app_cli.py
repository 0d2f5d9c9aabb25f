"""`lattherm-gui` answers --version and --help on a machine with no display (an SSH session, CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points, version

from lattherm.app.main import main


def run_gui(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"}}
    return subprocess.run(
        [sys.executable, "-m", "lattherm.app", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_matches_distribution_metadata():
    proc = run_gui("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"lattherm-gui {version('lattherm')}\n"


def test_help_lists_options():
    proc = run_gui("--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: lattherm-gui")
    assert "--version" in proc.stdout


def test_without_a_display_says_so_in_one_line_and_points_to_the_cli():
    """No display and no offscreen platform: a clear message and exit 2, not a Qt abort."""
    proc = run_gui()
    assert proc.returncode == 2, proc.stderr
    assert "no display" in proc.stderr and "`lattherm`" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_unknown_flag_is_a_usage_error():
    proc = run_gui("--no-such-flag")
    assert proc.returncode == 2
    assert "unrecognized arguments" in proc.stderr


def test_console_script_is_this_main():
    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "lattherm-gui"]
    assert script.value == "lattherm.app.main:main"
    assert script.load() is main
