"""The process boundary of the architecture: engine/ is Qt-free (it runs headless and in the engine process),
app/ is torch-free (the GUI starts fast and never does the numerical work itself)."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QT = {"PySide6", "pyqtgraph", "qasync", "shiboken6"}
TORCH = {"torch"}
DYNAMIC_IMPORTERS = {"import_module", "__import__"}


def sources(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


def imported_roots(path: Path) -> set[str]:
    """Top-level names a module imports: import statements anywhere in it (lazy ones inside functions too),
    and importlib.import_module("x") / __import__("x") calls with a literal name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in DYNAMIC_IMPORTERS and isinstance(node.args[0].value, str):
                roots.add(node.args[0].value.split(".")[0])
    return roots


def offenders(folder: str, banned: set[str]) -> dict[str, list[str]]:
    found = {}
    for path in sources(folder):
        bad = sorted(imported_roots(path) & banned)
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    return found


def test_scan_sees_both_packages():
    assert ROOT / "engine" / "__init__.py" in sources("engine")
    assert ROOT / "app" / "main.py" in sources("app")


def test_scanner_catches_lazy_and_dynamic_imports(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        textwrap.dedent(
            """
            import numpy as np
            def plot():
                from PySide6.QtWidgets import QWidget
                import importlib
                importlib.import_module("torch.nn")
            """
        )
    )
    assert imported_roots(sample) == {"numpy", "PySide6", "importlib", "torch"}


def test_engine_imports_no_qt():
    assert offenders("engine", QT) == {}


def test_app_imports_no_torch():
    assert offenders("app", TORCH) == {}


def run_isolated(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT.parent, capture_output=True, text=True, timeout=120
    )


def test_gui_entry_point_imports_neither_torch_nor_qt():
    """`lattherm-gui --version` must answer instantly and without a display: no torch, no Qt at import."""
    proc = run_isolated(
        "import sys, lattherm.app.main\n"
        "print(sorted(m for m in ('torch', 'PySide6', 'shiboken6', 'pyqtgraph') if m in sys.modules))"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_no_app_module_pulls_in_torch_transitively():
    """The AST scan sees direct imports only; importing every app module shows torch is not reached through
    lattherm.engine either."""
    proc = run_isolated(
        "import os, sys, pkgutil, importlib\n"
        "os.environ['QT_QPA_PLATFORM'] = 'offscreen'\n"
        "import lattherm.app as app\n"
        "names = [m.name for m in pkgutil.walk_packages(app.__path__, 'lattherm.app.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "print(len(names), 'torch' in sys.modules)"
    )
    assert proc.returncode == 0, proc.stderr
    count, torch_loaded = proc.stdout.split()
    assert int(count) >= 2  # at least main and __main__
    assert torch_loaded == "False"
