"""Sampler panel: draw samples from a model at one condition or on the paper grid; gallery, histograms, free
energy per site against T with the exact reference, and the evaluation table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (QComboBox, QGridLayout, QHBoxLayout, QLabel, QProgressBar, QPushButton,
                               QRadioButton, QSlider, QSpinBox, QTableWidget, QTableWidgetItem, QTabWidget,
                               QVBoxLayout, QWidget)
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from . import export
from .common import dspin, error_label, fmt_eta, show_error
from .lattice import LatticeView
from .models import ModelCombo

TABLE = (("T", "T"), ("mu", "mu"), ("F_q", "F_q"), ("F_q_stderr", "± F_q"), ("neg_log_Z_nis", "-log Z (NIS)"),
         ("exact_neg_log_Z", "-log Z exact"), ("gap", "gap"), ("ess_fraction", "ESS/n"),
         ("mean_observable", "<obs>"), ("exact_mean_observable", "<obs> exact"),
         ("free_energy_per_site_q", "F/N (q)"), ("exact_free_energy_per_site", "F/N exact"))
GALLERY = 8


class SamplerPanel(QWidget):
    def __init__(self, client, parent=None):
        super().__init__(parent)
        self.client = client
        self.job: str | None = None
        self.table_rows: list[dict] = []
        self.samples: dict | None = None
        self.model = ModelCombo()
        self.single = QRadioButton("single condition")
        self.grid = QRadioButton("paper grid")
        self.single.setChecked(True)
        self.T, self.mu = dspin(2.5, 0.001, 1e5), dspin(0.0, -1e3, 1e3, 0.05)
        self.n = QSpinBox()
        self.n.setRange(1, 100000)
        self.n.setValue(500)
        self.go, self.cancel = QPushButton("Sample"), QPushButton("Cancel")
        self.go.clicked.connect(self.sample)
        self.cancel.clicked.connect(lambda: self.job and self.client.request("cancel", {"job": self.job}))
        self.progress = QProgressBar()
        self.progress.setMaximum(1000)
        self.status = error_label()
        top = QGridLayout()
        top.addWidget(QLabel("model"), 0, 0)
        top.addWidget(self.model, 0, 1, 1, 5)
        for i, w in enumerate((self.single, QLabel("T"), self.T, QLabel("mu"), self.mu)):
            top.addWidget(w, 1, i)
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
        for v in self.gallery:
            gl.addWidget(v)
        gl.addStretch(1)
        self.hist_logf = pg.PlotWidget(title="log f")
        self.hist_obs = pg.PlotWidget(title="observable")
        self.free_energy = pg.PlotWidget(title="free energy per site vs T")
        self.free_energy.addLegend()
        self.free_energy.setLabel("bottom", "T")
        self.table = QTableWidget(0, len(TABLE))
        self.table.setHorizontalHeaderLabels([h for _, h in TABLE])
        self.tabs = QTabWidget()
        hist = QWidget()
        hl = QHBoxLayout(hist)
        hl.addWidget(self.hist_logf)
        hl.addWidget(self.hist_obs)
        self.tabs.addTab(hist, "histograms")
        self.tabs.addTab(self.free_energy, "free energy vs T")
        self.tabs.addTab(self.table, "evaluation table")
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
        row.addWidget(QLabel("fcc layer"))
        row.addWidget(self.layer)
        lay.addLayout(row)
        lay.addWidget(gal)
        lay.addWidget(self.tabs, 1)
        lay.addLayout(ex)
        self._update()

    def sample(self) -> None:
        ref = self.model.current_ref()
        if not ref:
            self.status.setText("no model: train one or install the bundled models")
            return
        conds = "paper" if self.grid.isChecked() else [[self.T.value(), self.mu.value()]]
        self.job = "pending"
        self.progress.setValue(0)
        self.status.setText("sampling…")
        self._update()
        self.client.request("sample", {"model": ref, "conditions": conds, "n": self.n.value()},
                            lambda r: setattr(self, "job", r["job"]), self._failed)

    def _failed(self, exc) -> None:
        self.job = None
        show_error(self.status, exc)
        self._update()

    def _update(self) -> None:
        self.go.setEnabled(self.job is None)
        self.cancel.setEnabled(self.job is not None)

    def engine_lost(self) -> None:
        if self.job:
            show_error(self.status, "sampling stopped: the engine process died")
        self.job = None
        self._update()

    def on_event(self, name: str, job, data: dict) -> None:
        if job is None or job != self.job:
            return
        if name == "progress":
            self.progress.setValue(int(1000 * data["fraction"]))
            self.progress.setFormat(f"{data['step']} / {data['total']} conditions   {fmt_eta(data.get('eta_s'))}")
        elif name == "finished":
            self.job = None
            self.show_results(data)
        elif name in ("failed", "cancelled"):
            self.job = None
            show_error(self.status, f"sampling {name}: {data.get('message', '')}")
        self._update()

    # ---- results -----------------------------------------------------------------------------------------------
    def show_results(self, data: dict) -> None:
        self.table_rows = data["table"]
        self.info = data["model"]
        with np.load(data["path"]) as z:
            self.samples = {k: z[k] for k in z.files}
        self.samples_path = data["path"]
        self.xyz_btn.setEnabled(self.is_alloy())
        self.status.setText(f"{len(self.table_rows)} conditions × {data['table'][0]['n_samples']} samples → "
                            f"{Path(data['path']).name}")
        self.hist_obs.setTitle(self.info.get("observable", "observable"))
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
        self.condition.addItems([f"T={r['T']:g}, mu={r['mu']:g}" for r in self.table_rows])
        self.condition.blockSignals(False)
        spins = self.samples["samples"]
        layered = self.info.get("lattice") == "fcc"  # a 3D cell, shown one layer at a time
        self.layer.setRange(0, spins.shape[-1] - 1 if layered else 0)
        self.layer.setEnabled(layered)
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
                view.set_values(spins[k])
        self._hist(self.hist_logf, self.samples["log_f"][i])
        self._hist(self.hist_obs, self.samples["observable"][i])

    def _set_layer(self, k: int) -> None:
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
        p = self.free_energy
        p.clear()
        rows = self.table_rows
        for k, mu in enumerate(sorted({r["mu"] for r in rows})):
            sel = sorted((r for r in rows if r["mu"] == mu), key=lambda r: r["T"])
            color = pg.intColor(k, max(2, len({r["mu"] for r in rows})))
            T = [r["T"] for r in sel]
            p.plot(T, [r["free_energy_per_site_q"] for r in sel], pen=None, symbol="o", symbolBrush=color,
                   name=f"model, mu={mu:g}")
            ex = [(r["T"], r["exact_free_energy_per_site"]) for r in sel if r.get("exact_free_energy_per_site")
                  is not None]
            if ex:
                p.plot(*zip(*ex), pen=pg.mkPen(color, width=1), symbol="x", name=f"exact, mu={mu:g}")

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
