"""Run browser: the runs the engine lists (``list_runs``), with open, compare (``open_run``) and delete
(``delete_run``). The GUI reads no run folder itself: the engine is the one reader of the store, so what the
browser shows (an interrupted run included) is what the CLI and the engine see."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QDialog, QHBoxLayout, QLabel, QMessageBox,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from .common import colour, dspin

#: what a glance needs first (status, progress) before what the run is; the dock is narrow beside the panels
COLUMNS = ("id", "status", "step", "best_F_q", "system", "size", "model")
HEADERS = ("run", "status", "step", "best F_q", "system", "size", "model")
ID_WIDTH = 230  # px: ids elide in the middle, keeping the date and the hint-hex tail that tell runs apart
MIN_WIDTH = 64  # px: no column narrower (a short "step" header still reads)
REFRESH_MS = 3000
#: the metrics Compare can overlay (key -> plot title), as the engine's open_run carries them
COMPARE_METRICS = {"exact_gap": "gap to the exact free energy, F_q − F", "F_q":
                   "F_q (variational free energy, training batch)", "loss": "loss",
                   "ess_fraction": "ESS / n", "grad_norm": "gradient norm", "self_consistency": "self-consistency",
                   "lr": "learning rate", "sec_per_step": "seconds per step"}
#: status cell colours: a glance tells live runs from ones that need attention
STATUS_COLORS = {"running": "#dff3df", "paused": "#dbe9f7", "interrupted": "#fff3c4", "failed": "#fde2e2"}


class RunBrowser(QWidget):
    run_opened = Signal(str)  # run id
    runs_changed = Signal(list)  # rows, newest first; also emitted on the first answer

    def __init__(self, client, parent=None):
        super().__init__(parent)
        self.client = client
        self.rows: list[dict] = []
        self.live: dict[str, str] = {}  # run id -> state of the run this window is training (paused shows)
        self.loaded = False  # the engine has answered list_runs at least once
        self._asking = False
        self._again = False
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(HEADERS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)  # several runs for Compare
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.ElideMiddle)
        self.table.doubleClicked.connect(lambda _: self.open_selected())
        self.open_btn, self.delete_btn, refresh = QPushButton("Open"), QPushButton("Delete…"), QPushButton("Refresh")
        self.compare_btn = QPushButton("Compare")
        self.compare_btn.setToolTip("overlay the F_q curves of the selected runs (ctrl/shift-click to select several)")
        self.compare_btn.clicked.connect(self.compare_selected)
        self.compare_dialog: CompareDialog | None = None
        self.open_btn.clicked.connect(self.open_selected)
        self.delete_btn.clicked.connect(self.delete_selected)
        refresh.clicked.connect(self.refresh)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.open_btn, self.compare_btn, self.delete_btn, refresh):
            buttons.addWidget(b)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("<b>Runs</b>"))
        lay.addWidget(self.table)
        lay.addLayout(buttons)
        lay.addWidget(self.message)
        self._placeholder("engine starting…")
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        client.ready.connect(lambda _: self.refresh())  # first start and every restart after a crash
        client.state_changed.connect(self._engine_state)

    # ---- the list ----------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """Ask the engine for the run list; a refresh wanted while an answer is on its way asks once more after it."""
        if not self.client.is_ready():
            return
        if self._asking:
            self._again = True
            return
        self._asking = True
        self.client.request("list_runs", {}, self._listed, self._list_failed)

    def _listed(self, rows: list) -> None:
        self._asking = False
        first = not self.loaded
        self.loaded = True
        self.show_rows(list(reversed(rows)), force=first)  # newest first
        if self._again:
            self._again = False
            self.refresh()

    def _list_failed(self, exc) -> None:
        self._asking = self._again = False
        if self.client.is_ready():  # a crash is the window's banner, not the browser's business
            self._failed(exc)

    def _engine_state(self, state: str) -> None:
        if state == "ready":
            self.message.setText("")
        elif state in ("crashed", "stopped"):
            self._asking = self._again = False
            if self.loaded:
                self.message.setText("engine not running: the list is as it was last seen")
            else:
                self._placeholder("engine not running")

    def _placeholder(self, text: str) -> None:
        """One grey line across the table until the engine has answered."""
        self.table.clearSpans()
        self.table.setRowCount(1)
        item = QTableWidgetItem(text)
        item.setFlags(Qt.NoItemFlags)
        item.setForeground(QColor("#777"))
        self.table.setItem(0, 0, item)
        self.table.setSpan(0, 0, 1, len(COLUMNS))

    def placeholder_text(self) -> str | None:
        """The grey line's text while no list has come, else None."""
        if self.loaded:
            return None
        item = self.table.item(0, 0)
        return item.text() if item else None

    def show_rows(self, rows: list[dict], force: bool = False) -> None:
        if rows == self.rows and not force:
            return
        selected = self.selected_ids()
        self.rows = rows
        self.table.clearSpans()
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, key in enumerate(COLUMNS):
                v = self.status_of(row) if key == "status" else row.get(key)
                text = "" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
                item = QTableWidgetItem(text)
                item.setData(Qt.UserRole, row["id"])
                if key == "id":
                    item.setToolTip(f"{row['id']}\n{row.get('path', '')}")
                if key == "status":
                    if text in STATUS_COLORS:
                        item.setBackground(QColor(STATUS_COLORS[text]))
                    if row.get("resumable"):
                        item.setToolTip("the training process is gone; open the run and press Resume run… to "
                                        "continue from its last checkpoint")
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        for j in range(len(COLUMNS)):
            self.table.setColumnWidth(j, max(MIN_WIDTH, self.table.columnWidth(j) + 12))
        self.table.setColumnWidth(0, min(self.table.columnWidth(0), ID_WIDTH))
        self.table.horizontalHeader().setStretchLastSection(True)
        self.select_many(selected)
        self.runs_changed.emit(rows)

    def set_live_state(self, run_id: str, state: str) -> None:
        """The training panel's state of the run it drives: the store says "running" for a paused run (its
        process is alive), so the browser shows the pause it knows of."""
        self.live = {run_id: state} if run_id else {}
        if self.loaded:
            self.show_rows(self.rows, force=True)

    def status_of(self, row: dict) -> str:
        if row.get("status") == "running" and self.live.get(row["id"]) == "paused":
            return "paused"
        return str(row.get("status") or "")

    # ---- selection ---------------------------------------------------------------------------------------------
    def select(self, run_id: str | None) -> None:
        for i, row in enumerate(self.rows):
            if row["id"] == run_id:
                self.table.selectRow(i)

    def select_many(self, run_ids) -> None:
        want = set(run_ids)
        sel = self.table.selectionModel()
        self.table.clearSelection()
        for i, row in enumerate(self.rows):
            if row["id"] in want:
                sel.select(self.table.model().index(i, 0), sel.SelectionFlag.Select | sel.SelectionFlag.Rows)

    def selected_id(self) -> str | None:
        ids = self.selected_ids()
        return ids[0] if ids else None

    def selected_ids(self) -> list[str]:
        """Selected run ids in table order (newest first)."""
        if not self.loaded:
            return []
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.rows[r]["id"] for r in rows if r < len(self.rows)]

    def row(self, run_id: str) -> dict | None:
        return next((r for r in self.rows if r["id"] == run_id), None)

    # ---- actions -----------------------------------------------------------------------------------------------
    def compare_selected(self) -> None:
        ids = self.selected_ids()
        if not ids:
            self.message.setText("select one or more runs (ctrl/shift-click) to compare")
            return
        self.compare_dialog = CompareDialog(ids, self.client, self)
        self.compare_dialog.show()

    def open_selected(self) -> None:
        rid = self.selected_id()
        if rid:
            self.run_opened.emit(rid)

    def delete_selected(self) -> None:
        rid = self.selected_id()
        if not rid:
            return
        answer = QMessageBox.question(self, "Delete run", f"Delete run {rid} and all its files (checkpoints, "
                                      "metrics, samples)? This cannot be undone.")
        if answer != QMessageBox.Yes:
            return
        self.client.request("delete_run", {"run": rid}, lambda _: self._deleted(rid), self._failed)

    def _deleted(self, rid: str) -> None:
        self.message.setText(f"deleted {rid}")
        self.refresh()

    def _failed(self, exc) -> None:
        self.message.setText(f"<span style='color:#b00'>{exc}</span>")


