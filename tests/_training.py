"""What the training tests check a trained model against: exact F_q by enumerating every state of a tiny lattice,
and a run stopped at a given step (the first half of every resume-exactness check)."""

from __future__ import annotations

import itertools

import torch

from lattherm.engine.progress import Control


def enumerated_F_q(model, system, T: float, mu: float) -> tuple[float, float, float]:
    """(F_q, sum_x q(x), -log Z) over all 2^N states, q along the raster order: F_q = <log q - log f>_q, which is
    >= -log Z with equality only for q = p (the gap is KL(q || p))."""
    states = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=system.n_sites)))
    order = torch.arange(system.n_sites).expand(len(states), -1)
    with torch.no_grad():
        log_q = model.log_prob(states, T, mu, order).double()
    log_f = system.log_f(states, T, mu)
    q = log_q.exp()
    return float((q * (log_q - log_f)).sum()), float(q.sum()), float(-torch.logsumexp(log_f, 0))


def train_until_stopped(trainer, step: int) -> str:
    """Train with a stop requested once a metric record reaches ``step``; train()'s outcome ('stopped')."""
    control = Control()

    def stop_at(record):
        if record["step"] >= step:
            control.request_stop("test stop")

    return trainer.train(on_log=stop_at, control=control)


def assert_refused_without_run(text: str, message: str) -> None:
    """Trainer.create(text) raises one ConfigError line containing ``message`` and leaves no run folder."""
    import pytest

    from lattherm.engine.errors import ConfigError
    from lattherm.engine.store import list_runs
    from lattherm.engine.training import Trainer

    with pytest.raises(ConfigError) as info:
        Trainer.create(text)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert list_runs() == []
