"""Lattice painting: fix sites with a brush (or leave them free), in-paint the rest with a model at (T, mu),
and compare several completions side by side with their log p and log f. fcc lattices are painted layer by layer.

Painting is an engine job (it can take minutes on a large target): a progress bar, Cancel, and the job's events
routed here by the window like the sampler's."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QButtonGroup, QComboBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar,
                               QPushButton, QRadioButton, QScrollArea, QSlider, QSpinBox, QVBoxLayout, QWidget)

from . import export
from .common import dspin, error_label, fmt_eta, show_error
from .lattice import PATTERNS, LatticeEditor, LatticeView
from .models import ModelCombo


def brush_labels(info: dict) -> tuple[str, str]:
    """(+1, -1) brush labels: the system's own (``labels``), else from its species (index 0 is spin -1)."""
    if info.get("labels"):
        up, down = info["labels"]
        return up, down
    down, up = info["species"]
    return f"{up} (+1)", f"{down} (−1)"


class PaintingPanel(QWidget):
    def __init__(self, client, parent=None):
        super().__init__(parent)
        self.client = client
        self.info: dict | None = None
        self.result: dict | None = None
        self.result_path: str | None = None
        self.result_lattice: str | None = None
        self.job: str | None = None  # "pending" between the request and the engine's reply
        self.model = ModelCombo()
        self.model.currentIndexChanged.connect(self.model_changed)
        self.editor = LatticeEditor((5, 5))
        self.brushes = QButtonGroup(self)
        self.brush_buttons = {}
        row = QHBoxLayout()
        for value, label in ((1, "up (+1)"), (-1, "down (−1)"), (0, "free")):
            b = QRadioButton(label)
            self.brushes.addButton(b, value + 1)
            self.brush_buttons[value] = b
            row.addWidget(b)
        self.brush_buttons[1].setChecked(True)
        self.brushes.idToggled.connect(lambda i, on: on and setattr(self.editor, "brush", i - 1))
        self.rect = QPushButton("rectangle fill")
        self.rect.setCheckable(True)
        self.select = QPushButton("select")
        self.select.setCheckable(True)
        self.select.setToolTip("drag a rectangle that the pattern fills cover (none: the whole layer)")
        self.rect.toggled.connect(lambda on: self._tool_changed(self.rect, on))
        self.select.toggled.connect(lambda on: self._tool_changed(self.select, on))
        self.fill = QComboBox()
        self.fill.addItems(["checkerboard", "stripes (rows)", "all up", "all down"])
        self.fill_btn = QPushButton("Fill")
        self.fill_btn.setToolTip("fill the selection, or the whole layer, with the pattern (undoable)")
        self.fill_btn.clicked.connect(lambda: self.editor.fill_pattern(PATTERNS[self.fill.currentIndex()]))
        unselect = QPushButton("select none")
        unselect.clicked.connect(self.editor.clear_selection)
        undo, redo, clear = QPushButton("Undo"), QPushButton("Redo"), QPushButton("Clear")
        undo.clicked.connect(self.editor.undo)
        redo.clicked.connect(self.editor.redo)
        clear.clicked.connect(self.editor.clear)
        for w in (self.rect, self.select, unselect, self.fill, self.fill_btn, undo, redo, clear):
            row.addWidget(w)
        self.layer = QSlider(Qt.Horizontal)
        self.layer.valueChanged.connect(self._set_layer)
        self.layer_label = QLabel("layer")
        self.size_label = QLabel("")
        self.target = QLineEdit("")
        self.target.setToolTip("target lattice size, e.g. 8x8; a larger one than the model's own is painted "
                               "window by window")
        self.target.editingFinished.connect(self.apply_target)
        self.T, self.mu = dspin(2.0, 0.001, 1e5), dspin(0.0, -1e3, 1e3, 0.05)
        self.n = QSpinBox()
        self.n.setRange(1, 16)
        self.n.setValue(4)
        self.go = QPushButton("In-paint")
        self.go.clicked.connect(self.paint)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(lambda: self.job and self.job != "pending"
                                    and self.client.request("cancel", {"job": self.job}))
        self.progress = QProgressBar()
        self.progress.setMaximum(1000)
        self.status = error_label()
        save = QPushButton("Save NPZ…")
        save.clicked.connect(self._export_npz)
        self.xyz_btn = QPushButton("extxyz…")
        self.xyz_btn.setToolTip("write the completions as extended XYZ atomic structures (alloy / fcc lattices)")
        self.xyz_btn.clicked.connect(self._export_extxyz)
        self.xyz_btn.setEnabled(False)
        png = QPushButton("PNG…")
        png.clicked.connect(self._export_png)
        form = QGridLayout()
        form.addWidget(QLabel("model"), 0, 0)
        form.addWidget(self.model, 0, 1, 1, 5)
        for i, w in enumerate((QLabel("T"), self.T, QLabel("mu"), self.mu, QLabel("samples"), self.n)):
            form.addWidget(w, 1, i)
        form.addWidget(self.size_label, 2, 0, 1, 2)
        form.addWidget(QLabel("target size"), 2, 2)
        form.addWidget(self.target, 2, 3)
        form.addWidget(self.go, 2, 4)
        form.addWidget(self.cancel, 2, 5)
        form.addWidget(self.progress, 3, 0, 1, 6)
        self.results = QWidget()
        self.results_layout = QHBoxLayout(self.results)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.results)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addLayout(row)
        lr = QHBoxLayout()
        lr.addWidget(self.layer_label)
        lr.addWidget(self.layer)
        lay.addLayout(lr)
        lay.addWidget(self.editor, 0, Qt.AlignLeft)
        lay.addWidget(self.status)
        lay.addWidget(QLabel("<b>In-painted lattices</b> (fixed sites framed red)"))
        lay.addWidget(scroll, 1)
        ex = QHBoxLayout()
        ex.addWidget(save)
        ex.addWidget(self.xyz_btn)
        ex.addWidget(png)
        ex.addStretch(1)
        lay.addLayout(ex)
        self.views: list[LatticeView] = []
        self._set_layer_range(1)

    def _tool_changed(self, button, on: bool) -> None:
        """rect and select are exclusive; neither checked is the pen."""
        if on:
            other = self.select if button is self.rect else self.rect
            other.blockSignals(True)
            other.setChecked(False)
            other.blockSignals(False)
        self.editor.tool = "rect" if self.rect.isChecked() else "select" if self.select.isChecked() else "pen"

    # ---- model -------------------------------------------------------------------------------------------------
    def model_changed(self, _=None) -> None:
        ref = self.model.current_ref()
        if ref and self.client.is_ready():
            self.client.request("model_info", {"model": ref}, lambda info: self._got_info(ref, info),
                                lambda e: show_error(self.status, e))

    def _got_info(self, ref: str, info: dict) -> None:
        if ref != self.model.current_ref():
            return  # an answer about a model chosen before the current one: stale, ignore it
        self.info = info
        shape = tuple(info["size"])
        self.target.setText("x".join(map(str, shape)))
        self.target.setEnabled(bool((self.client.hello or {}).get("painting")))
        self.apply_target()
        up, down = brush_labels(info)
        self.brush_buttons[1].setText(up)
        self.brush_buttons[-1].setText(down)
        self.size_label.setText(f"{info['system']} {info['lattice']} {'x'.join(map(str, shape))}, "
                                f"{info['model']['kind']}")

    def apply_target(self) -> None:
        try:
            shape = tuple(int(v) for v in self.target.text().lower().split("x"))
        except ValueError:
            show_error(self.status, f"target size {self.target.text()!r} is not like 8x8 or 2x2x4")
            return
        if self.info and len(shape) != len(self.info["size"]) or any(v < 1 or v > 64 for v in shape):
            show_error(self.status, f"target size {self.target.text()!r} does not fit this lattice")
            return
        if self.editor.values.shape != shape:
            self.editor.reset(shape)
        self._set_layer_range(shape[2] if self.info and self.info["lattice"] == "fcc" else 1)

    def _set_layer_range(self, n: int) -> None:
        self.layer.setRange(0, n - 1)
        self.layer.setVisible(n > 1)
        self.layer_label.setVisible(n > 1)

    def _set_layer(self, k: int) -> None:
        self.editor.set_layer(k)
        for v in self.views:
            v.set_layer(k)

    # ---- in-painting -------------------------------------------------------------------------------------------
    def paint(self) -> None:
        ref = self.model.current_ref()
        if not ref:
            self.status.setText("no model to paint with")
            return
        self._set_job("pending")
        self.progress.setValue(0)
        self.progress.setFormat("queued")
        self.status.setText("in-painting…")
        params = {"model": ref, "T": self.T.value(), "mu": self.mu.value(), "n": self.n.value(),
                  "fixed": self.editor.fixed_flat(), "size": list(self.editor.values.shape)}
        self.client.request("paint", params, lambda r: self._set_job(r["job"]), self._failed)

    @property
    def busy(self) -> bool:
        return self.job is not None

    def _set_job(self, job: str | None) -> None:
        self.job = job
        self.go.setEnabled(job is None)
        self.cancel.setEnabled(job is not None)

    def on_event(self, name: str, job, data: dict) -> None:
        """Events of the paint job in flight (the window routes every job event here)."""
        if job is None or job != self.job:
            return
        if name == "progress":
            self.progress.setValue(int(1000 * data["fraction"]))
            self.progress.setFormat(f"{data.get('painted', data['step'])} / {data.get('n', data['total'])} lattices"
                                    f"   {fmt_eta(data.get('eta_s'))}")
        elif name == "finished":
            self._set_job(None)
            self.progress.setValue(1000)
            self.progress.setFormat("done")
            self._painted(data)
        elif name == "failed":
            self._failed(data.get("message", ""))
        elif name == "cancelled":
            self._set_job(None)
            self.progress.setFormat("cancelled")
            self.status.setText("in-painting cancelled")

    def engine_lost(self) -> None:
        if self.job:
            self._failed("in-painting stopped: the engine process died")

    def _failed(self, exc) -> None:
        """The engine's message (e.g. every site fixed: nothing to paint) in place of the results."""
        self._set_job(None)
        self.progress.setFormat("")
        self.result = self.result_path = self.result_lattice = None
        self.xyz_btn.setEnabled(False)
        self._clear_views()
        show_error(self.status, exc)

    def _clear_views(self) -> None:
        for v in self.views:
            v.setParent(None)
        self.views = []
        while self.results_layout.count():
            item = self.results_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()

    def _painted(self, result: dict) -> None:
        with np.load(result["path"]) as z:
            self.result = {k: z[k] for k in z.files}
        self.result_path = result["path"]
        self.result_lattice = result["lattice"]
        self.xyz_btn.setEnabled(self.is_alloy())
        self._clear_views()
        samples = self.result["samples"].astype(np.int8)
        if str(self.result["encoding"]) == "species":
            samples = 2 * samples - 1  # species 0/1 -> spins -1/+1 for display
        fixed = np.where(self.result["mask"], samples[0], 0)
        for k, spins in enumerate(samples):
            box = QWidget()
            bl = QVBoxLayout(box)
            view = LatticeView(spins, fixed, cell=18)
            view.set_layer(self.layer.value())
            self.views.append(view)
            bl.addWidget(view)
            bl.addWidget(QLabel(f"log p = {result['log_p'][k]:.3f}\nlog f = {result['log_f'][k]:.3f}"))
            self.results_layout.addWidget(box)
        self.results_layout.addStretch(1)
        self.status.setText(f"{len(self.views)} completions, {result['n_fixed']} fixed sites kept")

    def _export_npz(self) -> None:
        if self.result is None:
            return
        path = export.ask_path(self, "Save lattices", "painted.npz", "NumPy (*.npz)", key="npz_dir")
        if path:
            export.write_npz(path, **self.result)

    def is_alloy(self) -> bool:
        """The current result is atoms (species encoding) on an fcc lattice, which extxyz can hold."""
        r = self.result
        return r is not None and str(r.get("encoding", "")) == "species" and self.result_lattice == "fcc"

    def _export_extxyz(self) -> None:
        if not self.result_path or not self.is_alloy():
            return
        export.request_extxyz(self, self.client, self.result_path, "painted.extxyz", self.status)

    def _export_png(self) -> None:
        if not self.views:
            return
        path = export.ask_path(self, "Save picture", "painted.png", "PNG (*.png)")
        if path:
            self.results.grab().save(path)
