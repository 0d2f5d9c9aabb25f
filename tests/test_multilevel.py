"""Multilevel warm start ([training] levels): a Transformer trains at 3x3, then continues at 4x4 from those exact
weights in the same run; records carry level and size with the exact gap at that size; a run stopped on either side
of the switch resumes exactly; ``--init`` crosses sizes for a Transformer only; bad levels are one line, exit 2."""

import pytest
import torch

from lattherm.engine.config import Level, parse_config, run_levels
from lattherm.engine.errors import ConfigError, LatthermError
from lattherm.engine.models.io import load_model, model_from_tensors
from lattherm.engine.store import list_runs, load_tensors
from lattherm.engine.systems import make_system
from lattherm.engine.training import Trainer
from lattherm.engine.training.exact_gap import ExactBounds

from _cli import cli
from _configs import tiny_config

#: a one-block Transformer of width 16 (2 heads), 3x3 for 3 steps then 4x4 for 3: a record and checkpoint each step
TWO_LEVELS = {"model.hidden": 16, "model.heads": 2, "model.layers": 1, "training.levels": "3x3:3",
              "training.log_every": 1, "training.checkpoint_every": 1, "training.keep_checkpoints": 10, "training.lr": 3e-3, "training.seed": 5}


def two_level_config(**extra) -> str:
    return tiny_config("4x4", arch="transformer", steps=6, **{**TWO_LEVELS, **extra})


def test_levels_parse_with_options_and_the_system_size_trains_the_remaining_steps():
    cfg = parse_config(tiny_config("8x8", arch="transformer", steps=100,
                                   **{"training.levels": "4x4:30:batch=32, 6x6:20:lr=5e-4", "training.lr": 2e-3}))
    assert run_levels(cfg) == [Level("4x4", 30, 32, 2e-3), Level("6x6", 20, 16, 5e-4), Level("8x8", 50, 16, 2e-3)]
    assert run_levels(parse_config(tiny_config("4x4", steps=7))) == [Level("4x4", 7, 16, 1e-3)]


def test_two_level_run_tags_its_records_and_level_2_starts_from_the_level_1_weights():
    tr = Trainer.create(two_level_config())
    ends, starts = {}, {}
    enter = tr._enter_level

    def watched_enter(span):  # the weights just before and just after the switch
        ends[span.index] = {k: v.clone() for k, v in tr.model.state_dict().items()}
        enter(span)
        starts[span.index] = {k: v.clone() for k, v in tr.model.state_dict().items()}
        assert not tr.optimizer.state  # fresh Adam moments at the new size

    tr._enter_level = watched_enter
    assert tr.train() == "finished"
    assert list(starts) == [1]
    for k, v in ends[1].items():
        assert torch.equal(starts[1][k], v), k
    assert tr.model.n_sites == 16 and tr.system.lattice.size == (4, 4)

    records = tr.run.read_metrics()
    assert [(r["step"], r["level"], r["size"]) for r in records] == [
        (1, 1, "3x3"), (2, 1, "3x3"), (3, 1, "3x3"), (4, 2, "4x4"), (5, 2, "4x4"), (6, 2, "4x4")]
    for r in records:  # the exact gap of each record is taken at its own level's lattice
        bounds = ExactBounds(make_system("ising", r["size"]))
        assert r["exact_gap"] == pytest.approx(bounds.gap(r["T"], r["mu"], r["F_q_per_condition"]), abs=1e-12)
    # the model a level-1 checkpoint holds is a 3x3 model; the run's final one is 4x4
    ckpt = tr.run.checkpoint_path(3)
    assert model_from_tensors(*load_tensors(ckpt), ckpt)[1].lattice.size == (3, 3)
    assert load_model(tr.run.path).system.lattice.size == (4, 4)
    # Adam counted only the three 4x4 steps
    assert {int(s["step"]) for s in tr.optimizer.state.values()} == {3}


