"""Phase diagrams from the bundled CuAu model: monotone isotherms that match exact enumeration, and the
`lattherm phase-diagram` command writing npz/csv/png/svg (or nothing at all on bad input)."""

from __future__ import annotations

import csv
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch

from lattherm.engine.analysis.phase_diagram import model_phase_grid, write_phase_diagram
from lattherm.engine.cli.main import main
from lattherm.engine.exact import enumerate_exact
from lattherm.engine.models.io import load_model

MODEL = "cuau-2x2x4-ao-mlp"
T_VALUES = [200.0, 533.0, 866.0, 1200.0]
MU_VALUES = [-0.12, -0.06, 0.0, 0.06, 0.12]


@pytest.fixture(scope="module")
def model_grid():
    torch.manual_seed(0)
    lm = load_model(MODEL)
    return lm, model_phase_grid(lm, T_VALUES, MU_VALUES, 100)


def test_grid_shapes_and_histograms(model_grid):
    lm, g = model_grid
    N = lm.system.n_sites
    assert g["T"].shape == (4,) and g["mu"].shape == (5,)
    assert g["x_mean"].shape == g["x_std"].shape == (4, 5)
    assert g["x_bins"].shape == (N + 1,) and g["x_hist"].shape == (4, N + 1)
    assert (g["x_hist"].sum(axis=1) == 5 * 100).all()  # every sample of every mu lands in one bin
    assert np.allclose(g["x_hist"] @ g["x_bins"] / 500, g["x_mean"].mean(axis=1))


def test_isotherms_rise_with_mu_and_match_exact_at_high_T(model_grid):
    lm, g = model_grid
    assert (np.diff(g["x_mean"], axis=1) > -0.05).all()
    assert (g["x_mean"][:, -1] - g["x_mean"][:, 0] > 0.3).all()
    for i, T in enumerate(g["T"]):
        if T < 800:
            continue
        for j, mu in enumerate(g["mu"]):
            exact = enumerate_exact(lm.system, float(T), float(mu)).mean_observable
            assert abs(g["x_mean"][i, j] - exact) < 0.05, (T, mu, g["x_mean"][i, j], exact)


def _check_outputs(out):
    names = {p.name for p in out.iterdir()}
    assert names == {"phase_grid.npz", "phase_grid.csv", "temperature_composition.png",
                     "temperature_composition.svg", "isotherms.png", "isotherms.svg"}
    for png in ("temperature_composition.png", "isotherms.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    for svg in ("temperature_composition.svg", "isotherms.svg"):
        assert ET.parse(out / svg).getroot().tag.endswith("svg")
    z = np.load(out / "phase_grid.npz")
    with open(out / "phase_grid.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    nT, nmu = z["x_mean"].shape
    assert len(rows) == nT * nmu
    for k, row in enumerate(rows):
        i, j = divmod(k, nmu)
        assert float(row["T"]) == z["T"][i] and float(row["mu"]) == z["mu"][j]
        assert float(row["x_mean"]) == z["x_mean"][i, j] and float(row["x_std"]) == z["x_std"][i, j]
    return z


def test_write_phase_diagram_with_reference(model_grid, tmp_path):
    _, g = model_grid
    out = tmp_path / "pd"
    write_phase_diagram(out, g, "cuau", reference=[(533.0, 0.25, 0.5)])
    z = _check_outputs(out)
    assert np.array_equal(z["x_hist"], g["x_hist"]) and z["reference"].shape == (1, 3)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind


def test_cli_writes_data_and_figures(capsys, tmp_path):
    out = tmp_path / "diagram"
    rc = main(["phase-diagram", MODEL, "--T-points", "2", "--mu-points", "3", "--samples", "20",
               "--boundary-T-points", "2", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    z = _check_outputs(out)
    assert z["T"].tolist() == [200.0, 1200.0] and z["mu"].tolist() == [-0.12, 0.0, 0.12]  # trained range
    # Wang-Landau boundary: at 200 K the ordered compounds of the 16-site cell (x = 0, 1/4, 1/2, 3/4, 1) are the
    # vertices of the free-energy hull; each two-phase interval joins two of them
    ref = z["reference"]
    low = ref[ref[:, 0] == 200.0]
    assert len(low) >= 2 and (low[:, 1] < low[:, 2]).all()
    assert set(np.round(low[:, 1:].ravel() * 16).astype(int)) <= {0, 4, 8, 12, 16}
    assert "two-phase boundary" in (out / "temperature_composition.svg").read_text()


@pytest.mark.parametrize("system, size, T_range, mu_range", [("cuau", "2x2x4", "600,1200", "-0.12,0.12"),
                                                              ("ising", "3x3", "2.5,3.5", "-0.4,0.4")])
def test_cli_mc_reference_grid_matches_exact_enumeration(capsys, tmp_path, system, size, T_range, mu_range):
    out = tmp_path / "mc"
    rc = main(["phase-diagram", "mc", "--system", system, "--lattice-size", size, "--T-range", T_range,
               f"--mu-range={mu_range}", "--T-points", "2", "--mu-points", "3", "--chains", "128", "--sweeps", "100",
               "--boundary", "none", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    z = _check_outputs(out)
    from lattherm.engine.systems import make_system

    sys_ = make_system(system, size)
    for i, T in enumerate(z["T"]):
        for j, mu in enumerate(z["mu"]):
            x = sys_.composition_of_observable(enumerate_exact(sys_, float(T), float(mu)).mean_observable)
            assert abs(z["x_mean"][i, j] - x) < 0.03, (T, mu, z["x_mean"][i, j], x)
    assert sys_.composition_name in (out / "isotherms.svg").read_text()


@pytest.mark.parametrize("args", [["--T-range", "0,1200"], ["--T-range=-100,800"], ["--mu-range", "a,b"],
                                  ["--samples", "0"], ["--boundary-T-points", "0"], ["--system", "cuau"],
                                  ["mc"], ["mc", "--system", "cuau"], ["mc", "--system", "cuau", "--lattice-size", "3x3"]])
def test_cli_bad_input_exit_2_nothing_written(capsys, tmp_path, args):
    work = tmp_path / "work"
    work.mkdir()
    out = work / "diagram"
    if args[0] == "mc":
        rc = main(["phase-diagram", *args, "--out", str(out)])
    else:
        rc = main(["phase-diagram", MODEL, *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("lattherm: error:")
    assert not out.exists() and not list(work.iterdir())
