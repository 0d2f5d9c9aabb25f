"""Training panel: compose a run config, start / pause / resume / stop it, watch live curves, resume a stopped run.

The config form is built from the engine's run-config schema (:mod:`lattherm.engine.config`, torch-free): one
widget per key, systems from the catalog, every model kind x architecture, defaults and bounds from the schema, and
the keys that mean nothing for the chosen model/system disabled. A config the form cannot show exactly is refused.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QFrame, QGroupBox, QHBoxLayout,
                               QLabel, QLineEdit, QProgressBar, QPushButton, QScrollArea, QSpinBox, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from lattherm.engine import config as schema
from lattherm.engine import paths
from lattherm.engine.errors import LatthermError
from lattherm.engine.systems import CATALOG
from lattherm.engine.config import toml_text

from .common import dspin, error_label, fmt_eta, hrow, ispin, set_unit, show_error
from .metrics import METRICS

INT_MAX = 2**31 - 1  # QSpinBox holds a C int
FLOAT_MAX = 1e9
DECIMALS = 6
#: seconds Stop waits for the engine to end a job between steps before offering to end the engine process (a step
#: with an absurd batch can run for minutes: the engine checks for a stop only between steps)
STOP_GRACE_S = 10.0


def presets() -> dict[str, Path]:
    folder = Path(paths.RESOURCES) / "configs"
    return {p.stem: p for p in sorted(folder.glob("*.toml"))} if folder.is_dir() else {}


class ConfigForm(QWidget):
    """One widget per key of the run-config schema, a tab per table; ``values()`` reads them back as a dict."""

    refused = Signal(str)  # a typed value a field did not take, and why

    def __init__(self, parent=None):
        super().__init__(parent)
        self.specs = schema.schema()
        self.widgets: dict[tuple[str, str], object] = {}
        tabs = QTabWidget()
        forms: dict[str, QFormLayout] = {}
        for spec in self.specs:
            if spec.section not in forms:
                page = QWidget()
                forms[spec.section] = QFormLayout(page)
                tabs.addTab(page, spec.section)
            w = self._make(spec)
            for box in (w if isinstance(w, tuple) else (w,)):
                if hasattr(box, "refused"):
                    box.setObjectName(spec.key)
                    box.refused.connect(self.refused)
            self.widgets[spec.section, spec.name] = w
            row = hrow(*w) if isinstance(w, tuple) else w
            row.setToolTip(spec.help)
            forms[spec.section].addRow(spec.label, row)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(tabs)
        self.widget("system", "name").currentTextChanged.connect(self._system_changed)
        self.widget("model", "kind").currentTextChanged.connect(self._kind_changed)
        self.widget("model", "arch").currentTextChanged.connect(lambda _: self._model_changed(reset=True))
        self._kind_changed(self.widget("model", "kind").currentText(), reset=False)
        self._show_units(self.widget("system", "name").currentText())

    def widget(self, section: str, name: str):
        return self.widgets[section, name]

    # ---- building ------------------------------------------------------------------------------------------------
    @staticmethod
    def _make(spec):
        if spec.type is bool:
            w = QCheckBox()
        elif spec.type is int:
            lo = -INT_MAX if spec.low is None else int(spec.low) + int(spec.open_low)
            hi = INT_MAX if spec.high is None else int(spec.high) - int(spec.open_high)
            w = ispin(lo, lo, hi)
        elif spec.type is float or spec.type == "range":
            lo = -FLOAT_MAX if spec.low is None else spec.low + (10.0**-DECIMALS if spec.open_low else 0.0)
            hi = FLOAT_MAX if spec.high is None else spec.high - (10.0**-DECIMALS if spec.open_high else 0.0)
            w = dspin(0.0, lo, hi, 0.1, DECIMALS) if spec.type is float else (dspin(0.0, lo, hi, 0.1, DECIMALS),
                                                                               dspin(0.0, lo, hi, 0.1, DECIMALS))
        elif spec.choices is not None:
            w = QComboBox()
            w.addItems(list(spec.choices))
            w.setEditable(spec.open_choices)
        else:
            w = QLineEdit()
        ConfigForm._set(spec, w, spec.default)
        return w

    # ---- values ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _set(spec, w, value) -> None:
        if spec.type is bool:
            w.setChecked(bool(value))
        elif spec.type == "range":
            w[0].setValue(value[0])
            w[1].setValue(value[1])
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.setValue(value)
        elif isinstance(w, QComboBox):
            w.setCurrentText(value)
        else:
            w.setText(value)

    @staticmethod
    def _get(spec, w):
        if spec.type is bool:
            return w.isChecked()
        if spec.type == "range":
            return [w[0].value(), w[1].value()]
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            return w.value()
        if isinstance(w, QComboBox):
            return w.currentText().strip()
        return w.text().strip()

    def _cannot_show(self, spec, value, cfg) -> str | None:
        """Why the form's widget for ``spec`` cannot hold ``value`` exactly (None: it can)."""
        w = self.widgets[spec.section, spec.name]
        boxes = w if isinstance(w, tuple) else (w,)
        values = value if spec.type == "range" else [value]
        for box, v in zip(boxes, values):
            if isinstance(box, (QSpinBox, QDoubleSpinBox)):
                if not box.minimum() <= v <= box.maximum():
                    return f"{spec.key} = {v!r} is outside the form's range [{box.minimum():g}, {box.maximum():g}]"
                if isinstance(box, QDoubleSpinBox) and round(v, box.decimals()) != v:
                    return f"{spec.key} = {v!r} has more than the form's {box.decimals()} decimals"
        if isinstance(w, QComboBox) and not w.isEditable():
            offered = schema.archs_for(cfg.model.kind) if spec.name == "arch" else spec.choices
            if value not in offered:
                return f"{spec.key} = {value!r} is not one of the form's choices ({', '.join(offered)})"
        return None

    def set_config(self, cfg: schema.RunConfig) -> None:
        """Show ``cfg`` (a valid RunConfig); a LatthermError, with the form untouched, if a widget cannot hold it."""
        for spec in self.specs:
            why = self._cannot_show(spec, getattr(getattr(cfg, spec.section), spec.name), cfg)
            if why:
                raise LatthermError(f"the form cannot show this config: {why}")
        for w in self._signalling():
            w.blockSignals(True)
        try:
            self._fill_archs(cfg.model.kind)
            for spec in self.specs:
                self._set(spec, self.widgets[spec.section, spec.name], getattr(getattr(cfg, spec.section), spec.name))
        finally:
            for w in self._signalling():
                w.blockSignals(False)
        self._show_units(cfg.system.name)
        self._model_changed(reset=False)

    def values(self) -> dict:
        """{table: {key: value}} of every key, as the widgets hold them."""
        out: dict[str, dict] = {}
        for spec in self.specs:
            out.setdefault(spec.section, {})[spec.name] = self._get(spec, self.widgets[spec.section, spec.name])
        return out

    # ---- what applies --------------------------------------------------------------------------------------------
    def _signalling(self):
        return (self.widget("system", "name"), self.widget("model", "kind"), self.widget("model", "arch"))

    def _fill_archs(self, kind: str) -> None:
        arch = self.widget("model", "arch")
        current = arch.currentText()
        arch.clear()
        arch.addItems(list(schema.archs_for(kind)))
        if current in schema.archs_for(kind):
            arch.setCurrentText(current)

    def _system_changed(self, name: str) -> None:
        """A user's switch of system: its default size and its own (T, mu) ranges (the paper's grid), in its units
        (Ising kT/eps and eps; CuAu K and eV): Ising's 1.5..3.5 would mean a frozen alloy at a few kelvin."""
        info = CATALOG.get(name)
        if info is not None:
            self.widget("system", "size").setText(info.default_size)
            if info.paper_T and ("conditions", "T") in self.widgets:
                for key, values in (("T", info.paper_T), ("mu", info.paper_mu)):
                    lo_box, hi_box = self.widget("conditions", key)
                    lo_box.setValue(min(values))
                    hi_box.setValue(max(values))
        self._show_units(name)
        self._model_changed(reset=True)

    def _show_units(self, name: str) -> None:
        info = CATALOG.get(name)
        for key, unit in (("T", info.T_unit if info else ""), ("mu", info.mu_unit if info else "")):
            if ("conditions", key) in self.widgets:
                for box in self.widget("conditions", key):
                    set_unit(box, unit)

    def _kind_changed(self, kind: str, reset: bool = True) -> None:
        arch = self.widget("model", "arch")
        arch.blockSignals(True)
        self._fill_archs(kind)
        arch.blockSignals(False)
        self._model_changed(reset=reset)

    def _model_changed(self, reset: bool) -> None:
        """Enable the keys the chosen kind/arch/system use; a user's change resets the ones that no longer apply
        to their defaults (a disabled Z2 box stays unticked for an alloy)."""
        kind, arch = self.widget("model", "kind").currentText(), self.widget("model", "arch").currentText()
        system = self.widget("system", "name").currentText()
        for spec in self.specs:
            on = spec.applies(kind, arch, system)
            w = self.widgets[spec.section, spec.name]
            for box in (w if isinstance(w, tuple) else (w,)):
                box.setEnabled(on)
            if reset and not on:
                self._set(spec, w, spec.default)


