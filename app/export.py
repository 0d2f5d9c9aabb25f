"""Figures and data out of the GUI: PNG/SVG through pyqtgraph's exporters, CSV of curves and tables, NPZ lattices.

Every function takes the destination path; ``ask_path`` is the file dialog that remembers its folder per kind.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters as pgexp
from PySide6.QtWidgets import QFileDialog, QLabel, QWidget

from lattherm.engine.store import atomic_write_bytes, atomic_write_text

from . import settings
from .common import show_error


def ask_path(parent: QWidget, title: str, suggested: str, filters: str, key: str = "export_dir") -> str | None:
    folder = settings.get(key) or str(Path.home())
    path, _ = QFileDialog.getSaveFileName(parent, title, str(Path(folder) / suggested), filters)
    if not path:
        return None
    settings.put(key, str(Path(path).parent))
    return path


def _plot_item(plot):
    """What an exporter draws: a PlotWidget's plot, a layout widget's whole scene (plot and legend), or the item."""
    if isinstance(plot, pg.PlotWidget):
        return plot.getPlotItem()
    if isinstance(plot, pg.GraphicsLayoutWidget):
        return plot.scene()
    return plot


def export_png(plot, path: str | Path, width: int = 1200) -> Path:
    ex = pgexp.ImageExporter(_plot_item(plot))
    ex.parameters()["width"] = width
    ex.export(str(path))
    return Path(path)


def export_svg(plot, path: str | Path) -> Path:
    ex = pgexp.SVGExporter(_plot_item(plot))
    ex.export(str(path))
    return Path(path)


def export_figure(plot, path: str | Path) -> Path:
    return export_svg(plot, path) if str(path).lower().endswith(".svg") else export_png(plot, path)


def write_csv(path: str | Path, header: list[str], rows) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for row in rows:
        w.writerow(["" if v is None else (repr(float(v)) if isinstance(v, (float, np.floating)) else v) for v in row])
    atomic_write_text(Path(path), buf.getvalue())
    return Path(path)


def request_extxyz(parent: QWidget, client, samples_path: str, suggested: str, status: QLabel) -> None:
    """Ask where, then have the engine write the alloy samples file as extended XYZ (the structure writer lives
    in the engine process; the GUI never imports it); the outcome is shown in ``status``."""
    path = ask_path(parent, "Export structures", suggested, "Extended XYZ (*.extxyz *.xyz)", key="structures_dir")
    if path:
        client.request("export_structures", {"samples": str(samples_path), "out": path, "format": "extxyz",
                                                   "overwrite": True},  # the save dialog asked
                       lambda res: status.setText(f"wrote {res['frames']} structures of {res['atoms']} atoms "
                                                  f"to {res['path']}"),
                       lambda e: show_error(status, e))


def write_npz(path: str | Path, **arrays) -> Path:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
