"""AO-MAM: offset parameterisation, self-consistency training, block Gibbs, F_q bound, io round trip and the CLI.

Everything runs on enumerable lattices (2x2, 3x3: 512 states) with tiny networks on one thread.
"""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch

from lattherm.engine.cli.main import main
from lattherm.engine.exact import exact_reference
from lattherm.engine.models import build_model, model_for_system, random_ranks
from lattherm.engine.models.base import tokens_from_spins
from lattherm.engine.models.io import model_from_tensors, model_meta, model_tensors
from lattherm.engine.models.mam import MarginalizationModel, block_gibbs
from lattherm.engine.store import Run, load_tensors, save_tensors
from lattherm.engine.systems import make_system
from lattherm.engine.config import parse_config
from lattherm.engine.training import Trainer
from lattherm.engine.training.mam import self_consistency_residual

from _configs import tiny_config
from _training import enumerated_F_q, train_until_stopped

ALL9 = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=9)))
CONDS = [(2.0, 0.0), (3.0, 0.2)]


#: the MaM runs: hidden 32 x 2 layers, 2 heads, 3 Gibbs sites, batch 64, lr 3e-3, seed 1, jitter every 20 steps
MAM = {"model.hidden": 32, "model.heads": 2, "model.lam": 10.0, "model.gibbs_steps": 3,
       "conditions.samples_per_epoch": 1280, "training.batch": 64, "training.lr": 3e-3, "training.seed": 1,
       "training.checkpoint_every": 10, "training.log_every": 5}


def perturb(model, scale=0.3, seed=0):
    """Move both networks (including the zero-initialised marginal head) away from the consistent init."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))


def partial_lattices(n: int, N: int = 9, seed: int = 5):
    """n random partial lattices (tokens) with at least one unknown site, and one unknown site j of each."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, 3, (n, N), generator=g)
    known = torch.rand(n, N, generator=g) < torch.rand(n, 1, generator=g)
    j = torch.randint(0, N, (n,), generator=g)
    known[torch.arange(n), j] = False
    return tokens * known, j


def one_site_residual(model, tokens, j, T, mu):
    """logsumexp_k log p_theta(x_S u {x_j = k}) - log p_theta(x_S): 0 for a marginal that sums correctly."""
    n = len(tokens)
    rows = torch.arange(n)
    with torch.no_grad():
        base = model.marginal_log_prob(tokens, T, mu)
        filled = []
        for k in (1, 2):
            t = tokens.clone()
            t[rows, j] = k
            filled.append(model.marginal_log_prob(t, T, mu))
    return torch.logsumexp(torch.stack(filled), 0) - base


# ---- the model ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_offset_parameterisation_is_uniform_and_exactly_self_consistent_at_init(arch):
    """h = 0 at init: log p_theta(x_S) = -|S| log 2 for every partial lattice (the empty set gives exactly 0); with
    the (zero-initialised, hence uniform) conditional net every self-consistency residual Delta vanishes."""
    torch.manual_seed(0)
    system = make_system("ising", "3x3")
    m = model_for_system("ao-mam", arch, system, hidden=16, layers=2, heads=2)
    assert isinstance(m, MarginalizationModel) and m.kind == "ao-mam" and m.arch == arch
    tokens, _ = partial_lattices(50)
    T, mu = torch.full((50,), 2.0), torch.full((50,), 0.1)
    lp = m.marginal_log_prob(tokens, T, mu)
    assert torch.equal(lp, -(tokens > 0).sum(-1).float() * math.log(2))
    assert float(m.marginal_log_prob(torch.zeros(1, 9, dtype=torch.long), 2.0, 0.1).detach()) == 0.0
    logits = m.logits(tokens, T, mu)  # the conditional read-out is zero-initialised too: p_phi uniform
    assert torch.equal(logits, torch.zeros_like(logits))
    x = tokens_from_spins(ALL9[torch.randperm(512)[:50]])
    ranks = random_ranks(50, 9)
    delta = self_consistency_residual(m, x, T, mu, ranks, torch.randint(0, 9, (50,)))
    assert float(delta.detach().abs().max()) < 1e-5


@pytest.mark.parametrize("arch, symmetric", [("mlp", False), ("transformer", False), ("mlp", True),
                                             ("transformer", True)])
