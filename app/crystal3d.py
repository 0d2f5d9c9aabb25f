"""A 3D view of a crystal supercell: every site a shaded disc at its real Cartesian position, drawn back to front
with QPainter, so it needs no GL context (it renders offscreen, under Xvfb and in screenshots alike).

Positions come from the lattice the engine describes (``model_info``: ``size``, primitive ``vectors`` as rows,
``unit_length`` in angstrom): site g (row-major over the grid, the engine's site order) sits at g @ vectors, so any
one-site Bravais lattice (fcc, bcc, sc) is placed without lattice-specific maths here. The projection and picking are
pure functions of a :class:`Camera`, which tests call directly: a click at the projected centre of site i picks i,
and where discs overlap the front-most wins.

Mouse: drag from a site to paint sites with the editor's brush (the press also makes that site's layer current);
drag from empty space or with the right button to rotate; middle button (or Shift+drag) to pan; wheel to zoom;
double-click to reset the camera.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPen, QRadialGradient
from PySide6.QtWidgets import QWidget

from .lattice import COLORS

RADIUS = 0.32  # disc radius as a fraction of the nearest-neighbour distance
FIXED_RING = QColor(200, 20, 20)
LAYER_RING = QColor(20, 20, 20)


# ---- geometry (pure) -------------------------------------------------------------------------------------------------
def site_grid(shape) -> np.ndarray:
    """(N, dim) integer cell coordinates in the engine's site order (row-major over ``shape``)."""
    axes = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    return np.stack([a.reshape(-1) for a in axes], axis=1)


def site_positions(shape, vectors) -> np.ndarray:
    """(N, 3) Cartesian positions g @ vectors; a 2D lattice lies in the z = 0 plane."""
    A = np.asarray(vectors, dtype=np.float64)
    if A.shape != (len(shape), len(shape)):
        raise ValueError(f"primitive vectors of shape {A.shape} do not fit a {len(shape)}D lattice {tuple(shape)}")
    r = site_grid(shape) @ A
    return np.pad(r, ((0, 0), (0, 3 - r.shape[1]))) if r.shape[1] < 3 else r


def _short_vectors(vectors, reach: int = 2) -> np.ndarray:
    A = np.asarray(vectors, dtype=np.float64)
    d = A.shape[0]
    m = np.stack(np.meshgrid(*[np.arange(-reach, reach + 1)] * d, indexing="ij"), -1).reshape(-1, d)
    v = m @ A
    return v[np.abs(v).sum(1) > 1e-9]


def nearest_distance(vectors) -> float:
    """The nearest-neighbour distance of the Bravais lattice."""
    return float(np.sqrt((_short_vectors(vectors) ** 2).sum(1)).min())


def conventional_edge(vectors) -> float | None:
    """Edge of the conventional cubic cell: the shortest lattice vector along x, when the same length lies along
    y and z too (fcc: a = 2 in units of a/2; bcc likewise; sc: 1); None for a non-cubic lattice."""
    v = _short_vectors(vectors, reach=3)
    if v.shape[1] != 3:
        return None
    edges = []
    for axis in range(3):
        others = [k for k in range(3) if k != axis]
        along = v[(np.abs(v[:, others]) < 1e-9).all(1) & (v[:, axis] > 1e-9)]
        if not len(along):
            return None
        edges.append(float(along[:, axis].min()))
    return edges[0] if np.allclose(edges, edges[0]) else None


def rotation(yaw: float, pitch: float) -> np.ndarray:
    """World -> camera rotation: turn by ``yaw`` about the world z axis, then tilt by ``pitch`` about the screen's
    x axis. Camera frame: x right, y up, z towards the viewer."""
    cy, sy, cp, sp = math.cos(yaw), math.sin(yaw), math.cos(pitch), math.sin(pitch)
    Rz = np.array([[cy, -sy, 0.0], [sy, cy, 0.0], [0.0, 0.0, 1.0]])
    # z up on screen before the tilt: map world (x, y, z) to camera (x, z, -y), then tilt about camera x
    up = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    Rx = np.array([[1.0, 0.0, 0.0], [0.0, cp, -sp], [0.0, sp, cp]])
    return Rx @ up @ Rz


