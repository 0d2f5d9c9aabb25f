"""Small helpers shared by the panels: spin boxes that say why they refused a typed value, units, colours."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QSpinBox, QWidget

from lattherm.engine.progress import format_duration

#: Okabe & Ito's colour-blind-safe palette (blue, vermillion, bluish green, orange, reddish purple, sky blue,
#: yellow, black): curves of several runs or conditions stay distinguishable for every kind of colour vision
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def colour(k: int) -> str:
    return PALETTE[k % len(PALETTE)]


def fmt_eta(seconds) -> str:
    return f"ETA {format_duration(seconds)}"


def fmt_value(v: float, digits: int = 3) -> str:
    """A round label for a condition: 3 significant digits, whole numbers from 100 up (1200 K, not 1.2e+03), a
    true minus sign ("−0.0857")."""
    v = float(v)
    text = f"{v:.0f}" if abs(v) >= 100 else f"{v:.{digits}g}"
    return text.replace("-", "−")


def unit_text(unit: str) -> str:
    """A unit as it reads after a number: kT/eps -> "kT/ε", eps -> "ε", "" -> "" (dimensionless)."""
    return unit.replace("eps", "ε") if unit else ""


class _Refusing:
    """Mixin: a typed text the box's validator throws away (out of range) raises ``refused(message)``, so the
    panel can say why the field did not take it instead of silently keeping a different number."""

    def validate(self, text, pos):
        state, new_text, new_pos = super().validate(text, pos)
        if state == QValidator.Invalid:
            typed = text
            for affix in (self.prefix(), self.suffix()):
                typed = typed.replace(affix, "") if affix else typed
            try:
                v = float(typed.strip().replace("−", "-").replace(self.locale().groupSeparator(), ""))
            except ValueError:
                v = -1.0 if typed.strip() in ("-", "−") else None  # a sign the range does not allow
            if v is not None and not self.minimum() <= v <= self.maximum():
                self.refused.emit(f"{self.objectName() or 'value'} {typed.strip()} is outside the allowed range "
                                  f"[{self.textFromValue(self.minimum())}, {self.textFromValue(self.maximum())}]; "
                                  f"kept {self.textFromValue(self.value())}")
        return state, new_text, new_pos


class CheckedDoubleSpinBox(_Refusing, QDoubleSpinBox):
    refused = Signal(str)


class CheckedSpinBox(_Refusing, QSpinBox):
    refused = Signal(str)


def dspin(value: float, lo: float, hi: float, step: float = 0.1, decimals: int = 3, name: str = "",
          unit: str = "") -> CheckedDoubleSpinBox:
    w = CheckedDoubleSpinBox()
    w.setObjectName(name)
    w.setRange(lo, hi)
    w.setDecimals(decimals)
    w.setSingleStep(step)
    w.setValue(value)
    set_unit(w, unit)
    return w


def ispin(value: int, lo: int, hi: int, name: str = "") -> CheckedSpinBox:
    w = CheckedSpinBox()
    w.setObjectName(name)
    w.setRange(lo, hi)
    w.setValue(value)
    return w


def set_unit(box, unit: str) -> None:
    """Show ``unit`` after the number in a spin box (and in its tooltip with the range)."""
    u = unit_text(unit)
    box.setSuffix(f" {u}" if u else "")
    box.setToolTip(f"{box.objectName() or 'value'} in [{box.minimum():g}, {box.maximum():g}]" + (f" {u}" if u else ""))


def error_label() -> QLabel:
    lab = QLabel("")
    lab.setWordWrap(True)
    lab.setTextInteractionFlags(lab.textInteractionFlags() | lab.textInteractionFlags().TextSelectableByMouse)
    return lab


def show_error(label: QLabel, exc) -> None:
    label.setText(f"<span style='color:#b00'>{_esc(str(getattr(exc, 'message', None) or exc))}</span>")


def show_warning(label: QLabel, text: str) -> None:
    label.setText(f"<span style='color:#8a5a00'>⚠ {_esc(text)}</span>")


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def hrow(*widgets) -> QWidget:
    """Widgets side by side in one margin-less row (a form row that holds several fields)."""
    row = QWidget()
    h = QHBoxLayout(row)
    h.setContentsMargins(0, 0, 0, 0)
    for w in widgets:
        h.addWidget(w)
    return row


def reset_range(plot) -> None:
    """An emptied plot shows the unit square and frames the next data afresh (not the last data's range)."""
    plot.enableAutoRange()
    plot.setRange(xRange=(0, 1), yRange=(0, 1), padding=0, disableAutoRange=False)


class JobView:
    """The life of one engine job at a time, shared by the views that run one (phase diagram, MCMC): start,
    progress, failure, engine loss. The view provides ``client``, ``job``, ``progress`` (a QProgressBar of 0..1000),
    ``status`` (an :func:`error_label`), ``_update()`` and ``job_title`` (what the messages call the job)."""

    job_title = "job"

    def start_job(self, method: str, params: dict, text: str) -> None:
        self.job = "pending"
        self.progress.setValue(0)
        self.progress.setFormat("starting…")
        self.status.setText(text)
        self._update()
        self.client.request(method, params, lambda r: setattr(self, "job", r["job"]), self._failed)

    def _failed(self, exc) -> None:
        self.job = None
        self._idle()
        show_error(self.status, exc)
        self._update()

    def _idle(self) -> None:
        self.progress.setValue(0)
        self.progress.setFormat("idle")

    def engine_lost(self) -> None:
        if self.job:
            show_error(self.status, f"{self.job_title} stopped: the engine process died")
        self.job = None
        self._idle()
        self._update()

    def show_progress(self, data: dict, stage: str = "") -> None:
        self.progress.setValue(int(1000 * data["fraction"]))
        done = f"{data['step']} / {data['total']}" + (f" {stage}" if stage else "")
        self.progress.setFormat(f"{done}   {fmt_eta(data.get('eta_s'))}")