def test_hparams_round_trip_through_io(arch, symmetric, tmp_path):
    """save_tensors / model_from_tensors rebuilds the same model (the Z2 flag included): same marginals, same
    path log p."""
    torch.manual_seed(0)
    system = make_system("ising", "3x3")
    m = model_for_system("ao-mam", arch, system, hidden=16, layers=2, heads=2, symmetric=symmetric)
    perturb(m)
    m.eval()
    path = tmp_path / "m.safetensors"
    save_tensors(path, model_tensors(m), model_meta(m, system))
    tensors, meta = load_tensors(path)
    m2, sys2 = model_from_tensors(tensors, meta, path)
    assert m2.hparams() == m.hparams() and type(m2) is type(m) and sys2.n_sites == 9
    assert m2.symmetric is symmetric
    tokens, _ = partial_lattices(20)
    r = random_ranks(20, 9)
    with torch.no_grad():
        assert torch.equal(m.marginal_log_prob(tokens, 2.0, 0.1), m2.marginal_log_prob(tokens, 2.0, 0.1))
        assert torch.equal(m.log_prob(ALL9[:20], 2.0, 0.1, r), m2.log_prob(ALL9[:20], 2.0, 0.1, r))
    assert build_model("ao-mam", arch, **{k: v for k, v in m.hparams().items() if k not in ("kind", "arch")})


def test_sampling_delegates_to_the_conditional_net_with_exact_path_log_p():
    torch.manual_seed(0)
    m = build_model("ao-mam", "mlp", n_sites=4, hidden=16, layers=2)
    perturb(m)
    sb = m.sample(2.0, 0.3, batch=30)
    with torch.no_grad():
        again = m.conditional_net.log_prob(sb.spins, 2.0, 0.3, sb.ranks)
    assert torch.allclose(sb.log_p, again.double(), atol=1e-5)


@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_symmetric_mam_is_a_normalised_z2_mixture_in_sampling_and_in_the_marginal(arch):
    """Z2: path probabilities of all 16 states of a 2x2 lattice sum to 1 and are invariant under (s, mu) -> (-s, -mu);
    sampled log p equals the re-scored mixture; the model marginal is the mixture of the component's."""
    torch.manual_seed(0)
    system = make_system("ising", "2x2")
    m = model_for_system("ao-mam", arch, system, 16, 2, symmetric=True, heads=2)
    perturb(m, scale=0.2)
    all4 = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=4)))
    r = random_ranks(1, 4).expand(16, -1)
    with torch.no_grad():
        lp = m.log_prob(all4, 2.0, 0.3, r).double()
        assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-5)
        assert torch.allclose(lp, m.log_prob(-all4, 2.0, -0.3, r).double(), atol=1e-5)
        sb = m.sample(2.0, 0.3, batch=50)
        assert torch.allclose(sb.log_p, m.log_prob(sb.spins, 2.0, 0.3, sb.ranks).double(), atol=1e-5)
        tokens, _ = partial_lattices(20, N=4)
        flipped = torch.where(tokens > 0, 3 - tokens, tokens)
        a = m.model_marginal_log_prob(tokens, 2.0, 0.3)
        assert torch.allclose(a, m.model_marginal_log_prob(flipped, 2.0, -0.3), atol=1e-5)
        mix = torch.logaddexp(m.marginal_log_prob(tokens, 2.0, 0.3), m.marginal_log_prob(flipped, 2.0, -0.3))
        assert torch.allclose(a, mix - math.log(2.0), atol=1e-5)


def test_block_gibbs_leaves_a_consistent_conditional_distribution_invariant():
    """With conditionals of a product distribution pi (out weights 0, per-site biases), block Gibbs started from exact
    samples of pi keeps pi: all 16 state frequencies of 40k chains stay within 5 sigma. Only k sites change."""
    torch.manual_seed(0)
    m = build_model("ao-mam", "mlp", n_sites=4, hidden=8, layers=2)
    with torch.no_grad():
        m.conditional_net.out_w.zero_()
        m.conditional_net.out_b.copy_(torch.tensor([[0.0, 1.2], [0.8, -0.5], [0.0, 0.0], [-2.0, 0.3]]))
    pi1 = torch.softmax(m.conditional_net.out_b, -1)[:, 1].double()  # P(token 2 = spin +1) per site
    n = 40_000
    x = (torch.rand(n, 4, dtype=torch.float64) < pi1).long() + 1
    T, mu = torch.full((n,), 2.0), torch.full((n,), 0.1)
    for _ in range(3):
        ranks = random_ranks(n, 4)
        y = block_gibbs(m, x, T, mu, ranks, 2)
        assert int((y != x).sum(1).max()) <= 2
        assert bool(((y == x) | (ranks >= 2)).all())  # only the erased block may change
        x = y
    states = torch.tensor(list(itertools.product([1, 2], repeat=4)))
    p = torch.where(states == 2, pi1, 1 - pi1).prod(1)
    idx = ((x - 1) * (2 ** torch.arange(3, -1, -1))).sum(1)
    counts = torch.bincount(idx, minlength=16).double()
    sigma = torch.sqrt(n * p * (1 - p))
    assert bool(((counts - n * p).abs() <= 5 * sigma + 1).all())


