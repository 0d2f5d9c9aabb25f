"""Regression tests for what a walk through the app under Xvfb found (pytest-qt, offscreen, no engine process:
tests/_gui_inprocess.py answers with the engine's own handlers): the first-start jump to the Sampler pulled a user
who had started training away from the Training tab; the window did not fit a 768-pixel screen; the phase
diagram labelled Ising's up-spin fraction "magnetisation"; a cleared map kept its old colour levels; MCMC rows did
not say at which condition they ran; the painting panel's T and μ changed a typed value silently; fcc thumbnails
were 28 px with no space between samples; histogram axes read "x_Au (x0.001)"; the 3D view cut off the
conventional cube of a thin supercell."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from lattherm.app.crystal3d import CrystalView, project  # noqa: E402
from lattherm.app.mcmc import MCMCView  # noqa: E402
from lattherm.app.painting import PaintingPanel, evaluation_cells  # noqa: E402
from lattherm.app.phase import PhaseDiagramView  # noqa: E402
from lattherm.app.sampler import GALLERY_SPACING, SamplerPanel, thumb_cell  # noqa: E402
from lattherm.app.window import PREFERRED_MODEL, TITLE_BAR, MainWindow  # noqa: E402
from lattherm.engine import tasks  # noqa: E402
from lattherm.engine.store import bundled_models_dir  # noqa: E402
from _gui_inprocess import InProcessEngine  # noqa: E402

ISING = str(bundled_models_dir() / "ising-5x5-ao-mlp")
CUAU = str(bundled_models_dir() / "cuau-2x2x4-ao-mlp")
BUNDLED = [{"name": PREFERRED_MODEL, "path": ISING}, {"name": "cuau-2x2x4-ao-mlp", "path": CUAU}]


# ---- the window ----------------------------------------------------------------------------------------------------
def _lists_arrive(win: MainWindow) -> None:
    """What the engine's first answers do: an empty run list (a first start), then the bundled models."""
    win.browser.loaded = True
    win.browser.rows = []
    win._got_bundled(BUNDLED)


def test_first_start_opens_the_sampler_when_the_user_has_done_nothing(qtbot):
    win = MainWindow()
    qtbot.addWidget(win)
    _lists_arrive(win)
    assert win.tabs.currentWidget() is win.sampler


def test_first_start_leaves_a_user_who_started_training_on_the_training_tab(qtbot):
    """The defect: Start pressed before the engine's lists came in, then the window jumped to the Sampler."""
    win = MainWindow()
    qtbot.addWidget(win)
    win.training.state = "starting"  # Start was pressed: the run's job is on its way
    _lists_arrive(win)
    assert win.tabs.currentWidget() is win.training
    assert win.sampler.model.current_ref() == ISING  # the preferred model is still chosen for later


def test_first_start_leaves_a_tab_the_user_clicked(qtbot):
    win = MainWindow()
    qtbot.addWidget(win)
    win.show()
    painting = win.tabs.indexOf(win.painting)
    QTest.mouseClick(win.tabs.tabBar(), Qt.LeftButton, Qt.NoModifier, win.tabs.tabBar().tabRect(painting).center())
    assert win.tab_chosen and win.tabs.currentIndex() == painting
    _lists_arrive(win)
    assert win.tabs.currentIndex() == painting


def test_the_window_fits_a_768_pixel_screen_with_every_panel_built(qtbot):
    """Every panel built (the Training form's longest tab, the painting panel's views and results): the minimum
    height leaves room for a title bar and a task bar on a 1366x768 laptop; the first size leaves a title bar."""
    win = MainWindow()
    qtbot.addWidget(win)
    win.build_deferred()
    _ = win.sampler.phase, win.sampler.mcmc
    hint = win.minimumSizeHint()
    assert hint.height() <= 768 - TITLE_BAR - 40 and hint.width() <= 1366
    screen = win.screen().availableGeometry()
    assert win.height() <= max(screen.height() - TITLE_BAR, hint.height())


# ---- Sampler -------------------------------------------------------------------------------------------------------
def test_fcc_thumbnails_are_larger_and_samples_stand_apart(qtbot):
    panel = SamplerPanel(InProcessEngine())
    qtbot.addWidget(panel)
    panel.model.set_choices([("bundled: cuau", CUAU)])
    v = panel.gallery[0]
    assert v.values.shape == (2, 2, 4) and v.cell == thumb_cell((2, 2)) == 20  # a 2x2 layer: 40 px, not 28
    assert thumb_cell((10, 10)) == 14 and thumb_cell((5, 5)) == 16
    assert panel.gallery_area.widget().layout().spacing() == GALLERY_SPACING > v.gap()  # samples apart > layers


def test_histogram_axes_show_the_values_not_an_si_prefix(qtbot):
    panel = SamplerPanel(InProcessEngine())
    qtbot.addWidget(panel)
    for h in (panel.hist_logf, panel.hist_obs):
        for side in ("left", "bottom"):
            assert not h.getAxis(side).autoSIPrefix


# ---- phase diagram -------------------------------------------------------------------------------------------------
def test_the_phase_map_is_labelled_with_the_sampled_composition(qtbot):
    """The engine samples x = the up-spin fraction for Ising (0..1); the axis must not say "magnetisation"."""
    info = tasks.describe_model(ISING)
    assert info["composition"] == "x_up" and info["observable"] != "x_up"
    view = PhaseDiagramView(InProcessEngine())
    qtbot.addWidget(view)
    view.set_model(ISING, info)
    assert view.map_plot.getPlotItem().getAxis("bottom").labelText == "x_up"
    assert view.iso_plot.getPlotItem().getAxis("left").labelText == "⟨x_up⟩"
    view.set_model(CUAU, tasks.describe_model(CUAU))
    assert view.map_plot.getPlotItem().getAxis("bottom").labelText == "x_Au"


