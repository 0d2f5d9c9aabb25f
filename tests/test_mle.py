"""Maximum likelihood on Monte Carlo data, training phases and the subsampled REINFORCE gradient.

The order-agnostic estimator is exactly unbiased (its average over every (order, k) is E_sigma log p_sigma(x));
the K-of-N REINFORCE gradient averages to the full one; MLE on exact samples lowers the forward KL and leaves F_q
above the exact bound; a run resumes exactly on either side of the MLE -> REINFORCE switch, reusing its data set;
bad objective input is one line, exit 2, and no run folder.
"""

import itertools
import math

import numpy as np
import pytest
import torch

from _training import assert_refused_without_run
from lattherm.engine.cli.main import main
from lattherm.engine.config import parse_config
from lattherm.engine.errors import LatthermError
from lattherm.engine.models import build_model
from lattherm.engine.models.base import SampleBatch
from lattherm.engine.montecarlo.dataset import DATASET_FILE, Dataset, load_dataset, save_dataset
from lattherm.engine.progress import Control
from lattherm.engine.store import list_runs
from lattherm.engine.systems import make_system
from lattherm.engine.training import Trainer
from lattherm.engine.training.mle import forward_log_likelihood, order_agnostic_log_likelihood
from lattherm.engine.training.reinforce import score


def tiny_model(kind="ao-arm", arch="mlp", symmetric=False, n=2, seed=0):
    torch.manual_seed(seed)
    hp = dict(n_sites=n * n, n_species=2, hidden=16, layers=2, symmetric=symmetric, T_scale=2.5, mu_scale=0.4)
    if arch == "transformer":
        hp.update(heads=2, lattice="square", size=(n, n))
    model = build_model(kind, arch, **hp)
    with torch.no_grad():  # read-outs start near uniform: make the conditionals depend strongly on the context
        for name, p in model.named_parameters():
            if "out_w" in name or "head" in name:
                p.normal_(0, 1.0)
    return model


ALL4 = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=4)))
PERMS = torch.tensor(list(itertools.permutations(range(4))))  # 24 orders, as ranks


@pytest.mark.parametrize("kind, arch", [("ao-arm", "mlp"), ("ao-arm", "transformer"), ("ao-mam", "mlp")])
def test_order_agnostic_estimator_averaged_over_every_order_and_k_is_the_exact_order_averaged_log_p(kind, arch):
    """(1 / (N! N)) sum over all orders sigma and k of N/(N-k) sum_{j unknown} log p(x_j | x_sigma(<k)) equals
    (1/N!) sum_sigma log p_sigma(x), the model's log-probability along each order (2x2: 24 orders, k = 0..3)."""
    model = tiny_model(kind, arch)
    net = model.conditional_net if kind == "ao-mam" else model
    x = ALL4[[0, 5, 9, 14]]
    T = torch.tensor([1.7, 2.5, 3.0, 2.2])
    mu = torch.tensor([0.3, -0.1, 0.0, 0.4])
    with torch.no_grad():
        est = torch.zeros(len(x), dtype=torch.float64)
        exact = torch.zeros(len(x), dtype=torch.float64)
        for ranks in PERMS:
            r = ranks.expand(len(x), -1)
            exact += net.log_prob(x, T, mu, r).double() / len(PERMS)
            for k in range(4):
                est += order_agnostic_log_likelihood(net, x, T, mu, r < k).double() / (len(PERMS) * 4)
    assert torch.allclose(est, exact, atol=1e-5), (est, exact)
    # the orders really disagree, so the identity is not trivial
    spread = torch.stack([net.log_prob(x, T, mu, p.expand(len(x), -1)) for p in PERMS]).std(0)
    assert bool((spread > 1e-3).all())


