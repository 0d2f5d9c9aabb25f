"""Figures a person reads (matplotlib, PNG/SVG/PDF with units on the axes), `lattherm plot`, TOML through tomli_w,
tqdm progress that stays plain on a pipe, and standard errors beside every estimate in the evaluate table."""

from __future__ import annotations

import io
import json
import math
import re
import tomllib
import xml.etree.ElementTree as ET

import matplotlib
import numpy as np
import pytest
import torch

from lattherm.engine.analysis import figures
from lattherm.engine.analysis.free_energy import importance_estimates, importance_stderr
from lattherm.engine.analysis.phase_diagram import write_phase_diagram
from lattherm.engine.cli.main import main
from lattherm.engine.config import RunConfig, parse_config, toml_text
from lattherm.engine.errors import ConfigError, LatthermError
from lattherm.engine.progress import Progress

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF-"}


def _valid(path):
    """The file is a real PNG / PDF (magic bytes) or an SVG document (parses, root <svg>); returns SVG text."""
    fmt = path.suffix[1:]
    data = path.read_bytes()
    if fmt == "svg":
        assert ET.fromstring(data).tag.endswith("svg")
        return data.decode("utf-8")
    assert data.startswith(MAGIC[fmt]), path
    assert len(data) > 1000
    return None


def _grid(n_sites=16, nT=3, nmu=5):
    rng = np.random.default_rng(0)
    T = np.linspace(200.0, 1200.0, nT)
    mu = np.linspace(-0.12, 0.12, nmu)
    x_mean = np.tile(np.linspace(0.05, 0.95, nmu), (nT, 1))
    return {"T": T, "mu": mu, "x_mean": x_mean, "x_std": np.full((nT, nmu), 0.1),
            "x_bins": np.arange(n_sites + 1) / n_sites, "x_hist": rng.integers(0, 40, (nT, n_sites + 1))}


def _svg_text(fig) -> str:
    return figures.render(fig, "svg").decode("utf-8")


# ---- figures ------------------------------------------------------------------------------------------------------
def test_every_format_is_a_valid_file_and_rcparams_are_left_alone(tmp_path):
    before = dict(matplotlib.rcParams)
    fig = figures.temperature_composition(_grid(), "cuau", reference=[(200.0, 0.25, 0.5)])
    paths = figures.save(fig, tmp_path / "map", ["png", "svg", "pdf"])
    assert [p.name for p in paths] == ["map.png", "map.svg", "map.pdf"]
    for p in paths:
        _valid(p)
    assert figures.save(fig, tmp_path / "one.pdf") == [tmp_path / "one.pdf"]  # format from the suffix
    assert dict(matplotlib.rcParams) == before  # the house style is local to each figure
    with pytest.raises(LatthermError, match="gif"):
        figures.save(fig, tmp_path / "x.gif")
    with pytest.raises(LatthermError, match="'jpg'"):
        figures.save(fig, tmp_path / "x", "png,jpg")
    assert not (tmp_path / "x.png").exists()  # a bad format list writes nothing


@pytest.mark.parametrize("system, T_unit, mu_unit", [("cuau", "(K)", "(eV)"), ("ising", "(kT/ε)", "(ε)")])
def test_svg_axes_carry_the_catalog_units(system, T_unit, mu_unit):
    g = _grid()
    tc = _svg_text(figures.temperature_composition(g, system, reference=[(533.0, 0.25, 0.5)]))
    assert f"temperature T {T_unit}" in tc and "fraction of sites" in tc and "two-phase boundary" in tc
    iso = _svg_text(figures.isotherms(g, system))
    assert mu_unit in iso and "mean composition" in iso
    assert f"T = 200 {T_unit[1:-1]}" in iso  # three isotherms: a legend entry each, outside the data
    many = _grid(nT=32)  # 32 isotherms: one colour bar for T, not 32 legend entries
    iso32 = _svg_text(figures.isotherms(many, system))
    assert f"temperature T {T_unit}" in iso32 and "T = " not in iso32


def test_tick_labels_are_round_numbers():
    """T from linspace(200, 1200, 7) has centres like 366.667: the ticks must not be the data values."""
    g = _grid(nT=7)
    svg = _svg_text(figures.temperature_composition(g, "cuau"))
    ticks = re.findall(r">\s*(\d+(?:\.\d+)?)\s*<", svg)
    assert ticks and all(len(t.split(".")[-1]) <= 2 or "." not in t for t in ticks)
    assert "366.6" not in svg and "533.3" not in svg


