"""REINFORCE training: it lowers the variational free energy toward the exact bound, resumes exactly, and
rejects bad configs before touching the disk."""

import math

import pytest
import torch

from lattherm.engine.errors import ConfigError
from lattherm.engine.store import Run, list_runs
from lattherm.engine.systems import make_system
from lattherm.engine.config import parse_config
from lattherm.engine.training import Trainer
from lattherm.engine.training.reinforce import leave_one_out_advantage

from _configs import tiny_config
from _training import enumerated_F_q, train_until_stopped

#: REINFORCE runs on the 2x2 torus (16 states, enumerable): hidden 32, batch 64, lr 3e-3, seed 3, jitter every 8 steps
TINY = {"model.hidden": 32, "conditions.T": [1.5, 3.0], "conditions.mu": [0.0, 0.4],
        "conditions.samples_per_epoch": 512, "training.batch": 64, "training.lr": 3e-3, "training.seed": 3,
        "training.checkpoint_every": 10, "training.log_every": 5}

@pytest.mark.parametrize("kind", ["fo-arm", "ao-arm"])
def test_training_lowers_F_q_toward_but_never_below_the_exact_bound(kind):
    """F_q = KL(q||p) - log Z: training shrinks the KL, and the exact F_q stays >= -log Z at every condition.
    (Z2-symmetrised: at T=1.5, mu=0 an unsymmetrised model may collapse onto one of the two ordered modes.)"""
    tr = Trainer(parse_config(tiny_config("2x2", kind=kind, steps=150, **TINY, **{"model.symmetric": True})))
    system = make_system("ising", "2x2")
    conds = [(1.5, 0.0), (3.0, 0.4)]
    before = [enumerated_F_q(tr.model, system, T, mu)[0] for T, mu in conds]
    tr.train()
    for (T, mu), b in zip(conds, before):
        after, _, bound = enumerated_F_q(tr.model, system, T, mu)
        assert after >= bound - 1e-6
        assert after - bound < 0.5 * (b - bound)  # more than half of the initial KL is gone
        assert after - bound < 0.05


