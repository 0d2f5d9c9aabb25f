"""Phase diagrams from a cell that resolves composition: a 16-site model painted onto 4x4x8 (128 sites, 129
compositions) at every condition, with the Wang-Landau boundary computed on that same cell."""


import numpy as np
import pytest

from _cli import cli
from lattherm.engine import montecarlo
from lattherm.engine.tasks import phase_diagram


@pytest.fixture(scope="module")
def tiny_cuau(tmp_path_factory):
    """A tiny CuAu 2x2x4 AO-ARM, trained a few steps (the physics is not the point: the cell is)."""
    import _configs
    from lattherm.engine.tasks import open_trainer, train

    home = tmp_path_factory.mktemp("home")
    cfg = home / "cuau.toml"
    cfg.write_text(_configs.tiny_config("2x2x4", steps=4, **{"system.name": "cuau", "conditions.T": [400.0, 1200.0],
                                                             "conditions.mu": [-0.1, 0.1]}))
    trainer = open_trainer(config_path=cfg)
    train(trainer)
    return str(trainer.run.path)


def test_painted_4x4x8_diagram_has_129_compositions_and_a_128_site_boundary(tiny_cuau, tmp_path, monkeypatch):
    seen = []
    real = montecarlo.composition_free_energy

    def spy(system, T, **kw):  # the real Wang-Landau on the cell it is given, with fewer walkers (a test's budget)
        seen.append(system.n_sites)
        return real(system, T, **{**kw, "n_walkers": 8, "n_blocks": 2, "production_sweeps": 10})

    monkeypatch.setattr(montecarlo, "composition_free_energy", spy)
    res = phase_diagram(tiny_cuau, tmp_path / "pd", size="4x4x8", T_points=2, mu_points=3, samples=6,
                        boundary_T_points=2, boundary_sweeps=30, seed=3, formats="svg")
    assert seen == [128] and res.boundary_sites == 128 and res.label == "4x4x8"
    z = np.load(tmp_path / "pd" / "phase_grid.npz")
    np.testing.assert_array_equal(z["x_bins"], np.arange(129) / 128)
    assert z["x_hist"].shape == (2, 129) and (z["x_hist"].sum(1) == 3 * 6).all()
    # every painted composition is a whole number of Au atoms out of 128: x_mean * 6 * 128 is an integer
    np.testing.assert_allclose(z["x_mean"] * 6 * 128, np.rint(z["x_mean"] * 6 * 128), atol=1e-9)
    assert (np.rint(z["x_mean"] * 6 * 128) % 8 != 0).any()  # not just the 16-site cell's steps of 1/16
    assert z["reference"].shape[1] == 3  # the boundary's (T, x_a, x_b) rows went into the file
    assert "painted onto 4x4x8" in res.what and "Wang-Landau on 4x4x8" in res.what
    assert "x_Au" in (tmp_path / "pd" / "temperature_composition.svg").read_text()


def test_cli_size_and_bad_input(tiny_cuau, capsys, tmp_path):
    rc, out, err = cli(capsys, "phase-diagram", tiny_cuau, "--size", "4x4x8", "--T-points", "2", "--mu-points",
                       "2", "--samples", "3", "--boundary", "none", "--out", tmp_path / "a")
    assert rc == 0, err
    assert "4x4x8" in out and (tmp_path / "a" / "phase_grid.npz").is_file()
    assert np.load(tmp_path / "a" / "phase_grid.npz")["x_bins"].size == 129
    for args, message in ((["--size", "5x5"], "three extents"), (["--size", "4x4x8", "--boundary-sweeps", "0"], "boundary"),
                          (["--size", "4x4x8", "--boundary-size", "9x9"], "three extents")):
        rc, out, err = cli(capsys, "phase-diagram", tiny_cuau, *args, "--out", tmp_path / "bad")
        assert rc == 2 and len(err.strip().splitlines()) == 1 and message in err, err
        assert not (tmp_path / "bad").exists()
    rc, out, err = cli(capsys, "phase-diagram", "mc", "--system", "cuau", "--lattice-size", "2x2x4", "--size",
                       "4x4x8", "--out", tmp_path / "bad")
    assert rc == 2 and "lattice-size" in err


def test_painting_needs_an_any_order_model(capsys, tmp_path):
    from lattherm.engine.tasks import open_trainer, train
    import _configs

    cfg = tmp_path / "fo.toml"
    cfg.write_text(_configs.tiny_config("2x2x4", kind="fo-arm", steps=2, **{"system.name": "cuau",
                                                                            "conditions.T": [400.0, 1200.0],
                                                                            "conditions.mu": [-0.1, 0.1]}))
    trainer = open_trainer(config_path=cfg)
    train(trainer)
    rc, out, err = cli(capsys, "phase-diagram", trainer.run.path, "--size", "4x4x8", "--out", tmp_path / "x")
    assert rc == 2 and "any-order" in err and not (tmp_path / "x").exists()


def test_gui_phase_view_sends_the_lattice_size(qtbot):
    """The Sampler's phase tab offers the cell: empty is the model's own (placeholder), a size goes to the job."""
    pytest.importorskip("pytestqt")
    from conftest import OfflineEngine
    from lattherm.app.phase import PhaseDiagramView
    from lattherm.engine.store import bundled_models_dir
    from lattherm.engine.tasks import describe_model

    cuau = str(bundled_models_dir() / "cuau-2x2x4-ao-mlp")
    view = PhaseDiagramView(OfflineEngine())
    qtbot.addWidget(view)
    view.set_model(cuau, describe_model(cuau))
    assert "2x2x4" in view.size.placeholderText() and "size" not in view.params()
    view.size.setText(" 4x4x8 ")
    assert view.params()["size"] == "4x4x8"