class CompareDialog(QDialog):
    """One metric against step for several runs on one plot, one colour-blind-safe colour each, a legend by run id,
    an EMA smoothing, and PNG/SVG/CSV export. The curves come from the engine's ``open_run`` (its scalar metrics);
    each fills in when its answer arrives."""

    def __init__(self, run_ids: list[str], client, parent=None):
        import pyqtgraph as pg  # here, not at the top: the run browser is on the first frame, Compare is not

        super().__init__(parent)
        self.setWindowTitle("Compare runs")
        self.plot = pg.PlotWidget()
        self.plot.setLabel("bottom", "step")
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.records: dict[str, list[dict]] = {}
        self.curves: dict = {}  # run id -> its PlotDataItem
        self.pending = set(run_ids)
        self.message = QLabel("loading…")
        self.metric_box = QComboBox()
        self.metric_box.addItems([k for k in COMPARE_METRICS])
        self.metric_box.setCurrentText("F_q")  # until the runs arrive; exact_gap when they all log it
        self.metric_box.currentTextChanged.connect(lambda _: self.redraw())
        self.smoothing = dspin(0.0, 0.0, 0.999, 0.05, name="smoothing")
        self.smoothing.setToolTip("EMA weight of the past (0 = raw values)")
        self.smoothing.valueChanged.connect(lambda _: self.redraw())
        png, svg, csv_btn = QPushButton("PNG…"), QPushButton("SVG…"), QPushButton("CSV…")
        png.clicked.connect(lambda: self._export_figure("png"))
        svg.clicked.connect(lambda: self._export_figure("svg"))
        csv_btn.clicked.connect(self._export_csv)
        for k, rid in enumerate(run_ids):  # legend in selection order, whatever order the answers come in
            pen = pg.mkPen(colour(k), width=2)
            self.curves[rid] = self.plot.plot([], [], pen=pen, name=rid)
            client.request("open_run", {"run": rid}, lambda r, rid=rid: self._opened(rid, r),
                           lambda e, rid=rid: self._failed(rid, e))
        top = QHBoxLayout()
        for w in (QLabel("metric"), self.metric_box, QLabel("smoothing"), self.smoothing, png, svg, csv_btn):
            top.addWidget(w)
        top.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.plot)
        lay.addWidget(self.message)
        self.resize(760, 480)
        self.redraw()

    def series(self, rid: str) -> tuple[list[float], list[float]]:
        """(steps, values) of the chosen metric of one run, EMA-smoothed as the box says."""
        key, s = self.metric_box.currentText(), self.smoothing.value()
        recs = [r for r in self.records.get(rid, []) if r.get(key) is not None and "step" in r]
        xs, ys, ema = [], [], None
        for r in recs:
            v = float(r[key])
            ema = v if ema is None else s * ema + (1 - s) * v
            xs.append(float(r["step"]))
            ys.append(ema)
        return xs, ys

    def redraw(self) -> None:
        key = self.metric_box.currentText()
        self.plot.setTitle(COMPARE_METRICS.get(key, key))
        self.plot.setLabel("left", key)
        for rid, curve in self.curves.items():
            xs, ys = self.series(rid)
            curve.setData(xs, ys)
            curve.setSymbol("o" if len(xs) == 1 else None)
        self.plot.enableAutoRange()

    def _opened(self, rid: str, result: dict) -> None:
        self.records[rid] = result["metrics"]
        if not self.pending - {rid} and all(any(r.get("exact_gap") is not None for r in recs)
                                            for recs in self.records.values()):
            self.metric_box.setCurrentText("exact_gap")  # the jitter-free learning curve, where every run has it
        self.redraw()
        self._done(rid)

    def _failed(self, rid: str, exc) -> None:
        self.message.setText(f"<span style='color:#b00'>{rid}: {exc}</span>")
        self._done(rid)

    def _done(self, rid: str) -> None:
        self.pending.discard(rid)
        if not self.pending and self.message.text() == "loading…":  # an error stays on show
            self.message.setText("")

    def loaded(self) -> bool:
        return not self.pending

    def table(self) -> tuple[list[str], list[list]]:
        """CSV: step, then the (smoothed) metric of each run; blank where a run has no value at that step."""
        cols = {rid: dict(zip(*self.series(rid))) for rid in self.curves}
        steps = sorted(set().union(*[c.keys() for c in cols.values()])) if cols else []
        key = self.metric_box.currentText()
        return ["step"] + [f"{rid}:{key}" for rid in self.curves], [[int(s)] + [cols[r].get(s) for r in self.curves]
                                                                     for s in steps]

    def _export_figure(self, ext: str) -> None:
        from . import export

        key = self.metric_box.currentText()
        path = export.ask_path(self, f"Export compared {key}", f"compare_{key}.{ext}", f"{ext.upper()} (*.{ext})")
        if path:
            export.export_figure(self.plot, path)

    def _export_csv(self) -> None:
        from . import export

        path = export.ask_path(self, "Export compared curves", f"compare_{self.metric_box.currentText()}.csv",
                               "CSV (*.csv)")
        if path:
            export.write_csv(path, *self.table())
