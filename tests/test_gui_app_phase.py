"""The Sampler's phase-diagram view renders what the engine's phase_diagram job wrote: a tiny (T, mu) grid of the
bundled CuAu model computed in this process by the same task the job runs, then fed to the view as the job's
'finished' event (pytest-qt, offscreen)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from lattherm.app.phase import PhaseDiagramView  # noqa: E402
from lattherm.engine import tasks  # noqa: E402
from lattherm.engine.store import bundled_models_dir  # noqa: E402
from _gui_inprocess import InProcessEngine  # noqa: E402

CUAU = str(bundled_models_dir() / "cuau-2x2x4-ao-mlp")


@pytest.fixture
def view(qtbot):
    client = InProcessEngine()
    v = PhaseDiagramView(client)
    qtbot.addWidget(v)
    v.set_model(CUAU, tasks.describe_model(CUAU))
    return v


def test_phase_diagram_view_renders_a_small_grid_from_the_job(view, tmp_path):
    view.T_points.setValue(2)
    view.mu_points.setValue(3)
    view.samples.setValue(40)
    view.compute()  # the request the engine validates (an unknown key or a bad model would be an error reply)
    method, params = view.client.calls[-1]
    assert method == "phase_diagram" and view.job == "job-1" and not view.go.isEnabled()
    assert (params["T_points"], params["mu_points"], params["samples"], params["boundary"]) == (2, 3, 40, "none")
    trained = view.info["trained_range"]  # the grid defaults to the model's trained range, in its units
    assert params["T_range"] == list(trained["T"]) and params["mu_range"] == pytest.approx(list(trained["mu"]))
    assert view.T_lo.suffix() == " K" and view.mu_hi.suffix() == " eV"
    view.on_event("progress", "job-1", {"step": 1, "total": 2, "fraction": 0.5, "eta_s": 1.0, "stage": "grid"})
    assert view.progress.value() == 500 and "grid" in view.progress.format()
    res = tasks.phase_diagram(CUAU, params["out"], T_points=2, mu_points=3, samples=40, boundary="none", seed=1,
                              T_range=params["T_range"], mu_range=params["mu_range"])
    assert view.on_event("finished", "job-1", res.to_dict()) is True
    assert view.job is None and view.progress.format() == "idle" and view.go.isEnabled()
    g = view.grid
    assert g["x_mean"].shape == (2, 3) and np.all((0 <= g["x_mean"]) & (g["x_mean"] <= 1))
    # the isotherms rise with mu (more Au at a higher Au chemical potential), at every temperature
    assert np.all(np.diff(g["x_mean"], axis=1) >= -0.1)
    img = view.image.image
    assert img.shape == (len(g["x_bins"]), 2) and np.allclose(img.sum(axis=0), 1.0)  # one density per T
    curves = view.iso_plot.getPlotItem().listDataItems()
    assert len(curves) == 2 and np.allclose(curves[0].getData()[0], g["mu"])
    labels = [item.text for _, item in view.iso_legend.items]
    assert labels[0] == f"T = {g['T'][0]:.0f} K"
    assert view.map_plot.getPlotItem().getAxis("left").labelText == "T (K)"
    assert view.iso_plot.getPlotItem().getAxis("bottom").labelText == "μ (eV)"
    header, rows = view.table()
    view_csv = tmp_path / "grid.csv"
    from lattherm.app import export

    export.write_csv(view_csv, header, rows)
    with open(view_csv) as f:
        got = list(csv.reader(f))
    assert got[0] == ["T", "mu", "x_mean", "x_std"] and len(got) == 1 + 6
    files = view.export_figures(tmp_path / "map.png") + view.export_figures(tmp_path / "map.svg")
    assert [p.name for p in files] == ["map.png", "map_isotherms.png", "map.svg", "map_isotherms.svg"]
    assert all(p.stat().st_size > 500 for p in files)
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_boundary_is_overlaid_when_the_job_returns_one(view, tmp_path):
    """A grid with a reference (T, x_a, x_b) rows, as the Wang-Landau overlay writes it: both edges of every
    two-phase region become points on the map at their temperature."""
    from lattherm.engine.analysis.phase_diagram import write_phase_diagram

    T, mu = np.array([300.0, 600.0]), np.array([-0.1, 0.0, 0.1])
    bins = np.linspace(0, 1, 17)
    grid = {"T": T, "mu": mu, "x_mean": np.tile([0.1, 0.5, 0.9], (2, 1)), "x_std": np.full((2, 3), 0.05),
            "x_bins": bins, "x_hist": np.ones((2, 17))}
    write_phase_diagram(tmp_path / "pd", grid, "cuau", reference=[(300.0, 0.2, 0.8), (600.0, 0.3, 0.7)])
    view.job = "j"
    view.on_event("finished", "j", {"out": str(tmp_path / "pd")})
    x, y = view.boundary_points.getData()
    assert sorted(zip(x, y)) == [(0.2, 300.0), (0.3, 600.0), (0.7, 600.0), (0.8, 300.0)]
    assert "2 two-phase points" in view.status.text()


def test_cancel_and_failure_leave_the_view_idle(view):
    view.compute()
    job = view.job
    view.cancel.click()
    assert view.client.calls[-1] == ("cancel", {"job": job})
    view.on_event("cancelled", job, {})
    assert view.job is None and view.progress.format() == "idle" and "cancelled" in view.status.text()
    view.set_model(None, None)
    view.compute()
    assert "no model" in view.status.text() and view.job is None


def test_the_sampler_builds_its_phase_view_on_first_use_for_the_chosen_model(qtbot):
    from lattherm.app.sampler import SamplerPanel

    panel = SamplerPanel(InProcessEngine())
    qtbot.addWidget(panel)
    panel.model.set_choices([("bundled: cuau", CUAU)])
    assert panel._phase is None  # not built at startup
    panel.tabs.setCurrentWidget(panel._phase_page)
    assert panel._phase is not None and panel.phase.model == CUAU and panel.phase.info["system"] == "cuau"
    assert panel.phase.go.isEnabled()
