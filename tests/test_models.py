"""Autoregressive models: normalisation, exact path log-probabilities, autoregressive structure, symmetry."""

import itertools

import pytest
import torch

from lattherm.engine.models import build_model, random_ranks

N = 4
ALL = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=N)))


def make(kind, symmetric=False, seed=0):
    torch.manual_seed(seed)
    m = build_model(kind, n_sites=N, hidden=24, layers=3, symmetric=bool(symmetric), T_scale=2.5, mu_scale=0.4,
                    mode_weight=symmetric == "weighted")
    with torch.no_grad():  # move away from the near-uniform initialisation (a mode weight away from 1/2)
        for name, p in m.named_parameters():
            p.add_((2.0 if name.startswith("mode_weight") else 0.4) * torch.randn_like(p))
    return m.eval()


@pytest.mark.parametrize("kind", ["fo-arm", "ao-arm"])
@pytest.mark.parametrize("symmetric", [False, True, "weighted"])
def test_path_probabilities_sum_to_one_for_every_order(kind, symmetric):
    """Sum over all 2^N states of p_sigma(s) is 1 for any generating order (any-order models: several orders)."""
    m = make(kind, symmetric)
    orders = random_ranks(5, N) if kind == "ao-arm" else torch.arange(N)[None]
    for r in orders:
        with torch.no_grad():
            lp = m.log_prob(ALL, 2.0, 0.3, r.expand(len(ALL), -1))
        assert float(lp.double().exp().sum()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("kind", ["fo-arm", "ao-arm"])
@pytest.mark.parametrize("symmetric", [False, True, "weighted"])
def test_sampling_returns_exact_path_log_prob(kind, symmetric):
    """log p accumulated while sampling equals log_prob of the same samples along the same order."""
    m = make(kind, symmetric)
    sb = m.sample(torch.tensor([1.5, 2.5, 3.5] * 4), torch.tensor([-0.4, 0.0, 0.4] * 4))
    with torch.no_grad():
        again = m.log_prob(sb.spins, torch.tensor([1.5, 2.5, 3.5] * 4), torch.tensor([-0.4, 0.0, 0.4] * 4), sb.ranks)
    assert torch.allclose(sb.log_p, again.double(), atol=1e-5)
    assert set(sb.spins.unique().tolist()) <= {-1.0, 1.0}


@pytest.mark.parametrize("kind", ["fo-arm", "ao-arm"])
@pytest.mark.parametrize("symmetric", [False, "weighted"])
def test_sample_frequencies_match_model_probabilities(kind, symmetric):
    """Empirical state frequencies of 40k samples agree with p(s) within 5 sigma (the sampler draws from p; a
    learned Z2 mode weight included)."""
    m = make(kind, symmetric)
    if symmetric:
        with torch.no_grad():
            pi = float(m.mode_log_weights(torch.tensor([2.0]), torch.tensor([0.2]))[0].exp())
        assert abs(pi - 0.5) > 0.05
    torch.manual_seed(1)
    n = 40_000
    ranks = torch.arange(N).expand(n, -1).clone()  # one fixed order so p_sigma is a single distribution
    sb = m.sample(2.0, 0.2, batch=n, ranks=ranks)
    idx = ((sb.spins > 0).long() * (2 ** torch.arange(N - 1, -1, -1))).sum(1)
    counts = torch.bincount(idx, minlength=2 ** N).double()
    with torch.no_grad():
        p = m.log_prob(ALL, 2.0, 0.2, ranks[: len(ALL)]).double().exp()
    sigma = torch.sqrt(n * p * (1 - p))
    assert bool(((counts - n * p).abs() <= 5 * sigma + 1).all())


def test_symmetric_model_respects_spin_flip_with_field_reversal():
    """Z2 symmetrised q satisfies q(s | T, mu) = q(-s | T, -mu) exactly, like the Boltzmann target."""
    for kind in ("fo-arm", "ao-arm"):
        m = make(kind, symmetric=True)
        r = torch.arange(N).expand(len(ALL), -1)
        with torch.no_grad():
            a = m.log_prob(ALL, 2.0, 0.3, r)
            b = m.log_prob(-ALL, 2.0, -0.3, r)
        assert torch.allclose(a, b, atol=1e-6)


def test_made_is_autoregressive_in_raster_order():
    """The FO-ARM conditional of site i depends only on sites < i: its Jacobian is strictly lower triangular."""
    torch.manual_seed(0)
    m = build_model("fo-arm", n_sites=6, hidden=30, layers=3, T_scale=2.5, mu_scale=0.4)
    x = torch.zeros(1, 6 * 2, requires_grad=True)

    def logits_from_onehot(onehot):
        import torch.nn.functional as F

        c = m.cond(torch.tensor([2.0]), torch.tensor([0.1]))
        h = F.leaky_relu(m.inp(onehot) + c, 0.2)
        for lin in m.hid:
            h = h + F.leaky_relu(lin(h) + c, 0.2)
        return (m.out(h) + m.cond_out(c)).reshape(6, 2)[:, 0]

    J = torch.autograd.functional.jacobian(logits_from_onehot, x).reshape(6, 6, 2).abs().sum(-1)
    assert bool((torch.triu(J) == 0).all())
    assert bool((torch.tril(J, -1)[1:] != 0).any())


def test_made_masks_are_derived_not_saved_and_old_files_still_load():
    """The masks follow from the hyper-parameters: not in the state dict; a state dict written with them (older
    files) loads to the same distribution, and one whose mask is not the architecture's is refused."""
    torch.manual_seed(0)
    m = build_model("fo-arm", n_sites=6, hidden=30, layers=3)
    state = m.state_dict()
    assert not [k for k in state if k.endswith("mask")]
    old = {**state, **{f"{name}.mask": mod.mask.clone() for name, mod in m.named_modules() if hasattr(mod, "mask")}}
    fresh = build_model("fo-arm", n_sites=6, hidden=30, layers=3)
    fresh.load_state_dict(old, strict=True)
    s = torch.tensor(list(itertools.product([-1, 1], repeat=6)))
    T, mu = torch.full((len(s),), 2.0), torch.full((len(s),), 0.1)
    assert torch.allclose(fresh.log_prob(s, T, mu), m.log_prob(s, T, mu))
    old["inp.mask"] = torch.ones_like(old["inp.mask"])
    with pytest.raises(RuntimeError, match="inp.mask: the stored mask is not this architecture's"):
        fresh.load_state_dict(old)


def test_ao_conditionals_ignore_unknown_sites_values():
    """AO-ARM conditionals see only known sites: the one-hot 'unknown' class hides the value completely."""
    m = make("ao-arm")
    tokens = torch.tensor([[1, 0, 2, 0]])
    a = m.logits(tokens, torch.tensor([2.0]), torch.tensor([0.0]))
    b = m.logits(tokens.clone(), torch.tensor([2.0]), torch.tensor([0.0]))
    assert torch.equal(a, b)
    c = m.logits(torch.tensor([[2, 0, 2, 0]]), torch.tensor([2.0]), torch.tensor([0.0]))
    assert not torch.allclose(a, c)


def test_any_order_model_needs_its_order_for_log_prob():
    m = make("ao-arm")
    with pytest.raises(ValueError, match="order"):
        m.log_prob(ALL, 2.0, 0.0)


def test_unknown_model_kind_is_a_clear_error():
    from lattherm.engine.errors import LatthermError

    with pytest.raises(LatthermError, match="unknown model"):
        build_model("pixel-cnn", n_sites=4)


def _any_order_models(symmetric):
    """Every any-order model kind on a 2x2 cell (MLP, Transformer, both AO-MAMs), moved off its initialisation."""
    torch.manual_seed(1)
    cell = dict(lattice="square", size=(2, 2), heads=2)
    models = [build_model("ao-arm", "mlp", n_sites=N, hidden=16, layers=2, symmetric=symmetric),
              build_model("ao-arm", "transformer", hidden=16, layers=1, symmetric=symmetric, **cell),
              build_model("ao-mam", "mlp", n_sites=N, hidden=16, layers=2, symmetric=symmetric),
              build_model("ao-mam", "transformer", hidden=16, layers=1, symmetric=symmetric, **cell)]
    with torch.no_grad():
        for m in models:
            for p in m.parameters():
                p.add_(0.4 * torch.randn_like(p))
    return [m.eval() for m in models]


@pytest.mark.parametrize("symmetric", [False, True])
def test_conditionals_interface_is_the_models_distribution(symmetric):
    """Scoring a path through ``model.conditionals()`` alone (site by site, the way painting does) gives the model's
    own log_prob, normalised over every state for one order; a symmetric model (an AO-MAM pair included) is the Z2
    mixture of the two orientations."""
    from lattherm.engine.models.base import tokens_from_spins, z2_mixture

    ranks = random_ranks(1, N, generator=torch.Generator().manual_seed(0)).expand(len(ALL), -1)
    T, mu = torch.full((len(ALL),), 2.0), torch.full((len(ALL),), 0.3)
    for m in _any_order_models(symmetric):
        cond = m.conditionals()
        assert cond.symmetric == symmetric and cond.n_sites == N

        def path(s, mu):
            truth, tokens = tokens_from_spins(s), torch.zeros(len(s), N, dtype=torch.long)
            c, rows, lp = cond.condition(T, mu), torch.arange(len(s)), torch.zeros(len(s), dtype=torch.float64)
            for t in range(N):
                site = ranks.argsort(-1)[:, t]
                lp += cond.site_log_probs(tokens, c, site)[rows, truth[rows, site] - 1].double()
                tokens[rows, site] = truth[rows, site]
            return lp

        with torch.no_grad():
            lp = z2_mixture(path(ALL, mu), path(-ALL, -mu)) if symmetric else path(ALL, mu)
            assert torch.allclose(lp, m.log_prob(ALL, T, mu, ranks).double(), atol=1e-5), type(m).__name__
        assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-5)
    assert m.any_size and m.train_lattice.label == "2x2" and not _any_order_models(symmetric)[2].any_size


def test_a_fixed_order_model_has_no_any_order_conditionals():
    from lattherm.engine.errors import LatthermError

    with pytest.raises(LatthermError, match="any-order"):
        make("fo-arm").conditionals()
    with pytest.raises(LatthermError, match="4-site model cannot run on the 3x3 cell"):
        from lattherm.engine.lattices import lattice_for

        make("ao-arm").conditionals(lattice_for("square", "3x3"))
