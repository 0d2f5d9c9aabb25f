"""Small helpers shared by the panels."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QWidget

from lattherm.engine.progress import format_duration


def fmt_eta(seconds) -> str:
    return f"ETA {format_duration(seconds)}"


def dspin(value: float, lo: float, hi: float, step: float = 0.1, decimals: int = 3) -> QDoubleSpinBox:
    w = QDoubleSpinBox()
    w.setRange(lo, hi)
    w.setDecimals(decimals)
    w.setSingleStep(step)
    w.setValue(value)
    return w


def error_label() -> QLabel:
    lab = QLabel("")
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(lab.textInteractionFlags() | lab.textInteractionFlags().TextSelectableByMouse)
    return lab


def show_error(label: QLabel, exc) -> None:
    label.setText(f"<span style='color:#b00'>{getattr(exc, 'message', None) or exc}</span>")


def hrow(*widgets) -> QWidget:
    """Widgets side by side in one margin-less row (a form row that holds several fields)."""
    row = QWidget()
    h = QHBoxLayout(row)
    h.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        h.addWidget(w)
    return row
