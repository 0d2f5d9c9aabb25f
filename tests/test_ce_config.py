"""A run config that names a cluster-expansion file ([system] ce): a user's own alloy trains, samples, exports,
and its run and model folders carry their own copy of the file."""

import json
import shutil
from pathlib import Path

import pytest

from _cli import cli
from lattherm.engine.config import CE_COPY, parse_config, schema, system_of
from lattherm.engine.errors import ConfigError
from lattherm.engine.systems.catalog import SYSTEMS_DIR

FECO = SYSTEMS_DIR / "feco_bcc.json"


def _user_ce(folder: Path, **changes) -> Path:
    """The bundled bcc FeCo expansion as a user's own file: no catalog name (so nothing can find it by name)."""
    data = json.loads(FECO.read_text())
    data.pop("name")
    data.update(changes)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "my_alloy.json"
    path.write_text(json.dumps(data))
    return path


def _config(tiny_config, ce: str, steps: int = 6, **overrides) -> str:
    return tiny_config("2x2x4", steps=steps, **{"system.name": None, "system.ce": ce,
                                                "conditions.T": [800.0, 1400.0], "conditions.mu": [-0.05, 0.05],
                                                **overrides})


def test_schema_offers_the_ce_key_and_a_config_round_trips(tmp_path, tiny_config):
    spec = next(s for s in schema() if (s.section, s.name) == ("system", "ce"))
    assert spec.type is str and spec.default == "" and "relative to the config" in spec.help
    _user_ce(tmp_path / "alloys")
    cfg_file = tmp_path / "run.toml"
    cfg_file.write_text(_config(tiny_config, "alloys/my_alloy.json"))
    cfg = parse_config(cfg_file.read_text(), source=str(cfg_file))
    assert cfg.system.ce == str((tmp_path / "alloys" / "my_alloy.json").resolve())
    assert cfg.system.name == "my_alloy"  # the file has no name key: its stem
    info = system_of(cfg)
    assert (info.lattice_kind, info.species, info.composition, info.n_sites("2x2x4")) == ("bcc", ("Fe", "Co"),
                                                                                       "x_Co", 16)
    again = parse_config(cfg.to_toml())  # absolute now: the text alone is enough
    assert (again.system.ce, again.system.name) == (cfg.system.ce, cfg.system.name)


def test_name_rules(tmp_path, tiny_config):
    ce = _user_ce(tmp_path)
    # a catalog name (the form's default) gives way to the file's; a label of one's own is kept
    assert parse_config(_config(tiny_config, str(ce), **{"system.name": "ising"})).system.name == "my_alloy"
    assert parse_config(_config(tiny_config, str(ce), **{"system.name": "fecr-test"})).system.name == "fecr-test"
    # the bundled file keeps its catalog name
    assert parse_config(_config(tiny_config, str(FECO))).system.name == "feco"
    fake = _user_ce(tmp_path / "fake", name="cuau")  # a file that claims a catalog system's name
    with pytest.raises(ConfigError, match="catalog system's name"):
        parse_config(_config(tiny_config, str(fake)))


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "absent.json", "not found"),
    (lambda d: (d / "bad.json").write_text("{ not json") and d / "bad.json", "not valid JSON"),
    (lambda d: _user_ce(d, species=["Fe", "Co", "Ni"]), "binary expansions"),
    (lambda d: _user_ce(d, lattice={"kind": "hcp", "conventional_lattice_constant_angstrom": 3.0}), "hcp"),
    (lambda d: (d / "icet.json").write_text(json.dumps({"species": ["Cu", "Au"]})) and d / "icet.json",
     "ce import"),
])
def test_bad_ce_file_is_one_line_exit_2_and_no_run(tmp_path, capsys, tiny_config, lattherm_home, make, message):
    path = make(tmp_path)
    cfg = tmp_path / "run.toml"
    cfg.write_text(_config(tiny_config, str(path)))
    rc, out, err = cli(capsys, "train", cfg)
    assert rc == 2
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (lattherm_home / "runs").exists() or not any((lattherm_home / "runs").iterdir())


