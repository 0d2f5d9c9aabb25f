"""Run browser: the runs on disk (read straight from the run folders; no engine needed) with open and delete."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QDialog, QHBoxLayout, QLabel, QMessageBox, QPushButton,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from lattherm.engine.store import Run, list_runs

COLUMNS = ("id", "status", "system", "size", "model", "step", "best_F_q")


class RunBrowser(QWidget):
    run_opened = Signal(str)  # run id
    runs_changed = Signal(list)  # rows

    def __init__(self, client, parent=None):
        super().__init__(parent)
        self.client = client
        self.rows: list[dict] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(["run", "status", "system", "size", "model", "step", "best F_q"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.ExtendedSelection)  # several runs for Compare
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
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
        self.timer = QTimer(self)
        self.timer.setInterval(3000)
        self.timer.timeout.connect(self.refresh)
        self.timer.start()
        self.refresh()

    def refresh(self) -> None:
        rows = list(reversed(list_runs()))  # newest first
        selected = self.selected_ids()
        if rows != self.rows:
            self.rows = rows
            self.table.setRowCount(len(rows))
            for i, row in enumerate(rows):
                for j, key in enumerate(COLUMNS):
                    v = row.get(key)
                    text = "" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))
                    item = QTableWidgetItem(text)
                    item.setData(Qt.UserRole, row["id"])
                    self.table.setItem(i, j, item)
            self.table.resizeColumnsToContents()
            self.select_many(selected)
            self.runs_changed.emit(rows)

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
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.rows[r]["id"] for r in rows if r < len(self.rows)]

    def compare_selected(self) -> None:
        ids = self.selected_ids()
        if not ids:
            self.message.setText("select one or more runs (ctrl/shift-click) to compare")
            return
        runs = [(rid, self.row(rid)["path"]) for rid in ids]
        self.compare_dialog = CompareDialog(runs, self)
        self.compare_dialog.show()

    def row(self, run_id: str) -> dict | None:
        return next((r for r in self.rows if r["id"] == run_id), None)

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
    """F_q against step for several runs on one plot, one colour each, with a legend by run id (read from each
    run's metrics.jsonl; no engine needed)."""

    def __init__(self, runs: list[tuple[str, str]], parent=None):
        super().__init__(parent)
        self.setWindowTitle("Compare runs: F_q")
        self.plot = pg.PlotWidget(title="F_q (variational free energy)")
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "F_q")
        self.legend = self.plot.addLegend()
        self.curves: dict[str, pg.PlotDataItem] = {}
        for k, (rid, path) in enumerate(runs):
            recs = [r for r in Run(path).read_metrics() if r.get("F_q") is not None and "step" in r]
            x = [float(r["step"]) for r in recs]
            y = [float(r["F_q"]) for r in recs]
            self.curves[rid] = self.plot.plot(x, y, pen=pg.mkPen(pg.intColor(k, hues=max(len(runs), 3)), width=1.5),
                                              name=rid)
        lay = QVBoxLayout(self)
        lay.addWidget(self.plot)
        self.resize(700, 450)
