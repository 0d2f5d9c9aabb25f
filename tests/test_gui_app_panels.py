"""The panels as a new user meets them (pytest-qt, offscreen, no engine process: tests/_gui_inprocess.py answers
with the engine's own handlers): per-plot log y, units in every T/mu field, the out-of-memory guard, results
cleared on switching model, the crash banner and About, typed values refused with a reason, Stop escalation."""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtTest import QTest  # noqa: E402

from lattherm.app import training as training_mod  # noqa: E402
from lattherm.app.plots import LiveCurves  # noqa: E402
from lattherm.app.runs import CompareDialog, RunBrowser  # noqa: E402
from lattherm.app.sampler import SamplerPanel  # noqa: E402
from lattherm.app.training import TrainingPanel  # noqa: E402
from lattherm.app.window import MainWindow  # noqa: E402
from lattherm.engine.store import bundled_models_dir  # noqa: E402
from lattherm.engine.systems import CATALOG  # noqa: E402
from _configs import tiny_config  # noqa: E402
from _gui_inprocess import InProcessEngine  # noqa: E402

ISING = str(bundled_models_dir() / "ising-5x5-ao-mlp")
CUAU = str(bundled_models_dir() / "cuau-2x2x4-ao-mlp")


# ---- plots ---------------------------------------------------------------------------------------------------------
def test_log_y_is_per_plot_and_leaves_out_non_positive_points(qtbot):
    curves = LiveCurves(smoothing=0.0)
    qtbot.addWidget(curves)
    curves.add_records([{"step": s, "loss": 10.0 ** -s, "F_q": -5.0 + s, "ess_fraction": 0.5, "grad_norm": 1.0}
                        for s in range(1, 9)])
    curves.set_log_y(True, "loss")
    curves.redraw()
    assert curves.plots["loss"].ctrl.logYCheck.isChecked() and not curves.plots["F_q"].ctrl.logYCheck.isChecked()
    assert len(curves.smooth["loss"].getData()[0]) == 8
    curves.set_log_y(True, "F_q")  # F_q = -4..3: only the three positive points can be drawn on a log axis
    x, y = curves.raw["F_q"].getData()
    assert list(x) == [6, 7, 8] and np.allclose(y, np.log10([1.0, 2.0, 3.0]))  # drawn as log10
    curves.set_log_y(False, "F_q")
    assert len(curves.raw["F_q"].getData()[0]) == 8


def test_a_single_point_is_a_marker_and_reset_reframes(qtbot):
    curves = LiveCurves()
    qtbot.addWidget(curves)
    curves.add_records([{"step": 100, "loss": 3.0, "F_q": -2.0}])
    curves.redraw()
    assert curves.smooth["F_q"].opts["symbol"] == "o"
    curves.add_records([{"step": 200, "loss": 2.0, "F_q": -2.5}])
    curves.redraw()
    assert curves.smooth["F_q"].opts["symbol"] is None
    curves.plots["loss"].setYRange(1000, 2000)
    curves.reset()
    assert curves.plots["loss"].getViewBox().autoRangeEnabled()[1]


# ---- units, ranges and refused values ------------------------------------------------------------------------------
def test_every_T_and_mu_field_carries_the_systems_units(qtbot, offline_engine):
    panel = TrainingPanel(offline_engine)
    qtbot.addWidget(panel)
    form = panel.form
    system = form.widget("system", "name")
    system.setCurrentText("ising")
    assert all(b.suffix() == " kT/ε" for b in form.widget("conditions", "T"))
    assert all(b.suffix() == " ε" for b in form.widget("conditions", "mu"))
    system.setCurrentText("cuau")  # the alloy's own units and the paper's ranges, not Ising's 1.5..3.5
    T, mu = form.widget("conditions", "T"), form.widget("conditions", "mu")
    assert [b.suffix() for b in T] == [" K", " K"] and [b.suffix() for b in mu] == [" eV", " eV"]
    info = CATALOG["cuau"]
    assert [b.value() for b in T] == [min(info.paper_T), max(info.paper_T)]
    assert [b.value() for b in mu] == pytest.approx([min(info.paper_mu), max(info.paper_mu)])
    from lattherm.engine.config import parse_config

    cfg = parse_config(panel.config_text())
    assert cfg.system.name == "cuau" and tuple(cfg.conditions.T) == (200.0, 1200.0)