# ---- training -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """A perturbed (inconsistent) 3x3 MLP MAM, trained 150 steps; the records and the model before/after."""
    tr = Trainer(parse_config(tiny_config(kind="ao-mam", steps=150, **MAM)))
    perturb(tr.model, scale=0.3, seed=2)
    before = {k: v.clone() for k, v in tr.model.state_dict().items()}
    recs = []
    tr.train(on_log=recs.append)
    return tr, before, recs


def test_self_consistency_error_falls_during_training(trained):
    tr, _, recs = trained
    sc = [r["self_consistency"] for r in recs]
    assert len(recs) == 30
    for key in ("self_consistency", "empty_set_drift", "marginal_vs_path_gap", "F_q", "ess_fraction",
                "F_q_per_condition", "grad_norm"):
        assert all(key in r for r in recs), key
    assert all(math.isfinite(v) for v in sc)
    # one random step per chain makes each value noisy (rare spikes): compare medians
    first, last = sorted(sc[:3])[1], sorted(sc[-10:])[5]
    assert last < 0.2 * first, (first, last)
    assert recs[-1]["empty_set_drift"] < recs[0]["empty_set_drift"] or recs[-1]["empty_set_drift"] < 0.05
    assert recs[-1]["marginal_vs_path_gap"] < recs[0]["marginal_vs_path_gap"]


def test_marginal_sums_over_one_free_site_after_training(trained):
    """logsumexp over a free site's values of log p_theta(x_S u {x_j}) matches log p_theta(x_S) much better after
    training than at the perturbed start."""
    tr, before, _ = trained
    tokens, j = partial_lattices(200)
    errs = []
    for state in (before, tr.model.state_dict()):
        m = build_model("ao-mam", "mlp", **{k: v for k, v in tr.model.hparams().items() if k not in ("kind", "arch")})
        m.load_state_dict(state)
        errs.append(sum(float(one_site_residual(m, tokens, j, torch.full((200,), T), torch.full((200,), mu))
                              .abs().mean()) for T, mu in CONDS) / len(CONDS))
    assert errs[1] < 0.3 * errs[0], errs


def test_conditional_F_q_stays_above_the_exact_bound_and_approaches_it(trained):
    """Exact F_q of the conditional net (all 512 states, raster order): q is normalised, F_q >= -log Z, and the
    gap F_q + log Z = KL(q || p) has shrunk since the perturbed start (phi follows theta, which lowers the KL)."""
    tr, before, _ = trained
    system = make_system("ising", "3x3")
    start = build_model("ao-mam", "mlp", **{k: v for k, v in tr.model.hparams().items() if k not in ("kind", "arch")})
    start.load_state_dict(before)
    for T, mu in CONDS:
        fq, norm, _ = enumerated_F_q(tr.model, system, T, mu)
        fq0, _, _ = enumerated_F_q(start, system, T, mu)
        bound = -exact_reference(system, T, mu).log_Z
        assert norm == pytest.approx(1.0, abs=1e-5)
        assert fq >= bound - 1e-6
        assert fq - bound < (fq0 - bound) - 0.5, (fq0 - bound, fq - bound)


