"""The shared test fixtures do what every test file relies on: one torch thread unless asked, the count restored,
and tiny configs whose overrides land exactly where they say."""

import tomllib

import pytest
import torch

from lattherm.engine.config import parse_config

from _configs import tiny_config


def test_every_test_runs_on_one_torch_thread(torch_threads):
    assert torch_threads == torch.get_num_threads() == 1


@pytest.mark.threads(2)
def test_a_test_can_ask_for_more_threads(torch_threads):
    assert torch_threads == torch.get_num_threads() == 2


def test_the_thread_count_a_test_sets_does_not_leak_into_the_next():
    torch.set_num_threads(2)  # what a [training] threads = 2 run does process-wide


def test_the_next_test_is_back_on_one_thread():
    assert torch.get_num_threads() == 1


def test_tiny_config_is_a_valid_run_config_with_the_stated_base():
    cfg = parse_config(tiny_config())
    assert (cfg.system.name, cfg.system.size, cfg.model.kind, cfg.model.arch) == ("ising", "3x3", "ao-arm", "mlp")
    assert (cfg.model.hidden, cfg.model.layers, cfg.training.batch, cfg.training.steps) == (16, 2, 16, 10)
    assert (cfg.training.seed, cfg.training.threads, cfg.training.device) == (0, 1, "cpu")


def test_overrides_set_add_and_remove_keys_and_tables(tiny_config):
    text = tiny_config("2x2", kind="fo-arm", steps=7, **{"training.lr": 3e-3, "conditions.T": [1.5, 3.0],
                                                          "training.seed": None, "extra.note": "x"})
    data = tomllib.loads(text)
    assert data["system"]["size"] == "2x2" and data["model"]["kind"] == "fo-arm" and data["training"]["steps"] == 7
    assert data["training"]["lr"] == 3e-3 and data["conditions"]["T"] == [1.5, 3.0]
    assert "seed" not in data["training"] and data["extra"] == {"note": "x"}


def test_an_override_that_is_not_table_dot_key_is_refused():
    with pytest.raises(ValueError, match="table.key"):
        tiny_config(**{"batch": 5})
