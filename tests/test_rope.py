"""Periodic axial RoPE and the AO-ARM Transformer: exact periodicity, relative-only attention, translation
equivariance on 2D square and 3D fcc supercells, condition added to every token, any-size views, save/rebuild."""

import itertools

import numpy as np
import pytest
import torch

from lattherm.engine.errors import LatthermError
from lattherm.engine.lattices import lattice_for
from lattherm.engine.models import build_model, random_ranks
from lattherm.engine.models.rope import apply_rope, axial_frequencies, rope_angles, rope_periods, rope_tables


CELLS = [("square", (4, 4)), ("fcc", (2, 2, 4))]


def make(kind="square", size=(4, 4), seed=0, dtype=torch.float64, **kw):
    torch.manual_seed(seed)
    m = build_model("ao-arm", "transformer", lattice=kind, size=size, hidden=24, heads=2, layers=2,
                    T_scale=2.5, mu_scale=0.4, **kw)
    with torch.no_grad():  # move away from the initialisation so nothing is accidentally symmetric
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m.to(dtype).eval()


@pytest.mark.parametrize("kind,size", CELLS)
def test_rotation_is_exactly_periodic(kind, size):
    """Positions g and g + L e_a get bit-identical rotations, in both period modes (target = 2x the cell)."""
    lat = lattice_for(kind, list(size))
    freqs = axial_frequencies(size, 3)
    big = tuple(2 * v for v in size)
    for periods in (rope_periods(size, big, "trained"), rope_periods(size, big, "target")):
        base = rope_angles(lat.grid, periods, freqs)
        for a in range(lat.dim):
            shift = np.zeros(lat.dim, dtype=np.int64)
            shift[a] = periods[a]
            for k in (1, -1, 3):
                assert torch.equal(rope_angles(lat.grid + k * shift, periods, freqs), base)
        c0, s0 = rope_tables(lat.grid, periods, freqs, dtype=torch.float64)
        c1, s1 = rope_tables(lat.grid + np.asarray(periods), periods, freqs, dtype=torch.float64)
        assert torch.equal(c0, c1) and torch.equal(s0, s1)


@pytest.mark.parametrize("kind,size", CELLS)
def test_attention_logits_depend_only_on_displacement_mod_L(kind, size):
    """q_i . k_j with the same content everywhere is a function of (g_i - g_j) mod L only, and varies with it."""
    lat = lattice_for(kind, list(size))
    d_h, D = 14, lat.dim  # leaves an unrotated remainder in 3D (14 = 3 * 4 + 2)
    freqs = axial_frequencies(size, (d_h // (2 * D)))
    cos, sin = rope_tables(lat.grid, size, freqs, dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    q = torch.randn(d_h, generator=g, dtype=torch.float64).expand(lat.n_sites, -1)
    k = torch.randn(d_h, generator=g, dtype=torch.float64).expand(lat.n_sites, -1)
    logits = apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).T
    disp = np.mod(lat.grid[:, None, :] - lat.grid[None, :, :], np.asarray(size))
    keys = [tuple(d) for d in disp.reshape(-1, D)]
    seen = {}
    for key, val in zip(keys, logits.reshape(-1).tolist()):
        seen.setdefault(key, []).append(val)
    for vals in seen.values():
        assert max(vals) - min(vals) < 1e-12
    assert len({round(v[0], 9) for v in seen.values()}) > 1


def _shift_perms(lat):
    vecs = [np.eye(lat.dim, dtype=np.int64)[a] @ lat.vectors for a in range(lat.dim)]
    vecs.append(sum((a + 1) * v for a, v in enumerate(vecs)))  # a combined lattice vector
    return [lat.shifted(v)[:, 0] for v in vecs]


@pytest.mark.parametrize("kind,size,view", [("square", (4, 4), None), ("fcc", (2, 2, 4), None),
                                            ("square", (4, 4), ((8, 4), "trained")),
                                            ("square", (4, 4), ((6, 5), "target")),
                                            ("fcc", (2, 2, 2), ((2, 2, 4), "trained"))])
def test_translation_shifts_conditionals_exactly(kind, size, view):
    """Shifting a partial configuration by a lattice vector permutes the conditionals the same way (float64)."""
    m = make(kind, size)
    lat = lattice_for(kind, list(size)) if view is None else lattice_for(kind, list(view[0]))
    net = m if view is None else m.for_lattice(lat, view[1])
    g = torch.Generator().manual_seed(2)
    B = 3
    tokens = torch.randint(0, 3, (B, lat.n_sites), generator=g)  # 0 = unknown, 1/2 = species
    T, mu = torch.tensor([1.5, 2.5, 3.5]), torch.tensor([-0.3, 0.0, 0.2])
    with torch.no_grad():
        ref = net.logits(tokens, T, mu)
        for perm in _shift_perms(lat):
            shifted = torch.empty_like(tokens)
            shifted[:, perm] = tokens  # the value at site i moves to the site at r_i + v
            out = net.logits(shifted, T, mu)
            assert torch.allclose(out[:, perm], ref, atol=1e-10, rtol=0)
            assert not torch.allclose(out, ref, atol=1e-6)  # the shift really moved something


def test_condition_is_added_to_every_token():
    """Changing T (or mu) changes the conditional of every site, known or unknown."""
    m = make()
    tokens = torch.tensor([[0, 1, 2, 0] * 4])
    with torch.no_grad():
        a = m.logits(tokens, torch.tensor([2.0]), torch.tensor([0.1]))
        b = m.logits(tokens, torch.tensor([2.6]), torch.tensor([0.1]))
        c = m.logits(tokens, torch.tensor([2.0]), torch.tensor([-0.2]))
    assert bool(((a - b).abs().amax(-1) > 1e-6).all())
    assert bool(((a - c).abs().amax(-1) > 1e-6).all())


def test_path_probabilities_sum_to_one_and_sampling_is_exact():
    """On a 2x2 cell all 16 path probabilities sum to 1 for several orders; sampled log p equals log_prob; a
    larger view (4x4) and a symmetric model also give exact path log p."""
    m = make(size=(2, 2), dtype=torch.float32)
    states = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=4)))
    for r in random_ranks(3, 4, generator=torch.Generator().manual_seed(0)):
        with torch.no_grad():
            lp = m.log_prob(states, 2.0, 0.2, r.expand(16, -1))
        assert float(lp.double().exp().sum()) == pytest.approx(1.0, abs=1e-5)
    for net in (m, m.for_lattice("4x4", "trained"), make(size=(2, 2), symmetric=True, dtype=torch.float32)):
        sb = net.sample(torch.tensor([1.5, 3.0] * 3), torch.tensor([0.3, -0.2] * 3))
        assert sb.spins.shape == (6, net.n_sites)
        with torch.no_grad():
            again = net.log_prob(sb.spins, torch.tensor([1.5, 3.0] * 3), torch.tensor([0.3, -0.2] * 3), sb.ranks)
        assert torch.allclose(sb.log_p, again.double(), atol=1e-5)


