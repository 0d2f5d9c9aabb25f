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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print(f"{PROG}: the desktop GUI is not built yet; use the `lattherm` command line meanwhile (`lattherm --help`).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