def _evaluation(system="ising", size=(3, 3), exact=True):
    conds = []
    for T in (2.0, 3.0):
        for mu in (0.0, 0.2):
            c = {"T": T, "mu": mu, "F_q": -8.0 - T, "F_q_stderr": 0.05, "neg_log_Z_nis": -8.3 - T,
                 "neg_log_Z_nis_stderr": 0.08, "free_energy_per_site_q": (-8.0 - T) * T / 9,
                 "free_energy_per_site_nis": (-8.3 - T) * T / 9, "ess_fraction": 0.5}
            if exact:
                c.update(exact_neg_log_Z=-8.4 - T, exact_free_energy_per_site=(-8.4 - T) * T / 9, gap=0.4,
                         gap_stderr=0.05)
            else:
                c.update(exact_neg_log_Z=None, exact_free_energy_per_site=None, gap=None, gap_stderr=None)
            conds.append(c)
    return {"system": {"system": system, "lattice": "square", "size": list(size), "T_unit": "kT/eps"},
            "conditions": conds}


def test_free_energy_and_gap_figures():
    fe = _svg_text(figures.free_energy(_evaluation()))
    assert "free energy per site (ε)" in fe and "model − reference (ε)" in fe and "temperature T (kT/ε)" in fe
    assert "exact reference" in fe
    assert "model − reference" not in _svg_text(figures.free_energy(_evaluation(exact=False)))
    gp = _svg_text(figures.gaps(_evaluation()))
    assert "gap F_q + log Z (kT)" in gp and "field μ (ε)" in gp
    with pytest.raises(LatthermError, match="no exact reference"):
        figures.gaps(_evaluation(exact=False))


def test_gallery_draws_2d_images_and_fcc_layer_by_layer():
    rng = np.random.default_rng(1)
    ising = _svg_text(figures.lattice_gallery(rng.choice([-1, 1], (3, 6, 6)), "ising", "6x6"))
    assert "row (sites)" in ising and "#2" in ising and "up" in ising
    fcc = _svg_text(figures.lattice_gallery(rng.integers(0, 2, (2, 2, 2, 4)), "cuau", "2x2x4"))
    assert all(f"#1, layer {k}" in fcc for k in range(4)) and "(Å)" in fcc and "Au" in fcc and "Cu" in fcc


def test_training_curves_take_whatever_the_metrics_hold():
    recs = [{"step": s, "loss": 1.0 / s, "F_q": -5 - 1 / s, "custom_metric": 2.0 * s, "phase": "reinforce",
             "T": [2.0], "time": 1e9 + s} for s in range(1, 6)]
    series = figures.metric_series(recs)
    assert list(series) == ["loss", "F_q", "custom_metric"]  # strings, lists and wall time are not curves
    assert series["custom_metric"][1].tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]
    svg = _svg_text(figures.training_curves(recs))
    assert "custom metric" in svg and "training step (steps)" in svg and "kT" in svg
    with pytest.raises(LatthermError, match="no metric records"):
        figures.training_curves([])


# ---- phase-diagram CLI --------------------------------------------------------------------------------------------
def test_phase_diagram_writes_figures_in_each_format(tmp_path):
    out = tmp_path / "pd"
    files = write_phase_diagram(out, _grid(), "cuau", reference=[(533.0, 0.25, 0.5)], formats=("png", "pdf"))
    assert {p.name for p in files} == {"phase_grid.npz", "phase_grid.csv", "temperature_composition.png",
                                       "temperature_composition.pdf", "isotherms.png", "isotherms.pdf"}
    for p in files:
        if p.suffix in (".png", ".pdf"):
            _valid(p)