@pytest.mark.parametrize("symmetric", [False, True])
def test_resume_of_a_mam_run_is_exact_including_the_chains(symmetric):
    """Stop after 10 steps, resume to 20: parameters and chains (and a symmetric run's chain orientations) equal
    those of an uninterrupted 20-step run."""
    text = tiny_config(kind="ao-mam", steps=20, **MAM, **{"model.symmetric": symmetric})
    straight = Trainer.create(text)
    straight.train()
    first = Trainer.create(text)
    train_until_stopped(first, 10)
    assert first.step == 10
    second = Trainer.resume(first.run.path)
    assert second.objective.chains is not None and torch.equal(second.objective.chains, first.objective.chains)
    second.train()
    for (name, a), b in zip(straight.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert torch.equal(straight.objective.chains, second.objective.chains)
    assert torch.equal(straight.objective.chain_sign, second.objective.chain_sign)
    assert bool((straight.objective.chain_sign == -1).any()) == symmetric


@pytest.mark.parametrize("key, value", [("model.lam", -1.0), ("model.gibbs_steps", 10), ("model.gibbs_steps", 0)])
def test_bad_mam_settings_are_config_errors(key, value):
    from lattherm.engine.errors import ConfigError

    with pytest.raises(ConfigError, match=key.split(".")[1]):
        parse_config(tiny_config(kind="ao-mam", **{**MAM, key: value}))


def test_symmetric_needs_an_energy_even_in_the_spins():
    from lattherm.engine.errors import ConfigError

    assert parse_config(tiny_config(kind="ao-mam", **MAM, **{"model.symmetric": True})).model.symmetric
    cuau = tiny_config("1x1x4", kind="ao-mam", **MAM, **{"model.symmetric": True, "system.name": "cuau"})
    with pytest.raises(ConfigError, match="symmetric.*even"):
        parse_config(cuau)


@pytest.mark.slow
def test_symmetric_mam_training_lowers_the_exact_F_q_and_stays_above_the_bound():
    """A symmetric 3x3 MAM: the exact F_q gap of the Z2 mixture (all 512 states) halves in 400 steps, stays >= 0."""
    tr = Trainer(parse_config(tiny_config(kind="ao-mam", steps=400, **MAM, **{"model.symmetric": True})))
    system = make_system("ising", "3x3")
    before = [enumerated_F_q(tr.model, system, T, mu)[0] for T, mu in CONDS]
    recs = []
    tr.train(on_log=recs.append)
    for (T, mu), fq0 in zip(CONDS, before):
        fq, norm, _ = enumerated_F_q(tr.model, system, T, mu)
        bound = -exact_reference(system, T, mu).log_Z
        assert norm == pytest.approx(1.0, abs=1e-5)
        assert bound - 1e-6 <= fq and fq - bound < 0.5 * (fq0 - bound), (fq0 - bound, fq - bound)
    assert recs[-1]["self_consistency"] < 1.0


def test_paper_lambda_defaults():
    paper_lam = {**MAM, "model.lam": 0}  # 0 = the paper's value for the architecture
    assert parse_config(tiny_config(kind="ao-mam", **paper_lam)).model.mam_lambda() == 100.0
    assert parse_config(tiny_config(kind="ao-mam", arch="transformer", **paper_lam)).model.mam_lambda() == 10.0


# ---- CLI ------------------------------------------------------------------------------------------------------------


def test_cli_trains_and_evaluates_an_ao_mam_transformer(capsys, tmp_path):
    cfg = tmp_path / "mam.toml"
    cfg.write_text(tiny_config(kind="ao-mam", arch="transformer", steps=6, **MAM), encoding="utf-8")
    assert main(["train", str(cfg)]) == 0
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if x.startswith("run ")]
    run = Run.open(line.split()[1])
    recs = run.read_metrics()
    assert [r["step"] for r in recs] == [5, 6]
    assert "self_consistency" in recs[0] and "marginal_vs_path_gap" in recs[-1]
    assert main(["evaluate", run.id, "--grid", "2.0,3.0:0,0.2", "--samples", "200", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    for c in ev["conditions"]:
        assert math.isfinite(c["F_q"]) and c["F_q"] >= c["exact_neg_log_Z"] - 5 * c["F_q_stderr"]


@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_mam_trains_on_the_cuau_alloy_and_its_exact_F_q_respects_the_bound(arch):
    """The CuAu configs' model kinds run on an fcc cell (2x1x2: 4 sites, enumerable): F_q of the conditional net
    over all 16 states is normalised and above -log Z at two conditions after a few steps."""
    cuau = {"system.name": "cuau", "conditions.T": [600.0, 1200.0], "conditions.mu": [-0.1, 0.1],
            "model.gibbs_steps": 2}
    tr = Trainer(parse_config(tiny_config("2x1x2", kind="ao-mam", arch=arch, steps=30, **{**MAM, **cuau})))
    recs = []
    tr.train(on_log=recs.append)
    assert all(math.isfinite(r["F_q"]) and math.isfinite(r["self_consistency"]) for r in recs)
    for T, mu in [(600.0, -0.1), (1200.0, 0.1)]:
        fq, norm, _ = enumerated_F_q(tr.model, tr.system, T, mu)
        assert norm == pytest.approx(1.0, abs=1e-5)
        assert fq >= -exact_reference(tr.system, T, mu).log_Z - 1e-6
