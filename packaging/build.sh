#!/usr/bin/env bash
# Build the frozen desktop app (PyInstaller onedir, from packaging/lattherm.spec) into dist/lattherm-gui/, then
# smoke-check it: `--version`, and the bundled CLI's `demo` with no display. Not part of CI: a build takes about
# 12 minutes of two cores and ~1 GB of disk (torch, scipy and matplotlib dominate).
#
#   bash packaging/build.sh              # build venv in build/venv (made on first use), build, smoke-check
#   bash packaging/build.sh --dry-run    # check everything up to the PyInstaller call, print the commands, build nothing
#
# Options: --venv DIR (the build venv; default build/venv), --python EXE (to make it; default python3),
# --torch SPEC (default torch==2.13.0; a CPU wheel keeps the bundle small), --skip-install (use the venv as it is).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/build/venv"
PYTHON=python3
TORCH="torch==2.13.0"
DRY=0
INSTALL=1

die() { echo "build.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --venv) [ $# -ge 2 ] || die "--venv needs a folder"; VENV="$(realpath -m "$2")"; shift ;;
        --python) [ $# -ge 2 ] || die "--python needs an executable"; PYTHON="$2"; shift ;;
        --torch) [ $# -ge 2 ] || die "--torch needs a requirement"; TORCH="$2"; shift ;;
        --skip-install) INSTALL=0 ;;
        -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

# run a step, or only show it with --dry-run
step() {
    echo "+ $*"
    if [ "$DRY" -eq 0 ]; then "$@"; fi
}

cd "$ROOT"
SPEC="packaging/lattherm.spec"
ENTRY="packaging/lattherm_frozen.py"
[ -f "$SPEC" ] || die "$SPEC not found"
[ -f "$ENTRY" ] || die "$ENTRY not found"
[ -f pyproject.toml ] || die "run from a lattherm checkout (no pyproject.toml in $ROOT)"
grep -q -- '--cli' "$ENTRY" || die "$ENTRY has no --cli entry: the smoke check needs it"

if [ ! -x "$VENV/bin/python" ]; then
    command -v "$PYTHON" >/dev/null || die "no $PYTHON to make the build venv with (use --python)"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "$PYTHON is older than 3.11"
    step "$PYTHON" -m venv "$VENV"
    [ "$INSTALL" -eq 1 ] || die "--skip-install, but $VENV has no python yet"
fi
PY="$VENV/bin/python"
if [ "$INSTALL" -eq 1 ]; then
    # a regular (non-editable) install: PyInstaller follows site-packages, not an editable finder
    step "$PY" -m pip install --upgrade pip
    step "$PY" -m pip install "$TORCH" "$ROOT[gui]" pyinstaller
elif [ "$DRY" -eq 0 ] || [ -x "$PY" ]; then
    "$PY" -c 'import PyInstaller, lattherm.app, torch' || die "$VENV lacks PyInstaller, lattherm or torch"
fi

DIST="$ROOT/dist"
APP="$DIST/lattherm-gui/lattherm-gui"
step "$PY" -m PyInstaller --noconfirm --distpath "$DIST" --workpath "$ROOT/build/pyinstaller" "$SPEC"
if [ "$DRY" -eq 1 ]; then
    echo "+ $APP --version"
    echo "+ env -u DISPLAY -u WAYLAND_DISPLAY $APP --cli demo"
    echo "dry run: checks passed, nothing built"
    exit 0
fi

[ -x "$APP" ] || die "the build left no $APP"
echo "+ $APP --version"
"$APP" --version | grep -q '^lattherm-gui ' || die "the frozen app's --version is wrong"
echo "+ $APP --cli demo (no display)"
env -u DISPLAY -u WAYLAND_DISPLAY LATTHERM_HOME="$(mktemp -d)" "$APP" --cli demo || die "the frozen CLI demo failed"
echo "built $(du -sh "$DIST/lattherm-gui" | cut -f1) in $DIST/lattherm-gui"
