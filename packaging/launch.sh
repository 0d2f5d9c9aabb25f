#!/usr/bin/env bash
# The main job: set up this checkout (.ci/setup), then open the desktop GUI when there is a screen,
# or, with no screen, evaluate the bundled example model with the CLI (`lattherm demo`) and print its table.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash .ci/setup

if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
    echo "[launch] display found: starting lattherm-gui"
    exec .venv/bin/lattherm-gui "$@"
else
    echo "[launch] no display (\$DISPLAY / \$WAYLAND_DISPLAY unset): running 'lattherm demo'"
    exec .venv/bin/lattherm demo
fi