class TrainingPanel(QWidget):
    run_started = Signal(str)
    run_ended = Signal(str)
    state_changed = Signal(str, str)  # run id ("" before the engine names it), state: the browser shows a pause

    def __init__(self, client, parent=None):
        super().__init__(parent)
        self.client = client
        self.job: str | None = None
        self.run_id: str | None = None
        self.state = "idle"  # idle | starting | running | paused | stopping
        # ---- config form
        self.preset = QComboBox()
        self._presets = presets()
        self.preset.addItems(list(self._presets))
        self.preset.currentTextChanged.connect(self.load_preset)
        self.form = ConfigForm()
        self.form.refused.connect(lambda msg: show_error(self.status, msg))
        box = QGroupBox("New run")
        box_lay = QVBoxLayout(box)
        box_lay.addWidget(hrow(QLabel("preset"), self.preset))
        box_lay.addWidget(self.form)
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
        self._curves = None  # built after the window's first paint (pyqtgraph is the slowest import): see curves
        self._curves_slot = QWidget()
        QVBoxLayout(self._curves_slot).setContentsMargins(0, 0, 0, 0)
        self.smoothing = dspin(0.9, 0.0, 0.999, 0.05)
        self.smoothing.valueChanged.connect(lambda v: self.curves.set_smoothing(v))
        self.log_y = QCheckBox("log y")  # on the plot chosen beside it; points <= 0 are left out of it
        self.log_y.setToolTip("log scale on the chosen plot's y axis (values <= 0 are not drawn there)")
        self.log_y.toggled.connect(lambda on: self.curves.set_log_y(on, self.which_plot.currentText()))
        self.which_plot = QComboBox()
        self.which_plot.addItems([k for k, _ in METRICS])
        self.which_plot.currentTextChanged.connect(
            lambda k: self.log_y.setChecked(k in self.curves.log_y))  # the box shows the chosen plot's scale
        self._stop_timer = QTimer(self)
        self._stop_timer.setSingleShot(True)
        self._stop_timer.timeout.connect(self._stop_overdue)
        self.stop_asked = 0  # presses of Stop for the job now running
        png, svg, csv = QPushButton("PNG…"), QPushButton("SVG…"), QPushButton("CSV…")
        png.clicked.connect(lambda: self._export_figure("png"))
        svg.clicked.connect(lambda: self._export_figure("svg"))
        csv.clicked.connect(self._export_csv)
        # the form scrolls rather than setting the window's height: its longest tab is taller than a 768-pixel
        # screen leaves for the panel (menu, tab bar and status bar take their share)
        self.form_area = area = QScrollArea()
        area.setWidget(box)
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        area.setMinimumWidth(box.sizeHint().width() + area.verticalScrollBar().sizeHint().width())
        left = QVBoxLayout()
        left.addWidget(area, 1)
        left.addWidget(hrow(self.start_btn, self.pause_btn, self.resume_btn, self.stop_btn))
        left.addWidget(self.resume_run_btn)
        left.addWidget(self.progress)
        left.addWidget(self.status)
        right = QVBoxLayout()
        right.addWidget(hrow(QLabel("EMA"), self.smoothing, QLabel("plot"), self.which_plot, self.log_y))
        right.addWidget(hrow(QLabel("export"), png, svg, csv))
        right.addWidget(self._curves_slot, 1)
        # a splitter, not two fixed columns: the panel fits a 1366-pixel screen and the user moves the border
        split = QSplitter(Qt.Horizontal)
        for part in (left, right):
            holder = QWidget()
            holder.setLayout(part)
            split.addWidget(holder)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([460, 10_000])  # the form as narrow as it reads well, the curves get the rest
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)
        if "quick-cpu" in self._presets:
            self.preset.setCurrentText("quick-cpu")
        self.load_preset(self.preset.currentText())
        self._update_buttons()

    # ---- config ------------------------------------------------------------------------------------------------
    def load_preset(self, name: str) -> None:
        path = self._presets.get(name)
        if path is None:
            return
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            show_error(self.status, f"preset {name}: {exc}")
            return
        self.set_config(data, source=f"preset {name}")

    def set_config(self, data: dict, source: str = "config") -> bool:
        """Show a run config ({table: {key: value}}); one the engine would reject, or the form cannot show exactly,
        is refused with a message and leaves the form as it was."""
        try:
            self.form.set_config(schema.config_from_dict(data))
        except LatthermError as exc:
            show_error(self.status, f"{source} not loaded: {exc}")
            return False
        self.status.setText("")
        return True

    def config_text(self) -> str:
        return toml_text(self.form.values())

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
        """First press: ask the engine to stop after the step it is in (it saves a checkpoint). The engine looks
        for a stop only between steps, so a step that never ends (an absurd batch) would hold it for ever: after
        STOP_GRACE_S the panel says so, and a second press ends the engine process (the run keeps its last
        checkpoint and can be resumed; the window restarts the engine)."""
        if self.state == "stopping" and self.stop_asked and not self._stop_timer.isActive():
            self.status.setText("ending the engine process: the step did not end (the run keeps its last "
                                "checkpoint; Resume run continues it)")
            self.client.restart()
            return
        if self.job:
            self.state = "stopping"
            self.stop_asked += 1
            self.status.setText("stopping: saving a checkpoint…")
            self.client.request("cancel", {"job": self.job}, None, self._failed_request)
            self._stop_timer.start(int(STOP_GRACE_S * 1000))
            self._update_buttons()

    def _stop_overdue(self) -> None:
        if self.state == "stopping":
            self.status.setText(f"the engine is still inside one training step after {STOP_GRACE_S:g} s; press "
                                "Stop again to end the engine process (the run keeps its last checkpoint)")
            self._update_buttons()

    def _control(self, method: str) -> None:
        if self.job:
            self.client.request(method, {"job": self.job}, None, self._failed_request)

    def _queued(self, result) -> None:
        self.job = result["job"]

    def _failed_request(self, exc) -> None:
        """An error reply: a refused config (the engine's memory estimate included: 'needs about 40 GiB, more
        than the memory limit') is shown as the engine words it; nothing runs."""
        if self.state == "starting":
            self.state = "idle"
            self._idle_progress()
        show_error(self.status, exc)
        self._update_buttons()

    def _idle_progress(self) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("idle")

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
        try:
            shown = self.set_config(tomllib.loads(result["config"]), source=f"run {result['id']}'s config")
        except (tomllib.TOMLDecodeError, TypeError):
            shown = False
        if shown:
            self.status.setText(f"run {result['id']}: {st.get('status')} at step {st.get('step')}")
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
            self.stop_asked = 0
            self._stop_timer.stop()
            if name == "finished":
                self.progress.setValue(1000)
                self.progress.setFormat(f"finished at step {data.get('step')}")
            else:
                self._idle_progress()
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
        self.stop_asked = 0
        self._stop_timer.stop()
        self._idle_progress()
        self._update_buttons()
        return run

    def _update_buttons(self) -> None:
        now = (self.run_id or "", self.state)
        if now != getattr(self, "_announced", None):
            self._announced = now
            self.state_changed.emit(*now)
        busy = self.state in ("starting", "running", "paused", "stopping")
        self.start_btn.setEnabled(not busy)
        self.resume_run_btn.setEnabled(not busy and self.run_id is not None)
        self.pause_btn.setEnabled(self.state == "running")
        self.resume_btn.setEnabled(self.state == "paused")
        self.stop_btn.setEnabled(self.state in ("running", "paused", "starting")
                                 or (self.state == "stopping" and not self._stop_timer.isActive()))

    @property
    def curves(self):
        """The live plots (a LiveCurves), built on first use: the window paints its first frame without pyqtgraph,
        then builds them at once (MainWindow.showEvent), so they are there before the engine is."""
        if self._curves is None:
            from .plots import LiveCurves

            self._curves = LiveCurves()
            self._curves.set_smoothing(self.smoothing.value())
            self._curves.plots_changed = self._sync_plot_choices
            self._curves_slot.layout().addWidget(self._curves)
        return self._curves

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
        from . import export

        key = self.which_plot.currentText()
        path = export.ask_path(self, f"Export {key} plot", f"{key}.{ext}", f"{ext.upper()} (*.{ext})")
        if path:
            export.export_figure(self.curves.plots[key], path)

    def _export_csv(self) -> None:
        from . import export

        path = export.ask_path(self, "Export curves", "curves.csv", "CSV (*.csv)")
        if path:
            header, rows = self.curves.table()
            export.write_csv(path, header, rows)