def test_fo_arm_likelihood_is_exact_teacher_forcing_and_normalised():
    model = tiny_model("fo-arm", symmetric=True)
    T, mu = torch.full((16,), 2.0), torch.full((16,), 0.2)
    with torch.no_grad():
        ll = forward_log_likelihood(model, ALL4, T, mu)
    assert torch.allclose(ll, model.log_prob(ALL4, T, mu))
    assert abs(float(torch.logsumexp(ll.double(), 0))) < 1e-5  # sums to one over the 16 states


def _grad(model, surrogate):
    model.zero_grad()
    surrogate.backward()
    return torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None]).clone()


def _responsibility_draws(model, sb, T, mu, g):
    """``sb`` with each row's component drawn afresh from the exact responsibilities: flipped with probability
    (1 - pi) q(-s | -mu) / q_sym(s | mu)."""
    with torch.no_grad():
        log_w = model.mode_log_weights(T, mu)
        plus = model._log_prob_path(sb.spins, T, mu, sb.ranks).double()
        plus = plus + (-math.log(2.0) if log_w is None else log_w[0].double())
        w_minus = 1.0 - torch.exp(plus - model.log_prob(sb.spins, T, mu, sb.ranks).double())

    def draw():
        flip = torch.rand(len(T), generator=g, dtype=torch.float64) < w_minus
        return SampleBatch(sb.spins, sb.log_p, sb.ranks, flip, torch.where(flip, w_minus, 1 - w_minus))
    return draw


@pytest.mark.parametrize("symmetric, K, mode_weight, confident", [(False, 1, False, 1.0), (True, 1, False, 0.5),
                                                                  (True, 4, False, 0.5), (True, 2, True, 0.5),
                                                                  (True, 2, True, 1.0)])
