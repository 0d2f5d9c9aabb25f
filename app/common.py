"""Small helpers shared by the panels."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox, QLabel


def fmt_eta(seconds) -> str:
    if seconds is None:
        return "ETA –"
    s = int(round(seconds))
    return f"ETA {s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"ETA {s // 60}:{s % 60:02d}"


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
