"""Lattice pictures and the painting editor.

Lattices arrive as integer arrays of spins in {-1, +1} (0 = free / unknown while painting) with the lattice's own
shape: (L1, L2) for square lattices, (L1, L2, L3) for 3D ones (fcc), whose layers are the planes of constant last
index. Each layer is drawn as one QImage scaled without smoothing (one pixel per site), so a 64x64 lattice costs one
image, not 4096 rectangles; the editor sits in a scroll area and zooms, so a large target never grows the window.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

COLORS = {-1: QColor(40, 60, 140), 1: QColor(245, 200, 60), 0: QColor(225, 225, 225)}
_RGBA = {k: np.array([c.red(), c.green(), c.blue(), 255], np.uint8) for k, c in COLORS.items()}
LAYER_FRAME = QColor(230, 90, 20)
MIN_CELL, MAX_CELL = 3, 48


def layer_of(values: np.ndarray, layer: int) -> np.ndarray:
    return values if values.ndim == 2 else values[:, :, layer]


def layer_image(values: np.ndarray) -> QImage:
    """A (rows, cols) array of spins as an RGBA image, one pixel per site (free sites grey)."""
    v = np.sign(np.asarray(values)).astype(np.int8)
    rgba = np.empty(v.shape + (4,), np.uint8)
    for k, c in _RGBA.items():
        rgba[v == k] = c
    rgba = np.ascontiguousarray(rgba)
    img = QImage(rgba.data, v.shape[1], v.shape[0], 4 * v.shape[1], QImage.Format_RGBA8888)
    return img.copy()  # own the pixels: the numpy buffer goes away


def tile_columns(n_layers: int) -> int:
    """Layers of a 3D lattice tiled in a near-square block: this many tiles per row."""
    return max(1, math.ceil(math.sqrt(n_layers)))


class LatticeView(QWidget):
    """A lattice as coloured squares; sites in ``fixed`` (non-zero) get a dark red frame. A 3D lattice is shown
    with all its layers tiled (``tiled``, the current layer framed) or one layer at a time."""

    def __init__(self, values=None, fixed=None, cell: int = 16, parent=None, tiled: bool = True):
        super().__init__(parent)
        self.cell = cell
        self.layer = 0
        self.tiled = tiled
        self.values = np.zeros((4, 4), np.int8) if values is None else np.asarray(values)
        self.fixed = None if fixed is None else np.asarray(fixed)
        self._fit()

    def set_values(self, values, fixed=None) -> None:
        self.values = np.asarray(values)
        self.fixed = None if fixed is None else np.asarray(fixed)
        self.layer = min(self.layer, self.n_layers() - 1)
        self._fit()
        self.update()

    def n_layers(self) -> int:
        return 1 if self.values.ndim == 2 else self.values.shape[2]

    def set_layer(self, k: int) -> None:
        self.layer = int(k)
        self.update()

    def grid_shape(self) -> tuple[int, int]:
        return self.values.shape[0], self.values.shape[1]

    def _tiles(self) -> list[int]:
        """The layers drawn: all of them when tiled, else the current one."""
        return list(range(self.n_layers())) if self.tiled and self.n_layers() > 1 else [self.layer]

    def gap(self) -> int:
        return max(4, self.cell // 2)

    def tile_origin(self, k: int) -> QPoint:
        """Top-left pixel of layer ``k``'s tile (0, 0 when one layer is shown)."""
        if len(self._tiles()) == 1:
            return QPoint(0, 0)
        r, c = self.grid_shape()
        cols = tile_columns(self.n_layers())
        return QPoint((k % cols) * (c * self.cell + self.gap()), (k // cols) * (r * self.cell + self.gap()))

    def sizeHint(self) -> QSize:
        r, c = self.grid_shape()
        n = len(self._tiles())
        if n == 1:
            return QSize(c * self.cell + 1, r * self.cell + 1)
        cols = tile_columns(n)
        rows = math.ceil(n / cols)
        return QSize(cols * c * self.cell + (cols - 1) * self.gap() + 1, rows * r * self.cell + (rows - 1) * self.gap() + 1)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def _fit(self) -> None:
        self.updateGeometry()
        if self.parentWidget() is None or not self.parentWidget().layout():
            self.resize(self.sizeHint())  # in a scroll area the widget has the size it asks for

    def cell_rect(self, i: int, j: int, k: int | None = None) -> QRect:
        o = self.tile_origin(self.layer if k is None else k)
        return QRect(o.x() + j * self.cell, o.y() + i * self.cell, self.cell, self.cell)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        r, c = self.grid_shape()
        tiles = self._tiles()
        for k in tiles:
            o = self.tile_origin(k)
            vals = layer_of(self.values, k)
            p.drawImage(QRect(o.x(), o.y(), c * self.cell, r * self.cell), layer_image(vals))
            if self.cell >= 6:
                p.setPen(QPen(QColor(150, 150, 150), 1))
                for i in range(r + 1):
                    p.drawLine(o.x(), o.y() + i * self.cell, o.x() + c * self.cell, o.y() + i * self.cell)
                for j in range(c + 1):
                    p.drawLine(o.x() + j * self.cell, o.y(), o.x() + j * self.cell, o.y() + r * self.cell)
            if self.fixed is not None:
                fixed = layer_of(self.fixed, k)
                w = 2 if self.cell >= 8 else 1
                p.setPen(QPen(QColor(200, 20, 20), w))
                inset = min(2, self.cell // 4)
                for i, j in zip(*np.nonzero(fixed)):
                    p.drawRect(self.cell_rect(int(i), int(j), k).adjusted(inset, inset, -inset - 1, -inset - 1))
            if len(tiles) > 1 and k == self.layer:
                p.setPen(QPen(LAYER_FRAME, 2))
                p.drawRect(QRect(o.x(), o.y(), c * self.cell, r * self.cell).adjusted(-1, -1, 1, 1))
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
    that pattern fills (:meth:`fill_pattern`) cover, else they cover the whole layer; undo/redo whole strokes.

    Other views (the 3D crystal) paint through :meth:`begin_stroke`, :meth:`paint_site` and :meth:`end_stroke`, so
    their strokes share this undo history. ``edited`` fires on every change, mid-stroke too (live counts);
    ``changed`` once a stroke or step is complete."""

    changed = Signal()
    edited = Signal()
    zoomed = Signal(int)  # the new cell size in pixels

    def __init__(self, shape=(5, 5), cell: int = 28, parent=None):
        super().__init__(np.zeros(shape, np.int8), None, cell, parent, tiled=False)
        self.brush = 1
        self.tool = "pen"  # pen | rect | select
        self.selection: tuple[int, int, int, int] | None = None  # i0, i1, j0, j1 inclusive
        self.undo_stack: list[np.ndarray] = []
        self.redo_stack: list[np.ndarray] = []
        self._anchor: tuple[int, int] | None = None
        self._before: np.ndarray | None = None
        self.setMouseTracking(False)
        self.setFocusPolicy(Qt.StrongFocus)  # Ctrl+Z and friends reach the panel's shortcuts from here

    def reset(self, shape) -> None:
        self.values = np.zeros(tuple(shape), np.int8)
        self.selection = None
        self.undo_stack.clear()
        self.redo_stack.clear()
        self.layer = 0
        self._fit()
        self.update()
        self.changed.emit()
        self.edited.emit()

    def n_fixed(self) -> int:
        return int(np.count_nonzero(self.values))

    # ---- zoom ------------------------------------------------------------------------------------------------
    def set_cell(self, px: int) -> None:
        px = int(min(max(px, MIN_CELL), MAX_CELL))
        if px != self.cell:
            self.cell = px
            self._fit()
            self.update()
            self.zoomed.emit(px)

    def zoom(self, steps: float) -> None:
        """Zoom in (steps > 0) or out by about 25 % a step."""
        self.set_cell(round(self.cell * 1.25 ** steps) if abs(steps) else self.cell)

    def fit_to(self, width: int, height: int) -> None:
        """The cell size that shows the whole layer in width x height pixels."""
        r, c = self.grid_shape()
        self.set_cell(max(MIN_CELL, min(36, (width - 2) // c, (height - 2) // r)))

    def wheelEvent(self, ev) -> None:
        if ev.modifiers() & Qt.ControlModifier:
            self.zoom(1 if ev.angleDelta().y() > 0 else -1)
            ev.accept()
        else:
            ev.ignore()  # the scroll area scrolls

    # ---- edits -----------------------------------------------------------------------------------------------
    def clear(self) -> None:
        if not self.values.any():
            return
        self._push()
        self.values[...] = 0
        self.update()
        self.changed.emit()
        self.edited.emit()

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
            self.edited.emit()
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
            self.edited.emit()

    # ---- strokes (this widget's mouse, or another view's) ----------------------------------------------------
    def begin_stroke(self) -> None:
        self._before = self.values.copy()

    def paint_site(self, index: tuple) -> None:
        """Set one site (a full index: (i, j) or (i, j, k)) to the brush, inside a stroke."""
        if self.values[index] != self.brush:
            self.values[index] = self.brush
            self.update()
            self.edited.emit()

    def end_stroke(self) -> None:
        """One undo step for the whole stroke, if it changed anything."""
        if self._before is not None and not np.array_equal(self.values, self._before):
            self.undo_stack.append(self._before)
            self.redo_stack.clear()
            self.changed.emit()
        self._before = None
        self.edited.emit()

    def site_at(self, pos: QPoint) -> tuple[int, int] | None:
        i, j = pos.y() // self.cell, pos.x() // self.cell
        r, c = self.grid_shape()
        return (i, j) if 0 <= i < r and 0 <= j < c else None

    def _set(self, i: int, j: int) -> None:
        self.paint_site((i, j) if self.values.ndim == 2 else (i, j, self.layer))

    def mousePressEvent(self, ev) -> None:
        site = self.site_at(ev.position().toPoint())
        if site is None or ev.button() != Qt.LeftButton:
            return
        self.begin_stroke()
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
            self.edited.emit()
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
        self._anchor = None
        self.end_stroke()
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