@pytest.mark.parametrize("stop_at", [2, 3, 4], ids=["before", "at", "after"])
def test_a_run_stopped_around_the_level_switch_resumes_exactly(stop_at):
    """Stopped in level 1, exactly at the switch (its checkpoint holds the 3x3 model at step 3) or just after it:
    the resumed run ends with the weights and the records of the uninterrupted one."""
    from _training import train_until_stopped

    straight = Trainer.create(two_level_config())
    straight.train()
    first = Trainer.create(two_level_config())
    assert train_until_stopped(first, stop_at) == "stopped" and first.step == stop_at
    second = Trainer.resume(first.run.path)
    assert second.step == stop_at and second.level.index == (0 if stop_at <= 3 else 1)
    assert second.train() == "finished"
    for (name, a), b in zip(straight.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name
    a, b = straight.run.read_metrics(), second.run.read_metrics()
    assert [(r["step"], r["size"], r["F_q"]) for r in a] == [(r["step"], r["size"], r["F_q"]) for r in b]


def test_init_crosses_sizes_for_a_transformer_and_refuses_a_model_whose_weights_depend_on_n(capsys):
    small = Trainer.create(tiny_config("3x3", arch="transformer", steps=2, **{"model.hidden": 16, "model.heads": 2}))
    small.train()
    bigger = tiny_config("5x5", arch="transformer", steps=2, **{"model.hidden": 16, "model.heads": 2})
    warm = Trainer.create(bigger, init=small.run.path)
    for k, v in small.model.state_dict().items():
        assert torch.equal(warm.model.state_dict()[k], v), k
    assert warm.model.n_sites == 25

    mlp = Trainer.create(tiny_config("3x3", steps=2))
    mlp.train()
    runs = len(list_runs())
    with pytest.raises(LatthermError, match="depend on the number of sites"):
        Trainer.create(tiny_config("5x5", steps=2), init=mlp.run.path)
    path = tmp_config(bigger.replace("heads = 2", "heads = 4"))
    rc, out, err = cli(capsys, "train", path, "--init", small.run.path)
    assert rc == 2 and "heads (2 vs 4)" in err and len(err.strip().splitlines()) == 1
    path = tmp_config(tiny_config("5x5", steps=2))
    rc, out, err = cli(capsys, "train", path, "--init", mlp.run.path)
    assert rc == 2 and "depend on the number of sites" in err and len(err.strip().splitlines()) == 1
    assert len(list_runs()) == runs  # refused warm starts leave no run folder


def tmp_config(text: str):
    import tempfile

    f = tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False)
    f.write(text)
    f.close()
    return f.name


@pytest.mark.parametrize("change, message", [
    ({"arch": "mlp", "training.levels": "3x3:2"}, "need a size-agnostic model"),
    ({"training.levels": "3x3x3:2"}, "level 1 (3x3x3): not a size of ising"),
    ({"training.levels": "4x4:2, 3x3:2"}, "level 2 (3x3) must be larger than level 1 (4x4)"),
    ({"training.levels": "5x5:2"}, "must be smaller than [system] size 5x5"),
    ({"training.levels": "3x3:0"}, "has 0 steps"),
    ({"training.levels": "3x3:4, 4x4:4"}, "must exceed the levels' 8 steps"),
    ({"training.levels": "3x3"}, "must be SIZE:STEPS"),
    ({"training.levels": "3x3:2:batch=10"}, "batch must be a multiple of the 4 conditions"),
    ({"training.levels": "3x3:2:momentum=1"}, "unknown option 'momentum=1'"),
    ({"training.levels": "3x3:2", "training.objective": "mle"}, "train by objective = \"reinforce\""),
])
def test_bad_levels_are_one_line_exit_2_and_no_run_folder(capsys, change, message):
    arch = change.pop("arch", "transformer")
    text = tiny_config("5x5", arch=arch, steps=8, **{"model.hidden": 16, "model.heads": 2, **change})
    with pytest.raises(ConfigError, match=None) as info:
        parse_config(text)
    assert message in str(info.value)
    rc, out, err = cli(capsys, "train", tmp_config(text))
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert list_runs() == []


def test_the_levels_key_applies_to_transformers_only():
    from lattherm.engine.config import schema

    spec = next(s for s in schema() if s.name == "levels")
    assert spec.section == "training" and spec.type is str and spec.default == ""
    assert spec.applies("ao-arm", "transformer", "ising") and spec.applies("ao-mam", "transformer", "ising")
    assert not spec.applies("ao-arm", "mlp", "ising") and not spec.applies("fo-arm", "mlp", "ising")
