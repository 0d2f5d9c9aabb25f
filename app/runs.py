"""Run browser: the runs on disk (read straight from the run folders; no engine needed) with open and delete."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QMessageBox, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from lattherm.engine.store import list_runs

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
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.doubleClicked.connect(lambda _: self.open_selected())
        self.open_btn, self.delete_btn, refresh = QPushButton("Open"), QPushButton("Delete…"), QPushButton("Refresh")
        self.open_btn.clicked.connect(self.open_selected)
        self.delete_btn.clicked.connect(self.delete_selected)
        refresh.clicked.connect(self.refresh)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.open_btn, self.delete_btn, refresh):
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
        selected = self.selected_id()
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
            self.select(selected)
            self.runs_changed.emit(rows)

    def select(self, run_id: str | None) -> None:
        for i, row in enumerate(self.rows):
            if row["id"] == run_id:
                self.table.selectRow(i)

    def selected_id(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.UserRole) if items else None

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