def test_sampled_reinforce_score_averages_to_the_full_gradient(symmetric, K, mode_weight, confident):
    """Fixed samples and advantages: the mean over draws of the score's gradient (K of the N = 4 steps, and for a
    symmetric model every row through one component drawn from the responsibilities) equals the full
    score-function gradient of the mixture (a learned pi(T, mu) included) within 5 standard errors in every
    coordinate, whether the rows go through their drawn component (``confident`` 0.5) or both (1.0); all steps give
    it exactly where nothing is drawn."""
    model = tiny_model("ao-arm", symmetric=symmetric, seed=1)
    if mode_weight:
        model.add_mode_weight(2.5, 0.4)
        with torch.no_grad():
            for p in model.mode_weight.parameters():
                p.normal_(0, 0.5)
    T = torch.tensor([1.5, 1.5, 3.0, 3.0, 2.0, 2.0])
    mu = torch.tensor([0.0, 0.0, 0.4, 0.4, -0.2, -0.2])
    sb = model.sample(T, mu, generator=torch.Generator().manual_seed(0))
    adv = torch.tensor([1.0, -0.5, 0.3, -1.2, 0.8, -0.4])
    full = _grad(model, (adv * model.log_prob(sb.spins, T, mu, sb.ranks)).mean())
    g = torch.Generator().manual_seed(1)
    rows = _responsibility_draws(model, sb, T, mu, g) if symmetric else (lambda: sb)
    draws = torch.stack([_grad(model, (adv * score(model, rows(), T, mu, K, g, confident=confident)).mean())
                         for _ in range(600)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert float(draws.std(0).max()) > 0  # the estimator is genuinely random
    assert bool(((mean - full).abs() <= 5 * se + 1e-6).all()), float(((mean - full).abs() / (se + 1e-12)).max())
    if not symmetric:
        assert torch.allclose(_grad(model, (adv * score(model, sb, T, mu, 4)).mean()), full, atol=1e-5)
        return
    # one fixed component is not the mixture's gradient: the draw is what makes it unbiased
    fixed = SampleBatch(sb.spins, sb.log_p, sb.ranks, torch.zeros(6, dtype=torch.bool), torch.ones(6))
    fixed_grad = _grad(model, (adv * score(model, fixed, T, mu, confident=0.5)).mean())
    assert float(((fixed_grad - full).abs() / (se + 1e-12)).max()) > 10
    # rows below the threshold are scored by the exact mixture: no draw at all
    assert torch.allclose(_grad(model, (adv * score(model, rows(), T, mu, confident=1.0)).mean()), full, atol=1e-5)
    with pytest.raises(ValueError, match="component"):
        score(model, SampleBatch(sb.spins, sb.log_p, sb.ranks), T, mu)


def test_samples_report_their_component_with_the_exact_responsibilities():
    """A symmetric model's ``flip`` is a draw from the responsibilities given s: on a 2x2 model along one order,
    the fraction of flipped rows among the samples of each of the 16 states is (1 - pi) q(-s|-mu) / q_sym(s|mu)
    within 4 binomial standard errors (pi learned and away from 1/2, so both weights enter), and each row's
    ``responsibility`` is its drawn component's."""
    model = tiny_model("ao-arm", symmetric=True, seed=2)
    model.add_mode_weight(2.5, 0.4)
    with torch.no_grad():
        for p in model.mode_weight.parameters():
            p.normal_(0, 0.5)
    n = 40000
    T, mu = torch.full((n,), 2.0), torch.full((n,), 0.3)
    ranks = torch.tensor([2, 0, 3, 1]).expand(n, -1)
    sb = model.sample(T, mu, ranks=ranks, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        log_pi, log_1mpi = model.mode_log_weights(T[:16], mu[:16])
        minus = log_1mpi.double() + model._log_prob_path(-ALL4, T[:16], -mu[:16], ranks[:16]).double()
        w_minus = torch.exp(minus - model.log_prob(ALL4, T[:16], mu[:16], ranks[:16]).double())
    assert 0.05 < float(log_pi[0].exp()) < 0.95 and abs(float(log_pi[0].exp()) - 0.5) > 0.02
    state = ((sb.spins > 0).long() * torch.tensor([8, 4, 2, 1])).sum(1)
    seen = 0
    for i in range(16):
        rows = state == i
        m = int(rows.sum())
        if m < 200:
            continue
        seen += 1
        p = float(w_minus[i])
        frac = float(sb.flip[rows].double().mean())
        assert abs(frac - p) <= 4 * math.sqrt(p * (1 - p) / m) + 1e-9, (i, frac, p, m)
        resp = torch.where(sb.flip[rows], w_minus[i], 1 - w_minus[i])  # the drawn component's, reported exactly
        assert torch.allclose(sb.responsibility[rows], resp, atol=1e-5)
    assert seen >= 8


# ---- MLE on exact samples of 3x3 Ising ---------------------------------------------------------------------------

ALL9 = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=9)))
CONDS = [(2.0, 0.0), (2.0, 0.4), (3.0, 0.0), (3.0, 0.4)]

MLE_CONFIG = """
[system]
name = "ising"
size = "3x3"
[model]
kind = "{kind}"
hidden = 48
layers = 2
[conditions]
T = [2.0, 3.0]
T_points = 2
mu = [0.0, 0.4]
mu_points = 2
samples_per_epoch = 100000
[training]
objective = "mle"
batch = 128
steps = {steps}
lr = 3e-3
seed = 2
checkpoint_every = 1000
log_every = 100
threads = 1
[data]
path = "{path}"
"""


def exact_dataset(system, n_conditions=400, per_condition=20, seed=0):
    """Rows drawn from the exact Boltzmann distribution (enumeration) at conditions uniform over the ranges."""
    g = torch.Generator().manual_seed(seed)
    Ts = 2.0 + torch.rand(n_conditions, generator=g, dtype=torch.float64)
    mus = 0.4 * torch.rand(n_conditions, generator=g, dtype=torch.float64)
    rows = []
    for T, mu in zip(Ts, mus):
        p = torch.softmax(system.log_f(ALL9, T, mu), 0)
        rows.append(ALL9[torch.multinomial(p, per_condition, replacement=True, generator=g)])
    meta = {"system": "ising", "size": "3x3", "T_range": [2.0, 3.0], "mu_range": [0.0, 0.4], "sampler": "exact"}
    return Dataset(torch.cat(rows).to(torch.int8).numpy(), Ts.repeat_interleave(per_condition).numpy(),
                   mus.repeat_interleave(per_condition).numpy(), meta)