def test_sampler_takes_units_defaults_and_trained_range_from_model_info(qtbot):
    client = InProcessEngine()
    panel = SamplerPanel(client)
    qtbot.addWidget(panel)
    panel.model.set_choices([("bundled: cuau", CUAU), ("bundled: ising", ISING)])
    assert panel.T.suffix() == " K" and panel.mu.suffix() == " eV"
    r = panel.info["trained_range"]
    assert r["T"][0] <= panel.T.value() <= r["T"][1]  # the default condition is one the model was trained for
    assert panel.free_energy.getAxis("bottom").labelText == "T (K)"
    assert "eV" in panel.free_energy.getAxis("left").labelText
    assert "Au" in panel.key.text() and "Cu" in panel.key.text()
    assert panel.gallery[0].values.shape == (2, 2, 4)  # placeholders of the model's true size
    assert panel.range_note.text() == ""
    panel.T.setValue(2.5)  # 2.5 K: far below the trained range, a visible warning before sampling
    assert "extrapolation" in panel.range_note.text()
    panel.model.select(ISING)
    assert panel.T.suffix() == " kT/ε" and panel.mu.suffix() == " ε"
    assert 1.5 <= panel.T.value() <= 3.5 and panel.range_note.text() == ""
    assert panel.gallery[0].values.shape == (5, 5)


def test_a_typed_value_outside_the_range_is_refused_with_a_reason(qtbot, offline_engine):
    panel = SamplerPanel(offline_engine)
    qtbot.addWidget(panel)
    panel.show()
    panel.T.lineEdit().selectAll()
    QTest.keyClicks(panel.T, "-5")
    assert "outside the allowed range" in panel.status.text() and "T" in panel.status.text()
    train = TrainingPanel(offline_engine)
    qtbot.addWidget(train)
    batch = train.form.widget("training", "batch")
    batch.lineEdit().selectAll()
    QTest.keyClicks(batch, "1" + "9" * 12)  # more than a C int: the box keeps its last value and says why
    assert "[training] batch" in train.status.text() and "outside the allowed range" in train.status.text()
    assert batch.value() <= batch.maximum()


# ---- the out-of-memory guard and Stop ------------------------------------------------------------------------------
def test_the_memory_guard_refuses_an_impossible_batch_before_anything_runs(qtbot, monkeypatch):
    """The issue's case: the bundled 5x5 AO-ARM preset with batch ~999999 on a 16 GiB machine. Its N = 25 kept
    network passes need ~77 GB, so the engine refuses before building anything and the panel says why."""
    from lattherm.engine import paths

    monkeypatch.setenv("LATTHERM_MEMORY_GB", "16")
    client = InProcessEngine()
    panel = TrainingPanel(client)
    qtbot.addWidget(panel)
    data = tomllib.loads((paths.RESOURCES / "configs" / "ising-5x5-ao-mlp-cpu.toml").read_text())
    n_cond = data["conditions"]["T_points"] * data["conditions"]["mu_points"]
    data["training"]["batch"] = 999_999 // n_cond * n_cond
    assert panel.set_config(data)
    panel.start()
    text = panel.status.text()
    assert "more than the memory limit of 16 GiB" in text and f"batch {data['training']['batch']}" in text
    assert panel.state == "idle" and panel.start_btn.isEnabled() and panel.progress.format() == "idle"
    data["training"]["batch"] = 20 * n_cond  # a sensible batch starts
    assert panel.set_config(data)
    panel.start()
    assert panel.job is not None and panel.state == "starting"


def test_stop_offers_to_end_the_engine_when_a_step_never_ends(qtbot, monkeypatch):
    monkeypatch.setattr(training_mod, "STOP_GRACE_S", 0.05)
    client = InProcessEngine()
    panel = TrainingPanel(client)
    qtbot.addWidget(panel)
    panel.set_config(tomllib.loads(tiny_config(steps=5)))
    panel.start()
    panel.on_event("started", panel.job, {"run": "r1"})
    panel.stop()
    assert client.calls[-1][0] == "cancel" and panel.state == "stopping" and not panel.stop_btn.isEnabled()
    qtbot.waitUntil(lambda: "press Stop again" in panel.status.text(), timeout=2000)
    assert panel.stop_btn.isEnabled()
    panel.stop()
    assert client.restarts == 1
    panel.engine_lost()  # the window's crash path: the job is gone, the panel is idle again
    assert panel.state == "idle" and panel.progress.format() == "idle"


# ---- switching model -----------------------------------------------------------------------------------------------
def test_switching_model_clears_the_results(qtbot, tmp_path):
    from lattherm.engine import tasks

    client = InProcessEngine()
    panel = SamplerPanel(client)
    qtbot.addWidget(panel)
    panel.model.set_choices([("bundled: ising", ISING), ("bundled: cuau", CUAU)])
    res = tasks.sample(ISING, conditions=[[2.5, 0.0]], n=16, device="cpu").to_dict()
    panel.job = "j"
    panel.on_event("finished", "j", res)
    assert panel.samples is not None and panel.table.rowCount() == 1 and panel.condition.count() == 1
    assert "kT/ε" in panel.condition.itemText(0) and "(kT/ε)" in panel.table.horizontalHeaderItem(0).text()
    panel.model.select(CUAU)
    assert panel.samples is None and panel.table_rows == [] and panel.table.rowCount() == 0
    assert panel.condition.count() == 0 and panel.status.text() == ""
    assert panel.free_energy.getPlotItem().listDataItems() == [] and panel.hist_logf.getPlotItem().listDataItems() == []
    assert "(K)" in panel.table.horizontalHeaderItem(0).text()


