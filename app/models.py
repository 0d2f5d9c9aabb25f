"""The model chooser shared by the sampler and the painting panel: bundled models first, then runs (both lists as
the engine gives them: ``bundled_models`` and ``list_runs``)."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox


def model_choices(bundled: list[dict], runs: list[dict]) -> list[tuple[str, str]]:
    """(label, reference) pairs: bundled models (engine rows ``{"name", "path"}``) by folder path, then runs that
    have trained at least one step, by path."""
    out = [(f"bundled: {m['name']}", m["path"]) for m in bundled]
    for r in runs:
        if (r.get("step") or 0) > 0:
            out.append((f"run: {r['id']} ({r.get('status')})", r["path"]))
    return out


class ModelCombo(QComboBox):
    def set_choices(self, choices: list[tuple[str, str]]) -> None:
        current = self.current_ref()
        self.blockSignals(True)
        self.clear()
        for label, ref in choices:
            self.addItem(label, ref)
        self.blockSignals(False)
        if current is not None:
            self.select(current)
        if self.currentIndex() < 0 and self.count():
            self.setCurrentIndex(0)
        if self.current_ref() != current:  # a refreshed list with the same model must not reset the panels
            self.currentIndexChanged.emit(self.currentIndex())

    def select(self, ref: str) -> bool:
        i = self.findData(ref)
        if i >= 0:
            self.setCurrentIndex(i)
        return i >= 0

    def current_ref(self) -> str | None:
        return self.currentData()
