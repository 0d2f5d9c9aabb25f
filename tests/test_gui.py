"""The desktop GUI against a real engine process (pytest-qt, offscreen).

Every test that starts an engine process (the ``window`` fixture, or a window of its own) is marked slow: seconds
each; the panels' forms, plots and editors are tested without one and stay in the quick loop."""

from __future__ import annotations

import ast
import csv
import json
import os
import signal
import time
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
from lattherm.engine.server import PROTOCOL_VERSION  # noqa: E402
from _configs import ENGINE_ENV, ENGINE_RUN, tiny_config  # noqa: E402


@pytest.fixture
def window(qtbot, lattherm_home):
    win = MainWindow(engine_env=ENGINE_ENV)
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
    panel.set_config(tomllib.loads(tiny_config(steps=steps, **ENGINE_RUN)))
    qtbot.mouseClick(panel.start_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.curves.n_points("loss") > 0, timeout=20000)
    return panel.run_id


def listed(qtbot, win, run_id: str, status: str | None = None, timeout: int = 10000) -> dict:
    """The browser's row for ``run_id`` once the engine lists it (with ``status``, if given)."""
    def seen() -> bool:
        row = win.browser.row(run_id)
        if row is not None and (status is None or row["status"] == status):
            return True
        win.browser.refresh()  # at most one list_runs in flight, however often this asks
        return False

    qtbot.waitUntil(seen, timeout=timeout)
    return win.browser.row(run_id)


def sample(qtbot, panel, T: float, mu: float, n: int, timeout: int = 20000) -> dict:
    """Draw ``n`` samples at (T, mu) through the Sampler panel's own button; the panel's first table row."""
    panel.T.setValue(T)
    panel.mu.setValue(mu)
    panel.n.setValue(n)
    qtbot.waitUntil(lambda: panel.model.current_ref() is not None, timeout=timeout)  # the engine's model list came
    qtbot.mouseClick(panel.go, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.samples is not None, timeout=timeout)
    return panel.table_rows[0]


@pytest.mark.slow
def test_window_has_three_panels_and_engine_says_hello(window):
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["Training", "Sampler", "Lattice painting"]
    hello = window.client.hello
    assert hello["protocol"] == PROTOCOL_VERSION and hello["pid"] == window.client.pid()
    assert "ready" in window.engine_label.text()


@pytest.mark.slow
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
    row = listed(qtbot, window, run_id, "stopped")
    assert row["step"] > 0
    ckpts = list((Path(row["path"]) / "checkpoints").glob("step-*.safetensors"))
    assert ckpts, "cancel saves a checkpoint"
    # a second GUI start (a new window and engine over the same LATTHERM_HOME) lists the run with its status
    second = MainWindow(engine_env=ENGINE_ENV)
    qtbot.addWidget(second)
    second.start_engine()
    try:
        again = listed(qtbot, second, run_id, timeout=20000)
        assert again["status"] == "stopped" and again["step"] == row["step"]
    finally:
        second.client.kill()
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


@pytest.mark.slow
def test_painting_editor_and_inpainting_keeps_fixed_sites(qtbot, window):
    run_id = train_run(qtbot, window, steps=30)
    qtbot.waitUntil(lambda: window.training.state == "idle", timeout=20000)
    listed(qtbot, window, run_id, "finished")
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
    assert panel.progress.value() == 1000 and not panel.cancel.isEnabled()  # the paint job ran to its end
    assert panel.brush_buttons[1].text() == "up (+1)"  # labels from the model's species (index 1 is spin +1)
    # every site fixed: the engine's error is shown in place of a result
    QTest.mousePress(ed, Qt.LeftButton, Qt.NoModifier, cell_center(ed, 0, 0))
    QTest.mouseRelease(ed, Qt.LeftButton, Qt.NoModifier, cell_center(ed, 2, 2))
    assert np.count_nonzero(ed.values) == 9
    qtbot.mouseClick(panel.go, Qt.LeftButton)
    qtbot.waitUntil(lambda: not panel.busy, timeout=15000)
    assert "every site is fixed" in panel.status.text()
    assert panel.result is None and panel.views == [] and panel.go.isEnabled()


