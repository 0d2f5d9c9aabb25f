"""Lattice painting: fix sites with a brush (or leave them free), in-paint the rest with a model at (T, mu),
compare several completions side by side with their log p and log f, and evaluate the model painted on the target
lattice (F_q, -log Z_nis, ESS and the gap to the reference, as ``lattherm evaluate --size`` does).

3D lattices (fcc) are painted layer by layer in the 2D editor or site by site in the 3D crystal view; both show the
same values and the same current layer. Painting and evaluation are engine jobs (they can take minutes on a large
target): a progress bar, Cancel, and the jobs' events routed here by the window like the sampler's.

The editor is the user's work: an engine restart (which re-sends the model's description) keeps it, and so does a
refreshed model list; only a model of another lattice starts a fresh one."""

from __future__ import annotations

import re

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QAbstractItemView, QButtonGroup, QCheckBox, QComboBox, QFrame, QGridLayout,
                               QHBoxLayout, QHeaderView, QLabel, QLineEdit, QProgressBar, QPushButton, QRadioButton,
                               QScrollArea, QSlider, QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QTabWidget,
                               QToolButton, QVBoxLayout, QWidget)

from . import export
from .common import dspin, error_label, fmt_eta, show_error
from .crystal3d import CrystalView
from .lattice import PATTERNS, LatticeEditor, LatticeView
from .models import ModelCombo

MAX_EXTENT = 64  # per axis: the editor's limit (the engine's memory guard has the last word)
RESULT_PX = 220  # about how large one completion's picture is drawn


def brush_labels(info: dict) -> tuple[str, str]:
    """(+1, -1) brush labels: the system's own (``labels``), else from its species (index 0 is spin -1)."""
    if info.get("labels"):
        up, down = info["labels"]
        return up, down
    down, up = info["species"]
    return f"{up} (+1)", f"{down} (−1)"


def unit_text(unit: str | None) -> str:
    """A unit as people write it: eps -> ε (kT/eps -> kT/ε)."""
    return re.sub(r"\beps\b", "ε", unit or "")


def parse_target(text: str, info: dict | None) -> tuple[tuple[int, ...] | None, str]:
    """(shape, "") for a valid target size for the model ``info`` describes, else (None, why)."""
    t = text.strip().lower().replace("×", "x")
    if not re.fullmatch(r"\d+(\s*x\s*\d+)*", t):
        return None, f"target size {text!r} is not like 8x8 or 2x2x4"
    shape = tuple(int(v) for v in t.split("x"))
    if info and len(shape) != len(info["size"]):
        return None, (f"target size {text!r} does not fit this {info['lattice']} lattice: it needs "
                      f"{len(info['size'])} extents like {'x'.join(map(str, info['size']))}")
    if any(v < 1 or v > MAX_EXTENT for v in shape):
        return None, f"target size {text!r}: each extent must be 1..{MAX_EXTENT}"
    return shape, ""


def reference_text(row: dict) -> str:
    """The reference column: exact, or an approximation such as the tensor network with its error."""
    if row.get("exact_neg_log_Z") is None:
        return "—"
    method = str(row.get("reference_method") or row.get("exact_method") or "")
    err = row.get("reference_error")
    text = f"{row['exact_neg_log_Z']:.5f}"
    if err:
        text += f" ± {err:.1e}"
    kind = "tensor network" if "tensor" in method else f"exact, {method}" if method else "exact"
    return f"{text}  ({kind})"


EVAL_COLUMNS = ("T", "μ", "F_q ± s.e.", "−log Ẑ (NIS) ± s.e.", "ESS / n", "reference −log Z", "gap F_q − ref ± s.e.",
                "samples")


def evaluation_cells(row: dict) -> list[str]:
    """One table row of a painted evaluation, as shown."""
    def num(key, fmt="{:.5f}"):
        v = row.get(key)
        return "—" if v is None else fmt.format(v)

    def with_error(key, err_key):
        se = row.get(err_key)
        return num(key) + ("" if se is None or row.get(key) is None else f" ± {se:.5f}")

    # the gap's error is F_q's (the reference's own is far smaller): a small negative gap reads within its bar
    return [f"{row['T']:g}", f"{row['mu']:g}", with_error("F_q", "F_q_stderr"),
            with_error("neg_log_Z_nis", "neg_log_Z_nis_stderr"), num("ess_fraction", "{:.3f}"), reference_text(row),
            with_error("gap", "F_q_stderr"), str(row.get("n_samples", ""))]