def forward_kl_and_F_q(model, system, any_order: bool):
    """Exact E_p[log p - log q] and F_q = E_q[log q - log f] per condition by enumerating the 512 states. For an
    any-order model log q is log p_sigma averaged over 16 random orders (an upper bound of the mixture's forward
    KL, by Jensen) and F_q is E_sigma E_{p_sigma}[log p_sigma - log f] over the same orders (the reverse-KL
    objective, >= -log Z for every order)."""
    out = []
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for T, mu in CONDS:
            log_f = system.log_f(ALL9, T, mu)
            log_p = log_f - torch.logsumexp(log_f, 0)
            if any_order:
                lq = torch.stack([model.log_prob(ALL9, T, mu, torch.rand(9, generator=g).argsort().argsort()
                                                 .expand(512, -1)).double() for _ in range(16)])
            else:
                lq = model.log_prob(ALL9, T, mu).double()[None]
            kl = float((log_p.exp() * (log_p - lq.mean(0))).sum())
            fq = float((lq.exp() * (lq - log_f)).sum(1).mean())
            out.append((kl, fq, float(-torch.logsumexp(log_f, 0))))
    return out


@pytest.mark.parametrize("kind", ["fo-arm", "ao-arm"])
def test_mle_on_exact_samples_lowers_the_forward_kl_and_F_q_stays_above_the_exact_bound(kind, tmp_path):
    system = make_system("ising", "3x3")
    path = save_dataset(tmp_path / "exact.npz", exact_dataset(system))
    tr = Trainer(parse_config(MLE_CONFIG.format(kind=kind, steps=400, path=path)))
    before = forward_kl_and_F_q(tr.model, system, kind == "ao-arm")
    tr.train()
    after = forward_kl_and_F_q(tr.model, system, kind == "ao-arm")
    for (kl0, _, _), (kl1, fq, bound) in zip(before, after):
        assert kl1 < 0.25 * kl0, (kl0, kl1)
        assert kl1 < (0.1 if kind == "fo-arm" else 0.25)  # AO: the order-averaged bound, above the mixture's KL
        assert fq >= bound - 1e-6  # a variational bound: no training can go below -log Z


# ---- phases, resume, bad input ---------------------------------------------------------------------------------

PHASES = """
[system]
name = "ising"
size = "3x3"
[model]
kind = "{kind}"
hidden = 16
layers = 1
symmetric = {sym}
[conditions]
T = [1.5, 3.5]
T_points = 2
mu = [-0.4, 0.4]
mu_points = 2
samples_per_epoch = 64
[training]
objective = "mle+reinforce"
switch_step = 10
reinforce_steps = {K}
batch = 16
steps = 20
lr = 2e-3
seed = 1
checkpoint_every = 5
log_every = 5
threads = 1
[data]
samples = 400
chains = 40
equilibration = 20
pilot = 16
max_thin = 4
"""


