"""Main window: run browser (left), Training / Sampler / Lattice painting tabs, engine log, crash banner."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QDockWidget, QFrame, QHBoxLayout, QLabel, QMainWindow, QPlainTextEdit, QPushButton,
                               QTabWidget, QVBoxLayout, QWidget)

from .client import EngineClient
from .models import model_choices
from .painting import PaintingPanel
from .runs import RunBrowser
from .sampler import SamplerPanel
from .training import TrainingPanel

PREFERRED_MODEL = "ising-5x5-ao-mlp"  # the bundled model both panels start on


class CrashBanner(QFrame):
    def __init__(self, on_restart, parent=None):
        super().__init__(parent)
        self.setObjectName("crashBanner")
        self.setStyleSheet("#crashBanner { background: #fde2e2; border: 1px solid #d33; }")
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.restart = QPushButton("Restart engine")
        self.restart.clicked.connect(on_restart)
        close = QPushButton("Dismiss")
        close.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.restart)
        lay.addWidget(close)
        self.hide()


class MainWindow(QMainWindow):
    def __init__(self, engine_env: dict | None = None, auto_restart: bool = True):
        super().__init__()
        self.setWindowTitle("lattherm")
        self.setObjectName("lattherm-main")
        self.resize(1400, 900)
        self.auto_restart = auto_restart
        self.restarts: list[float] = []
        self.bundled: list[dict] | None = None  # the engine's bundled_models answer
        self._first_models = True  # the preferred model and the opening tab are chosen once, when both lists are in
        self.client = EngineClient(self, env=engine_env)
        self.browser = RunBrowser(self.client)
        self.training = TrainingPanel(self.client)
        self.sampler = SamplerPanel(self.client)
        self.painting = PaintingPanel(self.client)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.training, "Training")
        self.tabs.addTab(self.sampler, "Sampler")
        self.tabs.addTab(self.painting, "Lattice painting")
        self.banner = CrashBanner(self.restart_engine)
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(4, 4, 4, 4)
        cl.addWidget(self.banner)
        cl.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        dock = QDockWidget("Runs", self)
        dock.setWidget(self.browser)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.addDockWidget(Qt.LeftDockWidgetArea, dock)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(5000)
        log_dock = QDockWidget("Engine log", self)
        log_dock.setWidget(self.log)
        self.addDockWidget(Qt.BottomDockWidgetArea, log_dock)
        log_dock.hide()
        self.log_dock = log_dock
        self.engine_label = QLabel("engine: stopped")
        self.statusBar().addPermanentWidget(self.engine_label)
        self.last_beat = time.monotonic()
        self.beat_timer = QTimer(self)
        self.beat_timer.setInterval(2000)
        self.beat_timer.timeout.connect(self.check_heartbeat)
        self.beat_timer.start()
        # wiring
        self.client.event.connect(self.on_event)
        self.client.stderr_line.connect(self.log.appendPlainText)
        self.client.state_changed.connect(self.on_engine_state)
        self.client.ready.connect(self.on_ready)
        self.client.crashed.connect(self.on_crash)
        self.browser.run_opened.connect(self.open_run)
        self.browser.runs_changed.connect(self.update_models)
        self.training.run_started.connect(lambda _: self.browser.refresh())
        self.training.run_ended.connect(lambda _: self.browser.refresh())

    # ---- engine ------------------------------------------------------------------------------------------------
    def start_engine(self) -> None:
        self.client.start()

    def restart_engine(self) -> None:
        self.banner.restart.setEnabled(False)
        self.client.restart()

    def on_engine_state(self, state: str) -> None:
        self.engine_label.setText(f"engine: {state}")

    def on_ready(self, hello: dict) -> None:
        self.last_beat = time.monotonic()
        self.banner.restart.setEnabled(True)
        self.engine_label.setText(f"engine: ready (torch {hello.get('torch')}, pid {hello.get('pid')})")
        self.client.request("bundled_models", {}, self._got_bundled,
                            lambda e: self.log.appendPlainText(f"[bundled models] {e}"))
        self.painting.model_changed()

    def check_heartbeat(self) -> None:
        """The engine beats once a second; a silent but living engine is shown as not responding."""
        if self.client.is_ready() and time.monotonic() - self.last_beat > 5.0:
            self.engine_label.setText("engine: not responding (no heartbeat for 5 s)")

    def on_event(self, name: str, job, data: dict) -> None:
        self.last_beat = time.monotonic()
        if name == "heartbeat":
            if "not responding" in self.engine_label.text():
                self.engine_label.setText("engine: ready")
            return
        self.training.on_event(name, job, data)
        self.sampler.on_event(name, job, data)
        self.painting.on_event(name, job, data)

    def on_crash(self, info: dict) -> None:
        """Say what happened and restart; the window writes nothing: a run the dead engine was training reads as
        interrupted in the store, and the browser shows that when the restarted engine lists the runs."""
        self.training.engine_lost()
        self.sampler.engine_lost()
        self.painting.engine_lost()
        parts = [f"<b>The engine process stopped unexpectedly</b> ({info['exit_status']}, exit code "
                 f"{info['exit_code']}). Saved runs and checkpoints are kept."]
        if info.get("stderr"):
            tail = info["stderr"].splitlines()[-8:]
            parts.append("<pre>" + "\n".join(_esc(t) for t in tail) + "</pre>")
        for path, text in info.get("fault_logs", {}).items():
            parts.append(f"fault log {path}:<pre>{_esc(text[-1500:])}</pre>")
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60] + [now]
        if self.auto_restart and len(self.restarts) <= 3:
            parts.append("Restarting the engine…")
            QTimer.singleShot(300, self.restart_engine)
        self.banner.text.setText("<br>".join(parts))
        self.banner.show()

    # ---- runs and models ---------------------------------------------------------------------------------------
    def _got_bundled(self, models: list) -> None:
        self.bundled = models
        self.update_models(self.browser.rows)

    def update_models(self, rows: list) -> None:
        if self.bundled is None or not self.browser.loaded:
            return
        choices = model_choices(self.bundled, rows)
        self.sampler.model.set_choices(choices)
        self.painting.model.set_choices(choices)
        if self._first_models:
            self._first_models = False
            preferred = next((m["path"] for m in self.bundled if m["name"] == PREFERRED_MODEL), None)
            if preferred:
                self.sampler.model.select(preferred)
                self.painting.model.select(preferred)
            if not rows and self.bundled:
                self.tabs.setCurrentWidget(self.sampler)  # first start: sample the bundled model right away

    def open_run(self, run_id: str) -> None:
        self.training.show_run(run_id)
        row = self.browser.row(run_id)
        if row:
            self.sampler.model.select(row["path"])
            self.painting.model.select(row["path"])

    def closeEvent(self, event) -> None:
        self.client.shutdown()
        super().closeEvent(event)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
