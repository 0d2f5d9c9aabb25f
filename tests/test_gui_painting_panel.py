"""The Painting panel: keyboard undo/redo, an editor that survives an engine restart, a target field that never
hides an invalid size, a 48x48 target that scrolls instead of growing the window, readable 3D thumbnails, and the
painted-lattice evaluation (a real engine job in the slow tests)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import QPoint, Qt  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from lattherm.app.lattice import COLORS, LatticeView  # noqa: E402
from lattherm.app.painting import PaintingPanel, evaluation_cells, parse_target  # noqa: E402
from _configs import ENGINE_ENV  # noqa: E402

ISING = {"size": [5, 5], "system": "ising", "lattice": "square", "species": ["down", "up"], "labels": [],
         "model": {"kind": "ao-arm"}, "T_unit": "kT/eps", "mu_unit": "eps", "vectors": [[1, 0], [0, 1]],
         "unit_length": 1.0, "trained_range": {"T": [1.5, 3.5], "mu": [-0.4, 0.4]}}


class Client:
    """An engine that is ready and records the requests it is sent (answers are given by the test)."""

    hello = {"painting": True}

    def __init__(self):
        self.calls = []

    def is_ready(self):
        return True

    def request(self, method, params=None, on_result=None, on_error=None):
        self.calls.append((method, params, on_result))


def _panel(qtbot, info=ISING, ref="/runs/a"):
    client = Client()
    panel = PaintingPanel(client)
    qtbot.addWidget(panel)
    panel.model.set_choices([("run: a", ref)])
    panel._got_info(ref, info)
    return panel, client


def _centre(ed, i, j) -> QPoint:
    return QPoint(j * ed.cell + ed.cell // 2, i * ed.cell + ed.cell // 2)


def test_ctrl_z_and_ctrl_shift_z_undo_and_redo_strokes(qtbot):
    panel, _ = _panel(qtbot)
    with qtbot.waitActive(panel):
        panel.show()
        panel.activateWindow()
    ed = panel.editor
    QTest.mouseClick(ed, Qt.LeftButton, Qt.NoModifier, _centre(ed, 1, 1))
    QTest.mouseClick(ed, Qt.LeftButton, Qt.NoModifier, _centre(ed, 2, 3))
    assert ed.n_fixed() == 2 and panel.count_label.text().startswith("2 of 25 sites fixed, 23 free")
    ed.setFocus()
    QTest.keyClick(ed, Qt.Key_Z, Qt.ControlModifier)
    assert ed.n_fixed() == 1 and ed.values[1, 1] == 1 and panel.redo_btn.isEnabled()
    QTest.keyClick(ed, Qt.Key_Z, Qt.ControlModifier)
    assert ed.n_fixed() == 0 and not panel.undo_btn.isEnabled()
    QTest.keyClick(ed, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    QTest.keyClick(ed, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
    assert ed.values[1, 1] == 1 and ed.values[2, 3] == 1 and ed.n_fixed() == 2


def test_fixed_count_is_live_while_drawing(qtbot):
    panel, _ = _panel(qtbot)
    with qtbot.waitExposed(panel):
        panel.show()
    ed = panel.editor
    QTest.mousePress(ed, Qt.LeftButton, Qt.NoModifier, _centre(ed, 0, 0))
    QTest.mouseMove(ed, _centre(ed, 0, 1))
    QTest.mouseMove(ed, _centre(ed, 0, 2))
    assert panel.count_label.text().startswith("3 of 25")  # before the button is released
    QTest.mouseRelease(ed, Qt.LeftButton, Qt.NoModifier, _centre(ed, 0, 2))
    assert len(ed.undo_stack) == 1


def test_pen_button_is_exclusive_with_rectangle_and_select(qtbot):
    panel, _ = _panel(qtbot)
    assert panel.pen.isChecked() and panel.editor.tool == "pen"
    panel.rect.setChecked(True)
    assert not panel.pen.isChecked() and panel.editor.tool == "rect"
    panel.pen.setChecked(True)
    assert not panel.rect.isChecked() and panel.editor.tool == "pen"


def test_engine_restart_keeps_target_fixed_sites_and_history(qtbot):
    """After a restart the window asks for the model's description again; the same lattice keeps the editor."""
    panel, client = _panel(qtbot)
    panel.target.setText("8x8")
    panel.apply_target()
    ed = panel.editor
    ed.brush = -1
    ed.begin_stroke()
    ed.paint_site((3, 4))
    ed.end_stroke()
    panel.T.setValue(2.7)
    before, history = ed.values.copy(), [a.copy() for a in ed.undo_stack]
    panel.model_changed()  # what MainWindow.on_ready does after the engine restarted
    method, params, answer = client.calls[-1]
    assert method == "model_info" and params == {"model": "/runs/a"}
    answer(dict(ISING))
    assert panel.target.text() == "8x8" and np.array_equal(ed.values, before)
    assert len(ed.undo_stack) == len(history) and np.array_equal(ed.undo_stack[0], history[0])
    assert panel.T.value() == pytest.approx(2.7)  # the user's T is kept too
    ed.undo()
    assert not ed.values.any()
    # a model of another lattice starts afresh at its own size, with its trained range's middle as defaults
    panel._got_info("/runs/a", {**ISING, "size": [4, 4], "trained_range": {"T": [2.0, 3.0], "mu": [0, 0]}})
    assert ed.values.shape == (4, 4) and panel.T.value() == pytest.approx(2.5)


