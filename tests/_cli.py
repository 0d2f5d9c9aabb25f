"""Running ``lattherm`` in-process from a test: the exit code and what it printed."""

from __future__ import annotations

from lattherm.engine.cli.main import main


def cli(capsys, *args) -> tuple[int, str, str]:
    """Run ``lattherm ARGS`` in-process; returns (exit code, stdout, stderr). argparse's SystemExit is an exit code."""
    try:
        rc = main([str(a) for a in args])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err
