"""``lattherm-gui``: entry point of the desktop app.

Imports neither Qt nor torch at module level, so ``--version`` and ``--help`` answer without a display.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--engine", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.engine:  # a frozen app relaunches itself as its engine process
        from lattherm.engine.server.main import main as engine_main

        return engine_main()
    from .gui import run  # Qt is imported only now, so --version/--help need no display

    return run()


if __name__ == "__main__":
    raise SystemExit(main())