@dataclass(frozen=True)
class Camera:
    """What the view shows: a rotation (yaw, pitch in radians), a zoom over the fit-to-window scale, a pan in
    pixels, the point looked at and the radius of the scene; ``perspective`` shrinks far sites."""

    center: tuple = (0.0, 0.0, 0.0)
    extent: float = 1.0
    yaw: float = math.radians(-30)
    pitch: float = math.radians(25)
    zoom: float = 1.0
    pan: tuple = (0.0, 0.0)
    perspective: bool = True
    distance: float = 6.0  # eye distance in units of ``extent`` (perspective only)

    @classmethod
    def fit(cls, points: np.ndarray, width: int = 400, height: int = 400, **kw) -> "Camera":
        """Looking at the middle of ``points`` from the side that shows them widest (a long fcc supercell is not
        seen end-on), turned a little off that face so depth shows, zoomed so they fill the view."""
        lo, hi = points.min(0), points.max(0)
        c = (lo + hi) / 2
        ext = float(np.sqrt(((points - c) ** 2).sum(1)).max()) or 1.0
        q = points - c
        if "yaw" not in kw and "pitch" not in kw:
            best = None
            for yaw in np.radians(np.arange(0, 180, 7.5)):
                for pitch in np.radians(np.arange(-45, 46, 7.5)):
                    xy = (q @ rotation(yaw, pitch).T)[:, :2]
                    area = float(np.ptp(xy[:, 0]) * np.ptp(xy[:, 1]))
                    if best is None or area > best[0] + 1e-9:
                        best = (area, yaw, pitch)
            kw["yaw"], kw["pitch"] = best[1] + math.radians(20), best[2] + math.radians(15)
        xy = np.abs((q @ rotation(kw["yaw"], kw["pitch"]).T)[:, :2]).max(0) + 1e-9 * ext
        fill = min(0.40 * width / xy[0], 0.40 * height / xy[1])  # pixels per unit that fill 80 % of the view
        kw.setdefault("zoom", fill * ext / (0.46 * min(width, height)))
        cam = cls(center=tuple(float(v) for v in c), extent=ext, **kw)
        # the centres within 72 % of the view as drawn (near sites are larger in perspective; a site's sphere and
        # the "a = ..." label need the rest): exact in one step, screen offsets scale with the zoom
        dx, dy = np.abs(project(points, cam, width, height).xy - [width / 2, height / 2]).max(0) + 1e-9
        cam = replace(cam, zoom=cam.zoom * min(0.36 * width / dx, 0.36 * height / dy))
        return cam


@dataclass
class Projection:
    xy: np.ndarray  # (N, 2) screen pixels
    depth: np.ndarray  # (N,) larger = farther from the viewer
    scale: np.ndarray  # (N,) pixels per world unit at each point


def project(points, cam: Camera, width: int, height: int) -> Projection:
    """Screen positions of world points for ``cam`` in a ``width`` x ``height`` view."""
    p = (np.asarray(points, dtype=np.float64) - np.asarray(cam.center)) @ rotation(cam.yaw, cam.pitch).T
    s = cam.zoom * 0.46 * min(width, height) / cam.extent
    if cam.perspective:
        d = cam.distance * cam.extent
        f = d / np.maximum(d - p[:, 2], 1e-6 * d)  # 1 in the plane through the centre
    else:
        f = np.ones(len(p))
    x = width / 2 + cam.pan[0] + s * f * p[:, 0]
    y = height / 2 + cam.pan[1] - s * f * p[:, 1]
    return Projection(np.stack([x, y], 1), -p[:, 2], s * f)


def pick(points, cam: Camera, width: int, height: int, x: float, y: float, radius: float) -> int | None:
    """The site whose disc (world radius ``radius``) covers the pixel (x, y); where several do, the front-most."""
    pr = project(points, cam, width, height)
    d2 = ((pr.xy - np.array([x, y])) ** 2).sum(1)
    hit = np.flatnonzero(d2 <= (radius * pr.scale) ** 2)
    if not len(hit):
        return None
    return int(hit[np.argmin(pr.depth[hit])])


# ---- the widget ----------------------------------------------------------------------------------------------------
@dataclass
class _Drag:
    mode: str  # paint | rotate | pan
    x: float
    y: float
    cam: Camera = field(default=None)