def test_phase_diagram_cli_figures_have_units(capsys, tmp_path):
    out = tmp_path / "mc"
    rc = main(["phase-diagram", "mc", "--system", "ising", "--lattice-size", "3x3", "--T-range", "2,3",
               "--mu-range=-0.2,0.2", "--T-points", "2", "--mu-points", "2", "--chains", "4", "--sweeps", "10",
               "--boundary", "none", "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    for name in ("temperature_composition", "isotherms"):
        _valid(out / f"{name}.png")
        svg = _valid(out / f"{name}.svg")
        assert "(kT/ε)" in svg or "(ε)" in svg
        assert "x_up" in svg
    pdf = tmp_path / "pdf"
    rc = main(["phase-diagram", "mc", "--system", "ising", "--lattice-size", "3x3", "--T-points", "2",
               "--mu-points", "2", "--chains", "2", "--sweeps", "5", "--boundary", "none", "--format", "pdf",
               "--out", str(pdf)])
    assert rc == 0 and {p.suffix for p in pdf.iterdir()} == {".pdf", ".csv", ".npz"}
    bad = tmp_path / "bad"
    assert main(["phase-diagram", "mc", "--system", "ising", "--lattice-size", "3x3", "--format", "jpeg",
                 "--out", str(bad)]) == 2 and not bad.exists()  # refused before any sweep


# ---- lattherm plot ------------------------------------------------------------------------------------------------
@pytest.fixture
def trained_run(tiny_config):
    from lattherm.engine.training import Trainer

    trainer = Trainer.create(tiny_config(steps=6, **{"training.log_every": 1}), name_hint="plot")
    assert trainer.train() == "finished"
    return trainer.run


def test_plot_a_trained_run_with_its_evaluation(capsys, tmp_path, trained_run):
    rc = main(["evaluate", str(trained_run.path), "--grid", "2,3:0,0.2", "--samples", "64", "--json", "--out",
               str(trained_run.path / "evaluation.json")])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    out = tmp_path / "figs"
    rc = main(["plot", str(trained_run.path), "--out", str(out), "--format", "png,svg,pdf"])
    assert rc == 0, capsys.readouterr().err
    names = {p.name for p in out.iterdir()}
    assert names == {f"{s}.{f}" for s in ("training_curves", "free_energy", "gaps") for f in ("png", "svg", "pdf")}
    for p in out.iterdir():
        _valid(p)
    curves = (out / "training_curves.svg").read_text()
    assert "training step (steps)" in curves and "F_q (batch mean)" in curves and "gradient norm" in curves
    assert "temperature T (kT/ε)" in (out / "free_energy.svg").read_text()


def test_plot_a_samples_file_draws_a_gallery(capsys, tmp_path):
    samples = tmp_path / "s.npz"
    assert main(["paint", "cuau-2x2x4-ao-mlp", "--size", "2x2x4", "--T", "600", "-n", "3", "--out",
                 str(samples)]) == 0, capsys.readouterr().err
    out = tmp_path / "g"
    assert main(["plot", str(samples), "--out", str(out), "--format", "svg", "--max", "2"]) == 0
    svg = (out / "gallery.svg").read_text()
    assert "#1, layer 3" in svg and "#2" not in svg and "600 K" in svg


def _one_line_exit_2(capsys, argv, out):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and err.startswith("lattherm: error:"), err
    assert not out.exists()
    return err


def test_plot_missing_or_corrupt_is_one_line_exit_2(capsys, tmp_path, trained_run):
    out = tmp_path / "figs"
    assert "no run" in _one_line_exit_2(capsys, ["plot", "no-such-run", "--out", str(out)], out)
    assert "not a lattherm run" in _one_line_exit_2(capsys, ["plot", str(tmp_path), "--out", str(out)], out)
    assert "'gif'" in _one_line_exit_2(capsys, ["plot", str(trained_run.path), "--out", str(out), "--format",
                                                "png,gif"], out)
    (trained_run.path / "evaluation.json").write_text("{not json")
    assert "evaluation" in _one_line_exit_2(capsys, ["plot", str(trained_run.path), "--out", str(out)], out)
    (trained_run.path / "evaluation.json").unlink()
    trained_run.metrics_path.write_bytes(b"\x00\xff garbage\n")
    assert "no readable metric records" in _one_line_exit_2(capsys, ["plot", str(trained_run.path), "--out",
                                                                     str(out)], out)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK not a zip")
    assert "bad.npz" in _one_line_exit_2(capsys, ["plot", str(bad), "--out", str(out)], out)


# ---- TOML ---------------------------------------------------------------------------------------------------------
def test_toml_round_trip_with_control_characters_numpy_scalars_and_none():
    nasty = "tab\there \"quoted\" back\\slash bell\x07 nul-free\x1f del\x7f newline\nend é"
    text = toml_text({"system": {"name": "ising", "size": "3x3"},
                      "training": {"lr": np.float32(0.5), "steps": np.int64(7), "flag": np.bool_(True),
                                   "seed": None, "T": np.array([1.5, 2.5])},
                      "data": {"path": nasty}})
    back = tomllib.loads(text)
    assert back["data"]["path"] == nasty
    assert back["training"] == {"lr": 0.5, "steps": 7, "flag": True, "T": [1.5, 2.5]}  # None: the key is left out
    assert type(back["training"]["steps"]) is int and type(back["training"]["flag"]) is bool
    with pytest.raises(ConfigError, match=r"training.T holds None"):
        toml_text({"training": {"T": [1.0, None]}})
    with pytest.raises(ConfigError, match=r"model.x is a object"):
        toml_text({"model": {"x": object()}})


def test_run_config_round_trips_a_path_with_control_characters():
    cfg = RunConfig()
    cfg.data.path = "runs/\x01odd\tname\r\n.npz"
    assert parse_config(cfg.to_toml()).to_dict() == cfg.to_dict()


# ---- progress -----------------------------------------------------------------------------------------------------
class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_plain_lines_on_a_pipe_and_a_tqdm_bar_on_a_terminal():
    from lattherm.engine.cli.progress import Bar

    pipe = io.StringIO()
    bar = Bar("chunk", stream=pipe, every=2)
    for k in range(1, 6):
        bar(Progress(k, 5, eta_s=5.0 - k))
    bar.close()
    assert bar.tqdm is None  # tqdm never started on a pipe
    lines = pipe.getvalue().splitlines()
    assert lines == ["chunk 2/5  ETA 0:03", "chunk 4/5  ETA 0:01", "chunk 5/5  ETA 0:00"]
    assert "\r" not in pipe.getvalue() and "\x1b" not in pipe.getvalue()

    tty = _Tty()
    bar = Bar("step", stream=tty)
    rec = {"F_q": -6.5, "ess_fraction": 0.4, "grad_norm": 1.2, "sec_per_step": 0.01}
    bar(Progress(1, 4, eta_s=30.0, extra=rec))
    bar(Progress(3, 4, eta_s=10.0, extra=rec))
    assert bar.tqdm is not None and bar.tqdm.n == 3
    bar.close()
    text = tty.getvalue()
    assert "\r" in text and "75.0%" in text and "3/4" in text and "F_q -6.5000" in text and "ETA 0:10" in text


# ---- standard errors ----------------------------------------------------------------------------------------------
def test_nis_standard_error_matches_the_spread_over_repeats():
    """Delta-method se of -log(mean w) against the actual standard deviation over 400 independent repeats."""
    gen = torch.Generator().manual_seed(0)
    n, reps, sigma = 1000, 400, 0.6
    log_w = sigma * torch.randn(reps, n, generator=gen, dtype=torch.float64)
    zeros = torch.zeros(n, dtype=torch.float64)
    est, ses = [], []
    for row in log_w:
        nlz, ess = importance_estimates(zeros, row)  # log p = 0, log f = log w
        est.append(nlz)
        ses.append(importance_stderr(ess, n))
    spread = float(np.std(est, ddof=1))
    assert np.mean(ses) == pytest.approx(spread, rel=0.12)
    # closed form for log-normal weights: sqrt((exp(sigma^2) - 1) / n)
    assert np.mean(ses) == pytest.approx(math.sqrt((math.exp(sigma**2) - 1) / n), rel=0.05)
    assert importance_stderr(1.0, n) == 0.0 and math.isnan(importance_stderr(0.5, 1))


def test_evaluate_table_shows_every_estimate_with_its_error(capsys):
    rc = main(["evaluate", "cuau-2x2x4-ao-mlp", "--grid", "600:0,0.06", "--samples", "200", "--json"])
    assert rc == 0
    ev = json.loads(capsys.readouterr().out)
    assert main(["evaluate", "cuau-2x2x4-ao-mlp", "--grid", "600:0,0.06", "--samples", "200"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "F_q ± se" in lines[0] and "gap ± se" in lines[0] and "ESS/N" in lines[0]
    for c, line in zip(ev["conditions"], lines[1:]):
        pairs = re.findall(r"(-?\d+\.\d+) ± (\d+\.\d+)", line)
        assert len(pairs) == 3, line  # F_q, -log Z_nis and the gap, each with its error
        (fq, fq_se), (nis, nis_se), (gap, gap_se) = [(float(a), float(b)) for a, b in pairs]
        assert fq == pytest.approx(c["F_q"], abs=1e-4) and fq_se == pytest.approx(c["F_q_stderr"], abs=1e-4)
        assert nis_se == pytest.approx(c["neg_log_Z_nis_stderr"], abs=1e-4) and nis_se > 0
        assert gap_se == fq_se and gap == pytest.approx(c["gap"], abs=1e-4)
        assert c["gap"] > -5 * c["gap_stderr"]  # the variational bound, within its error bar
    av = ev["average"]
    assert av["F_q_stderr"] == pytest.approx(math.hypot(*(c["F_q_stderr"] for c in ev["conditions"])) / 2)
    assert "average" in lines[len(ev["conditions"]) + 1]
