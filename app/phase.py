"""The phase-diagram view of the Sampler: the temperature–composition map (sampled compositions per T as an image
with a colour bar) and the <x>(mu) isotherms of a model over a (T, mu) grid, from the engine's ``phase_diagram``
job, with the Wang–Landau two-phase boundary overlaid when the job computed one; progress, cancel, PNG/SVG/CSV.

The job writes ``phase_grid.npz`` (T, mu, x_mean, x_std, x_bins, x_hist, reference) into a folder this view
chooses (a fresh temporary one per job); the view reads that file, as the Sampler reads its samples file.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import (QCheckBox, QGridLayout, QHBoxLayout, QLabel, QLineEdit, QProgressBar, QPushButton,
                               QVBoxLayout, QWidget)

from . import export
from .common import (JobView, colour, dspin, error_label, fmt_value, ispin, reset_range, set_unit, show_error,
                     show_warning, unit_text)


class PhaseDiagramView(JobView, QWidget):
    job_title = "phase diagram"

    def __init__(self, client, parent=None):
        super().__init__(parent)
        self.client = client
        self.job: str | None = None
        self.model: str | None = None
        self.info: dict = {}
        self.grid: dict | None = None
        self.out: Path | None = None
        self.T_points = ispin(8, 2, 200, name="T points")
        self.mu_points = ispin(9, 2, 200, name="μ points")
        self.samples = ispin(200, 1, 100000, name="samples / condition")
        self.T_lo, self.T_hi = dspin(1.0, 1e-3, 1e5, 0.1, 3, "T from"), dspin(2.0, 1e-3, 1e5, 0.1, 3, "T to")
        self.mu_lo, self.mu_hi = dspin(-1.0, -1e3, 1e3, 0.01, 4, "μ from"), dspin(1.0, -1e3, 1e3, 0.01, 4, "μ to")
        for box in (self.T_points, self.mu_points, self.samples, self.T_lo, self.T_hi, self.mu_lo, self.mu_hi):
            box.refused.connect(lambda msg: show_error(self.status, msg))
        self.size = QLineEdit()  # empty: the model's own cell; larger cells are painted (and the boundary on them)
        self.size.setToolTip("paint the model onto this cell at every condition, e.g. 4x4x8 (129 compositions where "
                             "a 2x2x4 model has 17); the Wang–Landau boundary is computed on it too")
        self.boundary = QCheckBox("Wang–Landau boundary")
        self.boundary.setToolTip("overlay the two-phase boundary from Wang–Landau over composition (slower)")
        self.go, self.cancel = QPushButton("Compute phase diagram"), QPushButton("Cancel")
        self.go.clicked.connect(self.compute)
        self.cancel.clicked.connect(lambda: self.job and self.job != "pending" and self.client.request(
            "cancel", {"job": self.job}))
        self.progress = QProgressBar()
        self.progress.setMaximum(1000)
        self.progress.setFormat("idle")
        self.status = error_label()
        self.map_plot = pg.PlotWidget(title="temperature–composition map")
        self.image = pg.ImageItem()
        self.map_plot.addItem(self.image)
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=pg.colormap.get("viridis"), label="fraction of samples")
        self.colorbar.setImageItem(self.image, insert_in=self.map_plot.getPlotItem())
        self.boundary_points = pg.ScatterPlotItem(symbol="o", size=7, brush=None, pen=pg.mkPen("w", width=2))
        self.map_plot.addItem(self.boundary_points)
        self.iso_plot = pg.PlotWidget(title="isotherms")
        for p in (self.map_plot, self.iso_plot):  # axes in the model's units, never rescaled to "(x0.001)"
            for side in ("left", "bottom"):
                p.getPlotItem().getAxis(side).enableAutoSIPrefix(False)
        self.iso_legend = pg.LegendItem(offset=(1, 1))
        self.iso_legend.setParentItem(self.iso_plot.getPlotItem().getViewBox())
        png, svg, csv = QPushButton("PNG…"), QPushButton("SVG…"), QPushButton("CSV…")
        png.clicked.connect(lambda: self._export_figures("png"))
        svg.clicked.connect(lambda: self._export_figures("svg"))
        csv.clicked.connect(self._export_csv)
        self.export_buttons = (png, svg, csv)
        top = QGridLayout()
        for i, w in enumerate((QLabel("T"), self.T_lo, self.T_hi, QLabel("points"), self.T_points,
                               QLabel("samples / condition"), self.samples, self.go)):
            top.addWidget(w, 0, i)
        for i, w in enumerate((QLabel("μ"), self.mu_lo, self.mu_hi, QLabel("points"), self.mu_points,
                               self.boundary, self.size, self.cancel)):
            top.addWidget(w, 1, i)
        plots = QHBoxLayout()
        plots.addWidget(self.map_plot, 1)
        plots.addWidget(self.iso_plot, 1)
        ex = QHBoxLayout()
        ex.addWidget(QLabel("export both plots"))
        for b in self.export_buttons:
            ex.addWidget(b)
        ex.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addLayout(plots, 1)
        lay.addLayout(ex)
        self._update()

    # ---- model -------------------------------------------------------------------------------------------------
    def set_model(self, ref: str | None, info: dict | None) -> None:
        """A new model: its results go (they belong to the old one); axes get the new model's units."""
        self.model, self.info = ref, info or {}
        self.clear()
        self._axes()
        for box, unit in ((self.T_lo, "T_unit"), (self.T_hi, "T_unit"), (self.mu_lo, "mu_unit"),
                          (self.mu_hi, "mu_unit")):
            set_unit(box, self.info.get(unit, ""))
        r = self.info.get("trained_range")
        if r:  # the grid defaults to the range the model was trained on
            self.T_lo.setValue(r["T"][0])
            self.T_hi.setValue(r["T"][1])
            self.mu_lo.setValue(r["mu"][0])
            self.mu_hi.setValue(r["mu"][1])
        own = "x".join(str(v) for v in self.info.get("size", []))
        self.size.clear()
        self.size.setPlaceholderText(f"lattice size (model's: {own})" if own else "lattice size")

    def clear(self) -> None:
        self.grid = None
        self.image.clear()
        self.boundary_points.clear()
        self.iso_plot.clear()
        self.iso_legend.clear()
        self.status.setText("")
        reset_range(self.iso_plot)
        # the map holds its (cleared) image's old rectangle: frame the unit square by hand until the next grid, and
        # the colour bar forgets the old grid's levels
        self.map_plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
        self.colorbar.setLevels((0.0, 1.0))
        self._update()

    def _axes(self) -> None:
        # the map's x is the composition the engine samples (x_up, the fraction of up spins, for Ising; x_Au for
        # CuAu), not the model's observable (Ising's magnetisation runs -1..1)
        x = self.info.get("composition") or "composition"
        T_u, mu_u = unit_text(self.info.get("T_unit", "")), unit_text(self.info.get("mu_unit", ""))
        self.map_plot.setLabel("bottom", x)
        self.map_plot.getPlotItem().getAxis("left").setLabel(f"T ({T_u})" if T_u else "T")
        self.iso_plot.getPlotItem().getAxis("bottom").setLabel(f"μ ({mu_u})" if mu_u else "μ")
        self.iso_plot.getPlotItem().getAxis("left").setLabel(f"⟨{x}⟩")

    # ---- job ---------------------------------------------------------------------------------------------------
    def params(self) -> dict:
        if self.out is not None:
            shutil.rmtree(self.out.parent, ignore_errors=True)  # the last job's folder: read, shown, done with
        self.out = Path(tempfile.mkdtemp(prefix="lattherm-phase-")) / "phase"
        return {"model": self.model, "out": str(self.out), "T_points": self.T_points.value(),
                "mu_points": self.mu_points.value(), "samples": self.samples.value(),
                "T_range": [self.T_lo.value(), self.T_hi.value()], "mu_range": [self.mu_lo.value(), self.mu_hi.value()],
                "boundary": "wl" if self.boundary.isChecked() else "none",
                **({"size": self.size.text().strip()} if self.size.text().strip() else {})}

    def compute(self) -> None:
        if not self.model:
            show_error(self.status, "no model chosen")
            return
        self.clear()
        self.start_job("phase_diagram", self.params(), "computing the phase diagram…")

    def on_event(self, name: str, job, data: dict) -> bool:
        if job is None or job != self.job:
            return False
        if name == "progress":
            self.show_progress(data, (data.get("extra") or {}).get("stage") or data.get("stage") or "")
        elif name == "finished":
            self.job = None
            self._idle()
            try:
                self.show_grid(self.read(Path(data["out"])))
            except (OSError, KeyError, ValueError) as exc:
                show_error(self.status, f"could not read the phase diagram: {exc}")
        elif name in ("failed", "cancelled"):
            self.job = None
            self._idle()
            if name == "cancelled":
                self.status.setText("phase diagram cancelled")
            else:
                show_error(self.status, f"phase diagram failed: {data.get('message', '')}")
        self._update()
        return True

    def _update(self) -> None:
        self.go.setEnabled(self.job is None and bool(self.model))
        self.cancel.setEnabled(self.job is not None)
        for b in self.export_buttons:
            b.setEnabled(self.grid is not None)

    # ---- results -----------------------------------------------------------------------------------------------
    @staticmethod
    def read(out: Path) -> dict:
        with np.load(out / "phase_grid.npz") as z:
            return {k: z[k] for k in z.files}

    def show_grid(self, grid: dict) -> None:
        """The map: x_hist (nT, N+1) normalised per temperature, composition across, T up (each row drawn at its
        temperature, so an uneven T grid is not distorted); isotherms: <x>(mu) ± its spread, one per T."""
        self.grid = grid
        T, mu, bins = (np.asarray(grid[k], dtype=np.float64) for k in ("T", "mu", "x_bins"))
        hist = np.asarray(grid["x_hist"], dtype=np.float64)
        dens = hist / np.maximum(hist.sum(axis=1, keepdims=True), 1.0)
        dx = (bins[-1] - bins[0]) / max(len(bins) - 1, 1) if len(bins) > 1 else 1.0
        dT = (T[-1] - T[0]) / max(len(T) - 1, 1) if len(T) > 1 else 1.0
        self.image.setImage(dens.T, autoLevels=False)  # ImageItem: first axis is x (composition)
        self.image.setRect(float(bins[0] - dx / 2), float(T[0] - dT / 2), float(dx * len(bins)),
                           float(dT * len(T)))
        self.colorbar.setLevels((0.0, float(dens.max()) if dens.size and dens.max() > 0 else 1.0))
        ref = np.asarray(grid.get("reference", np.zeros((0, 3))), dtype=np.float64).reshape(-1, 3)
        if len(ref):
            self.boundary_points.setData(np.concatenate([ref[:, 1], ref[:, 2]]), np.concatenate([ref[:, 0],
                                                                                                 ref[:, 0]]))
        self.iso_plot.clear()
        self.iso_legend.clear()
        xm, xs = np.asarray(grid["x_mean"], dtype=np.float64), np.asarray(grid["x_std"], dtype=np.float64)
        T_u = unit_text(self.info.get("T_unit", ""))
        for i, t in enumerate(T):
            c = colour(i)
            curve = self.iso_plot.plot(mu, xm[i], pen=pg.mkPen(c, width=2), symbol="o", symbolSize=5,
                                       symbolBrush=c, symbolPen=None)
            self.iso_plot.addItem(pg.ErrorBarItem(x=mu, y=xm[i], height=2 * xs[i], pen=pg.mkPen(c)))
            self.iso_legend.addItem(curve, f"T = {fmt_value(t)}" + (f" {T_u}" if T_u else ""))
        for p in (self.map_plot, self.iso_plot):
            p.enableAutoRange()
        msg = f"{len(T)} temperatures × {len(mu)} μ values"
        msg += f"; boundary: {len(ref)} two-phase points" if len(ref) else ""
        self.status.setText(msg)
        if self.info.get("trained_range"):
            r = self.info["trained_range"]
            if T[0] < r["T"][0] or T[-1] > r["T"][1] or mu[0] < r["mu"][0] or mu[-1] > r["mu"][1]:
                show_warning(self.status, msg + ": parts of this grid lie outside the trained range (extrapolation)")
        self._update()

    def _export_figures(self, ext: str) -> None:
        path = export.ask_path(self, "Export phase diagram", f"temperature_composition.{ext}",
                               f"{ext.upper()} (*.{ext})")
        if path:
            self.export_figures(path)

    def export_figures(self, path) -> list[Path]:
        """The map at ``path`` and the isotherms beside it (``<stem>_isotherms.<ext>``)."""
        p = Path(path)
        iso = p.with_name(f"{p.stem}_isotherms{p.suffix}")
        return [export.export_figure(self.map_plot, p), export.export_figure(self.iso_plot, iso)]

    def table(self) -> tuple[list[str], list[list]]:
        g = self.grid
        rows = [[float(t), float(m), float(g["x_mean"][i, j]), float(g["x_std"][i, j])]
                for i, t in enumerate(g["T"]) for j, m in enumerate(g["mu"])]
        return ["T", "mu", "x_mean", "x_std"], rows

    def _export_csv(self) -> None:
        if self.grid is None:
            return
        path = export.ask_path(self, "Export phase grid", "phase_grid.csv", "CSV (*.csv)")
        if path:
            export.write_csv(path, *self.table())