def test_leave_one_out_baseline_is_per_condition():
    """Each advantage subtracts the mean of the OTHER samples of its own condition group."""
    l = torch.tensor([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    adv = leave_one_out_advantage(l, 2)
    assert torch.allclose(adv, torch.tensor([1 - 2.5, 2 - 2.0, 3 - 1.5, 10 - 25.0, 20 - 20.0, 30 - 15.0]))


@pytest.mark.parametrize("kind, extra", [("ao-arm", {"model.symmetric": True}), ("ao-mam", {"model.gibbs_steps": 2})])
def test_resume_continues_exactly_where_a_stopped_run_left_off(kind, extra):
    """Stop after 10 steps, resume to 20: parameters equal those of an uninterrupted 20-step run (for MaM the
    persistent Gibbs chains come back from the checkpoint too)."""
    text = tiny_config("2x2", kind=kind, steps=20, **TINY, **extra)
    straight = Trainer.create(text)
    straight.train()

    first = Trainer.create(text)
    assert train_until_stopped(first, 10) == "stopped"
    assert first.run.status()["status"] == "stopped" and first.step == 10
    second = Trainer.resume(first.run.path)
    assert second.step == 10
    assert second.train() == "finished"
    for (name, a), b in zip(straight.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    if kind == "ao-mam":
        assert torch.equal(straight.objective.chains, second.objective.chains)
    steps = [r["step"] for r in second.run.read_metrics()]
    assert steps == [5, 10, 15, 20]


def test_keyboard_interrupt_saves_a_checkpoint_and_marks_the_run_stopped():
    tr = Trainer.create(tiny_config("2x2", kind="fo-arm", steps=100, **TINY))

    def boom(rec):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        tr.train(on_log=boom)
    run = Run.open(tr.run.path)
    assert run.status()["status"] == "stopped"
    assert run.latest_checkpoint() is not None


def assert_refused_without_a_run(text: str, message: str) -> None:
    with pytest.raises(ConfigError if "unknown system" not in message else Exception, match=None) as info:
        Trainer.create(text)
    assert message in str(info.value)
    assert list_runs() == []


@pytest.mark.parametrize("change, message", [
    ({"training.lr": None, "training.lrate": 3e-3}, "unknown key 'lrate'"),
    ({"trainig.batch": 64}, "unknown config table [trainig]"),
    ({"training.batch": 63}, "batch must be a multiple"),
    ({"conditions.T": [-1.0, 3.0]}, "positive temperatures"),
    ({"system.name": "potts"}, "unknown system 'potts'"),
    ({"model.kind": "gflownet"}, "unknown model gflownet"),
    ({"model.hidden": "wide"}, "[model] hidden must be an integer"),
])
def test_bad_config_names_the_problem_and_creates_no_run(change, message):
    assert_refused_without_a_run(tiny_config("2x2", kind="fo-arm", steps=5, **{**TINY, **change}), message)


def test_config_that_is_not_toml_creates_no_run():
    text = tiny_config("2x2", kind="fo-arm", steps=5, **TINY).replace("[system]", "[system")
    assert_refused_without_a_run(text, "not valid TOML")


def test_epoch_zero_trains_on_the_grid_and_later_epochs_jitter_reproducibly():
    cfg = parse_config(tiny_config("2x2", kind="fo-arm", steps=5, **TINY))
    from lattherm.engine.training import ConditionSchedule

    s = ConditionSchedule.from_config(cfg)
    assert s.steps_per_epoch == 8
    assert torch.allclose(s.conditions(0), torch.tensor([[1.5, 0.0], [1.5, 0.4], [3.0, 0.0], [3.0, 0.4]],
                                                        dtype=torch.float64))
    a, b = s.conditions(8), s.conditions(15)
    assert torch.equal(a, b) and not torch.equal(a, s.conditions(0))
    assert torch.equal(ConditionSchedule.from_config(cfg).conditions(8), a)
    assert bool((a[:, 0] > 0).all()) and math.isfinite(float(a.sum()))


def _bundled_configs():
    from lattherm.engine.paths import RESOURCES

    return sorted((RESOURCES / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", _bundled_configs(), ids=lambda p: p.name)
def test_every_bundled_config_is_valid_and_paper_configs_follow_the_paper(path):
    """Shipped configs parse; the paper settings use the paper's batch and condition grids (Appendices F, J)."""
    cfg = parse_config(path.read_text())
    if "cpu" in path.stem or "quick" in path.stem:
        return
    m = cfg.model
    if cfg.system.name == "ising":
        assert (cfg.training.batch, cfg.conditions.T, cfg.conditions.mu) == (1250, [1.5, 3.5], [-0.4, 0.4])
        if m.arch == "transformer":  # Appendix F: 3 blocks, width 256 at 5x5 and 512 on larger lattices
            assert (m.hidden, m.layers) == (256 if cfg.system.size == "5x5" else 512, 3)
        else:  # every MLP (and each network of an MLP MAM): 4 hidden layers of width 512
            assert (m.hidden, m.layers) == (512, 4)
        if m.kind == "ao-mam":  # lambda 100 (MLP) / 10 (Transformer); Gibbs steps 5 at 5x5, 10 on larger lattices
            assert m.mam_lambda() == (10.0 if m.arch == "transformer" else 100.0)
            assert m.gibbs_steps == (5 if cfg.system.size == "5x5" else 10)
    else:
        assert (cfg.training.batch, cfg.conditions.T, cfg.conditions.mu) == (2048, [200.0, 1200.0], [-0.12, 0.12])
        assert (cfg.conditions.jitter_T, cfg.conditions.jitter_mu) == (50.0, 0.02)
        assert (m.hidden, m.layers) == ((512, 3) if m.arch == "transformer" else (512, 4))  # Appendix J
        assert not m.symmetric  # the alloy has no Z2 symmetry
        if m.kind == "ao-mam":  # lambda 100 (MLP) / 10 (Transformer), 4 Gibbs sites
            assert (m.mam_lambda(), m.gibbs_steps) == (10.0 if m.arch == "transformer" else 100.0, 4)


def test_bundled_configs_exist_for_every_paper_setting():
    names = {p.stem for p in _bundled_configs()}
    assert {"ising-5x5-fo-mlp", "ising-5x5-ao-mlp", "ising-10x10-fo-mlp", "ising-10x10-ao-mlp",
            "cuau-2x2x4-ao-mlp", "cuau-2x2x4-ao-mam-mlp", "cuau-2x2x4-ao-mam-transformer", "quick-cpu",
            "ising-5x5-ao-mam-transformer", "ising-10x10-ao-mam-transformer"} <= names


def test_init_starts_from_a_trained_models_weights_and_refuses_another_architecture(tmp_path):
    from lattherm.engine.errors import LatthermError

    text = tiny_config("2x2", steps=5, **TINY)
    src = Trainer.create(text, root=tmp_path)
    src.train()
    reseeded = tiny_config("2x2", steps=5, **{**TINY, "training.seed": 4})
    warm = Trainer.create(reseeded, root=tmp_path, init=src.run.path)
    for k, v in src.model.state_dict().items():
        assert torch.equal(warm.model.state_dict()[k], v), k
    assert warm.step == 0 and warm.run.status()["init_from"] == str(src.run.path)
    runs_before = len(list_runs(tmp_path))
    with pytest.raises(LatthermError, match="does not match"):
        narrower = tiny_config("2x2", steps=5, **{**TINY, "model.hidden": 16})
        Trainer.create(narrower, root=tmp_path, init=src.run.path)
    with pytest.raises(LatthermError, match="does not match"):
        Trainer.create(tiny_config("2x2", kind="fo-arm", steps=5, **TINY), root=tmp_path, init=src.run.path)
    assert len(list_runs(tmp_path)) == runs_before  # a refused warm start leaves no run folder behind


# ---- the Training panel's form is the schema ------------------------------------------------------------------------
@pytest.fixture
def panel(qtbot, offline_engine):
    from lattherm.app.training import TrainingPanel

    p = TrainingPanel(offline_engine)
    qtbot.addWidget(p)
    return p


@pytest.mark.parametrize("path", _bundled_configs(), ids=lambda p: p.name)
def test_every_preset_round_trips_through_the_training_panel(panel, path):
    """Loading a preset and reading the form back gives the same RunConfig: the panel never trains another model
    than the file names (ising-5x5-ao-mam-transformer-cpu used to come back as an AO-ARM MLP)."""
    from lattherm.engine.config import load_config

    panel.preset.setCurrentText(path.stem)
    panel.load_preset(path.stem)
    assert panel.status.text() == ""
    assert parse_config(panel.config_text()) == load_config(path)


def test_the_form_offers_every_model_and_system_and_enables_what_applies(panel):
    from lattherm.engine.config import MODEL_KINDS
    from lattherm.engine.systems import CATALOG

    form = panel.form
    kind, arch, system = form.widget("model", "kind"), form.widget("model", "arch"), form.widget("system", "name")
    offered = set()
    for i in range(kind.count()):
        kind.setCurrentIndex(i)
        offered |= {(kind.currentText(), arch.itemText(j)) for j in range(arch.count())}
    assert offered == set(MODEL_KINDS)
    assert [system.itemText(i) for i in range(system.count())] == list(CATALOG)
    kind.setCurrentText("ao-mam")
    arch.setCurrentText("transformer")
    assert form.widget("model", "heads").isEnabled() and form.widget("model", "gibbs_steps").isEnabled()
    arch.setCurrentText("mlp")
    assert not form.widget("model", "heads").isEnabled() and form.widget("model", "lam").isEnabled()
    kind.setCurrentText("fo-arm")
    assert not form.widget("model", "lam").isEnabled() and arch.count() == 1
    system.setCurrentText("ising")
    form.widget("model", "symmetric").setChecked(True)
    system.setCurrentText("cuau")  # the alloy's energy is not even: no Z2 symmetrisation, and a valid config
    sym = form.widget("model", "symmetric")
    assert not sym.isEnabled() and not sym.isChecked()
    assert form.widget("system", "size").text() == CATALOG["cuau"].default_size
    cfg = parse_config(panel.config_text())
    assert (cfg.system.name, cfg.model.kind, cfg.model.symmetric) == ("cuau", "fo-arm", False)


@pytest.mark.parametrize("table, key, value, message", [
    ("model", "hidden", 2**40, "outside the form's range"),
    ("training", "lr", 1.23456789e-3, "decimals"),
    ("training", "lrate", 1e-3, "unknown key 'lrate'"),
    ("model", "kind", "gflownet", "unknown model gflownet"),
])
def test_a_config_the_form_cannot_show_is_refused_and_the_form_is_unchanged(panel, table, key, value, message):
    import tomllib

    before = panel.config_text()
    data = tomllib.loads(tiny_config("2x2", steps=5, **TINY))
    data[table][key] = value
    assert panel.set_config(data) is False
    assert message in panel.status.text()
    assert panel.config_text() == before