class ResultCard(QFrame):
    """One completion: its picture, its number and its log p / log f; a click shows it in the 3D view."""

    clicked = Signal(int)

    def __init__(self, k: int, view: LatticeView, log_p: float, log_f: float, parent=None):
        super().__init__(parent)
        self.k = k
        self.setFrameShape(QFrame.StyledPanel)
        self.setCursor(Qt.PointingHandCursor)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(4)
        lay.addWidget(QLabel(f"<b>#{k + 1}</b>"))
        lay.addWidget(view, 0, Qt.AlignHCenter)
        text = QLabel(f"log p = {log_p:.3f}<br>log f = {log_f:.3f}")
        text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(text)
        lay.addStretch(1)

    def mousePressEvent(self, ev) -> None:
        self.clicked.emit(self.k)


class PaintingPanel(QWidget):
    def __init__(self, client, parent=None):
        super().__init__(parent)
        self.client = client
        self.info: dict | None = None
        self.result: dict | None = None
        self.result_path: str | None = None
        self.result_lattice: str | None = None
        self.job: str | None = None  # paint job; "pending" between the request and the engine's reply
        self.eval_job: str | None = None  # evaluate job, likewise
        self.evaluation: dict | None = None
        self._target_ok, self._target_error = True, False
        self.model = ModelCombo()
        self.model.currentIndexChanged.connect(self.model_changed)
        self.editor = LatticeEditor((5, 5))
        self.editor.edited.connect(self._update_count)
        self._build_tools()
        self._build_form()
        self._build_views()
        self._build_results()
        lay = QVBoxLayout(self)
        lay.addLayout(self.form)
        lay.addLayout(self.tools_row)
        split = QSplitter(Qt.Vertical)
        split.setChildrenCollapsible(False)
        split.addWidget(self.views_split)
        split.addWidget(self.lower)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.split = split
        lay.addWidget(split, 1)
        lay.addWidget(self.status)
        for keys, slot in (("Ctrl+Z", self.editor.undo), ("Ctrl+Shift+Z", self.editor.redo),
                           ("Ctrl+Y", self.editor.redo)):
            sc = QShortcut(QKeySequence(keys), self)
            sc.setContext(Qt.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)
        self.views: list[LatticeView] = []
        self.cards: list[ResultCard] = []
        self.shown = 0  # the completion shown in 3D
        self.result_spins = self.result_fixed = None
        self._set_layer_range(1)
        # the 5x5 editor it opens with is 2D: no empty "no 3D lattice" views before the model's description is in
        self.crystal_box.setVisible(False)
        self.result_crystal.setVisible(False)
        self._update_count()

    # ---- construction ------------------------------------------------------------------------------------------
    def _build_tools(self) -> None:
        self.brushes = QButtonGroup(self)
        self.brush_buttons = {}
        row = QHBoxLayout()
        row.addWidget(QLabel("brush"))
        for value, label in ((1, "up (+1)"), (-1, "down (−1)"), (0, "free")):
            b = QRadioButton(label)
            self.brushes.addButton(b, value + 1)
            self.brush_buttons[value] = b
            row.addWidget(b)
        self.brush_buttons[1].setChecked(True)
        self.brushes.idToggled.connect(lambda i, on: on and setattr(self.editor, "brush", i - 1))
        row.addSpacing(12)
        self.pen = QToolButton()
        self.pen.setText("pen")
        self.pen.setToolTip("paint sites one by one (drag to paint several)")
        self.rect = QToolButton()
        self.rect.setText("rectangle")
        self.rect.setToolTip("drag a rectangle to fill it with the brush")
        self.select = QToolButton()
        self.select.setText("select")
        self.select.setToolTip("drag a rectangle that the pattern fills cover (none: the whole layer)")
        for b in (self.pen, self.rect, self.select):
            b.setCheckable(True)
            b.setToolButtonStyle(Qt.ToolButtonTextOnly)
            b.toggled.connect(lambda on, b=b: self._tool_changed(b, on))
            row.addWidget(b)
        self.pen.setChecked(True)
        self.fill = QComboBox()
        self.fill.addItems(["checkerboard", "stripes (rows)", "all up", "all down"])
        self.fill_btn = QPushButton("Fill")
        self.fill_btn.setToolTip("fill the selection, or the whole layer, with the pattern (undoable)")
        self.fill_btn.clicked.connect(lambda: self.editor.fill_pattern(PATTERNS[self.fill.currentIndex()]))
        unselect = QPushButton("select none")
        unselect.clicked.connect(self.editor.clear_selection)
        self.undo_btn, self.redo_btn, clear = QPushButton("Undo"), QPushButton("Redo"), QPushButton("Clear")
        self.undo_btn.setToolTip("undo the last stroke (Ctrl+Z)")
        self.redo_btn.setToolTip("redo (Ctrl+Shift+Z)")
        self.undo_btn.clicked.connect(self.editor.undo)
        self.redo_btn.clicked.connect(self.editor.redo)
        clear.clicked.connect(self.editor.clear)
        row.addStretch(1)
        edits = QHBoxLayout()  # a second row: the panel fits a 1366-pixel screen beside the run browser
        edits.addWidget(QLabel("pattern"))
        for w in (self.fill, self.fill_btn, unselect):
            edits.addWidget(w)
        edits.addSpacing(12)
        for w in (self.undo_btn, self.redo_btn, clear):
            edits.addWidget(w)
        edits.addStretch(1)
        self.tools_row = QVBoxLayout()
        self.tools_row.addLayout(row)
        self.tools_row.addLayout(edits)

    def _build_form(self) -> None:
        self.size_label = QLabel("")
        self.target = QLineEdit("")
        self.target.setToolTip("target lattice size, e.g. 8x8; a larger one than the model's own is painted "
                               "window by window")
        self.target.setMaximumWidth(110)
        self.target.editingFinished.connect(self.apply_target)
        self.target.textEdited.connect(self._check_target)
        self.T, self.mu = dspin(2.0, 0.001, 1e5, name="T"), dspin(0.0, -1e3, 1e3, 0.05, name="μ")
        self.T.setToolTip("temperature")
        self.mu.setToolTip("chemical potential (field)")
        self.status = error_label()
        for box in (self.T, self.mu):  # a typed value the box cannot take says why instead of silently changing
            box.refused.connect(lambda msg: show_error(self.status, msg))
        self.n = QSpinBox()
        self.n.setRange(1, 16)
        self.n.setValue(4)
        self.go = QPushButton("In-paint")
        self.go.clicked.connect(self.paint)
        self.cancel = QPushButton("Cancel")
        self.cancel.setEnabled(False)
        self.cancel.clicked.connect(self._cancel)
        self.progress = QProgressBar()
        self.progress.setMaximum(1000)
        self.progress.setFormat("")
        self.progress.setTextVisible(True)
        self.T_label, self.mu_label = QLabel("T"), QLabel("μ")
        form = QGridLayout()
        form.addWidget(QLabel("model"), 0, 0)
        form.addWidget(self.model, 0, 1, 1, 5)
        form.addWidget(self.size_label, 0, 6, 1, 3)
        for i, w in enumerate((self.T_label, self.T, self.mu_label, self.mu, QLabel("completions"), self.n,
                               QLabel("target size"), self.target)):
            form.addWidget(w, 1, i)
        form.addWidget(self.go, 1, 8)
        form.addWidget(self.cancel, 1, 9)
        form.addWidget(self.progress, 2, 0, 1, 10)
        form.setColumnStretch(10, 1)
        self.form = form

    def _build_views(self) -> None:
        self.layer = QSlider(Qt.Horizontal)
        self.layer.valueChanged.connect(self._set_layer)
        self.layer_label = QLabel("layer 1 / 1")
        self.count_label = QLabel("")
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.editor)
        self.scroll.setWidgetResizable(False)
        self.scroll.setAlignment(Qt.AlignLeft | Qt.AlignTop)
        self.scroll.setMinimumSize(240, 140)  # the panel fits a 768-pixel screen; the editor scrolls
        zoom_out, zoom_in, fit = QToolButton(), QToolButton(), QToolButton()
        zoom_out.setText("−")
        zoom_in.setText("+")
        fit.setText("fit")
        zoom_out.setToolTip("zoom out (Ctrl+wheel)")
        zoom_in.setToolTip("zoom in (Ctrl+wheel)")
        fit.setToolTip("show the whole layer")
        zoom_out.clicked.connect(lambda: self.editor.zoom(-1))
        zoom_in.clicked.connect(lambda: self.editor.zoom(1))
        fit.clicked.connect(self.fit_editor)
        self.zoom_label = QLabel(f"{self.editor.cell} px/site")
        self.editor.zoomed.connect(lambda px: self.zoom_label.setText(f"{px} px/site"))
        head = QHBoxLayout()
        head.addWidget(QLabel("<b>Fixed sites</b>"))
        head.addWidget(self.count_label)
        head.addStretch(1)
        for w in (zoom_out, zoom_in, fit, self.zoom_label):
            head.addWidget(w)
        lr = QHBoxLayout()
        lr.addWidget(self.layer_label)
        lr.addWidget(self.layer, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addLayout(head)
        ll.addLayout(lr)
        ll.addWidget(self.scroll, 1)
        self.crystal = CrystalView()
        self.crystal.attach(self.editor)
        self.crystal.layer_picked.connect(self.layer.setValue)
        self.crystal.setToolTip("drag from a site to paint with the brush (it makes that layer current); drag "
                                "elsewhere or with the right button to rotate; middle button or Shift+drag to "
                                "pan; wheel to zoom; double-click empty space to reset")
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(QLabel("<b>3D crystal</b>  (drag a site to paint, drag elsewhere to rotate, wheel to zoom)"))
        rl.addWidget(self.crystal, 1)
        self.crystal_box = right
        split = QSplitter(Qt.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        self.views_split = split

    def _build_results(self) -> None:
        save = QPushButton("Save NPZ…")
        save.clicked.connect(self._export_npz)
        self.xyz_btn = QPushButton("extxyz…")
        self.xyz_btn.setToolTip("write the completions as extended XYZ atomic structures (alloy / fcc lattices)")
        self.xyz_btn.clicked.connect(self._export_extxyz)
        self.xyz_btn.setEnabled(False)
        png = QPushButton("PNG…")
        png.clicked.connect(self._export_png)
        self.results = QWidget()
        self.results_layout = QHBoxLayout(self.results)
        self.results_layout.setSpacing(10)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.results)
        scroll.setMinimumHeight(130)
        scroll.setMinimumWidth(340)  # room for two completions beside the 3D view
        self.result_crystal = CrystalView()
        self.result_crystal.highlight_layer = False
        split = QSplitter(Qt.Horizontal)
        split.addWidget(scroll)
        split.addWidget(self.result_crystal)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.results_split = split
        ex = QHBoxLayout()
        ex.addWidget(QLabel("fixed sites framed (2D) or ringed (3D) red; click a completion to see it in 3D"))
        ex.addStretch(1)
        ex.addWidget(save)
        ex.addWidget(self.xyz_btn)
        ex.addWidget(png)
        painted = QWidget()
        pl = QVBoxLayout(painted)
        pl.addWidget(split, 1)
        pl.addLayout(ex)
        # evaluation of the model painted on the target lattice
        self.eval_n = QSpinBox()
        self.eval_n.setRange(2, 100000)
        self.eval_n.setValue(200)
        self.eval_n.setToolTip("samples drawn (painted) for the estimates")
        self.eval_exact = QCheckBox("gap to the reference")
        self.eval_exact.setChecked(True)
        self.eval_exact.setToolTip("compare with the exact (or tensor-network) -log Z where one exists")
        self.eval_go = QPushButton("Evaluate")
        self.eval_go.setToolTip("F_q, −log Ẑ and ESS of the model painted on the target lattice at (T, μ)")
        self.eval_go.clicked.connect(self.evaluate)
        self.eval_progress = QProgressBar()
        self.eval_progress.setMaximum(1000)
        self.eval_progress.setFormat("")
        self.eval_status = error_label()
        self.eval_table = QTableWidget(0, len(EVAL_COLUMNS))
        self.eval_table.setHorizontalHeaderLabels(EVAL_COLUMNS)
        self.eval_table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.eval_table.verticalHeader().setVisible(False)
        self.eval_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.eval_table.horizontalHeader().setStretchLastSection(False)
        er = QHBoxLayout()
        er.addWidget(QLabel("samples"))
        er.addWidget(self.eval_n)
        er.addWidget(self.eval_exact)
        er.addWidget(self.eval_go)
        er.addWidget(self.eval_progress, 1)
        ev = QWidget()
        el = QVBoxLayout(ev)
        el.addWidget(QLabel("The model painted on the <b>target lattice</b> at (T, μ), free sites only (the "
                            "fixed sites above are not used): F_q is a variational upper bound on −log Z."))
        el.addLayout(er)
        el.addWidget(self.eval_table, 1)
        el.addWidget(self.eval_status)
        self.lower = QTabWidget()
        self.lower.addTab(painted, "In-painted lattices")
        self.lower.addTab(ev, "Evaluation")

    def _tool_changed(self, button, on: bool) -> None:
        """pen, rectangle and select are exclusive; unchecking rectangle or select goes back to the pen."""
        buttons = (self.pen, self.rect, self.select)
        if on:
            for other in buttons:
                if other is not button:
                    other.blockSignals(True)
                    other.setChecked(False)
                    other.blockSignals(False)
        elif not any(b.isChecked() for b in buttons):
            self.pen.blockSignals(True)
            self.pen.setChecked(True)
            self.pen.blockSignals(False)
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
        old, self.info = self.info, info
        shape = tuple(info["size"])
        same_lattice = old is not None and all(old.get(k) == info.get(k) for k in ("system", "lattice", "size"))
        self.target.setEnabled(bool((self.client.hello or {}).get("painting")))
        if not same_lattice:  # a restart or a refreshed list re-describes the same lattice: keep the editor
            self.target.setText("x".join(map(str, shape)))
            self.apply_target()
            self._set_defaults(info)
        else:
            self._check_target()
        up, down = brush_labels(info)
        self.brush_buttons[1].setText(up)
        self.brush_buttons[-1].setText(down)
        self.crystal.set_labels(up, down)
        self.result_crystal.set_labels(up, down)
        T_unit, mu_unit = unit_text(info.get("T_unit")), unit_text(info.get("mu_unit"))
        self.T.setSuffix(f" {T_unit}" if T_unit else "")
        self.mu.setSuffix(f" {mu_unit}" if mu_unit else "")
        heads = list(EVAL_COLUMNS)  # the unit once, in the field (its suffix) and in the table's header
        heads[0], heads[1] = (f"T ({T_unit})" if T_unit else "T"), (f"μ ({mu_unit})" if mu_unit else "μ")
        self.eval_table.setHorizontalHeaderLabels(heads)
        self.size_label.setText(f"{info['system']} {info['lattice']} {'x'.join(map(str, shape))}, "
                                f"{info['model']['kind']}")

    def _set_defaults(self, info: dict) -> None:
        """T and mu at the middle of the model's trained range (a CuAu model is not painted at 2 K)."""
        r = info.get("trained_range")
        if r:
            self.T.setValue(sum(r["T"]) / 2)
            self.mu.setValue(sum(r["mu"]) / 2)
            self.T.setToolTip(f"temperature; the model was trained for {r['T'][0]:g}..{r['T'][1]:g}")

    def _check_target(self, _=None) -> tuple | None:
        """Validate the field as it is typed: an invalid size disables In-paint and Evaluate and says why."""
        shape, why = parse_target(self.target.text(), self.info)
        self._target_ok = shape is not None
        self._update_buttons()
        if why:
            show_error(self.status, why)
        elif self._target_error:
            self.status.setText("")  # the old complaint about the size goes once the size is valid
        self._target_error = bool(why)
        return shape

    def apply_target(self) -> None:
        shape = self._check_target()
        if shape is None:
            return
        if self.editor.values.shape != shape:
            old = self.editor.values
            self.editor.reset(shape)
            if old.ndim == len(shape):  # keep what was painted where the old and new lattices overlap
                sl = tuple(slice(0, min(a, b)) for a, b in zip(old.shape, shape))
                self.editor.values[sl] = old[sl]
                self.editor.update()
            self.fit_editor()
        three_d = len(shape) == 3
        self._set_layer_range(shape[2] if three_d else 1)
        self.crystal_box.setVisible(three_d)
        self.result_crystal.setVisible(three_d and bool(self.views))
        if three_d and self.info and self.info.get("vectors"):
            self.crystal.set_lattice(shape, self.info["vectors"], self.info.get("unit_length", 1.0))
        self._update_count()

    def fit_editor(self) -> None:
        vp = self.scroll.viewport().size()
        self.editor.fit_to(max(vp.width(), 240), max(vp.height(), 200))

    def _set_layer_range(self, n: int) -> None:
        self.layer.setRange(0, n - 1)
        self.layer.setVisible(n > 1)
        self.layer_label.setVisible(n > 1)
        self._set_layer(self.layer.value())

    def _set_layer(self, k: int) -> None:
        self.editor.set_layer(k)
        self.crystal.set_layer(k)
        self.result_crystal.set_layer(k)
        for v in self.views:
            v.set_layer(k)
        self.layer_label.setText(f"layer {k + 1} / {self.layer.maximum() + 1}")

    def _update_count(self) -> None:
        """The fixed-site count, live while drawing."""
        n, total = self.editor.n_fixed(), self.editor.values.size
        free = total - n
        self.count_label.setText(f"{n} of {total} sites fixed, {free} free" + ("  (nothing to paint)" if not free
                                                                             else ""))
        self.undo_btn.setEnabled(bool(self.editor.undo_stack))
        self.redo_btn.setEnabled(bool(self.editor.redo_stack))

    def _update_buttons(self) -> None:
        ok = self._target_ok
        self.go.setEnabled(ok and self.job is None)
        self.eval_go.setEnabled(ok and self.eval_job is None)

    # ---- in-painting -------------------------------------------------------------------------------------------
    def paint(self) -> None:
        ref = self.model.current_ref()
        if not ref:
            self.status.setText("no model to paint with")
            return
        self.apply_target()
        if not self._target_ok:
            return  # the field's complaint is shown; never paint the previous size behind the user's back
        self._set_job("pending")
        self.progress.setValue(0)
        self.progress.setFormat("queued")
        self.status.setText("in-painting…")
        params = {"model": ref, "T": self.T.value(), "mu": self.mu.value(), "n": self.n.value(),
                  "fixed": self.editor.fixed_flat(), "size": list(self.editor.values.shape)}
        self.client.request("paint", params, lambda r: self._set_job(r["job"]), self._failed)

    def _cancel(self) -> None:
        if self.job and self.job != "pending":
            self.client.request("cancel", {"job": self.job})

    @property
    def busy(self) -> bool:
        return self.job is not None

    def _set_job(self, job: str | None) -> None:
        self.job = job
        self._update_buttons()
        self.cancel.setEnabled(job is not None)

    def on_event(self, name: str, job, data: dict) -> None:
        """Events of the paint or evaluate job in flight (the window routes every job event here)."""
        if job is None:
            return
        if job == self.eval_job:
            self._eval_event(name, data)
            return
        if job != self.job:
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
            self.progress.setValue(0)
            self.progress.setFormat("cancelled")
            self.status.setText("in-painting cancelled")

    def engine_lost(self) -> None:
        if self.job:
            self._failed("in-painting stopped: the engine process died")
        if self.eval_job:
            self._eval_failed("evaluation stopped: the engine process died")

    def _failed(self, exc) -> None:
        """The engine's message (e.g. every site fixed: nothing to paint) in place of the results."""
        self._set_job(None)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.result = self.result_path = self.result_lattice = None
        self.xyz_btn.setEnabled(False)
        self._clear_views()
        show_error(self.status, exc)

    def _clear_views(self) -> None:
        for v in self.views:
            v.setParent(None)
        self.views = []
        self.cards = []
        while self.results_layout.count():
            item = self.results_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        self.result_crystal.setVisible(False)

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
        self.result_spins, self.result_fixed = samples, fixed
        shape = samples.shape[1:]
        if len(shape) == 3:
            cols = int(np.ceil(np.sqrt(shape[2])))
            extent = max(shape[0] * np.ceil(shape[2] / cols), shape[1] * cols)
        else:
            extent = max(shape)
        cell = int(min(18, max(3, RESULT_PX // extent)))
        for k, spins in enumerate(samples):
            view = LatticeView(spins, fixed, cell=cell)
            view.set_layer(self.layer.value())
            self.views.append(view)
            card = ResultCard(k, view, result["log_p"][k], result["log_f"][k])
            card.clicked.connect(self.show_completion)
            self.cards.append(card)
            self.results_layout.addWidget(card)
        self.results_layout.addStretch(1)
        if len(shape) == 3 and self.info and self.info.get("vectors"):
            self.result_crystal.set_lattice(shape, self.info["vectors"], self.info.get("unit_length", 1.0))
            self.result_crystal.setVisible(True)
            w = max(self.results_split.width(), 700)
            self.results_split.setSizes([w * 3 // 5, w * 2 // 5])
            self.show_completion(0)
        self.lower.setCurrentIndex(0)
        self.status.setText(f"{len(self.views)} completions, {result['n_fixed']} fixed sites kept")

    def show_completion(self, k: int) -> None:
        """Completion ``k`` in the 3D result view (fixed sites ringed), its card marked."""
        self.shown = k
        for c in self.cards:
            c.setStyleSheet("ResultCard { border: 2px solid #e65a14; }" if c.k == k else "")
        if self.result_spins.ndim == 4:  # (completions, L1, L2, L3): a 3D lattice
            self.result_crystal.caption = f"completion #{k + 1}"
            self.result_crystal.set_values(self.result_spins[k], self.result_fixed)

    # ---- evaluation --------------------------------------------------------------------------------------------
    def evaluate(self) -> None:
        """F_q, -log Z_nis, ESS (and the gap) of the model painted on the target lattice, at the form's (T, mu)."""
        ref = self.model.current_ref()
        if not ref:
            self.eval_status.setText("no model to evaluate")
            return
        self.apply_target()
        if not self._target_ok:
            return
        self._set_eval_job("pending")
        self.evaluation = None
        self.eval_table.setRowCount(0)
        self.eval_progress.setValue(0)
        self.eval_progress.setFormat("queued")
        self.eval_status.setText("evaluating…")
        params = {"model": ref, "grid": f"{self.T.value()!r}:{self.mu.value()!r}", "samples": self.eval_n.value(),
                  "size": "x".join(map(str, self.editor.values.shape))}
        if not self.eval_exact.isChecked():
            params["no_exact"] = True
        self.client.request("evaluate", params, lambda r: self._set_eval_job(r["job"]), self._eval_failed)
        self.lower.setCurrentIndex(1)

    def _set_eval_job(self, job: str | None) -> None:
        self.eval_job = job
        self._update_buttons()

    def _eval_event(self, name: str, data: dict) -> None:
        if name == "progress":
            self.eval_progress.setValue(int(1000 * data.get("fraction", 0)))
            self.eval_progress.setFormat(f"{int(100 * data.get('fraction', 0))} %   {fmt_eta(data.get('eta_s'))}")
        elif name == "finished":
            self._set_eval_job(None)
            self.eval_progress.setValue(1000)
            self.eval_progress.setFormat("done")
            self._evaluated(data.get("result", data))
        elif name == "failed":
            self._eval_failed(data.get("message", ""))
        elif name == "cancelled":
            self._set_eval_job(None)
            self.eval_progress.setFormat("cancelled")

    def _eval_failed(self, exc) -> None:
        self._set_eval_job(None)
        self.eval_progress.setValue(0)
        self.eval_progress.setFormat("")
        show_error(self.eval_status, exc)

    def _evaluated(self, result: dict) -> None:
        self.evaluation = result
        rows = result.get("conditions", [])
        self.eval_table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(evaluation_cells(row)):
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                if row.get("extrapolation"):
                    item.setToolTip("outside the model's trained range: an extrapolation")
                self.eval_table.setItem(r, c, item)
        src = result.get("source", {})
        size = "x".join(map(str, result.get("system", {}).get("size", [])))
        how = f"painted from the {src['painted_from']} model" if src.get("painted_from") else "the model's own lattice"
        warn = any(row.get("extrapolation") for row in rows)
        self.eval_status.setText(f"{size or 'target'} lattice, {how}"
                                 + ("; <span style='color:#b00'>outside the trained range: an extrapolation</span>"
                                    if warn else ""))

    # ---- export ------------------------------------------------------------------------------------------------
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