def test_invalid_target_disables_painting_and_says_why(qtbot):
    panel, client = _panel(qtbot)
    panel.target.setText("8x")
    panel.target.textEdited.emit("8x")
    assert not panel.go.isEnabled() and not panel.eval_go.isEnabled()
    assert "not like 8x8" in panel.status.text()
    panel.paint()  # even if asked: nothing is sent with the old size
    assert not [c for c in client.calls if c[0] == "paint"]
    assert panel.editor.values.shape == (5, 5)
    panel.target.setText("2x2x2")
    panel.target.textEdited.emit("2x2x2")
    assert "needs 2 extents" in panel.status.text() and not panel.go.isEnabled()
    panel.target.setText("7x6")
    panel.target.textEdited.emit("7x6")
    assert panel.go.isEnabled() and panel.status.text() == ""
    panel.paint()
    (method, params, _), = [c for c in client.calls if c[0] == "paint"]
    assert params["size"] == [7, 6] and len(params["fixed"]) == 42
    assert parse_target("65x2", ISING)[0] is None and parse_target("10 x 12", ISING)[0] == (10, 12)


def test_units_on_T_and_mu(qtbot):
    panel, _ = _panel(qtbot)
    assert panel.T.suffix() == " kT/ε" and panel.mu.suffix() == " ε"
    assert panel.eval_table.horizontalHeaderItem(0).text() == "T (kT/ε)"
    assert panel.T.value() == pytest.approx(2.5) and panel.mu.value() == pytest.approx(0.0)


def test_a_48x48_target_scrolls_instead_of_growing_the_window(qtbot):
    from lattherm.app.window import MainWindow

    win = MainWindow()
    qtbot.addWidget(win)
    panel = win.painting
    panel.model.set_choices([("run: a", "/runs/a")])
    panel._got_info("/runs/a", ISING)
    panel.target.setText("48x48")
    panel.apply_target()
    win.tabs.setCurrentWidget(panel)
    win.resize(1400, 900)
    with qtbot.waitExposed(win):
        win.show()
    panel.fit_editor()
    hint = win.minimumSizeHint()
    assert hint.width() <= 1600 and hint.height() <= 1000, hint
    assert win.height() <= 1000 and win.width() <= 1600
    vp = panel.scroll.viewport().size()
    assert panel.editor.width() <= vp.width() + 1 and panel.editor.height() <= vp.height() + 1  # fitted
    cell = panel.editor.cell
    panel.editor.zoom(3)  # zoomed in, the layer scrolls
    assert panel.editor.cell > cell and panel.editor.height() > vp.height()
    assert panel.scroll.verticalScrollBar().maximum() > 0 and win.height() <= 1000


def test_3d_thumbnails_show_every_layer_tiled(qtbot):
    values = np.zeros((2, 2, 4), np.int8)
    for k in range(4):
        values[:, :, k] = 1 if k % 2 == 0 else -1
    view = LatticeView(values, cell=14)
    qtbot.addWidget(view)
    view.set_layer(1)
    view.resize(view.sizeHint())
    img = view.grab().toImage()
    assert view.sizeHint().width() > 2 * 2 * 14 and view.sizeHint().height() > 2 * 2 * 14  # 2 x 2 tiles
    for k in range(4):
        o = view.tile_origin(k)
        c = QColor(img.pixel(o.x() + 7, o.y() + 7))
        want = COLORS[1] if k % 2 == 0 else COLORS[-1]
        assert (c.red(), c.green(), c.blue()) == (want.red(), want.green(), want.blue()), k


