"""The desktop GUI against a real engine process (pytest-qt, offscreen)."""

from __future__ import annotations

import csv
import os
import signal
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint, QProcess, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from lattherm.app import export, settings  # noqa: E402
from lattherm.app.window import MainWindow  # noqa: E402

TINY = """
[system]
name = "ising"
size = "3x3"
[model]
kind = "ao-arm"
arch = "mlp"
hidden = 16
layers = 1
[conditions]
T = [1.5, 3.5]
T_points = 2
mu = [-0.4, 0.4]
mu_points = 2
[training]
batch = 16
steps = {steps}
lr = 2e-3
device = "cpu"
checkpoint_every = 20
log_every = 1
"""


@pytest.fixture
def window(qtbot, lattherm_home):
    win = MainWindow(engine_env={"OMP_NUM_THREADS": "1", "LATTHERM_THREADS": "1"})
    qtbot.addWidget(win)
    win.show()
    win.start_engine()
    qtbot.waitUntil(win.client.is_ready, timeout=20000)
    yield win
    win.client.kill()  # kill + waitForFinished: no engine outlives its test
    assert win.client.proc.state() == QProcess.NotRunning


def train_run(qtbot, win, steps: int) -> str:
    """Start a run through the Training panel's own Start button; return the run id once it has started."""
    panel = win.training
    panel.set_config(tomllib.loads(TINY.format(steps=steps)))
    qtbot.mouseClick(panel.start_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.curves.n_points("loss") > 0, timeout=20000)
    return panel.run_id


def test_window_has_three_panels_and_engine_says_hello(window):
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["Training", "Sampler", "Lattice painting"]
    hello = window.client.hello
    assert hello["protocol"] == 1 and hello["pid"] == window.client.pid()
    assert "ready" in window.engine_label.text()


def test_training_curves_pause_cancel_browser_and_export(qtbot, window, tmp_path, monkeypatch):
    panel = window.training
    run_id = train_run(qtbot, window, steps=100000)
    qtbot.waitUntil(lambda: panel.pause_btn.isEnabled(), timeout=10000)
    qtbot.mouseClick(panel.pause_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.state == "paused", timeout=10000)
    n = panel.curves.n_points("loss")
    qtbot.wait(600)
    assert panel.curves.n_points("loss") == n  # paused: no new steps
    qtbot.mouseClick(panel.resume_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.curves.n_points("loss") > n, timeout=10000)
    qtbot.mouseClick(panel.stop_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.state == "idle", timeout=20000)
    assert "stopped" in panel.status.text()
    window.browser.refresh()
    row = window.browser.row(run_id)
    assert row is not None and row["status"] == "stopped" and row["step"] > 0
    ckpts = list((Path(row["path"]) / "checkpoints").glob("step-*.safetensors"))
    assert ckpts, "cancel saves a checkpoint"
    # a second GUI start (a new window over the same LATTHERM_HOME) lists the run with its status
    second = MainWindow()
    qtbot.addWidget(second)
    again = second.browser.row(run_id)
    assert again is not None and again["status"] == "stopped" and again["step"] == row["step"]
    second.close()

    # export: PNG, SVG and a CSV whose numbers are the curve's
    panel.curves.redraw()
    targets = iter([tmp_path / "loss.png", tmp_path / "loss.svg", tmp_path / "curves.csv"])
    monkeypatch.setattr(export, "ask_path", lambda *a, **k: str(next(targets)))
    panel._export_figure("png")
    panel._export_figure("svg")
    panel._export_csv()
    png = (tmp_path / "loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    ET.parse(tmp_path / "loss.svg")  # well-formed XML
    with open(tmp_path / "curves.csv") as f:
        rows = list(csv.DictReader(f))
    x, y = panel.curves.raw["loss"].getData()
    assert len(rows) == len(x)
    assert np.allclose([float(r["step"]) for r in rows], x)
    assert np.allclose([float(r["loss"]) for r in rows], y)
    _, ema = panel.curves.smooth["F_q"].getData()
    assert np.allclose([float(r["F_q_ema"]) for r in rows], ema)

    # delete with confirmation
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.Yes)
    window.browser.select(run_id)
    qtbot.mouseClick(window.browser.delete_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.browser.row(run_id) is None, timeout=10000)
    assert not Path(row["path"]).exists()


