"""Main window: run browser (left), Training / Sampler / Lattice painting tabs, engine log, crash banner."""

from __future__ import annotations

import time

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QDockWidget, QFrame, QHBoxLayout, QLabel, QMainWindow, QMessageBox, QPlainTextEdit,
                               QPushButton, QTabWidget, QVBoxLayout, QWidget)

from lattherm.engine import __version__

from .client import EngineClient, exit_reason
from .models import model_choices
from .runs import RunBrowser
from .training import TrainingPanel

PREFERRED_MODEL = "ising-5x5-ao-mlp"  # the bundled model both panels start on
TITLE_BAR = 32  # px a window manager's frame adds above the window (the first size leaves room for it)


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
    _restarting_line = "Restarting the engine…"

    def __init__(self, engine_env: dict | None = None, auto_restart: bool = True, first_look: bool = False):
        """``first_look``: on a first start (no runs yet) draw the bundled model's samples at once (the app
        does; tests that set the panels' state themselves do not want a job of their own running)."""
        super().__init__()
        self.first_look = first_look
        self.setWindowTitle("lattherm")
        self.setObjectName("lattherm-main")
        screen = self.screen().availableGeometry()  # never larger than the screen (a 1366x768 laptop included)
        # less a title bar's height: the frame a window manager adds must fit too
        self.resize(min(1400, screen.width()), min(900, screen.height() - TITLE_BAR))
        self.auto_restart = auto_restart
        self.restarts: list[float] = []
        self.bundled: list[dict] | None = None  # the engine's bundled_models answer
        self._first_models = True  # the preferred model and the opening tab are chosen once, when both lists are in
        self.client = EngineClient(self, env=engine_env)
        self.browser = RunBrowser(self.client)
        self.training = TrainingPanel(self.client)
        self._panels: dict[str, QWidget] = {}  # the Sampler and Painting panels, built on first use (see _panel)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.training, "Training")
        for name, title in self.LAZY_TABS:
            self.tabs.addTab(QWidget(), title)  # a placeholder until the panel is built
        self.tabs.currentChanged.connect(self._build_tab)
        self.tab_chosen = False  # the user picked a tab: the first-start jump to the Sampler no longer happens
        self.tabs.tabBarClicked.connect(lambda _: setattr(self, "tab_chosen", True))
        self._shown = False
        self.banner = CrashBanner(self.restart_engine)
        central = QWidget()
        cl = QVBoxLayout(central)
        cl.setContentsMargins(4, 4, 4, 4)
        cl.addWidget(self.banner)
        cl.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.runs_dock = dock = QDockWidget("Runs", self)
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
        self.training.state_changed.connect(self.browser.set_live_state)
        self._menus()

    # ---- panels built after the first paint ------------------------------------------------------------------
    #: (attribute, tab title) of the panels the first frame does not show; their modules import pyqtgraph and numpy
    LAZY_TABS = (("sampler", "Sampler"), ("painting", "Lattice painting"))

    @property
    def sampler(self):
        return self._panel("sampler")

    @property
    def painting(self):
        return self._panel("painting")

    def _panel(self, name: str) -> QWidget:
        """The panel ``name``, built the first time anything needs it (its tab shown, an event for it, the engine
        ready), replacing its placeholder tab."""
        panel = self._panels.get(name)
        if panel is None:
            if name == "sampler":
                from .sampler import SamplerPanel

                panel = SamplerPanel(self.client)
            else:
                from .painting import PaintingPanel

                panel = PaintingPanel(self.client)
            self._panels[name] = panel
            i = 1 + [n for n, _ in self.LAZY_TABS].index(name)
            current = self.tabs.currentIndex()
            self.tabs.blockSignals(True)
            old = self.tabs.widget(i)
            self.tabs.removeTab(i)
            self.tabs.insertTab(i, panel, dict(self.LAZY_TABS)[name])
            self.tabs.setCurrentIndex(current)
            self.tabs.blockSignals(False)
            old.deleteLater()
        return panel

    def _build_tab(self, index: int) -> None:
        if 1 <= index <= len(self.LAZY_TABS):
            self._panel(self.LAZY_TABS[index - 1][0])

    def build_deferred(self) -> None:
        """Everything the first frame left out: the training plots, then the other panels."""
        _ = self.training.curves
        for name, _title in self.LAZY_TABS:
            self._panel(name)

    def event(self, e) -> bool:
        if e.type() == QEvent.Paint and not getattr(self, "_shown", True):
            self._shown = True
            QTimer.singleShot(0, self.build_deferred)  # once the first frame is painted, before the engine answers
        return super().event(e)

    # ---- menus -------------------------------------------------------------------------------------------------
    def _menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        restart = QAction("&Restart engine", self)
        restart.triggered.connect(self.restart_engine)
        quit_ = QAction("&Quit", self)
        quit_.setShortcut(QKeySequence.Quit)
        quit_.triggered.connect(self.close)
        file_menu.addAction(restart)
        file_menu.addSeparator()
        file_menu.addAction(quit_)
        view = bar.addMenu("&View")
        for dock in (self.runs_dock, self.log_dock):
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        for i in range(self.tabs.count()):
            act = QAction(self.tabs.tabText(i), self)
            act.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            act.triggered.connect(lambda _=False, i=i: self.tabs.setCurrentIndex(i))
            view.addAction(act)
        help_menu = bar.addMenu("&Help")
        about = QAction("&About lattherm", self)
        about.triggered.connect(self.show_about)
        help_menu.addAction(about)
        self.about_box: QMessageBox | None = None

    def about_text(self) -> str:
        """Versions of the app and of the engine process (from its hello answer: engine, Python, torch, device)."""
        h = self.client.hello or {}
        lines = [f"<b>lattherm</b> {__version__}: learning lattice thermodynamics with autoregressive models",
                 f"app (GUI) {__version__}"]
        if h:
            device = "CUDA available" if h.get("cuda") else "CPU only"
            lines += [f"engine {h.get('engine', '?')} {h.get('version', '?')} (protocol {h.get('protocol')}, pid "
                      f"{h.get('pid')})", f"Python {h.get('python', '?')}, torch {h.get('torch', '?')}, "
                      f"{h.get('threads', '?')} threads", f"device: {device}"]
        else:
            lines.append(f"engine: {self.client.state} (versions appear once it has answered)")
        return "<br>".join(lines)

    def show_about(self) -> None:
        self.about_box = box = QMessageBox(QMessageBox.Information, "About lattherm", self.about_text(),
                                           QMessageBox.Ok, self)
        box.setTextFormat(Qt.RichText)
        box.open()

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
        if self.banner.isVisible() and self._restarting_line in self.banner.text.text():
            self.banner.text.setText(self.banner.text.text().replace(
                self._restarting_line, f"The engine was restarted at {time.strftime('%H:%M:%S')} and is ready."))
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
        parts = [f"<b>The engine process stopped unexpectedly</b>: {_esc(exit_reason(info))} (exit code "
                 f"{info['exit_code']}). Saved runs and checkpoints are kept; the engine's last words are in the "
                 "Engine log below."]
        if info.get("stderr"):
            tail = info["stderr"].splitlines()[-8:]
            parts.append("<pre>" + "\n".join(_esc(t) for t in tail) + "</pre>")
        for path, text in info.get("fault_logs", {}).items():
            parts.append(f"fault log {path}:<pre>{_esc(text[-1500:])}</pre>")
        now = time.monotonic()
        self.restarts = [t for t in self.restarts if now - t < 60] + [now]
        if self.auto_restart and len(self.restarts) <= 3:
            parts.append(self._restarting_line)
            QTimer.singleShot(300, self.restart_engine)
        self.banner.text.setText("<br>".join(parts))
        self.banner.show()
        self.log.appendPlainText(f"---- engine stopped: {exit_reason(info)} (exit code {info['exit_code']})")
        self.log_dock.show()  # the stderr lines the client streamed in are the story of the crash

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
            # first start: sample the bundled model right away, unless the user is already busy elsewhere (a
            # picked tab, a training run started before the engine's lists came in)
            if not rows and self.bundled and self.first_start_jump_ok():
                self.tabs.setCurrentWidget(self.sampler)
                if self.first_look:
                    self.sampler.preview_when_ready()

    def first_start_jump_ok(self) -> bool:
        return not self.tab_chosen and self.training.state == "idle" and self.training.run_id is None

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
