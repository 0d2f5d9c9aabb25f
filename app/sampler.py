"""Sampler panel: draw samples from a model at one condition or on the paper grid; gallery, histograms, free
energy per site against T with the exact reference (or the model-minus-exact gap), the evaluation table, and the
phase diagram (:mod:`.phase`). Units, default conditions and the trained range come from the engine's
``model_info``; results belong to one model and go when another is chosen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFrame, QGridLayout, QHBoxLayout, QLabel, QProgressBar,
                               QPushButton, QRadioButton, QScrollArea, QSlider, QTableWidget, QTableWidgetItem,
                               QTabWidget, QVBoxLayout, QWidget)
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from . import export
from . import lattice
from .common import (JobView, colour, dspin, error_label, fmt_value, ispin, reset_range, set_unit, show_error,
                     show_warning, unit_text)
from .lattice import LatticeView
from .models import ModelCombo
from .mcmc import MCMCView
from .phase import PhaseDiagramView

TABLE = (("T", "T"), ("mu", "mu"), ("F_q", "F_q"), ("F_q_stderr", "± F_q"), ("neg_log_Z_nis", "-log Z (NIS)"),
         ("exact_neg_log_Z", "-log Z exact"), ("gap", "gap"), ("ess_fraction", "ESS/n"),
         ("mean_observable", "<obs>"), ("exact_mean_observable", "<obs> exact"),
         ("free_energy_per_site_q", "F/N (q)"), ("exact_free_energy_per_site", "F/N exact"))
GALLERY = 8
GALLERY_SPACING = 18  # px between two samples' thumbnails


def thumb_cell(size) -> int:
    """Pixels per site of a gallery thumbnail: 14 for 10x10, larger for small layers (a 2x2 fcc layer is 40 px,
    not 28), so every model's thumbnails read at a glance."""
    return max(14, min(20, 80 // max(int(size[0]), int(size[1]), 1)))
PREVIEW_SAMPLES = 200  # the first-start look at the bundled model: well under a second on a CPU
#: table columns that carry the temperature / chemical-potential unit
UNIT_COLUMNS = {"T": "T_unit", "mu": "mu_unit"}


def in_range(r: dict | None, T: float, mu: float) -> bool:
    """(T, mu) inside a trained range {"T": (lo, hi), "mu": (lo, hi)} (True when the model names none)."""
    return r is None or (r["T"][0] <= T <= r["T"][1] and r["mu"][0] <= mu <= r["mu"][1])


class SamplerPanel(JobView, QWidget):
    job_title = "sampling"

    def __init__(self, client, parent=None):
        super().__init__(parent)
        self.client = client
        self.job: str | None = None
        self.table_rows: list[dict] = []
        self.samples: dict | None = None
        self.info: dict = {}  # the engine's model_info of the chosen model
        self.previewing = False  # the job running is the first-start preview (Sample may replace it)
        self._preview_pending = False
        self._token = None
        self._condition_at_switch = (None, None)
        self.model = ModelCombo()
        self.model.currentIndexChanged.connect(lambda _: self.model_changed())
        self.single = QRadioButton("single condition")
        self.grid = QRadioButton("paper grid")
        self.single.setChecked(True)
        self.T, self.mu = dspin(2.5, 0.001, 1e5, name="T"), dspin(0.0, -1e3, 1e3, 0.05, name="μ")
        self.n = ispin(500, 1, 100000, name="samples")
        for box in (self.T, self.mu, self.n):
            box.refused.connect(lambda msg: show_error(self.status, msg))
        self.T.valueChanged.connect(lambda _: self._check_range())
        self.mu.valueChanged.connect(lambda _: self._check_range())
        self.range_note = QLabel("")
        self.range_note.setWordWrap(True)
        self.key = QLabel("")  # which colour is which species
        self.go, self.cancel = QPushButton("Sample"), QPushButton("Cancel")
        self.go.clicked.connect(lambda: self.sample())
        self.cancel.clicked.connect(lambda: self.job and self.client.request("cancel", {"job": self.job}))
        self.progress = QProgressBar()
        self.progress.setMaximum(1000)
        self.progress.setFormat("idle")
        self.status = error_label()
        top = QGridLayout()
        top.addWidget(QLabel("model"), 0, 0)
        top.addWidget(self.model, 0, 1, 1, 5)
        for i, w in enumerate((self.single, QLabel("T"), self.T, QLabel("μ"), self.mu)):
            top.addWidget(w, 1, i)
        top.addWidget(self.range_note, 1, 5)
        top.addWidget(self.grid, 2, 0)
        top.addWidget(QLabel("samples / condition"), 2, 1)
        top.addWidget(self.n, 2, 2)
        top.addWidget(self.go, 2, 3)
        top.addWidget(self.cancel, 2, 4)
        # results
        self.condition = QComboBox()
        self.condition.currentIndexChanged.connect(self.show_condition)
        self.layer = QSlider(Qt.Horizontal)
        self.layer.valueChanged.connect(self._set_layer)
        self.gallery = [LatticeView(cell=14) for _ in range(GALLERY)]
        gal = QWidget()
        gl = QHBoxLayout(gal)
        gl.setSpacing(GALLERY_SPACING)  # wider than the gap between one sample's layers: each sample reads as one
        for v in self.gallery:
            gl.addWidget(v)
        gl.addWidget(self.key)
        gl.addStretch(1)
        # the gallery scrolls sideways rather than widening the window (8 thumbnails of a 10x10 or fcc model)
        self.gallery_area = QScrollArea()
        self.gallery_area.setWidget(gal)
        self.gallery_area.setWidgetResizable(True)
        self.gallery_area.setFrameShape(QFrame.NoFrame)
        self.gallery_area.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.hist_logf = pg.PlotWidget(title="log f of the drawn samples")
        self.hist_obs = pg.PlotWidget(title="observable")
        for h in (self.hist_logf, self.hist_obs):
            h.setLabel("left", "samples")
            for side in ("left", "bottom"):  # x_Au 0.2..0.6, never "x_Au (x0.001)" over 200..600
                h.getAxis(side).enableAutoSIPrefix(False)
        self.hist_logf.setLabel("bottom", "log f (nats)")
        self.free_energy = pg.PlotWidget(title="free energy per site vs T")
        for side in ("left", "bottom"):  # axes in the model's units, never rescaled to "(x0.001)"
            self.free_energy.getAxis(side).enableAutoSIPrefix(False)
        self.fe_legend = pg.LegendItem()  # in the plot's layout right of the axes: never over the data
        self.free_energy.getPlotItem().layout.addItem(self.fe_legend, 2, 3)
        self.gap_view = QCheckBox("model − exact")
        self.gap_view.setToolTip("plot the model's free energy per site minus the exact one (the variational gap "
                                 "per site, >= 0 up to sampling error)")
        self.gap_view.toggled.connect(lambda _: self._plot_free_energy())
        fe = QWidget()
        fl = QVBoxLayout(fe)
        fl.setContentsMargins(0, 0, 0, 0)
        fl.addWidget(self.gap_view)
        fl.addWidget(self.free_energy, 1)
        self.table = QTableWidget(0, len(TABLE))
        self.table.setHorizontalHeaderLabels([h for _, h in TABLE])
        self.tabs = QTabWidget()
        hist = QWidget()
        hl = QHBoxLayout(hist)
        hl.addWidget(self.hist_logf)
        hl.addWidget(self.hist_obs)
        self.tabs.addTab(hist, "histograms")
        self.tabs.addTab(fe, "free energy vs T")
        self.tabs.addTab(self.table, "evaluation table")
        self._phase: PhaseDiagramView | None = None  # built when its tab is first opened (startup stays fast)
        self._phase_page = QWidget()
        QVBoxLayout(self._phase_page).setContentsMargins(0, 0, 0, 0)
        self.tabs.addTab(self._phase_page, "phase diagram")
        self._mcmc: MCMCView | None = None  # likewise: the exact-estimates (MCMC) view
        self._mcmc_page = QWidget()
        QVBoxLayout(self._mcmc_page).setContentsMargins(0, 0, 0, 0)
        self.tabs.addTab(self._mcmc_page, "exact estimates (MCMC)")
        self.tabs.currentChanged.connect(self._tab_opened)
        self.plots = {"log f": self.hist_logf, "observable": self.hist_obs, "free energy": self.free_energy}
        self.which = QComboBox()
        self.which.addItems(list(self.plots))
        png, svg, csv, npz = QPushButton("PNG…"), QPushButton("SVG…"), QPushButton("table CSV…"), QPushButton("NPZ…")
        png.clicked.connect(lambda: self._export_figure("png"))
        svg.clicked.connect(lambda: self._export_figure("svg"))
        csv.clicked.connect(self._export_csv)
        npz.clicked.connect(self._export_npz)
        self.xyz_btn = QPushButton("extxyz…")
        self.xyz_btn.setToolTip("write the samples as extended XYZ atomic structures (alloy / fcc lattices)")
        self.xyz_btn.clicked.connect(self._export_extxyz)
        self.xyz_btn.setEnabled(False)
        ex = QHBoxLayout()
        for w in (QLabel("export"), self.which, png, svg, csv, npz, self.xyz_btn):
            ex.addWidget(w)
        ex.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        row = QHBoxLayout()
        row.addWidget(QLabel("condition"))
        row.addWidget(self.condition, 1)
        self.layer_title = QLabel("fcc layer")
        row.addWidget(self.layer_title)
        row.addWidget(self.layer)
        lay.addLayout(row)
        lay.addWidget(self.gallery_area)
        self._fit_gallery()
        lay.addWidget(self.tabs, 1)
        lay.addLayout(ex)
        self.layer_label = QLabel("")
        row.insertWidget(4, self.layer_label)
        self._layers(False, 1)  # no layers to page through until an fcc model is chosen
        self._update()

    def _tab_opened(self, i: int) -> None:
        if self.tabs.widget(i) is self._phase_page:
            self.phase
        elif self.tabs.widget(i) is self._mcmc_page:
            self.mcmc

    @property
    def mcmc(self) -> MCMCView:
        if self._mcmc is None:
            self._mcmc = MCMCView(self.client)
            self._mcmc_page.layout().addWidget(self._mcmc)
            self._mcmc.set_model(self.model.current_ref(), self.info or None)
        return self._mcmc

    def _views(self):
        return [v for v in (self._phase, self._mcmc) if v is not None]

    @property
    def phase(self) -> PhaseDiagramView:
        """The phase-diagram view, built on first use for the model chosen now."""
        if self._phase is None:
            self._phase = PhaseDiagramView(self.client)
            self._phase_page.layout().addWidget(self._phase)
            self._phase.set_model(self.model.current_ref(), self.info or None)
        return self._phase

    # ---- model -------------------------------------------------------------------------------------------------
    def model_changed(self) -> None:
        """Another model: the old results go (an Ising table under a CuAu model misleads); its units, trained range,
        default condition and lattice size come from the engine's model_info."""
        self.clear_results()
        ref = self.model.current_ref()
        self.info = {}
        self._condition_at_switch = (self.T.value(), self.mu.value())
        for v in self._views():
            v.set_model(ref, None)
        if ref and self.client.is_ready():
            self.client.request("model_info", {"model": ref}, lambda info, ref=ref: self._got_info(ref, info),
                                lambda e: show_error(self.status, e))

    def _got_info(self, ref: str, info: dict) -> None:
        if ref != self.model.current_ref():
            return  # an answer for a model no longer chosen
        self.info = info
        set_unit(self.T, info.get("T_unit", ""))
        set_unit(self.mu, info.get("mu_unit", ""))
        r = info.get("trained_range")
        untouched = (self.T.value(), self.mu.value()) == self._condition_at_switch  # the user typed none meanwhile
        if r and untouched:  # the middle of the trained range: a condition the model was trained for
            self.T.setValue(0.5 * (r["T"][0] + r["T"][1]))
            self.mu.setValue(0.0 if r["mu"][0] <= 0.0 <= r["mu"][1] else 0.5 * (r["mu"][0] + r["mu"][1]))
        for v in self._views():
            v.set_model(ref, info)
        self._units()
        self._placeholders()
        self._check_range()
        if self._preview_pending:
            self._start_preview()

    def _units(self) -> None:
        T_u, mu_u = unit_text(self.info.get("T_unit", "")), unit_text(self.info.get("mu_unit", ""))
        energy = "ε" if self.info.get("T_unit") == "kT/eps" else mu_u  # F/N is an energy: eps for Ising, eV for CuAu
        self.free_energy.setLabel("bottom", f"T ({T_u})" if T_u else "T")
        self.free_energy.setLabel("left", f"F / N ({energy})" if energy else "F / N")
        obs, ou = self.info.get("observable", "observable"), unit_text(self.info.get("observable_unit", ""))
        self.hist_obs.setTitle(obs)
        self.hist_obs.setLabel("bottom", f"{obs} ({ou})" if ou else obs)
        headers = []
        for key, head in TABLE:
            u = unit_text(self.info.get(UNIT_COLUMNS[key], "")) if key in UNIT_COLUMNS else ""
            headers.append(f"{'μ' if key == 'mu' else head} ({u})" if u else head)
        self.table.setHorizontalHeaderLabels(headers)
        labels = self.info.get("labels") or []
        colors = getattr(lattice, "COLORS", {})
        if len(labels) == 2 and colors:
            swatch = "<span style='background:{}'>&nbsp;&nbsp;&nbsp;</span> {}"
            self.key.setText("<br>".join(swatch.format(colors[v].name(), lab) for v, lab in zip((1, -1), labels)))
        else:
            self.key.setText("")

    def _placeholders(self) -> None:
        """Empty gallery tiles of the model's own size (5x5 for a 5x5 model, one 2x2 layer of a 2x2x4 cell)."""
        size = self.info.get("size")
        if self.samples is None and size:
            blank = np.zeros(tuple(int(v) for v in size), np.int8)
            for v in self.gallery:
                v.cell = thumb_cell(size)
                v.set_values(blank)
            self._fit_gallery()
            self._layers(len(size) == 3, int(size[-1]))

    def _fit_gallery(self) -> None:
        """The gallery strip as tall as its thumbnails (plus a scroll bar): they change size with the model."""
        bar = self.gallery_area.horizontalScrollBar().sizeHint().height()
        self.gallery_area.setFixedHeight(self.gallery_area.widget().sizeHint().height() + bar)

    def _layers(self, layered: bool, n: int) -> None:
        self.layer.setRange(0, n - 1 if layered else 0)
        self.layer.setEnabled(layered)
        for w in (self.layer, self.layer_label, self.layer_title):
            w.setVisible(layered)
        self._set_layer(self.layer.value())

    def _check_range(self) -> None:
        """A condition outside the trained range is allowed, with a visible warning before and after sampling."""
        r = self.info.get("trained_range")
        if r is None or self.grid.isChecked() or in_range(r, self.T.value(), self.mu.value()):
            self.range_note.setText("")
            return
        T_u, mu_u = unit_text(self.info.get("T_unit", "")), unit_text(self.info.get("mu_unit", ""))
        show_warning(self.range_note, f"outside the trained range (T {fmt_value(r['T'][0])}–{fmt_value(r['T'][1])}"
                     f" {T_u}, μ {fmt_value(r['mu'][0])}–{fmt_value(r['mu'][1])} {mu_u}): extrapolation")

    def clear_results(self) -> None:
        self.samples = None
        self.table_rows = []
        self.table.setRowCount(0)
        self.condition.blockSignals(True)
        self.condition.clear()
        self.condition.blockSignals(False)
        for p in (self.hist_logf, self.hist_obs, self.free_energy):
            p.clear()
            reset_range(p)
        self.fe_legend.clear()
        self.xyz_btn.setEnabled(False)
        if self.job is None:
            self.status.setText("")
            self._idle()

    def preview_when_ready(self) -> None:
        """First start: draw the chosen (bundled) model's samples as soon as its model_info is in, so the panel
        opens on pictures rather than empty plots. A press of Sample meanwhile supersedes the preview."""
        self._preview_pending = True
        if self.info.get("size"):
            self._start_preview()

    def _start_preview(self) -> None:
        self._preview_pending = False
        if self.job is None and self.model.current_ref():
            self.sample(n=PREVIEW_SAMPLES, preview=True)

    def sample(self, n: int | None = None, preview: bool = False) -> None:
        ref = self.model.current_ref()
        if not ref:
            self.status.setText("no model: train one or install the bundled models")
            return
        if self.job is not None:
            if not self.previewing:
                return
            if self.job != "pending":
                self.client.request("cancel", {"job": self.job})  # the user's request replaces the preview
        n = self.n.value() if not isinstance(n, int) or isinstance(n, bool) else n
        conds = "paper" if self.grid.isChecked() else [[self.T.value(), self.mu.value()]]
        self.job = "pending"
        self.previewing = bool(preview)
        self.clear_results()
        self.progress.setFormat("starting…")
        self.status.setText("drawing a first look at the model…" if preview else "sampling…")
        self._update()
        self._token = token = object()
        self.client.request("sample", {"model": ref, "conditions": conds, "n": n},
                            lambda r, t=token: self._queued(t, r), lambda e, t=token: self._refused(t, e))

    def _queued(self, token, result) -> None:
        if token is self._token:
            self.job = result["job"]
        else:  # a request superseded before the engine named its job
            self.client.request("cancel", {"job": result["job"]})

    def _refused(self, token, exc) -> None:
        if token is self._token:
            self._failed(exc)

    def _failed(self, exc) -> None:
        self.previewing = False
        JobView._failed(self, exc)

    def _update(self) -> None:
        self.go.setEnabled(self.job is None or self.previewing)
        self.cancel.setEnabled(self.job is not None)

    def engine_lost(self) -> None:
        self.previewing = False
        for v in self._views():
            v.engine_lost()
        JobView.engine_lost(self)

    def on_event(self, name: str, job, data: dict) -> None:
        if any(v.on_event(name, job, data) for v in self._views()) or job is None or job != self.job:
            return
        if name == "progress":
            self.show_progress(data, "conditions")
        elif name == "finished":
            self.job = None
            self.previewing = False
            self.progress.setValue(1000)
            self.progress.setFormat("done")
            self.show_results(data)
        elif name in ("failed", "cancelled"):
            self.job = None
            self.previewing = False
            self._idle()
            show_error(self.status, f"sampling {name}: {data.get('message', '')}")
        self._update()

    # ---- results -----------------------------------------------------------------------------------------------
    def show_results(self, data: dict) -> None:
        self.table_rows = data["table"]
        self.info = {**self.info, **data["model"]}
        with np.load(data["path"]) as z:
            self.samples = {k: z[k] for k in z.files}
        self.samples_path = data["path"]
        self.xyz_btn.setEnabled(self.is_alloy())
        k = len(self.table_rows)
        text = (f"{k} condition{'s' if k != 1 else ''} × {data['table'][0]['n_samples']} samples → "
                f"{Path(data['path']).name}")
        outside = [r for r in self.table_rows if r.get("extrapolation")]
        if outside:
            show_warning(self.status, f"{text}; {len(outside)} of {len(self.table_rows)} condition(s) outside the "
                         "model's trained range: those results are an extrapolation")
        else:
            self.status.setText(text)
        self._units()
        self.table.setRowCount(len(self.table_rows))
        for i, row in enumerate(self.table_rows):
            for j, (key, _) in enumerate(TABLE):
                v = row.get(key)
                item = QTableWidgetItem("" if v is None else f"{v:.5g}")
                if row.get("extrapolation"):  # outside the trained (T, mu) range: allowed, but say so
                    item.setBackground(QColor("#fff3c4"))
                    item.setToolTip("outside the model's trained (T, mu) range: extrapolation")
                self.table.setItem(i, j, item)
        self.condition.blockSignals(True)
        self.condition.clear()
        T_u, mu_u = unit_text(self.info.get("T_unit", "")), unit_text(self.info.get("mu_unit", ""))
        self.condition.addItems([f"T = {fmt_value(r['T'])} {T_u}, μ = {fmt_value(r['mu'])} {mu_u}"
                                 + ("  (extrapolation)" if r.get("extrapolation") else "") for r in self.table_rows])
        self.condition.blockSignals(False)
        spins = self.samples["samples"]
        layered = self.info.get("lattice") == "fcc"  # a 3D cell, shown one layer at a time
        self._layers(layered, spins.shape[-1])
        self.show_condition(0)
        self._plot_free_energy()

    def show_condition(self, i: int) -> None:
        if self.samples is None or i < 0:
            return
        spins = self.samples["samples"][i]
        if str(self.samples["encoding"]) == "species":
            spins = 2 * spins.astype(np.int8) - 1  # species 0/1 -> spins -1/+1 for display
        for k, view in enumerate(self.gallery):
            view.setVisible(k < len(spins))
            if k < len(spins):
                view.cell = thumb_cell(spins[k].shape)
                view.set_values(spins[k])
        self._fit_gallery()
        self._hist(self.hist_logf, self.samples["log_f"][i])
        self._hist(self.hist_obs, self.samples["observable"][i])

    def _set_layer(self, k: int) -> None:
        self.layer_label.setText(f"layer {k + 1} / {self.layer.maximum() + 1}")
        for v in self.gallery:
            v.set_layer(k)

    @staticmethod
    def _hist(plot, values) -> None:
        plot.clear()
        values = np.asarray(values, dtype=np.float64)
        bins = min(40, max(5, len(np.unique(values))))
        y, x = np.histogram(values, bins=bins)
        plot.plot(x, y, stepMode="center", fillLevel=0, brush=(30, 90, 230, 120))

    def _plot_free_energy(self) -> None:
        """F/N against T, one colour per mu (round labels "μ = −0.0857 eV"), the model's points with error bars (its
        F_q standard error, scaled as F_q is to F/N), the exact line where one exists; or the model-minus-exact
        gap per site against a zero line."""
        p = self.free_energy
        p.clear()
        self.fe_legend.clear()
        rows = self.table_rows
        gap = self.gap_view.isChecked()
        mu_u = unit_text(self.info.get("mu_unit", ""))
        mus = sorted({r["mu"] for r in rows})
        if gap:
            p.addLine(y=0.0, pen=pg.mkPen((120, 120, 120), style=Qt.DashLine))
        for k, mu in enumerate(mus):
            sel = sorted((r for r in rows if r["mu"] == mu), key=lambda r: r["T"])
            c = colour(k)
            label = f"μ = {fmt_value(mu)}" + (f" {mu_u}" if mu_u else "")
            T = np.array([r["T"] for r in sel], dtype=np.float64)
            q = np.array([_num(r.get("free_energy_per_site_q")) for r in sel])
            ex = np.array([_num(r.get("exact_free_energy_per_site")) for r in sel])
            err = np.array([_per_site_err(r) for r in sel])
            y = q - ex if gap else q
            ok = np.isfinite(y)
            if not ok.any():
                continue
            pts = p.plot(T[ok], y[ok], pen=None, symbol="o", symbolBrush=c, symbolPen=None, symbolSize=7)
            self.fe_legend.addItem(pts, f"model{' − exact' if gap else ''}, {label}")
            e_ok = ok & np.isfinite(err)
            if e_ok.any():
                p.addItem(pg.ErrorBarItem(x=T[e_ok], y=y[e_ok], height=2 * err[e_ok], beam=0.0, pen=pg.mkPen(c)))
            if not gap and np.isfinite(ex).any():
                line = p.plot(T[np.isfinite(ex)], ex[np.isfinite(ex)], pen=pg.mkPen(c, width=1.5))
                self.fe_legend.addItem(line, f"exact, {label}")
        p.setTitle("free energy per site: model − exact" if gap else "free energy per site vs T")
        p.enableAutoRange()

    def _export_figure(self, ext: str) -> None:
        key = self.which.currentText()
        path = export.ask_path(self, f"Export {key}", f"{key.replace(' ', '_')}.{ext}", f"{ext.upper()} (*.{ext})")
        if path:
            export.export_figure(self.plots[key], path)

    def _export_csv(self) -> None:
        if not self.table_rows:
            return
        path = export.ask_path(self, "Export evaluation table", "evaluation.csv", "CSV (*.csv)")
        if path:
            export.write_csv(path, [k for k, _ in TABLE], [[r.get(k) for k, _ in TABLE] for r in self.table_rows])

    def is_alloy(self) -> bool:
        """The samples are atoms on an fcc lattice (species encoding), which extxyz can hold."""
        s = self.samples
        return s is not None and str(s.get("encoding", "")) == "species" and str(s.get("lattice", "")) == "fcc"

    def _export_extxyz(self) -> None:
        if self.samples is None or not self.is_alloy():
            return
        export.request_extxyz(self, self.client, self.samples_path, "samples.extxyz", self.status)

    def _export_npz(self) -> None:
        if self.samples is None:
            return
        path = export.ask_path(self, "Export samples", "samples.npz", "NumPy (*.npz)")
        if path:
            export.write_npz(path, **self.samples)


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def _per_site_err(row: dict) -> float:
    """The F_q standard error on the F/N scale (F/N = F_q x T k_B / N, so the ratio of the two carries it)."""
    f, fn, se = row.get("F_q"), row.get("free_energy_per_site_q"), row.get("F_q_stderr")
    if f in (None, 0) or fn is None or se is None:
        return float("nan")
    return abs(float(se) * float(fn) / float(f))