# ---- the window: crash banner, log dock, About ---------------------------------------------------------------------
def test_a_kill_by_signal_9_reads_as_out_of_memory_and_opens_the_log(qtbot):
    win = MainWindow()
    qtbot.addWidget(win)
    win.restart_engine = lambda: None  # no engine in this test
    win.show()
    assert not win.log_dock.isVisible()
    win.on_crash({"exit_code": 9, "exit_status": "crashed", "stderr": "step 1 of 10\n", "fault_logs": {}})
    text = win.banner.text.text()
    assert "out of memory" in text and "signal 9" in text and "exit code 9" in text
    assert win.log_dock.isVisible() and "out of memory" in win.log.toPlainText()
    assert "Restarting the engine" in text
    win.on_ready({"torch": "x", "pid": 1})  # the restarted engine said hello: the banner no longer says restarting
    assert "Restarting the engine" not in win.banner.text.text() and "is ready" in win.banner.text.text()
    win.on_crash({"exit_code": 1, "exit_status": "exited", "stderr": "MemoryError\n", "fault_logs": {}})
    assert "out of memory" in win.banner.text.text()


def test_about_shows_the_app_and_engine_versions(qtbot):
    from lattherm.engine import __version__

    win = MainWindow()
    qtbot.addWidget(win)
    menus = [a.text() for a in win.menuBar().actions()]
    assert menus == ["&File", "&View", "&Help"]
    assert "versions appear" in win.about_text()
    win.client.hello = {"engine": "lattherm-engine", "version": __version__, "protocol": 2, "pid": 42,
                        "python": "3.11.7", "torch": "2.13.0+cpu", "threads": 1, "cuda": False}
    text = win.about_text()
    for part in (__version__, "torch 2.13.0+cpu", "Python 3.11.7", "device: CPU only", "pid 42"):
        assert part in text
    win.show_about()
    assert win.about_box.isVisible() and "torch 2.13.0+cpu" in win.about_box.text()
    win.about_box.close()


# ---- run browser ---------------------------------------------------------------------------------------------------
class _Signal:
    def connect(self, slot) -> None:
        pass


class _Runs(InProcessEngine):
    """open_run answers with the given metric records; no run list."""

    ready = state_changed = _Signal()

    def __init__(self, metrics: dict):
        super().__init__()
        self.metrics = metrics

    def request(self, method, params=None, on_result=None, on_error=None) -> None:
        if method == "open_run":
            on_result({"metrics": self.metrics[params["run"]]})
        elif method == "list_runs":
            on_result([])


def test_compare_offers_metrics_smoothing_and_csv(qtbot, tmp_path):
    recs = {"a": [{"step": s, "F_q": -1.0 - s, "loss": float(s)} for s in range(1, 5)],
            "b": [{"step": s, "F_q": -2.0, "loss": 10.0} for s in (2, 4)]}
    dlg = CompareDialog(["a", "b"], _Runs(recs))
    qtbot.addWidget(dlg)
    dlg.show()  # painting asks QPaintDevice.metric(): no attribute of the dialog may shadow it
    qtbot.waitExposed(dlg)
    assert dlg.loaded()
    assert list(dlg.curves["a"].getData()[1]) == [-2.0, -3.0, -4.0, -5.0]
    dlg.metric_box.setCurrentText("loss")
    assert list(dlg.curves["a"].getData()[1]) == [1.0, 2.0, 3.0, 4.0]
    dlg.smoothing.setValue(0.5)  # EMA: 1, 1.5, 2.25, 3.125
    assert list(dlg.curves["a"].getData()[1]) == pytest.approx([1.0, 1.5, 2.25, 3.125])
    header, rows = dlg.table()
    assert header == ["step", "a:loss", "b:loss"] and rows[0] == [1, 1.0, None] and rows[1][2] == 10.0
    assert dlg.curves["a"].opts["pen"].color().name() != dlg.curves["b"].opts["pen"].color().name()


