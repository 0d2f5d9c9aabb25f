"""The soft Z2 gauge of the MLE data and the per-phase learning-rate schedule of an mle+reinforce run.

Any flip probability f(x) leaves the symmetric mixture exact: the component's target is q(x|mu) = p(x|mu) w(x) with
w(x) = 1 - f(x) + f(-x), a normalised distribution, and 1/2 [q(x|mu) + q(-x|-mu)] = p(x|mu). Checked exactly by
enumerating the 3x3 torus, and by the empirical distribution of gauge-fixed rows.
"""

import itertools

import pytest
import torch

from lattherm.engine.config import parse_config
from lattherm.engine.errors import ConfigError
from lattherm.engine.systems import make_system
from lattherm.engine.training import Trainer
from lattherm.engine.training.levels import LevelSchedule
from lattherm.engine.training.mle import gauge_flip_probability, z2_augment


def boltzmann(system, T, mu):
    states = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=system.n_sites)), dtype=torch.float64)
    logf = system.log_f(states, torch.full((len(states),), T, dtype=torch.float64),
                        torch.full((len(states),), mu, dtype=torch.float64))
    return states, torch.softmax(logf, 0)


@pytest.mark.parametrize("gauge", [0.0, 0.7, 3.0])
def test_the_gauge_fixed_mixture_is_exact_with_the_mode_weight_the_regression_learns(gauge):
    """Rows (x, mu) ~ p, flipped with probability f(x): the component's target at mu is p w / c(mu) with
    w = 1 - f(x) + f(-x) and c(mu) = E_p[w]; c(mu) + c(-mu) = 2, and the mixture with pi = c(mu) / 2 -- the mean of
    the logistic-regression target 1 - f(x) -- is p exactly. With gauge 0 this is the plain augmentation."""
    system = make_system("ising", "3x3")
    states, p = boltzmann(system, 2.0, 0.15)
    _, p_minus = boltzmann(system, 2.0, -0.15)
    index = {tuple(s.tolist()): i for i, s in enumerate(states)}
    flipped = torch.tensor([index[tuple((-s).tolist())] for s in states])
    f = gauge_flip_probability(states, gauge).double()
    kept_plus, kept_minus = p * (1 - f), p_minus * (1 - f)  # rows that stay at +mu / -mu
    arrived_plus, arrived_minus = (p_minus * f)[flipped], (p * f)[flipped]  # rows flipped onto x at +mu / -mu
    c_plus, c_minus = float((kept_plus + arrived_plus).sum()), float((kept_minus + arrived_minus).sum())
    assert c_plus + c_minus == pytest.approx(2.0, abs=1e-12)
    q_plus = (kept_plus + arrived_plus) / c_plus
    q_minus = (kept_minus + arrived_minus) / c_minus
    pi = float((p * (1 - f)).sum())  # E_p[1 - f]: what the regression of pi(T, mu) converges to
    assert pi == pytest.approx(c_plus / 2, abs=1e-12)
    mixture = pi * q_plus + (1 - pi) * q_minus[flipped]
    assert torch.allclose(mixture, p, atol=1e-14)
    if gauge == 0.0:
        assert pi == pytest.approx(0.5) and torch.allclose(q_plus, p, atol=1e-14)
    else:  # the field favours M > 0 and so does the gauge: the component at +mu carries more of the data
        assert pi > 0.5
    if gauge >= 3.0:  # ordered rows land at M > 0: the component's mass at M < 0 is small
        m = states.sum(1)
        assert float(q_plus[m < 0].sum()) < 0.1


def test_a_fresh_mode_weight_is_one_half_and_odd_in_mu():
    torch.manual_seed(0)
    from lattherm.engine.models import build_model
    model = build_model("ao-arm", "mlp", n_sites=9, hidden=8, layers=1, symmetric=True, mode_weight=True)
    T, mu = torch.tensor([1.5, 2.5, 3.0]), torch.tensor([0.3, -0.1, 0.0])
    lw = model.mode_log_weights(T, mu)
    assert torch.allclose(lw[0].exp(), torch.full((3,), 0.5))
    with torch.no_grad():
        for p in model.mode_weight.parameters():
            p.normal_()
    a, b = model.mode_log_weights(T, mu), model.mode_log_weights(T, -mu)
    assert torch.allclose(a[0], b[1], atol=1e-6) and torch.allclose(a[0].exp() + a[1].exp(), torch.ones(3))
    assert model.hparams()["mode_weight"] is True