def test_evaluation_table_shows_the_numbers_and_the_reference_kind(qtbot):
    panel, client = _panel(qtbot)
    panel.target.setText("8x8")
    panel.apply_target()
    panel.T.setValue(2.25)
    panel.evaluate()
    method, params, answer = client.calls[-1]
    assert method == "evaluate" and params["size"] == "8x8" and params["grid"] == "2.25:0.0"
    answer({"job": "j7"})
    panel.on_event("progress", "j7", {"fraction": 0.5, "eta_s": 3.0})
    assert panel.eval_progress.value() == 500 and not panel.eval_go.isEnabled()
    row = {"T": 2.25, "mu": 0.0, "F_q": -2.1, "F_q_stderr": 0.004, "neg_log_Z_nis": -2.11, "ess_fraction": 0.62,
           "exact_neg_log_Z": -2.115, "gap": 0.015, "n_samples": 200, "reference_method": "tensor network",
           "reference_error": 1e-7, "extrapolation": False}
    panel.on_event("finished", "j7", {"result": {"conditions": [row], "system": {"size": [8, 8]},
                                                 "source": {"painted_from": "5x5"}}})
    t = panel.eval_table
    cells = [t.item(0, c).text() for c in range(t.columnCount())]
    assert cells[2] == "-2.10000 ± 0.00400" and cells[3] == "-2.11000" and cells[4] == "0.620"
    assert "tensor network" in cells[5] and "1.0e-07" in cells[5] and cells[6] == "0.01500 ± 0.00400"
    assert "painted from the 5x5 model" in panel.eval_status.text() and panel.eval_go.isEnabled()
    assert evaluation_cells({**row, "exact_neg_log_Z": None, "gap": None, "reference_method": None})[5] == "—"
    assert "(exact)" in evaluation_cells({**row, "reference_method": None, "reference_error": None})[5]


# ---- against a real engine ---------------------------------------------------------------------------------------
@pytest.fixture
def engine_window(qtbot, lattherm_home):
    from lattherm.app.window import MainWindow

    win = MainWindow(engine_env=ENGINE_ENV, auto_restart=False)
    qtbot.addWidget(win)
    win.show()
    win.start_engine()
    qtbot.waitUntil(win.client.is_ready, timeout=30000)
    panel = win.painting
    qtbot.waitUntil(lambda: panel.info is not None, timeout=30000)  # the bundled model, described
    yield win
    win.client.kill()


@pytest.mark.slow
def test_painting_survives_a_real_engine_restart(qtbot, engine_window):
    win, panel = engine_window, engine_window.painting
    panel.target.setText("7x7")
    panel.apply_target()
    ed = panel.editor
    ed.begin_stroke()
    for i in range(7):
        ed.paint_site((i, i))
    ed.end_stroke()
    before = ed.values.copy()
    pid = win.client.pid()
    win.restart_engine()
    qtbot.waitUntil(lambda: win.client.is_ready() and win.client.pid() != pid, timeout=30000)
    qtbot.wait(1500)  # the restarted engine's model_info answer arrives and is applied
    assert panel.target.text() == "7x7" and np.array_equal(ed.values, before) and len(ed.undo_stack) == 1
    assert panel.go.isEnabled()


@pytest.mark.slow
def test_painted_evaluation_from_a_tiny_job(qtbot, engine_window):
    """The bundled 5x5 Ising model painted on 6x6: F_q is a variational bound on the exact -log Z."""
    panel = engine_window.painting
    panel.target.setText("6x6")
    panel.apply_target()
    panel.T.setValue(3.0)
    panel.mu.setValue(0.0)
    panel.eval_n.setValue(64)
    qtbot.mouseClick(panel.eval_go, Qt.LeftButton)
    qtbot.waitUntil(lambda: panel.evaluation is not None or "span" in panel.eval_status.text(), timeout=120000)
    assert panel.evaluation is not None, panel.eval_status.text()
    (row,) = panel.evaluation["conditions"]
    assert row["n_samples"] == 64 and 0 < row["ess_fraction"] <= 1
    assert row["exact_neg_log_Z"] is not None
    assert row["F_q"] + 4 * row["F_q_stderr"] >= row["exact_neg_log_Z"]
    assert panel.eval_table.rowCount() == 1 and panel.eval_table.item(0, 2).text().startswith(f"{row['F_q']:.5f}")
    assert "6x6" in panel.eval_status.text()


def test_evaluate_job_maps_no_exact_onto_the_task():
    """The panel's 'gap to the reference' switch reaches tasks.evaluate as exact=, never as an unknown keyword."""
    from lattherm.engine import tasks
    from lattherm.engine.server.handlers import _task_call

    fn, kw = _task_call("evaluate", {"model": "m", "size": "6x6", "no_exact": True})
    assert fn is tasks.evaluate and kw == {"size": "6x6", "exact": False}
    assert _task_call("evaluate", {"model": "m"})[1] == {"exact": True}