def test_browser_shows_a_paused_run_as_paused(qtbot):
    browser = RunBrowser(_Runs({}))
    qtbot.addWidget(browser)
    browser.loaded = True
    rows = [{"id": "r1", "status": "running", "step": 3, "path": "/x"}, {"id": "r2", "status": "finished"}]
    browser.show_rows(rows, force=True)
    assert browser.table.item(0, 1).text() == "running"
    browser.set_live_state("r1", "paused")
    assert browser.table.item(0, 1).text() == "paused" and browser.table.item(1, 1).text() == "finished"
    browser.set_live_state("r1", "running")
    assert browser.table.item(0, 1).text() == "running"
    assert min(browser.table.columnWidth(j) for j in range(browser.table.columnCount())) >= 64


def test_first_start_preview_is_drawn_at_once_and_sample_supersedes_it(qtbot):
    from lattherm.app.sampler import PREVIEW_SAMPLES

    client = InProcessEngine()
    panel = SamplerPanel(client)
    qtbot.addWidget(panel)
    panel.model.set_choices([("bundled: ising", ISING)])
    panel.preview_when_ready()  # model_info is in already: the preview is asked for at once
    method, params = client.calls[-1]
    assert method == "sample" and params["n"] == PREVIEW_SAMPLES and params["model"] == ISING
    preview = panel.job
    assert preview is not None and panel.previewing and panel.go.isEnabled()
    panel.n.setValue(321)
    panel.go.click()
    assert ("cancel", {"job": preview}) in client.calls
    assert client.calls[-1][0] == "sample" and client.calls[-1][1]["n"] == 321
    assert panel.job != preview and not panel.previewing and not panel.go.isEnabled()
    panel.on_event("finished", preview, {"table": [], "model": {}, "path": "/nonexistent"})  # the old job: ignored
    assert panel.samples is None and panel.job is not None


def test_an_emptied_plot_forgets_the_last_range(qtbot, tmp_path):
    from lattherm.engine import tasks

    client = InProcessEngine()
    panel = SamplerPanel(client)
    qtbot.addWidget(panel)
    panel.show()  # a view frames its data when it is on screen
    panel.model.set_choices([("bundled: ising", ISING), ("bundled: cuau", CUAU)])
    panel.job = "j"
    panel.on_event("finished", "j", tasks.sample(ISING, conditions=[[2.5, 0.0]], n=16, device="cpu").to_dict())
    qtbot.waitUntil(lambda: panel.hist_logf.getPlotItem().viewRange()[0][1] > 2)  # log f of 5x5 samples: ~10 nats
    panel.model.select(CUAU)
    (x0, x1), (y0, y1) = panel.hist_logf.getPlotItem().viewRange()
    assert (x0, x1, y0, y1) == pytest.approx((0, 1, 0, 1), abs=0.05)


def test_compare_headlines_the_exact_gap_when_every_run_logs_it(qtbot):
    recs = {"a": [{"step": s, "F_q": -1.0 - s, "exact_gap": 1.0 / s} for s in range(1, 4)],
            "b": [{"step": 2, "F_q": -2.0, "exact_gap": 0.3}]}
    dlg = CompareDialog(["a", "b"], _Runs(recs))
    qtbot.addWidget(dlg)
    assert dlg.loaded() and dlg.metric_box.currentText() == "exact_gap"
    assert list(dlg.curves["a"].getData()[1]) == pytest.approx([1.0, 0.5, 1.0 / 3])
    only_fq = CompareDialog(["a"], _Runs({"a": [{"step": 1, "F_q": -1.0}]}))
    qtbot.addWidget(only_fq)
    assert only_fq.loaded() and only_fq.metric_box.currentText() == "F_q"


def test_the_window_fits_a_laptop_screen(qtbot):
    """Nothing off screen on a 1366x768 laptop: the panels' minimum width (run browser beside them) stays below it,
    and the first size never exceeds the screen."""
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    assert win.minimumSizeHint().width() <= 1366
    screen = win.screen().availableGeometry()
    assert win.width() <= max(screen.width(), win.minimumSizeHint().width())


def test_a_10x10_model_keeps_the_window_on_a_laptop_screen(qtbot):
    """Eight 10x10 thumbnails scroll sideways instead of widening the window past 1366 px, and stay whole in
    height."""
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    from lattherm.engine import tasks

    sp = win.sampler
    ref = str(bundled_models_dir() / "ising-10x10-ao-mlp-cpu")
    sp.model.current_ref = lambda: ref  # the panel's model box, pointed at the 10x10 model without an engine
    sp._got_info(ref, tasks.describe_model(ref))
    assert sp.gallery[0].sizeHint().width() * len(sp.gallery) > 1366 - 320  # the thumbnails alone would not fit
    assert win.minimumSizeHint().width() <= 1366
    assert sp.gallery_area.height() >= sp.gallery[0].sizeHint().height()
