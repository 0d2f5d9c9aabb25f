"""Lattice pictures and the painting editor.

Lattices arrive as integer arrays of spins in {-1, +1} (0 = free / unknown while painting) with the lattice's own
shape: (L1, L2) for square lattices, (L1, L2, L3) for fcc, which is shown one layer (last index) at a time.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QWidget

COLORS = {-1: QColor(40, 60, 140), 1: QColor(245, 200, 60), 0: QColor(225, 225, 225)}


def layer_of(values: np.ndarray, layer: int) -> np.ndarray:
    return values if values.ndim == 2 else values[:, :, layer]


class LatticeView(QWidget):
    """One lattice layer as coloured squares; sites in ``fixed`` (non-zero) get a dark frame."""

    def __init__(self, values=None, fixed=None, cell: int = 16, parent=None):
        super().__init__(parent)
        self.cell = cell
        self.layer = 0
        self.values = np.zeros((4, 4), np.int8) if values is None else np.asarray(values)
        self.fixed = None if fixed is None else np.asarray(fixed)

    def set_values(self, values, fixed=None) -> None:
        self.values = np.asarray(values)
        self.fixed = None if fixed is None else np.asarray(fixed)
        self.layer = min(self.layer, self.n_layers() - 1)
        self.updateGeometry()
        self.update()

    def n_layers(self) -> int:
        return 1 if self.values.ndim == 2 else self.values.shape[2]

    def set_layer(self, k: int) -> None:
        self.layer = int(k)
        self.update()

    def grid_shape(self) -> tuple[int, int]:
        return self.values.shape[0], self.values.shape[1]

    def sizeHint(self) -> QSize:
        r, c = self.grid_shape()
        return QSize(c * self.cell + 1, r * self.cell + 1)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def cell_rect(self, i: int, j: int) -> QRect:
        return QRect(j * self.cell, i * self.cell, self.cell, self.cell)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        vals = layer_of(self.values, self.layer)
        fixed = None if self.fixed is None else layer_of(self.fixed, self.layer)
        p.setPen(QPen(QColor(255, 255, 255), 1))
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                p.fillRect(self.cell_rect(i, j), COLORS.get(int(np.sign(vals[i, j])), COLORS[0]))
        p.setPen(QPen(QColor(150, 150, 150), 1))
        for i in range(vals.shape[0] + 1):
            p.drawLine(0, i * self.cell, vals.shape[1] * self.cell, i * self.cell)
        for j in range(vals.shape[1] + 1):
            p.drawLine(j * self.cell, 0, j * self.cell, vals.shape[0] * self.cell)
        if fixed is not None:
            p.setPen(QPen(QColor(200, 20, 20), 2))
            for i, j in zip(*np.nonzero(fixed)):
                p.drawRect(self.cell_rect(int(i), int(j)).adjusted(2, 2, -2, -2))
        p.end()


PATTERNS = ("checkerboard", "stripes", "up", "down")


def pattern_values(pattern: str, rows: range, cols: range, layer: int = 0) -> np.ndarray:
    """Spins of a fill pattern on the sites rows x cols (global indices, so a pattern continues across fills):
    checkerboard +1 where i + j (+ layer on fcc) is even, stripes +1 on even rows, up / down all +1 / -1."""
    i = np.asarray(rows)[:, None]
    j = np.asarray(cols)[None, :]
    if pattern == "checkerboard":
        v = np.where((i + j + layer) % 2 == 0, 1, -1)
    elif pattern == "stripes":
        v = np.where(i % 2 == 0, 1, -1) + 0 * j
    elif pattern in ("up", "down"):
        v = np.full((len(rows), len(cols)), 1 if pattern == "up" else -1)
    else:
        raise ValueError(f"unknown pattern {pattern!r}; one of {', '.join(PATTERNS)}")
    return v.astype(np.int8)


class LatticeEditor(LatticeView):
    """Paint sites with a brush (+1, -1 or 0 = free); 'rect' fills a dragged rectangle; 'select' marks a rectangle
    that pattern fills (:meth:`fill_pattern`) cover, else they cover the whole layer; undo/redo whole strokes."""

    changed = Signal()

    def __init__(self, shape=(5, 5), cell: int = 28, parent=None):
        super().__init__(np.zeros(shape, np.int8), None, cell, parent)
        self.brush = 1
        self.tool = "pen"  # pen | rect | select
        self.selection: tuple[int, int, int, int] | None = None  # i0, i1, j0, j1 inclusive
        self.undo_stack: list[np.ndarray] = []
        self.redo_stack: list[np.ndarray] = []
        self._anchor: tuple[int, int] | None = None
        self._before: np.ndarray | None = None
        self.setMouseTracking(False)

    def reset(self, shape) -> None:
        self.values = np.zeros(tuple(shape), np.int8)
        self.selection = None
        self.undo_stack.clear()
        self.redo_stack.clear()
        self.layer = 0
        self.updateGeometry()
        self.update()
        self.changed.emit()

    def clear(self) -> None:
        self._push()
        self.values[...] = 0
        self.update()
        self.changed.emit()

    def set_selection(self, a, b) -> None:
        (i0, i1), (j0, j1) = sorted((a[0], b[0])), sorted((a[1], b[1]))
        self.selection = (i0, i1, j0, j1)
        self.update()

    def clear_selection(self) -> None:
        self.selection = None
        self.update()

    def fill_pattern(self, pattern: str) -> None:
        """Fill the selection (or the whole current layer) with a pattern, as one undoable step."""
        r, c = self.grid_shape()
        i0, i1, j0, j1 = self.selection or (0, r - 1, 0, c - 1)
        i1, j1 = min(i1, r - 1), min(j1, c - 1)
        v = pattern_values(pattern, range(i0, i1 + 1), range(j0, j1 + 1), self.layer if self.values.ndim == 3 else 0)
        before = self.values.copy()
        if self.values.ndim == 2:
            self.values[i0:i1 + 1, j0:j1 + 1] = v
        else:
            self.values[i0:i1 + 1, j0:j1 + 1, self.layer] = v
        if not np.array_equal(before, self.values):
            self.undo_stack.append(before)
            self.redo_stack.clear()
            self.changed.emit()
        self.update()

    def paintEvent(self, event) -> None:
        super().paintEvent(event)
        if self.selection is not None:
            i0, i1, j0, j1 = self.selection
            p = QPainter(self)
            p.setPen(QPen(QColor(0, 160, 0), 2, Qt.DashLine))
            p.drawRect(QRect(j0 * self.cell, i0 * self.cell, (j1 - j0 + 1) * self.cell, (i1 - i0 + 1) * self.cell))
            p.end()

    def _push(self) -> None:
        self.undo_stack.append(self.values.copy())
        self.redo_stack.clear()

    def undo(self) -> None:
        self._restore(self.undo_stack, self.redo_stack)

    def redo(self) -> None:
        self._restore(self.redo_stack, self.undo_stack)

    def _restore(self, source: list, keep: list) -> None:
        """Go back to the newest state on ``source``, keeping the present one on ``keep``."""
        if source:
            keep.append(self.values.copy())
            self.values = source.pop()
            self.update()
            self.changed.emit()

    def site_at(self, pos: QPoint) -> tuple[int, int] | None:
        i, j = pos.y() // self.cell, pos.x() // self.cell
        r, c = self.grid_shape()
        return (i, j) if 0 <= i < r and 0 <= j < c else None

    def _set(self, i: int, j: int) -> None:
        if self.values.ndim == 2:
            self.values[i, j] = self.brush
        else:
            self.values[i, j, self.layer] = self.brush

    def mousePressEvent(self, ev) -> None:
        site = self.site_at(ev.position().toPoint())
        if site is None or ev.button() != Qt.LeftButton:
            return
        self._before = self.values.copy()
        self._anchor = site
        if self.tool == "select":
            self.set_selection(site, site)
        elif self.tool == "pen":
            self._set(*site)
            self.update()

    def mouseMoveEvent(self, ev) -> None:
        site = self.site_at(ev.position().toPoint())
        if self._anchor is None or site is None:
            return
        if self.tool == "select":
            self.set_selection(self._anchor, site)
        elif self.tool == "pen":
            self._set(*site)
        else:
            self.values = self._before.copy()
            self._fill(self._anchor, site)
        self.update()

    def mouseReleaseEvent(self, ev) -> None:
        if self._anchor is None:
            return
        site = self.site_at(ev.position().toPoint()) or self._anchor
        if self.tool == "select":
            self.set_selection(self._anchor, site)
        if self.tool == "rect":
            self.values = self._before.copy()
            self._fill(self._anchor, site)
        if not np.array_equal(self.values, self._before):
            self.undo_stack.append(self._before)
            self.redo_stack.clear()
            self.changed.emit()
        self._anchor = self._before = None
        self.update()

    def _fill(self, a, b) -> None:
        (i0, i1), (j0, j1) = sorted((a[0], b[0])), sorted((a[1], b[1]))
        if self.values.ndim == 2:
            self.values[i0:i1 + 1, j0:j1 + 1] = self.brush
        else:
            self.values[i0:i1 + 1, j0:j1 + 1, self.layer] = self.brush

    def fixed_flat(self) -> list[int]:
        """Sites in the engine's order (row-major over the lattice grid), 0 = free."""
        return [int(v) for v in self.values.reshape(-1)]