def test_gauge_fixed_rows_follow_the_flip_probability():
    torch.manual_seed(0)
    ordered = torch.ones(20000, 16)
    ordered[:, :2] = -1  # M = 12: flipped with probability sigmoid(-3 * 12 / 4), about 1e-4
    s, mu = z2_augment(-ordered, torch.full((20000,), 0.3), gauge=3.0)
    assert float((s.sum(1) > 0).float().mean()) > 0.999 and bool((mu[s.sum(1) > 0] == -0.3).all())
    mixed = torch.tensor([[1.0, -1.0] * 8] * 20000)  # M = 0: flipped half of the time
    s, _ = z2_augment(mixed, torch.zeros(20000), gauge=3.0)
    assert abs(float((s[:, 0] < 0).float().mean()) - 0.5) < 0.02


PHASED = """
[system]
name = "ising"
size = "3x3"
[model]
kind = "ao-arm"
arch = "mlp"
hidden = 16
layers = 1
symmetric = true
[conditions]
T_points = 2
mu_points = 2
[training]
objective = "mle+reinforce"
switch_step = 60
steps = 100
batch = 16
lr = 1e-3
lr_final = 1e-5
finetune_lr = 2e-4
[data]
gauge = 2.0
"""


def test_each_phase_has_its_own_cosine():
    tr = Trainer.__new__(Trainer)  # only the schedule: no run folder, no model
    tr.cfg = parse_config(PHASED)
    tr.levels = LevelSchedule(tr.cfg)
    assert tr.lr_at(0) == pytest.approx(1e-3)
    assert tr.lr_at(30) == pytest.approx(0.5 * (1e-3 + 1e-5))
    assert tr.lr_at(59) < 2e-5  # the MLE cosine ends at the switch ...
    assert tr.lr_at(60) == pytest.approx(2e-4)  # ... and the fine-tune starts at its own lr
    assert tr.lr_at(80) == pytest.approx(0.5 * (2e-4 + 1e-5))
    tr.cfg = parse_config(PHASED.replace("finetune_lr = 2e-4\n", ""))
    tr.levels = LevelSchedule(tr.cfg)
    assert tr.lr_at(60) == pytest.approx(1e-3)


@pytest.mark.parametrize("change, message", [
    (("symmetric = true", "symmetric = false"), "[data] gauge needs a Z2-symmetric model"),
    (('objective = "mle+reinforce"', 'objective = "mle"'), "[training] finetune_lr applies to objective"),
    (("finetune_lr = 2e-4", "finetune_lr = 1e-6"), "[training] lr_final (1e-05) must not exceed finetune_lr"),
])
def test_bad_gauge_or_finetune_lr_is_one_line(change, message):
    with pytest.raises(ConfigError) as info:
        parse_config(PHASED.replace(*change))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_gauge_fixed_run_learns_its_mode_weight_and_reloads_it():
    """MLE with gauge = 2 on the 3x3 torus: the mode weight leaves 1/2 in the ordered field direction, the
    fine-tune phase runs through the weighted mixture, and the run's checkpoint rebuilds the same model."""
    from lattherm.engine.models.io import load_model
    text = (PHASED.replace("steps = 100", "steps = 40").replace("switch_step = 60", "switch_step = 30")
            .replace("lr = 1e-3", "lr = 2e-2") + "samples = 400\nchains = 40\nequilibration = 20\npilot = 16\n"
            "max_thin = 4\n[conditions]\n".replace("[conditions]\n", ""))
    text = text.replace("[training]", "[training]\nthreads = 1\ncheckpoint_every = 40\nlog_every = 10")
    tr = Trainer.create(text.replace("T_points = 2", "T = [1.2, 2.0]\nT_points = 2"))
    assert tr.model.mode_weight is not None
    tr.train()
    T, mu = torch.tensor([1.2, 1.2]), torch.tensor([0.4, -0.4])
    with torch.no_grad():
        pi = tr.model.mode_log_weights(T, mu)[0].exp()
    assert float(pi[0]) > 0.6 and float(pi[0] + pi[1]) == pytest.approx(1.0, abs=1e-6)
    assert [r["phase"] for r in tr.run.read_metrics()][-1] == "reinforce"
    lm = load_model(tr.run.path)
    assert lm.model.hparams()["mode_weight"] is True
    with torch.no_grad():
        assert torch.allclose(lm.model.mode_log_weights(T, mu)[0].exp(), pi, atol=1e-6)