def test_user_ce_trains_samples_exports_and_is_self_contained(tmp_path, capsys, tiny_config):
    """Train on a user's file named relative to the config, then delete the file: the run, the exported model
    folder (sample, paint, model info, structure export) need nothing but their own copy."""
    from ase.io import read

    from lattherm.engine.tasks import describe_model

    ce = _user_ce(tmp_path / "work")
    cfg = tmp_path / "work" / "run.toml"
    cfg.write_text(_config(tiny_config, "my_alloy.json"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    import os

    cwd = os.getcwd()
    os.chdir(elsewhere)  # relative to the config file, not to the working directory
    try:
        rc, out, err = cli(capsys, "train", cfg)
    finally:
        os.chdir(cwd)
    assert rc == 0, err
    rc, out, _ = cli(capsys, "runs", "--json")
    run = Path(json.loads(out)[0]["path"])
    assert (run / CE_COPY).read_bytes() == ce.read_bytes()
    assert 'ce = "cluster_expansion.json"' in (run / "config.toml").read_text()
    ce.unlink()
    rc, _, err = cli(capsys, "export-model", run, "--out", tmp_path / "model")
    assert rc == 0, err
    model = tmp_path / "model"
    assert (model / CE_COPY).is_file()
    shutil.rmtree(run)  # the model folder alone
    info = describe_model(str(model))
    assert (info["system"], info["lattice"], info["species"]) == ("my_alloy", "bcc", ["Fe", "Co"])
    rc, _, err = cli(capsys, "sample", model, "--T", "1000", "--mu", "0", "-n", "4", "--out", tmp_path / "s.npz")
    assert rc == 0, err
    rc, _, err = cli(capsys, "paint", model, "--size", "2x2x8", "--T", "1000", "-n", "2", "--out", tmp_path / "p.npz")
    assert rc == 0, err
    rc, _, err = cli(capsys, "export", tmp_path / "p.npz", "--format", "extxyz", "--out", tmp_path / "p.xyz")
    assert rc == 0, err
    frames = read(tmp_path / "p.xyz", index=":")
    assert len(frames) == 2 and len(frames[0]) == 32 and set(frames[0].get_chemical_symbols()) <= {"Fe", "Co"}
    rc, out, err = cli(capsys, "mcmc", model, "--T", "1000", "--mu", "0", "--steps", "10", "--json")
    assert rc == 0, err
    assert json.loads(out)["system"] == "my_alloy"


def test_resume_reads_the_runs_own_copy(tmp_path, capsys, tiny_config):
    ce = _user_ce(tmp_path)
    cfg = tmp_path / "run.toml"
    cfg.write_text(_config(tiny_config, ce.name, steps=5))
    rc, _, err = cli(capsys, "train", cfg)
    assert rc == 0, err
    rc, out, _ = cli(capsys, "runs", "--json")
    run = Path(json.loads(out)[0]["path"])
    ce.unlink()
    text = (run / "config.toml").read_text().replace("steps = 5", "steps = 7")
    (run / "config.toml").write_text(text)
    rc, out, err = cli(capsys, "train", "--resume", run)
    assert rc == 0, err
    assert "step 7" in out + err


def test_a_config_given_as_text_without_a_file_opens_a_run(tmp_path, monkeypatch):
    """The engine's train job (the GUI's Start) passes TOML text and no file name: no source, the working
    directory resolves a relative ce, and the run opens (a regression: the source was None)."""
    from lattherm.engine.tasks.train import open_trainer

    monkeypatch.chdir(tmp_path)
    text = (Path(__file__).resolve().parents[1] / "resources" / "configs" / "quick-cpu.toml").read_text()
    trainer = open_trainer(text)
    assert trainer.run is not None and trainer.run.path.is_dir() and trainer.step == 0