def _folder_state(run_dir: Path) -> dict:
    """Every file of a run folder with its bytes and mtime: what 'nothing was written' is checked against."""
    return {p.relative_to(run_dir): (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(run_dir.rglob("*"))
            if p.is_file()}


@pytest.mark.slow
def test_engine_killed_mid_job_is_reported_and_restarted(qtbot, window):
    """The engine dies mid-training: the window reports it and restarts the engine but writes nothing into the run
    folder; the restarted engine lists the run as interrupted at its last checkpointed step, and it resumes."""
    panel = window.training
    run_id = train_run(qtbot, window, steps=100000)
    run_dir = Path(os.environ["LATTHERM_HOME"]) / "runs" / run_id
    def checkpointed() -> bool:  # the status is written after the checkpoint file: wait for both
        try:
            return json.loads((run_dir / "status.json").read_text()).get("step", 0) > 0
        except (OSError, ValueError):
            return False

    qtbot.waitUntil(checkpointed, timeout=20000)
    listed(qtbot, window, run_id, "running")
    old_pid = window.client.pid()
    os.kill(old_pid, signal.SIGKILL)
    time.sleep(0.5)  # no Qt events meanwhile: the engine is gone before the window can react
    before = _folder_state(run_dir)
    recorded = json.loads(before[Path("status.json")][0])
    assert recorded["status"] == "running" and recorded["pid"] == old_pid
    qtbot.waitUntil(window.banner.isVisible, timeout=10000)
    assert "exit" in window.banner.text.text()
    assert "engine process died" in panel.status.text()
    qtbot.waitUntil(lambda: window.client.is_ready() and window.client.pid() != old_pid, timeout=20000)
    row = listed(qtbot, window, run_id, "interrupted")
    assert row["resumable"] is True and row["step"] == recorded["step"] > 0
    assert _folder_state(run_dir) == before  # status.json (bytes and mtime) and every other file untouched
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


@pytest.mark.slow
def test_sampler_gallery_histograms_and_table(qtbot, window):
    run_id = train_run(qtbot, window, steps=20)
    qtbot.waitUntil(lambda: window.training.state == "idle", timeout=20000)
    row = listed(qtbot, window, run_id, "finished")
    panel = window.sampler
    qtbot.waitUntil(lambda: panel.model.select(row["path"]), timeout=5000)
    row = sample(qtbot, panel, 2.0, 0.0, 40)
    assert panel.table.rowCount() == 1 and row["exact_method"] == "kaufman"
    assert panel.samples["samples"].shape == (1, 40, 3, 3)
    assert not any(v.isHidden() for v in panel.gallery)
    assert np.array_equal(panel.gallery[0].values, panel.samples["samples"][0, 0])
    # the free-energy plot holds the model point and the exact reference at T = 2
    items = [c.getData() for c in panel.free_energy.getPlotItem().listDataItems()]
    assert any(np.allclose(y, [row["exact_free_energy_per_site"]]) for _, y in items)


@pytest.mark.slow
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
    info = {"size": [4, 4], "system": "ising", "lattice": "square", "species": ["down", "up"],
            "model": {"kind": "ao-arm"}}
    panel._got_info("/runs/stale", info)  # an answer about a model no longer chosen is ignored
    assert panel.info is None
    panel._got_info("/runs/a", info)
    assert [panel.brush_buttons[v].text() for v in (1, -1)] == ["up (+1)", "down (−1)"]
    panel._got_info("/runs/a", {**info, "system": "cuau", "lattice": "fcc", "size": [2, 2, 4],
                                "species": ["Cu", "Au"]})
    assert [panel.brush_buttons[v].text() for v in (1, -1)] == ["Au (+1)", "Cu (−1)"]
    assert panel.layer.maximum() == 3  # fcc: painted layer by layer along the third axis
    panel._got_info("/runs/a", info)
    panel.target.setText("8x8")
    panel.apply_target()
    panel.editor.values[0, 0] = 1
    panel.model.set_choices([("run: a (finished)", "/runs/a"), ("run: b", "/runs/b")])  # same model chosen
    assert len(client.calls) == 1
    assert panel.editor.values.shape == (8, 8) and panel.editor.values[0, 0] == 1
    assert panel.target.text() == "8x8"
    panel.model.set_choices([("run: b", "/runs/b")])  # the chosen model is gone: the panel follows the new one
    assert client.calls[-1] == ("model_info", {"model": "/runs/b"})


@pytest.mark.slow
def test_first_start_opens_on_the_bundled_model_and_samples_it(qtbot, window):
    """No runs yet: the window opens on the Sampler with the bundled Ising 5x5 AO-ARM chosen, and sampling it
    at once gives a table row whose F_q sits just above the exact bound."""
    from lattherm.engine.store import bundled_models_dir

    preferred = str(bundled_models_dir() / "ising-5x5-ao-mlp")
    qtbot.waitUntil(lambda: window.sampler.model.current_ref() == preferred, timeout=10000)
    assert window.browser.loaded and window.browser.rows == []
    assert window.tabs.currentWidget() is window.sampler
    assert window.sampler.model.count() == len(window.bundled) >= 1
    assert window.painting.model.current_ref() == preferred
    panel = window.sampler
    row = sample(qtbot, panel, 3.0, 0.0, 400, timeout=60000)
    assert panel.samples["samples"].shape == (1, 400, 5, 5)
    assert -0.05 < row["F_q"] - row["exact_neg_log_Z"] < 0.15


# ---- compare, pattern fills, self-consistency curve, extxyz export ------------------------------------------------
def _run_with_metrics(records: list[dict], hint: str):
    from lattherm.engine.store import Run

    run = Run.create(tiny_config(steps=10, **ENGINE_RUN), name_hint=hint)
    run.append_metrics(records)
    return run


@pytest.mark.slow
def test_browser_lists_runs_through_the_engine(qtbot):
    """Runs made on disk (by this test, as the CLI would) appear in the browser once the engine lists them, newest
    first, with the store's values; until the engine's first answer the table says it is starting."""
    a = _run_with_metrics([{"step": 1, "loss": 1.0, "F_q": -1.0}], "a")
    a.set_status("finished", step=120, best_F_q=-1.25, created="2020-01-01T00:00:00+00:00")
    b = _run_with_metrics([], "b")
    win = MainWindow(engine_env=ENGINE_ENV)
    qtbot.addWidget(win)
    assert win.browser.placeholder_text() == "engine starting…" and win.browser.rows == []
    win.start_engine()
    try:
        qtbot.waitUntil(lambda: win.browser.loaded, timeout=20000)
        assert win.browser.placeholder_text() is None
        assert [r["id"] for r in win.browser.rows] == [b.id, a.id]
        ra = win.browser.row(a.id)
        assert (ra["status"], ra["step"], ra["best_F_q"], ra["system"], ra["size"]) == (
            "finished", 120, -1.25, "ising", "3x3")
        cells = [win.browser.table.item(1, j).text() for j in range(win.browser.table.columnCount())]
        assert cells == [a.id, "finished", "120", "-1.2500", "ising", "3x3", "ao-arm"]
        # the model choices follow: the run with a trained step is offered, the fresh one is not
        qtbot.waitUntil(lambda: win.sampler.model.findData(ra["path"]) >= 0, timeout=10000)
        assert win.sampler.model.findData(win.browser.row(b.id)["path"]) < 0
        c = _run_with_metrics([], "c")  # a run appearing later shows up on the next refresh
        listed(qtbot, win, c.id)
        assert win.browser.rows[0]["id"] == c.id
    finally:
        win.client.kill()


@pytest.mark.slow
def test_browser_compare_overlays_f_q_of_selected_runs(qtbot, window):
    a = _run_with_metrics([{"step": s, "loss": 1.0, "F_q": -1.0 - 0.1 * s} for s in range(1, 6)], "a")
    b = _run_with_metrics([{"step": s, "loss": 2.0, "F_q": -2.0 + 0.05 * s} for s in (2, 4, 6)]
                          + [{"step": 7, "loss": 0.5}], "b")  # a record without F_q is left out
    browser = window.browser
    listed(qtbot, window, a.id)
    listed(qtbot, window, b.id)
    assert {r["id"] for r in browser.rows} == {a.id, b.id}
    browser.select_many([a.id, b.id])
    assert set(browser.selected_ids()) == {a.id, b.id}
    qtbot.mouseClick(browser.compare_btn, Qt.LeftButton)
    dlg = browser.compare_dialog
    assert dlg is not None and dlg.isVisible()
    qtbot.addWidget(dlg)
    qtbot.waitUntil(dlg.loaded, timeout=10000)
    assert set(dlg.curves) == {a.id, b.id}
    for run in (a, b):
        recs = [r for r in run.read_metrics() if "F_q" in r]
        x, y = dlg.curves[run.id].getData()
        assert np.array_equal(x, [r["step"] for r in recs]) and np.allclose(y, [r["F_q"] for r in recs])
    labels = {item.text for _, item in dlg.legend.items}
    assert labels == {a.id, b.id}
    browser.select(a.id)  # a single click still selects one run
    assert browser.selected_ids() == [a.id]


def test_app_reads_no_run_folder_itself():
    """The store's run and model readers are the engine's: app/ may take only the atomic writers from it (for files
    the user picks), so everything the GUI shows about runs comes through the engine."""
    allowed = {"atomic_write_bytes", "atomic_write_json", "atomic_write_text"}
    app_dir = Path(__file__).resolve().parents[1] / "app"
    taken = {}
    for path in sorted(app_dir.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lattherm.engine.store"):
                taken[path.name] = taken.get(path.name, set()) | {a.name for a in node.names}
                assert node.module in ("lattherm.engine.store", "lattherm.engine.store.atomic"), path.name
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("lattherm.engine.store") for a in node.names), path.name
    assert taken and all(names <= allowed for names in taken.values()), taken


def test_pattern_fills_cover_selection_or_layer_and_undo(qtbot):
    from lattherm.app.lattice import LatticeEditor, pattern_values

    ed = LatticeEditor((4, 5))
    qtbot.addWidget(ed)
    ed.values[1, 1] = -1
    ed.values[3, 4] = 1
    before = ed.values.copy()
    ed.fill_pattern("checkerboard")  # no selection: the whole layer
    i, j = np.indices((4, 5))
    assert np.array_equal(ed.values, np.where((i + j) % 2 == 0, 1, -1))
    ed.undo()
    assert np.array_equal(ed.values, before) and ed.values.dtype == np.int8
    ed.redo()
    assert np.array_equal(ed.values, np.where((i + j) % 2 == 0, 1, -1))
    ed.undo()
    # a dragged selection (select tool) limits the fill; stripes alternate by row
    ed.tool = "select"
    QTest.mousePress(ed, Qt.LeftButton, Qt.NoModifier, cell_center(ed, 1, 1))
    QTest.mouseRelease(ed, Qt.LeftButton, Qt.NoModifier, cell_center(ed, 2, 3))
    assert ed.selection == (1, 2, 1, 3) and np.array_equal(ed.values, before)  # selecting paints nothing
    ed.fill_pattern("stripes")
    assert (ed.values[1, 1:4] == -1).all() and (ed.values[2, 1:4] == 1).all()
    outside = np.ones((4, 5), bool)
    outside[1:3, 1:4] = False
    assert np.array_equal(ed.values[outside], before[outside])
    ed.fill_pattern("up")
    assert (ed.values[1:3, 1:4] == 1).all()
    ed.fill_pattern("down")
    assert (ed.values[1:3, 1:4] == -1).all()
    ed.undo(); ed.undo(); ed.undo()
    assert np.array_equal(ed.values, before)
    # fcc: the current layer only
    ed3 = LatticeEditor((2, 2, 3))
    qtbot.addWidget(ed3)
    ed3.set_layer(1)
    ed3.fill_pattern("checkerboard")
    assert not ed3.values[:, :, [0, 2]].any()
    assert np.array_equal(ed3.values[:, :, 1], pattern_values("checkerboard", range(2), range(2), 1))


def test_painting_panel_fill_buttons(qtbot, offline_engine):
    from lattherm.app.painting import PaintingPanel

    panel = PaintingPanel(offline_engine)
    qtbot.addWidget(panel)
    panel.select.setChecked(True)
    assert panel.editor.tool == "select"
    panel.rect.setChecked(True)
    assert panel.editor.tool == "rect" and not panel.select.isChecked()
    panel.rect.setChecked(False)
    assert panel.editor.tool == "pen"
    panel.fill.setCurrentIndex(0)
    qtbot.mouseClick(panel.fill_btn, Qt.LeftButton)
    i, j = np.indices(panel.editor.values.shape)
    assert np.array_equal(panel.editor.values, np.where((i + j) % 2 == 0, 1, -1))


def test_self_consistency_curve_only_when_logged(qtbot):
    from lattherm.app.plots import LiveCurves

    curves = LiveCurves()
    qtbot.addWidget(curves)
    curves.add_records([{"step": s, "loss": 1.0 / s, "F_q": -1.0} for s in range(1, 4)])  # an ARM run
    assert "self_consistency" not in curves.plots and curves.n_points("self_consistency") == 0
    assert "self_consistency" not in curves.table()[0]
    recs = [{"step": s, "loss": 1.0, "F_q": -1.0, "self_consistency": 0.5 / s} for s in range(4, 8)]
    curves.add_records(recs)
    curves.redraw()
    assert "self_consistency" in curves.plots
    assert curves.plots["self_consistency"].titleLabel.text == "self-consistency"
    x, y = curves.raw["self_consistency"].getData()
    assert np.array_equal(x, [4, 5, 6, 7]) and np.allclose(y, [r["self_consistency"] for r in recs])
    header, rows = curves.table()
    assert "self_consistency" in header and len(rows) == 7
    curves.reset()  # a new (ARM) run: the optional plot goes
    assert "self_consistency" not in curves.plots


def test_training_panel_offers_self_consistency_export(qtbot, offline_engine):
    from lattherm.app.training import TrainingPanel

    panel = TrainingPanel(offline_engine)
    qtbot.addWidget(panel)
    panel.curves.add_records([{"step": 1, "loss": 1.0, "self_consistency": 0.1}])
    items = [panel.which_plot.itemText(i) for i in range(panel.which_plot.count())]
    assert items[-1] == "self_consistency"


def _cuau_samples(path: Path, n: int = 3) -> np.ndarray:
    from lattherm.engine.store.samples import write_samples  # torch in the test process only, never in app/
    from lattherm.engine.systems import make_system

    system = make_system("cuau", "2x2x2")
    rng = np.random.default_rng(0)
    spins = rng.choice([-1, 1], size=(n, system.n_sites))
    write_samples(path, system, spins, np.zeros(n), np.zeros(n), 500.0, 0.0)
    return spins


def _check_extxyz(path: Path, frames: int, atoms: int, spins: np.ndarray) -> None:
    lines = path.read_text().splitlines()
    k = 0
    for f in range(frames):
        assert int(lines[k]) == atoms
        assert lines[k + 1].startswith('Lattice="') and "Properties=species:S:1:pos:R:3" in lines[k + 1]
        symbols = [ln.split()[0] for ln in lines[k + 2:k + 2 + atoms]]
        assert symbols == ["Au" if s > 0 else "Cu" for s in spins[f]]
        k += 2 + atoms
    assert k == len(lines)


@pytest.mark.slow
def test_extxyz_export_of_alloy_samples(qtbot, window, tmp_path, monkeypatch):
    samples = tmp_path / "cuau.npz"
    spins = _cuau_samples(samples)
    targets = iter([tmp_path / "sampler.extxyz", tmp_path / "painted.extxyz"])
    monkeypatch.setattr(export, "ask_path", lambda *a, **k: str(next(targets)))
    # the sampler panel, on a (3-frame) samples file as a sampling job would leave it
    panel = window.sampler
    with np.load(samples) as z:
        panel.samples = {k: z[k] for k in z.files}
    panel.samples["samples"] = panel.samples["samples"][None]  # (conditions, n, L1, L2, L3)
    panel.samples_path = str(samples)
    assert panel.is_alloy()
    panel._export_extxyz()
    qtbot.waitUntil(lambda: "wrote 3 structures" in panel.status.text(), timeout=20000)
    _check_extxyz(tmp_path / "sampler.extxyz", 3, spins.shape[1], spins)
    # the painting panel: the button is enabled for an alloy result only
    paint = window.painting
    with np.load(samples) as z:
        paint.result = {k: z[k] for k in z.files}
    paint.result_path = str(samples)
    paint.result_lattice = "fcc"  # as the paint job's finished data says
    paint.xyz_btn.setEnabled(paint.is_alloy())
    assert paint.xyz_btn.isEnabled()
    qtbot.mouseClick(paint.xyz_btn, Qt.LeftButton)
    qtbot.waitUntil(lambda: "wrote 3 structures" in paint.status.text(), timeout=20000)
    _check_extxyz(tmp_path / "painted.extxyz", 3, spins.shape[1], spins)
    paint.result = {"samples": np.ones((2, 3, 3), np.int8), "encoding": np.array("spin")}
    assert not paint.is_alloy()


@pytest.mark.slow
def test_sampler_flags_conditions_outside_the_trained_range(qtbot, window):
    """The bundled Ising model was trained for kT in [1.5, 3.5]: sampling at kT 4.5 works and its table row is
    marked as an extrapolation."""
    panel = window.sampler
    assert sample(qtbot, panel, 4.5, 0.0, 50, timeout=60000)["extrapolation"] is True
    assert "extrapolation" in panel.table.item(0, 0).toolTip()