class CrystalView(QWidget):
    """The sites of a 3D lattice in 3D. With an editor attached (:meth:`attach`), it shows and paints the editor's
    values (free sites grey, the editor's current layer ringed, the rest faded); without one it shows ``values``
    with ``fixed`` sites ringed red (an in-painted result)."""

    layer_picked = Signal(int)  # a press on a site of another layer: make that layer current

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(220, 150)  # small enough for the painting panel on a 768-pixel screen
        self.setFocusPolicy(Qt.ClickFocus)
        self.editor = None
        self.shape: tuple = ()
        self.points = np.zeros((0, 3))
        self.values = np.zeros(0, np.int8)
        self.fixed: np.ndarray | None = None
        self.layer = 0
        self.highlight_layer = True
        self.labels = ("+1", "−1")
        self.caption = ""
        self.edge: float | None = None
        self.unit_length = 1.0
        self.cell = np.eye(3)
        self.nn = 1.0
        self.cam = Camera()
        self._drag: _Drag | None = None
        self._auto_cam = True

    # ---- content ---------------------------------------------------------------------------------------------
    def set_lattice(self, shape, vectors, unit_length: float = 1.0) -> None:
        """Place the sites of a ``shape`` supercell of the lattice with primitive ``vectors`` (rows)."""
        shape = tuple(int(v) for v in shape)
        new = shape != self.shape or not np.allclose(np.asarray(vectors, float), getattr(self, "_vectors", np.nan))
        self.shape = shape
        self._vectors = np.asarray(vectors, dtype=np.float64)
        self.points = site_positions(shape, vectors)
        self.nn = nearest_distance(vectors)
        self.edge = conventional_edge(vectors)
        self.unit_length = float(unit_length)
        A = np.asarray(vectors, dtype=np.float64)
        cell = np.asarray(shape)[:, None] * A
        self.cell = np.pad(cell, ((0, 3 - cell.shape[0]), (0, 3 - cell.shape[1])))
        if self.values.shape != (len(self.points),):
            self.values = np.zeros(len(self.points), np.int8)
            self.fixed = None
        self.layer = min(self.layer, self.n_layers() - 1)
        if new:
            self.reset_camera()
        self.update()

    def attach(self, editor) -> None:
        """Show and paint ``editor``'s values (a :class:`~.lattice.LatticeEditor` of the same shape)."""
        self.editor = editor
        editor.edited.connect(self.update)
        editor.changed.connect(self.update)

    def set_values(self, values, fixed=None) -> None:
        """A result to show: values in the lattice's shape (or flat); ``fixed`` non-zero where a site was kept."""
        self.values = np.asarray(values).reshape(-1).astype(np.int8)
        self.fixed = None if fixed is None else (np.asarray(fixed).reshape(-1) != 0)
        self.update()

    def set_labels(self, up: str, down: str) -> None:
        self.labels = (up, down)
        self.update()

    def n_layers(self) -> int:
        return self.shape[-1] if len(self.shape) == 3 else 1

    def set_layer(self, k: int) -> None:
        self.layer = int(k)
        self.update()

    def current_values(self) -> np.ndarray:
        if self.editor is not None and self.editor.values.size == len(self.points):
            return self.editor.values.reshape(-1)
        return self.values

    def site_layer(self, i: int) -> int:
        return int(i % self.shape[-1]) if len(self.shape) == 3 else 0

    def site_index(self, i: int) -> tuple:
        return tuple(int(v) for v in np.unravel_index(i, self.shape))

    # ---- camera ----------------------------------------------------------------------------------------------
    def reset_camera(self) -> None:
        self.cam = Camera.fit(self._scene_points(), self.width(), self.height()) if len(self.points) else Camera()
        self._auto_cam = True  # refitted on resize until the user turns, pans or zooms
        self.update()

    def resizeEvent(self, ev) -> None:
        if self._auto_cam and len(self.points):
            self.cam = Camera.fit(self._scene_points(), self.width(), self.height())
        super().resizeEvent(ev)

    def _scene_points(self) -> np.ndarray:
        """Sites, supercell corners and the conventional cube's corners: what the fit must keep in view (the cube
        at the origin reaches outside a thin supercell such as fcc 2x2x4)."""
        unit = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)
        parts = [self.points, unit @ self.cell]
        if self.edge is not None:
            parts.append(self.edge * unit)
        return np.vstack(parts)

    def projection(self) -> Projection:
        return project(self.points, self.cam, self.width(), self.height())

    def site_at(self, x: float, y: float) -> int | None:
        if not len(self.points):
            return None
        return pick(self.points, self.cam, self.width(), self.height(), x, y, RADIUS * self.nn)

    def screen_pos(self, i: int) -> QPointF:
        xy = self.projection().xy[i]
        return QPointF(float(xy[0]), float(xy[1]))

    def sizeHint(self) -> QSize:
        return QSize(420, 380)

    # ---- drawing ---------------------------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.Antialiasing)
        p.fillRect(self.rect(), QColor(250, 250, 252))
        if not len(self.points):
            p.drawText(self.rect(), Qt.AlignCenter, "no 3D lattice")
            p.end()
            return
        w, h = self.width(), self.height()
        self._draw_box(p, w, h)
        pr = self.projection()
        vals = self.current_values()
        fixed = self.fixed if self.editor is None else None
        layers = np.arange(len(self.points)) % self.shape[-1] if len(self.shape) == 3 else np.zeros(len(self.points))
        on_layer = layers == self.layer
        many = len(self.points) > 6000
        rad = RADIUS * self.nn * pr.scale
        for i in np.argsort(-pr.depth, kind="stable"):
            x, y = pr.xy[i]
            r = float(rad[i])
            base = COLORS.get(int(np.sign(vals[i])), COLORS[0])
            faded = self.highlight_layer and self.n_layers() > 1 and not on_layer[i]
            alpha = 70 if faded else 255
            if many:
                c = QColor(base)
                c.setAlpha(alpha)
                p.setPen(Qt.NoPen)
                p.setBrush(c)
            else:
                g = QRadialGradient(QPointF(x - 0.35 * r, y - 0.35 * r), 1.3 * r)
                hi, lo = QColor(base).lighter(150), QColor(base).darker(140)
                hi.setAlpha(alpha)
                lo.setAlpha(alpha)
                g.setColorAt(0.0, hi)
                g.setColorAt(1.0, lo)
                p.setBrush(QBrush(g))
                edge = QColor(60, 60, 60, 60 if faded else 160)
                p.setPen(QPen(edge, 0.8))
            p.drawEllipse(QPointF(x, y), r, r)
            if fixed is not None and fixed[i]:
                p.setBrush(Qt.NoBrush)
                p.setPen(QPen(FIXED_RING if not faded else QColor(200, 20, 20, 90), max(1.5, r * 0.22)))
                p.drawEllipse(QPointF(x, y), r * 1.18, r * 1.18)
            elif self.highlight_layer and self.n_layers() > 1 and on_layer[i] and not many:
                p.setBrush(Qt.NoBrush)
                p.setPen(QPen(LAYER_RING, 1.2))
                p.drawEllipse(QPointF(x, y), r * 1.08, r * 1.08)
        self._draw_triad(p, w, h)
        self._draw_key(p, w, h)
        p.end()

    def _line(self, p: QPainter, a, b, w: int, h: int) -> None:
        xy = project(np.array([a, b]), self.cam, w, h).xy
        p.drawLine(QPointF(*xy[0]), QPointF(*xy[1]))

    def _draw_box(self, p: QPainter, w: int, h: int) -> None:
        """The supercell's edges (light) and the conventional cubic cell at the origin (dark, edge a)."""
        A = self.cell
        p.setPen(QPen(QColor(170, 170, 190), 1, Qt.DashLine))
        corners = {(a, b, c): np.array([a, b, c], float) @ A for a in (0, 1) for b in (0, 1) for c in (0, 1)}
        for k, v in corners.items():
            for ax in range(3):
                if k[ax] == 0:
                    k2 = tuple(1 if j == ax else k[j] for j in range(3))
                    self._line(p, v, corners[k2], w, h)
        if self.edge is None:
            return
        a = self.edge
        p.setPen(QPen(QColor(90, 90, 110), 1.4))
        cube = {k: a * np.array(k, float) for k in corners}
        for k, v in cube.items():
            for ax in range(3):
                if k[ax] == 0:
                    k2 = tuple(1 if j == ax else k[j] for j in range(3))
                    self._line(p, v, cube[k2], w, h)
        o = project(np.array([[a / 2, 0.0, -0.15 * a]]), self.cam, w, h).xy[0]
        p.setPen(QColor(70, 70, 90))
        p.drawText(QPointF(o[0] + 4, o[1] + 12), f"a = {a * self.unit_length:.2f} Å" if self.unit_length != 1.0
                   else f"a = {a:g}")

    def _draw_triad(self, p: QPainter, w: int, h: int) -> None:
        """x, y, z (the conventional cubic axes) in the lower left corner, turning with the crystal."""
        R = rotation(self.cam.yaw, self.cam.pitch)
        o = QPointF(34, h - 34)
        p.setFont(QFont(p.font().family(), 8))
        for k, (name, col) in enumerate((("x", QColor(200, 40, 40)), ("y", QColor(30, 150, 30)),
                                         ("z", QColor(40, 70, 210)))):
            d = R[:, k]
            tip = QPointF(o.x() + 24 * d[0], o.y() - 24 * d[1])
            p.setPen(QPen(col, 2))
            p.drawLine(o, tip)
            p.drawText(QPointF(tip.x() + 3 * np.sign(d[0]) - 3, tip.y() - 3 * np.sign(d[1]) + 4), name)

    def _draw_key(self, p: QPainter, w: int, h: int) -> None:
        """The colour key (and the fixed-site ring of a result) in the upper right corner."""
        rows = [(COLORS[1], self.labels[0]), (COLORS[-1], self.labels[1]), (COLORS[0], "free")]
        if self.editor is None:
            rows = rows[:2] + [(None, "fixed (kept)")] if self.fixed is not None and self.fixed.any() else rows[:2]
        p.setFont(QFont(p.font().family(), 9))
        fm = p.fontMetrics()
        tw = max(fm.horizontalAdvance(t) for _, t in rows)
        box = QRectF(w - tw - 40, 6, tw + 34, 8 + 18 * len(rows) + (18 if self.caption else 0))
        p.setPen(QPen(QColor(200, 200, 210)))
        p.setBrush(QColor(255, 255, 255, 220))
        p.drawRoundedRect(box, 4, 4)
        y = box.top() + 6
        if self.caption:
            p.setPen(QColor(40, 40, 40))
            p.drawText(QPointF(box.left() + 8, y + 12), self.caption)
            y += 18
        for col, text in rows:
            c = QPointF(box.left() + 14, y + 8)
            if col is None:
                p.setBrush(Qt.NoBrush)
                p.setPen(QPen(FIXED_RING, 2))
            else:
                p.setBrush(col)
                p.setPen(QPen(QColor(90, 90, 90), 0.8))
            p.drawEllipse(c, 6, 6)
            p.setPen(QColor(30, 30, 30))
            p.drawText(QPointF(box.left() + 26, y + 12), text)
            y += 18

    # ---- mouse -----------------------------------------------------------------------------------------------
    def mousePressEvent(self, ev) -> None:
        x, y = ev.position().x(), ev.position().y()
        shift = bool(ev.modifiers() & Qt.ShiftModifier)
        if ev.button() == Qt.MiddleButton or (ev.button() == Qt.LeftButton and shift):
            self._auto_cam = False
            self._drag = _Drag("pan", x, y, self.cam)
            return
        if ev.button() == Qt.LeftButton and self.editor is not None:
            i = self.site_at(x, y)
            if i is not None:
                self._drag = _Drag("paint", x, y)
                if self.site_layer(i) != self.layer:
                    self.layer_picked.emit(self.site_layer(i))
                self.editor.begin_stroke()
                self.editor.paint_site(self.site_index(i))
                return
        if ev.button() in (Qt.LeftButton, Qt.RightButton):
            self._auto_cam = False
            self._drag = _Drag("rotate", x, y, self.cam)

    def mouseMoveEvent(self, ev) -> None:
        d = self._drag
        if d is None:
            return
        x, y = ev.position().x(), ev.position().y()
        if d.mode == "paint":
            i = self.site_at(x, y)
            if i is not None:
                self.editor.paint_site(self.site_index(i))
        elif d.mode == "rotate":
            pitch = min(max(d.cam.pitch + (y - d.y) * 0.01, -math.pi / 2), math.pi / 2)
            self.cam = replace(d.cam, yaw=d.cam.yaw + (x - d.x) * 0.01, pitch=pitch)
            self.update()
        else:
            self.cam = replace(d.cam, pan=(d.cam.pan[0] + x - d.x, d.cam.pan[1] + y - d.y))
            self.update()

    def mouseReleaseEvent(self, ev) -> None:
        d, self._drag = self._drag, None
        if d is not None and d.mode == "paint":
            self.editor.end_stroke()

    def mouseDoubleClickEvent(self, ev) -> None:
        if self.editor is None or self.site_at(ev.position().x(), ev.position().y()) is None:
            self.reset_camera()

    def wheelEvent(self, ev) -> None:
        steps = ev.angleDelta().y() / 120.0
        self._auto_cam = False
        self.cam = replace(self.cam, zoom=min(max(self.cam.zoom * 1.15 ** steps, 0.2), 20.0))
        self.update()
