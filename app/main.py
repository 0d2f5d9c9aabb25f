"""``lattherm-gui``: entry point of the desktop app.

Imports neither Qt nor torch at module level, so ``--version`` and ``--help`` answer without a display.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from lattherm.engine import __version__  # engine/__init__.py defines the version and imports nothing

PROG = "lattherm-gui"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Desktop app for learning lattice thermodynamics with autoregressive models. "
        "The headless `lattherm` command does the same work from a terminal.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    return parser


def _display_available() -> bool:
    """Qt aborts the process when its platform plugin finds no display: check first and say so plainly."""
    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal", "vnc", "eglfs", "linuxfb"):
        return True
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    if not _display_available():
        print(f"{PROG}: no display found (set DISPLAY or WAYLAND_DISPLAY, or QT_QPA_PLATFORM=offscreen); "
              "the headless `lattherm` command does the same work from a terminal", file=sys.stderr)
        return 2
    from .gui import run  # Qt is imported only now, so --version/--help need no display

    return run()


if __name__ == "__main__":
    raise SystemExit(main())