def test_a_cleared_phase_map_forgets_the_old_levels(qtbot):
    view = PhaseDiagramView(InProcessEngine())
    qtbot.addWidget(view)
    view.set_model(CUAU, tasks.describe_model(CUAU))
    T, mu, bins = np.array([300.0, 600.0]), np.array([-0.1, 0.1]), np.arange(17) / 16
    hist = np.zeros((2, 17))
    hist[:, 8], hist[:, 7] = 10.0, 30.0  # 3/4 of each temperature's samples at x = 7/16: levels 0..0.75
    view.show_grid({"T": T, "mu": mu, "x_bins": bins, "x_hist": hist, "x_mean": np.full((2, 2), 0.45),
                    "x_std": np.full((2, 2), 0.02)})
    assert view.colorbar.levels() == pytest.approx((0.0, 0.75))
    view.clear()
    assert view.colorbar.levels() == pytest.approx((0.0, 1.0)) and view.grid is None
    (x0, x1), (y0, y1) = view.map_plot.getPlotItem().getViewBox().viewRange()
    assert (x0, x1, y0, y1) == pytest.approx((0.0, 1.0, 0.0, 1.0))


# ---- MCMC ----------------------------------------------------------------------------------------------------------
def test_mcmc_rows_say_where_they_ran_in_the_models_units(qtbot):
    view = MCMCView(InProcessEngine())
    qtbot.addWidget(view)
    view.set_model(CUAU, tasks.describe_model(CUAU))
    view.method.setCurrentIndex(2)  # Metropolis
    view.run()
    result = {"method": "metropolis", "size": [2, 2, 4], "T": 700.0, "mu": 0.05, "acceptance": 0.4,
              "observables": {"energy_per_site": {"mean": -0.01, "stderr": 0.001, "tau_int": 1.0}}}
    view.on_event("finished", view.job, result)
    heads = [view.table.horizontalHeaderItem(j).text() for j in range(view.table.columnCount())]
    assert heads[:6] == ["method", "size", "T (K)", "μ (eV)", "acceptance", "E/N (eV)"]
    assert [view.table.item(0, j).text() for j in range(1, 4)] == ["2x2x4", "700", "0.05"]


# ---- painting ------------------------------------------------------------------------------------------------------
def test_painting_says_why_a_typed_T_is_refused_and_puts_units_in_the_table(qtbot):
    panel = PaintingPanel(InProcessEngine())
    qtbot.addWidget(panel)
    panel.model.set_choices([("bundled: cuau", CUAU)])
    panel.show()
    panel.T.lineEdit().selectAll()
    QTest.keyClicks(panel.T, "-5")
    assert "T -" in panel.status.text() and "outside the allowed range" in panel.status.text()
    heads = [panel.eval_table.horizontalHeaderItem(j).text() for j in range(2)]
    assert heads == ["T (K)", "μ (eV)"] and panel.T_label.text() == "T"  # the unit once, not "T [K] 700 K"


def test_the_painted_reference_says_exact_or_tensor_network():
    row = {"T": 2.5, "mu": 0.0, "F_q": -56.2, "exact_neg_log_Z": -56.6, "reference_method": "kaufman"}
    assert evaluation_cells(row)[5].endswith("(exact, kaufman)")
    assert evaluation_cells({**row, "reference_method": "tensor_network", "reference_error": 1e-9})[5].endswith(
        "(tensor network)")
    assert evaluation_cells({**row, "reference_method": None})[5].endswith("(exact)")


# ---- 3D view -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape,size", [((2, 2, 4), (580, 200)), ((4, 4, 4), (420, 380)), ((2, 2, 8), (300, 400))])
def test_the_3d_view_frames_sites_supercell_and_conventional_cube(qtbot, shape, size):
    info = tasks.describe_model(CUAU)
    v = CrystalView()
    qtbot.addWidget(v)
    v.resize(*size)
    v.set_lattice(shape, info["vectors"], info["unit_length"])
    v.show()
    qtbot.waitExposed(v)
    a = v.edge
    cube = a * np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], float)
    xy = project(np.vstack([v.points, cube]), v.cam, v.width(), v.height()).xy
    assert np.all(xy >= 0) and np.all(xy[:, 0] <= v.width()) and np.all(xy[:, 1] <= v.height())


# ---- training curves -----------------------------------------------------------------------------------------------
def test_the_training_curves_have_a_key_below_the_plots(qtbot):
    from lattherm.app.plots import LiveCurves

    curves = LiveCurves()
    qtbot.addWidget(curves)
    curves.resize(600, 500)
    curves.show()
    qtbot.waitExposed(curves)
    labels = [label.text for _, label in curves.legend.items]
    assert labels == ["raw value", "EMA (smoothed)"]
    lowest_plot = max(p.sceneBoundingRect().bottom() for p in curves.plots.values())
    assert curves.legend.sceneBoundingRect().top() >= lowest_plot - 1  # under the plots, not over their data


def test_painting_opens_without_3d_views_before_a_model_is_described(qtbot):
    """First open with the engine still starting: the 2D editor alone, not two empty "no 3D lattice" boxes."""
    panel = PaintingPanel(InProcessEngine())
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    assert not panel.crystal_box.isVisible() and not panel.result_crystal.isVisible()
    panel.model.set_choices([("bundled: cuau", CUAU)])  # an fcc model: both 3D views appear (results once painted)
    assert panel.crystal_box.isVisible()
