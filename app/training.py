"""Training panel: compose a run config, start / pause / resume / stop it, watch live curves, resume a stopped run."""

from __future__ import annotations

import tomllib
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout, QLabel,
                               QLineEdit, QProgressBar, QPushButton, QSpinBox, QVBoxLayout, QWidget)

from lattherm.engine import paths
from lattherm.engine.tomlwrite import toml_text

from . import export
from .common import dspin, error_label, fmt_eta, show_error
from .plots import METRICS, LiveCurves

DEFAULT_SIZES = {"ising": "4x4", "cuau": "2x2x4"}
MODEL_KINDS = ("ao-arm", "fo-arm")
ARCHS = ("mlp",)


def presets() -> dict[str, Path]:
    folder = Path(paths.RESOURCES) / "configs"
    return {p.stem: p for p in sorted(folder.glob("*.toml"))} if folder.is_dir() else {}


class TrainingPanel(QWidget):
    run_started = Signal(str)
    run_ended = Signal(str)

    def __init__(self, client, parent=None):
        super().__init__(parent)
        self.client = client
        self.job: str | None = None
        self.run_id: str | None = None
        self.state = "idle"  # idle | starting | running | paused | stopping
        self.base: dict = {}
        # ---- config form
        self.preset = QComboBox()
        self._presets = presets()
        self.preset.addItems(list(self._presets))
        self.preset.currentTextChanged.connect(self.load_preset)
        self.system = QComboBox()
        self.system.addItems(["ising", "cuau"])
        self.system.currentTextChanged.connect(lambda s: self.size.setText(DEFAULT_SIZES[s]))
        self.size = QLineEdit("4x4")
        self.kind = QComboBox()
        self.kind.addItems(MODEL_KINDS)
        self.arch = QComboBox()
        self.arch.addItems(ARCHS)
        self.hidden, self.layers = QSpinBox(), QSpinBox()
        self.hidden.setRange(1, 4096)
        self.layers.setRange(1, 32)
        self.T_lo, self.T_hi = dspin(1.5, 0.001, 1e5), dspin(3.5, 0.001, 1e5)
        self.mu_lo, self.mu_hi = dspin(-0.4, -1e3, 1e3, 0.05), dspin(0.4, -1e3, 1e3, 0.05)
        self.T_points, self.mu_points = QSpinBox(), QSpinBox()
        for w in (self.T_points, self.mu_points):
            w.setRange(1, 64)
        self.batch, self.steps = QSpinBox(), QSpinBox()
        self.batch.setRange(2, 1_000_000)
        self.steps.setRange(1, 10_000_000)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(1e-6, 1.0)
        self.lr.setSingleStep(1e-4)
        form = QFormLayout()
        form.addRow("preset", self.preset)
        form.addRow("system", self.system)
        form.addRow("lattice size", self.size)
        form.addRow("model", self._row(self.kind, self.arch))
        form.addRow("hidden × layers", self._row(self.hidden, self.layers))
        form.addRow("T range, points", self._row(self.T_lo, self.T_hi, self.T_points))
        form.addRow("mu range, points", self._row(self.mu_lo, self.mu_hi, self.mu_points))
        form.addRow("batch", self.batch)
        form.addRow("budget (steps)", self.steps)
        form.addRow("learning rate", self.lr)
        box = QGroupBox("New run")
        box.setLayout(form)
        # ---- controls
        self.start_btn, self.pause_btn = QPushButton("Start"), QPushButton("Pause")
        self.resume_btn, self.stop_btn = QPushButton("Resume"), QPushButton("Stop")
        self.resume_run_btn = QPushButton("Resume run…")
        self.resume_run_btn.setToolTip("continue the run opened in the browser from its latest checkpoint")
        self.start_btn.clicked.connect(self.start)
        self.pause_btn.clicked.connect(lambda: self._control("pause"))
        self.resume_btn.clicked.connect(lambda: self._control("resume"))
        self.stop_btn.clicked.connect(self.stop)
        self.resume_run_btn.clicked.connect(self.resume_run)
        self.progress = QProgressBar()
        self.progress.setFormat("idle")
        self.status = error_label()
        # ---- curves
        self.curves = LiveCurves()
        self.smoothing = dspin(0.9, 0.0, 0.999, 0.05)
        self.smoothing.valueChanged.connect(self.curves.set_smoothing)
        self.log_y = QCheckBox("log y")
        self.log_y.toggled.connect(self.curves.set_log_y)
        self.which_plot = QComboBox()
        self.which_plot.addItems([k for k, _ in METRICS])
        self.curves.plots_changed = self._sync_plot_choices
        png, svg, csv = QPushButton("PNG…"), QPushButton("SVG…"), QPushButton("CSV…")
        png.clicked.connect(lambda: self._export_figure("png"))
        svg.clicked.connect(lambda: self._export_figure("svg"))
        csv.clicked.connect(self._export_csv)
        left = QVBoxLayout()
        left.addWidget(box)
        left.addWidget(self._row(self.start_btn, self.pause_btn, self.resume_btn, self.stop_btn))
        left.addWidget(self.resume_run_btn)
        left.addWidget(self.progress)
        left.addWidget(self.status)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(self._row(QLabel("EMA"), self.smoothing, self.log_y, QLabel("export"), self.which_plot, png,
                                  svg, csv))
        right.addWidget(self.curves, 1)
        lay = QHBoxLayout(self)
        lay.addLayout(left, 0)
        lay.addLayout(right, 1)
        if "quick-cpu" in self._presets:
            self.preset.setCurrentText("quick-cpu")
        self.load_preset(self.preset.currentText())
        self._update_buttons()

    @staticmethod
    def _row(*widgets) -> QWidget:
        w = QWidget()
        h = QHBoxLayout(w)
        h.setContentsMargins(0, 0, 0, 0)
        for x in widgets:
            h.addWidget(x)
        return w

    # ---- config ------------------------------------------------------------------------------------------------
    def load_preset(self, name: str) -> None:
        path = self._presets.get(name)
        if path is None:
            return
        self.set_config(tomllib.loads(path.read_text(encoding="utf-8")))

    def set_config(self, data: dict) -> None:
        self.base = {k: dict(v) for k, v in data.items()}
        s, m = data.get("system", {}), data.get("model", {})
        c, t = data.get("conditions", {}), data.get("training", {})
        self.system.blockSignals(True)
        self.system.setCurrentText(s.get("name", "ising"))
        self.system.blockSignals(False)
        self.size.setText(str(s.get("size", DEFAULT_SIZES.get(s.get("name", "ising"), "4x4"))))
        self.kind.setCurrentText(m.get("kind", "ao-arm"))
        self.arch.setCurrentText(m.get("arch", "mlp"))
        self.hidden.setValue(int(m.get("hidden", 512)))
        self.layers.setValue(int(m.get("layers", 4)))
        T, mu = c.get("T", [1.5, 3.5]), c.get("mu", [-0.4, 0.4])
        self.T_lo.setValue(T[0])
        self.T_hi.setValue(T[1])
        self.mu_lo.setValue(mu[0])
        self.mu_hi.setValue(mu[1])
        self.T_points.setValue(int(c.get("T_points", 5)))
        self.mu_points.setValue(int(c.get("mu_points", 5)))
        self.batch.setValue(int(t.get("batch", 1250)))
        self.steps.setValue(int(t.get("steps", 40000)))
        self.lr.setValue(float(t.get("lr", 1e-3)))

    def config_text(self) -> str:
        d = {k: dict(v) for k, v in self.base.items()}
        for k in ("system", "model", "conditions", "training"):
            d.setdefault(k, {})
        d["system"].update(name=self.system.currentText(), size=self.size.text().strip())
        d["model"].update(kind=self.kind.currentText(), arch=self.arch.currentText(), hidden=self.hidden.value(),
                          layers=self.layers.value())
        d["conditions"].update(T=[self.T_lo.value(), self.T_hi.value()], mu=[self.mu_lo.value(), self.mu_hi.value()],
                               T_points=self.T_points.value(), mu_points=self.mu_points.value())
        if self.system.currentText() != "ising":
            d["model"]["symmetric"] = False
        d["training"].update(batch=self.batch.value(), steps=self.steps.value(), lr=self.lr.value())
        d["training"].setdefault("device", "auto")
        return toml_text(d)

    # ---- actions -----------------------------------------------------------------------------------------------
    def start(self, config_text: str | None = None) -> None:
        self._begin()
        text = config_text if isinstance(config_text, str) else self.config_text()
        self.client.request("start_training", {"config": text}, self._queued, self._failed_request)

    def resume_run(self, run_id: str | None = None) -> None:
        rid = run_id if isinstance(run_id, str) else self.run_id
        if not rid:
            self.status.setText("open a stopped run in the browser first")
            return
        self._begin()
        self.run_id = rid
        self.client.request("open_run", {"run": rid}, self._prefill)
        self.client.request("resume_training", {"run": rid}, self._queued, self._failed_request)

    def _begin(self) -> None:
        self.curves.reset()
        self.state, self.job = "starting", None
        self.progress.setValue(0)
        self.progress.setFormat("queued")
        self.status.setText("")
        self._update_buttons()

    def _prefill(self, result) -> None:
        self.curves.add_records(result.get("metrics", []))

    def stop(self) -> None:
        if self.job:
            self.state = "stopping"
            self.status.setText("stopping: saving a checkpoint…")
            self.client.request("cancel", {"job": self.job}, None, self._failed_request)
            self._update_buttons()

    def _control(self, method: str) -> None:
        if self.job:
            self.client.request(method, {"job": self.job}, None, self._failed_request)

    def _queued(self, result) -> None:
        self.job = result["job"]

    def _failed_request(self, exc) -> None:
        if self.state == "starting":
            self.state = "idle"
        show_error(self.status, exc)
        self._update_buttons()

    def show_run(self, run_id: str) -> None:
        """Show the curves of a run from disk (the browser's Open)."""
        if self.state in ("starting", "running", "paused", "stopping"):
            return
        self.run_id = run_id
        self.curves.reset()
        self.client.request("open_run", {"run": run_id}, self._shown, lambda e: show_error(self.status, e))

    def _shown(self, result) -> None:
        self.curves.add_records(result["metrics"])
        st = result["status"]
        self.status.setText(f"run {result['id']}: {st.get('status')} at step {st.get('step')}")
        try:
            self.set_config(tomllib.loads(result["config"]))
        except (tomllib.TOMLDecodeError, TypeError, ValueError, IndexError):
            pass
        self._update_buttons()

    # ---- events ------------------------------------------------------------------------------------------------
    def on_event(self, name: str, job, data: dict) -> None:
        if job is None or job != self.job:
            return
        if name == "started":
            self.run_id = data["run"]
            self.state = "running"
            self.status.setText(f"training run {data['run']}")
            self.run_started.emit(data["run"])
        elif name == "metrics":
            self.curves.add_records(data["records"])
        elif name == "progress":
            self.progress.setValue(int(1000 * data["fraction"]))
            self.progress.setMaximum(1000)
            self.progress.setFormat(f"step {data['step']} / {data['total']}   {fmt_eta(data.get('eta_s'))}")
        elif name == "paused":
            self.state = "paused"
            self.progress.setFormat(f"paused at step {data['step']}")
        elif name == "resumed":
            self.state = "running"
        elif name in ("finished", "cancelled", "failed"):
            self.state = "idle"
            self.job = None
            if name == "failed":
                show_error(self.status, f"training failed: {data.get('type')}: {data.get('message')}")
            else:
                word = "finished" if name == "finished" else "stopped"
                self.status.setText(f"run {data.get('run')} {word} at step {data.get('step')}; checkpoint "
                                    f"{Path(data['checkpoint']).name if data.get('checkpoint') else 'none'}")
            if data.get("run"):
                self.run_ended.emit(data["run"])
        self._update_buttons()

    def engine_lost(self) -> str | None:
        """The engine died: this job is gone. Returns the run it was training (files on disk stay)."""
        run = self.run_id if self.state in ("running", "paused", "stopping") else None
        if self.state != "idle":
            show_error(self.status, f"training stopped: the engine process died (run {self.run_id}: its saved "
                       "checkpoints are kept; use Resume run to continue)")
        self.state, self.job = "idle", None
        self.progress.setFormat("failed")
        self._update_buttons()
        return run

    def _update_buttons(self) -> None:
        busy = self.state in ("starting", "running", "paused", "stopping")
        self.start_btn.setEnabled(not busy)
        self.resume_run_btn.setEnabled(not busy and self.run_id is not None)
        self.pause_btn.setEnabled(self.state == "running")
        self.resume_btn.setEnabled(self.state == "paused")
        self.stop_btn.setEnabled(self.state in ("running", "paused", "starting"))

    def _sync_plot_choices(self) -> None:
        keys = [k for k, _ in self.curves.metrics()]
        if [self.which_plot.itemText(i) for i in range(self.which_plot.count())] != keys:
            current = self.which_plot.currentText()
            self.which_plot.clear()
            self.which_plot.addItems(keys)
            if current in keys:
                self.which_plot.setCurrentText(current)

    # ---- export ------------------------------------------------------------------------------------------------
    def _export_figure(self, ext: str) -> None:
        key = self.which_plot.currentText()
        path = export.ask_path(self, f"Export {key} plot", f"{key}.{ext}", f"{ext.upper()} (*.{ext})")
        if path:
            export.export_figure(self.curves.plots[key], path)

    def _export_csv(self) -> None:
        path = export.ask_path(self, "Export curves", "curves.csv", "CSV (*.csv)")
        if path:
            header, rows = self.curves.table()
            export.write_csv(path, header, rows)