def cell_center(editor, i, j) -> QPoint:
    return QPoint(j * editor.cell + editor.cell // 2, i * editor.cell + editor.cell // 2)


def test_painting_editor_and_inpainting_keeps_fixed_sites(qtbot, window):
    train_run(qtbot, window, steps=30)
    qtbot.waitUntil(lambda: window.training.state == "idle", timeout=20000)
    window.browser.refresh()
    panel = window.painting
    run_path = window.browser.rows[0]["path"]
    assert panel.model.select(run_path)
    panel.model_changed()
    qtbot.waitUntil(lambda: panel.info is not None and panel.info["path"] == run_path, timeout=10000)
    ed = panel.editor
    assert ed.values.shape == (3, 3) and not ed.values.any()
    # pen: up at (0, 0); down at (2, 1)
    panel.brush_buttons[1].setChecked(True)
    QTest.mouseClick(ed, Qt.LeftButton, Qt.NoModifier, cell_center(ed, 0, 0))
    panel.brush_buttons[-1].setChecked(True)
    QTest.mouseClick(ed, Qt.LeftButton, Qt.NoModifier, cell_center(ed, 2, 1))
    assert ed.values[0, 0] == 1 and ed.values[2, 1] == -1 and np.count_nonzero(ed.values) == 2
    # rectangle fill of rows 0..1, columns 1..2 with "up", then undo / redo
    panel.brush_buttons[1].setChecked(True)
    panel.rect.setChecked(True)
    QTest.mousePress(ed, Qt.LeftButton, Qt.NoModifier, cell_center(ed, 0, 1))
    QTest.mouseRelease(ed, Qt.LeftButton, Qt.NoModifier, cell_center(ed, 1, 2))
    assert (ed.values[0:2, 1:3] == 1).all() and np.count_nonzero(ed.values) == 6
    ed.undo()
    assert np.count_nonzero(ed.values) == 2
    ed.redo()
    assert np.count_nonzero(ed.values) == 6
    fixed = ed.values.copy()
    panel.n.setValue(5)
    qtbot.mouseClick(panel.go, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.result is not None, timeout=15000)
    spins = panel.result["samples"]
    assert spins.shape == (5, 3, 3)
    assert (spins[:, fixed != 0] == fixed[fixed != 0]).all()  # every fixed site kept
    assert len(panel.views) == 5
    # every site fixed: the engine's error is shown in place of a result
    QTest.mousePress(ed, Qt.LeftButton, Qt.NoModifier, cell_center(ed, 0, 0))
    QTest.mouseRelease(ed, Qt.LeftButton, Qt.NoModifier, cell_center(ed, 2, 2))
    assert np.count_nonzero(ed.values) == 9
    qtbot.mouseClick(panel.go, Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=15000)
    assert "every site is fixed" in panel.status.text()
    assert panel.result is None and panel.views == [] and panel.go.isEnabled()


def test_engine_killed_mid_job_is_reported_and_restarted(qtbot, window):
    panel = window.training
    run_id = train_run(qtbot, window, steps=100000)
    run_dir = Path(os.environ["LATTHERM_HOME"]) / "runs" / run_id
    qtbot.waitUntil(lambda: any((run_dir / "checkpoints").glob("step-*.safetensors")), timeout=20000)
    saved = {p: p.read_bytes() for p in (run_dir / "checkpoints").glob("step-*.safetensors")}
    saved[run_dir / "config.toml"] = (run_dir / "config.toml").read_bytes()
    old_pid = window.client.pid()
    os.kill(old_pid, signal.SIGKILL)
    qtbot.waitUntil(window.banner.isVisible, timeout=10000)
    assert "exit" in window.banner.text.text()
    assert "engine process died" in panel.status.text()
    qtbot.waitUntil(lambda: window.client.is_ready() and window.client.pid() != old_pid, timeout=20000)
    for path, data in saved.items():  # the kill may leave newer checkpoints, but never loses an old one ...
        if path.exists():
            assert path.read_bytes() == data
    assert (run_dir / "config.toml").exists() and any((run_dir / "checkpoints").glob("step-*.safetensors"))
    assert window.browser.row(run_id)["status"] == "failed"
    # ... and the run resumes from its checkpoint in the new engine
    qtbot.mouseClick(panel.resume_run_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.state == "running", timeout=20000)
    qtbot.mouseClick(panel.stop_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.state == "idle", timeout=20000)


def test_file_dialogs_remember_their_folder(qtbot, tmp_path, monkeypatch):
    seen = []

    def fake(parent, title, start, filters):
        seen.append(start)
        return str(tmp_path / "figs" / "a.png"), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", fake)
    assert export.ask_path(None, "t", "a.png", "PNG (*.png)") == str(tmp_path / "figs" / "a.png")
    export.ask_path(None, "t", "b.png", "PNG (*.png)")
    assert seen[1] == str(tmp_path / "figs" / "b.png")
    assert settings.get("export_dir") == str(tmp_path / "figs")


def test_sampler_gallery_histograms_and_table(qtbot, window):
    train_run(qtbot, window, steps=20)
    qtbot.waitUntil(lambda: window.training.state == "idle", timeout=20000)
    window.browser.refresh()
    panel = window.sampler
    assert panel.model.select(window.browser.rows[0]["path"])
    panel.T.setValue(2.0)
    panel.mu.setValue(0.0)
    panel.n.setValue(40)
    qtbot.mouseClick(panel.go, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.samples is not None, timeout=20000)
    row = panel.table_rows[0]
    assert panel.table.rowCount() == 1 and row["exact_method"] == "kaufman"
    assert panel.samples["samples"].shape == (1, 40, 3, 3)
    assert not any(v.isHidden() for v in panel.gallery)
    assert np.array_equal(panel.gallery[0].values, panel.samples["samples"][0, 0])
    # the free-energy plot holds the model point and the exact reference at T = 2
    items = [c.getData() for c in panel.free_energy.getPlotItem().listDataItems()]
    assert any(np.allclose(y, [row["exact_free_energy_per_site"]]) for _, y in items)


def test_lattherm_gui_main_starts_engine_and_quits_cleanly(lattherm_home):
    """The real entry point under qasync: window up, engine ready, closing the window stops the engine."""
    import subprocess
    import sys

    code = (
        "import os, sys\n"
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication(sys.argv)\n"
        "state = {}\n"
        "def check():\n"
        "    w = [w for w in app.topLevelWidgets() if w.objectName() == 'lattherm-main']\n"
        "    if w and w[0].client.is_ready():\n"
        "        state['pid'] = w[0].client.pid(); print('engine', state['pid'], flush=True); w[0].close()\n"
        "    else:\n"
        "        QTimer.singleShot(100, check)\n"
        "QTimer.singleShot(100, check)\n"
        "from lattherm.app.main import main\n"
        "rc = main([])\n"
        "print('torch' in sys.modules, flush=True)\n"
        "pid = state['pid']\n"
        "try:\n"
        "    os.kill(pid, 0); alive = os.waitpid(pid, os.WNOHANG) == (0, 0)\n"
        "except (ProcessLookupError, ChildProcessError):\n"
        "    alive = False\n"
        "print('alive', alive, 'rc', rc)\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    out = proc.stdout.split("\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out[0].startswith("engine ")
    assert out[1] == "False"  # the GUI process never imported torch
    assert out[2] == "alive False rc 0"


def test_refreshed_model_list_keeps_the_painting(qtbot):
    """The run browser refreshes every 3 s (steps move while training): the painting's target size and fixed sites
    must survive a refreshed model list that still holds the chosen model; only a new choice asks the engine."""
    from lattherm.app.painting import PaintingPanel

    class Client:
        hello = {"painting": True}

        def __init__(self):
            self.calls = []

        def is_ready(self):
            return True

        def request(self, method, params=None, on_result=None, on_error=None):
            self.calls.append((method, params))

    client = Client()
    panel = PaintingPanel(client)
    qtbot.addWidget(panel)
    panel.model.set_choices([("run: a", "/runs/a")])
    assert client.calls == [("model_info", {"model": "/runs/a"})]
    panel._got_info({"size": [4, 4], "system": "ising", "lattice": "square", "model": {"kind": "ao-arm"}})
    panel.target.setText("8x8")
    panel.apply_target()
    panel.editor.values[0, 0] = 1
    panel.model.set_choices([("run: a (finished)", "/runs/a"), ("run: b", "/runs/b")])  # same model chosen
    assert len(client.calls) == 1
    assert panel.editor.values.shape == (8, 8) and panel.editor.values[0, 0] == 1
    assert panel.target.text() == "8x8"
    panel.model.set_choices([("run: b", "/runs/b")])  # the chosen model is gone: the panel follows the new one
    assert client.calls[-1] == ("model_info", {"model": "/runs/b"})


def test_first_start_opens_on_the_bundled_model_and_samples_it(qtbot, window):
    """No runs yet: the window opens on the Sampler with the bundled Ising 5x5 AO-ARM chosen, and sampling it
    at once gives a table row whose F_q sits just above the exact bound."""
    from lattherm.engine.store import bundled_models_dir

    assert window.browser.rows == []
    assert window.tabs.currentWidget() is window.sampler
    assert window.sampler.model.current_ref() == str(bundled_models_dir() / "ising-5x5-ao-mlp")
    assert window.painting.model.current_ref() == str(bundled_models_dir() / "ising-5x5-ao-mlp")
    panel = window.sampler
    panel.T.setValue(3.0)
    panel.mu.setValue(0.0)
    panel.n.setValue(400)
    qtbot.mouseClick(panel.go, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.samples is not None, timeout=60000)
    row = panel.table_rows[0]
    assert panel.samples["samples"].shape == (1, 400, 5, 5)
    assert -0.05 < row["F_q"] - row["exact_neg_log_Z"] < 0.15