def test_views_periods_and_errors():
    m = make(dtype=torch.float32)
    assert m.for_lattice("8x12", "trained").n_sites == 96
    assert m.periods("8x12", "trained") == (4, 4) and m.periods("8x12", "target") == (8, 12)
    with pytest.raises(LatthermError, match="multiple"):
        m.for_lattice("6x6", "trained")
    assert m.for_lattice("6x6", "target").n_sites == 36
    with pytest.raises(LatthermError, match="fcc"):
        m.for_lattice(lattice_for("fcc", "2x2x2"))
    with pytest.raises(LatthermError, match="period mode"):
        m.for_lattice("8x8", "nearest")
    with pytest.raises(LatthermError, match="size"):
        build_model("ao-arm", "transformer", lattice="fcc", n_sites=16)
    assert build_model("ao-arm", "transformer", n_sites=25).train_size == (5, 5)  # square L x L is inferred


def test_hparams_rebuild_the_same_network():
    """hparams() + state_dict rebuild an identical model (what io.py does); RoPE tables are not weights."""
    m = make("fcc", (2, 2, 4), dtype=torch.float32)
    hp = m.hparams()
    assert hp["arch"] == "transformer" and hp["size"] == [2, 2, 4] and hp["n_sites"] == 16
    kind, arch = hp.pop("kind"), hp.pop("arch")
    m2 = build_model(kind, arch, **hp)
    m2.load_state_dict(m.state_dict(), strict=True)
    tokens = torch.randint(0, 3, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(m.logits(tokens, 700.0, 0.05), m2.logits(tokens, 700.0, 0.05))
    assert not any("rope" in k or "table" in k for k in m.state_dict())


def test_apply_rope_rotates_each_pair_by_its_angle_and_passes_the_rest_through():
    lat = lattice_for("square", [4, 6])
    freqs = axial_frequencies((4, 6), 2)
    ang = rope_angles(lat.grid, (4, 6), freqs)  # (N, 4)
    C, S = rope_tables(lat.grid, (4, 6), freqs, dtype=torch.float64)
    x = torch.randn(3, lat.n_sites, 11, dtype=torch.float64)  # 8 rotated channels + 3 passed through
    out = apply_rope(x, C, S)
    u, v = x[..., 0:8:2], x[..., 1:8:2]
    assert torch.allclose(out[..., 0:8:2], u * ang.cos() - v * ang.sin(), atol=1e-12)
    assert torch.allclose(out[..., 1:8:2], u * ang.sin() + v * ang.cos(), atol=1e-12)
    assert torch.equal(out[..., 8:], x[..., 8:])
    assert torch.allclose(out.norm(dim=-1), x.norm(dim=-1), atol=1e-12)  # a rotation keeps the norm