@pytest.mark.parametrize("stop_at", [5, 10, 15])
@pytest.mark.parametrize("kind, sym, K", [("ao-arm", "true", 3), ("ao-mam", "false", 0)])
def test_resume_before_at_and_after_the_switch_continues_exactly(stop_at, kind, sym, K):
    """Stop at step 5 (MLE), 10 (the switch) or 15 (REINFORCE) and resume: the parameters equal an uninterrupted
    run's, records carry their phase, and the resumed run reads its data set back instead of regenerating it."""
    text = PHASES.format(kind=kind, sym=sym, K=K)
    straight = Trainer.create(text)
    straight.train()
    first = Trainer.create(text)
    control = Control()
    first.train(on_log=lambda rec: rec["step"] >= stop_at and control.request_stop("test"), control=control)
    assert first.step == stop_at
    data_file = first.run.path / DATASET_FILE
    stamp = data_file.stat().st_mtime_ns
    second = Trainer.resume(first.run.path)
    assert second.train() == "finished"
    assert data_file.stat().st_mtime_ns == stamp
    assert np.array_equal(load_dataset(data_file).spins, load_dataset(straight.run.path / DATASET_FILE).spins)
    for (name, a), b in zip(straight.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    records = first.run.read_metrics()
    assert [r["phase"] for r in records] == ["mle", "mle", "reinforce", "reinforce"]
    assert all("F_q" in r and "ess_fraction" in r and "exact_gap" in r for r in records)
    assert all(r["exact_gap"] > -0.05 for r in records)  # F_q is an upper bound of -log Z (noisy estimates)
    assert first.run.status()["dataset"]["samples"] == 400


def test_data_generation_counts_in_the_elapsed_time():
    tr = Trainer.create(PHASES.format(kind="ao-arm", sym="false", K=0).replace("steps = 20", "steps = 11"))
    tr.train()
    meta = tr.run.status()["dataset"]
    assert tr.elapsed >= meta["seconds"] > 0 and meta["thin"] >= 1


BAD = [
    (("objective = \"mle+reinforce\"", "objective = \"contrastive\""), "[training] objective must be one of"),
    (("switch_step = 10", "switch_step = 20"), "[training] switch_step must be in 1..19"),
    (("switch_step = 10", "switch_step = 0"), "[training] switch_step must be in 1..19"),
    (("reinforce_steps = 3", "reinforce_steps = 10"), "[training] reinforce_steps must be in 0..9"),
    (("kind = \"ao-arm\"", "kind = \"fo-arm\""), "[training] reinforce_steps needs an ao-arm model"),
    (("[data]", "[data]\nsampler = \"gibbs\""), "[data] sampler must be one of"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_bad_objective_config_names_the_key_and_creates_no_run(change, message):
    assert_refused_without_run(PHASES.format(kind="ao-arm", sym="false", K=3).replace(*change), message)


def test_mle_with_a_sampler_the_system_has_not_is_refused_before_any_run_folder():
    text = (PHASES.format(kind="ao-arm", sym="false", K=0).replace('name = "ising"', 'name = "cuau"')
            .replace('size = "3x3"', 'size = "2x2x4"')
            .replace("[data]", '[data]\nsampler = "wolff"').replace("T = [1.5, 3.5]", "T = [300.0, 900.0]")
            .replace("mu = [-0.4, 0.4]", "mu = [-0.1, 0.1]"))
    with pytest.raises(LatthermError, match="no wolff cluster sampler for"):
        Trainer.create(text)
    assert list_runs() == []


@pytest.mark.parametrize("what, edit", [("size", ("size", "4x4")), ("range", ("T_range", [1.0, 3.5]))])
def test_a_data_set_for_another_size_or_range_is_one_line_exit_2_and_no_run(tmp_path, capsys, what, edit):
    meta = {"system": "ising", "size": "3x3", "T_range": [1.5, 3.5], "mu_range": [-0.4, 0.4]}
    meta[edit[0]] = edit[1]
    n = 16 if what == "size" else 9
    save_dataset(tmp_path / "other.npz", Dataset(np.ones((8, n), np.int8), np.full(8, 2.0), np.zeros(8), meta))
    cfg = tmp_path / "run.toml"
    cfg.write_text(PHASES.format(kind="ao-arm", sym="false", K=0)
                   .replace("[data]", f'[data]\npath = "{tmp_path / "other.npz"}"'))
    assert main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "was made for ising" in err and "this run needs ising 3x3" in err
    assert list_runs() == []
