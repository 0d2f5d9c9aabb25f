"""The Sampler's exact-estimates view: neural MCMC (a model's samples as Metropolis–Hastings proposals, whole
lattice or in blocks) and Metropolis / Wolff from the engine's ``mcmc`` job, side by side in one table with
standard errors; the reference column says whether it is exact or a tensor-network value.

The engine's ``mcmc`` job takes ``{"model": a model or one of metropolis / wolff / swendsen-wang, "T", "mu",
"steps", "chains", "size", "block": "WxH"}`` and finishes with the JSON ``lattherm mcmc --json`` prints
({"method", "acceptance", "observables": {name: {"mean", "stderr", "tau_int"}}, "seconds",
"effective_samples_per_second", "reference": {"method", "error", name: value}}); each finished job adds one row.
"""

from __future__ import annotations

from PySide6.QtWidgets import (QComboBox, QGridLayout, QLabel, QLineEdit, QProgressBar, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from .common import JobView, dspin, error_label, ispin, set_unit, show_error, unit_text

#: what the method box offers: "model" runs neural MCMC with the chosen model; the others need no model
METHODS = (("neural MCMC (model proposals)", "model"), ("block neural MCMC", "model-block"),
           ("Metropolis", "metropolis"), ("Wolff clusters (Ising)", "wolff"),
           ("Swendsen–Wang clusters (Ising)", "swendsen-wang"))


REFERENCE_KEYS = ("reference_method", "exact_method", "reference_error")


#: short column names of the observables the engine reports (per site)
OBSERVABLE_LABELS = {"energy_per_site": "E/N", "magnetisation_per_site": "M/N"}


def estimate_rows(result) -> list[dict]:
    """One table row per ``mcmc`` answer: each observable as ``name`` with ``name_stderr`` and ``name_tau``, the
    reference's value as ``name_reference`` and its method as ``reference_method``."""
    if not isinstance(result, dict):
        return []
    row = {"method": result.get("method")}
    if result.get("size"):  # the condition each row was run at: rows of several runs sit side by side
        row["size"] = "x".join(str(v) for v in result["size"])
    for key, name in (("T", "T"), ("mu", "μ")):
        if isinstance(result.get(key), (int, float)):
            row[name] = float(result[key])
    row["acceptance"] = result.get("acceptance")
    ref = result.get("reference") or {}
    for key, est in (result.get("observables") or {}).items():
        if not isinstance(est, dict):
            continue
        name = OBSERVABLE_LABELS.get(key, key)
        row[name] = est.get("mean")
        row[f"{name}_stderr"] = est.get("stderr")
        row[f"{name} τ_int"] = est.get("tau_int")
        if ref.get(key) is not None:
            row[f"{name} reference"] = ref[key]
    row["effective samples/s"] = result.get("effective_samples_per_second")
    row["seconds"] = result.get("seconds")
    if ref:
        row["reference_method"] = ref.get("method")
        if ref.get("error") is not None:
            row["reference_error"] = ref["error"]
    return [row]


def columns(rows: list[dict]) -> list[str]:
    """Scalar keys in first-seen order, without the ``_stderr`` keys (shown beside their value) and the reference's
    method (its own column)."""
    out: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k.endswith("_stderr") or k in REFERENCE_KEYS or isinstance(v, (dict, list)) or k in out:
                continue
            out.append(k)
    return out


def header(key: str, info: dict) -> str:
    """A column's title with its unit: T and μ in the model's units, E/N (and its reference) in energy units."""
    T_u, mu_u = unit_text(info.get("T_unit", "")), unit_text(info.get("mu_unit", ""))
    unit = {"T": T_u, "μ": mu_u, "E/N": mu_u, "E/N reference": mu_u}.get(key, "")
    return f"{key} ({unit})" if unit else key


def cell(row: dict, key: str) -> str:
    v = row.get(key)
    if v is None:
        return ""
    if isinstance(v, float):
        err = row.get(f"{key}_stderr")
        return f"{v:.6g} ± {err:.2g}" if isinstance(err, (int, float)) else f"{v:.6g}"
    return str(v)


def reference_label(row: dict) -> str:
    """'exact' or 'tensor network' for the reference a row was compared with (as the engine names its method)."""
    method = str(row.get("reference_method") or row.get("exact_method") or "")
    if not method:
        return ""
    if "tensor" in method:
        err = row.get("reference_error")
        return "tensor network" + (f" (± {err:.1e} per site)" if isinstance(err, (int, float)) else "")
    return f"exact ({method})"


class MCMCView(JobView, QWidget):
    job_title = "MCMC"

    def __init__(self, client, parent=None):
        super().__init__(parent)
        self.client = client
        self.job: str | None = None
        self.model: str | None = None
        self.info: dict = {}
        self.rows: list[dict] = []
        self.method = QComboBox()
        for label, key in METHODS:
            self.method.addItem(label, key)
        self.size = QLineEdit()
        self.size.setPlaceholderText("lattice size, e.g. 16x16 (empty: the model's)")
        self.T = dspin(2.5, 1e-3, 1e5, 0.1, 4, "T")
        self.mu = dspin(0.0, -1e3, 1e3, 0.01, 4, "μ")
        self.steps = ispin(1000, 1, 10_000_000, "steps")
        self.chains = ispin(16, 1, 100_000, "chains")
        self.block = ispin(0, 0, 1_000, "block")
        self.block.setToolTip("block neural MCMC: the side of the square block re-painted per proposal (at most "
                              "the model's window; 0 = the model's window)")
        self.status = error_label()
        for box in (self.T, self.mu, self.steps, self.chains, self.block):
            box.refused.connect(lambda msg: show_error(self.status, msg))
        self.go, self.cancel = QPushButton("Run"), QPushButton("Cancel")
        self.go.clicked.connect(self.run)
        self.cancel.clicked.connect(lambda: self.job and self.job != "pending" and self.client.request(
            "cancel", {"job": self.job}))
        self.progress = QProgressBar()
        self.progress.setMaximum(1000)
        self.progress.setFormat("idle")
        self.table = QTableWidget(0, 0)
        grid = QGridLayout()
        for i, w in enumerate((QLabel("method"), self.method, QLabel("size"), self.size, QLabel("T"), self.T,
                               QLabel("μ"), self.mu)):
            grid.addWidget(w, 0, i)
        for i, w in enumerate((QLabel("steps"), self.steps, QLabel("chains"), self.chains, QLabel("block"),
                               self.block, self.go, self.cancel)):
            grid.addWidget(w, 1, i)
        lay = QVBoxLayout(self)
        lay.addLayout(grid)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addWidget(self.table, 1)
        self._update()

    def set_model(self, ref: str | None, info: dict | None) -> None:
        self.model, self.info = ref, info or {}
        set_unit(self.T, self.info.get("T_unit", ""))
        set_unit(self.mu, self.info.get("mu_unit", ""))
        r = self.info.get("trained_range")
        if r:
            self.T.setValue(0.5 * (r["T"][0] + r["T"][1]))
        self.show_rows([])
        self.status.setText("")

    def params(self) -> dict:
        key = self.method.currentData()
        needs_model = key.startswith("model")
        p = {"model": self.model if needs_model else key, "T": self.T.value(), "mu": self.mu.value(),
             "steps": self.steps.value(), "chains": self.chains.value()}
        size = self.size.text().strip() or ("x".join(str(v) for v in self.info.get("size", [])) or None)
        if size:
            p["size"] = size
        if key == "model-block" and self.block.value() > 0:
            p["block"] = "x".join([str(self.block.value())] * max(1, len(self.info.get("size", [0, 0]))))
        return p

    def run(self) -> None:
        if self.method.currentData().startswith("model") and not self.model:
            show_error(self.status, "neural MCMC needs a model: choose one above")
            return
        self.start_job("mcmc", self.params(), "running…")

    def on_event(self, name: str, job, data: dict) -> bool:
        if job is None or job != self.job:
            return False
        if name == "progress":
            self.show_progress(data)
        elif name == "finished":
            self.job = None
            self._idle()
            self.show_rows(self.rows + estimate_rows(data))  # side by side: each run adds its rows
            self.status.setText(f"{len(self.rows)} estimate(s)")
        elif name in ("failed", "cancelled"):
            self.job = None
            self._idle()
            show_error(self.status, f"MCMC {name}: {data.get('message', '')}")
        self._update()
        return True

    def show_rows(self, rows: list[dict]) -> None:
        self.rows = rows
        keys = columns(rows)
        refs = [reference_label(r) for r in rows]
        extra = ["reference"] if any(refs) else []
        self.table.clear()
        self.table.setColumnCount(len(keys) + len(extra))
        self.table.setRowCount(len(rows))
        self.table.setHorizontalHeaderLabels([header(k, self.info) for k in keys] + extra)
        for i, r in enumerate(rows):
            for j, k in enumerate(keys):
                self.table.setItem(i, j, QTableWidgetItem(cell(r, k)))
            if extra:
                self.table.setItem(i, len(keys), QTableWidgetItem(refs[i]))
        self.table.resizeColumnsToContents()

    def _update(self) -> None:
        self.go.setEnabled(self.job is None)
        self.cancel.setEnabled(self.job is not None)
