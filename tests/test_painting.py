"""In-/out-painting: fixed sites are kept, the recorded log p is the exact path probability of the window procedure
(normalised over every assignment of the free sites, equal to teacher-forced re-scoring), sampling frequencies
follow it, Transformers paint larger cells directly, and bad constraints or targets are one-line errors."""

import itertools

import numpy as np
import pytest
import torch

from lattherm.engine.errors import LatthermError
from lattherm.engine.exact import exact_reference
from lattherm.engine.exact.conditionals import ExactConditionals
from lattherm.engine.lattices import lattice_for
from lattherm.engine.models import build_model
from lattherm.engine.sampling import (centered_plan, constraints_from_arrays, constraints_from_fixed,
                                      load_constraints, make_plan, paint, paint_log_prob, window_offsets,
                                      window_plan)
from lattherm.engine.store.samples import save_paint_npz
from lattherm.engine.systems import make_system



def perturb(m, scale=0.4, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(scale * torch.randn_like(p))
    return m.eval()


def mlp(n_sites, symmetric=False, seed=0, T_scale=2.5, mu_scale=0.4):
    torch.manual_seed(seed)
    m = build_model("ao-arm", "mlp", n_sites=n_sites, hidden=24, layers=2, symmetric=bool(symmetric),
                    T_scale=T_scale, mu_scale=mu_scale, mode_weight=symmetric == "weighted")
    m = perturb(m, seed=seed)
    if m.mode_weight is not None:  # a learned Z2 mode weight far from 1/2
        with torch.no_grad():
            for q in m.mode_weight.parameters():
                q.normal_(0, 2.0)
    return m


def transformer(size, kind="square", symmetric=False, seed=0, T_scale=2.5, mu_scale=0.4):
    torch.manual_seed(seed)
    m = build_model("ao-arm", "transformer", lattice=kind, size=size, hidden=16, heads=2, layers=1,
                    symmetric=symmetric, T_scale=T_scale, mu_scale=mu_scale)
    return perturb(m, 0.3, seed)


def all_assignments(free_idx, fixed_spins, n_sites):
    """Every configuration with the fixed sites as given and the free sites enumerated."""
    combos = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=len(free_idx))))
    s = torch.as_tensor(fixed_spins, dtype=torch.float32).expand(len(combos), n_sites).clone()
    s[:, torch.as_tensor(free_idx)] = combos
    return s


def check_normalised(model, system, mask, values, T, mu, **kw):
    """Sum over all free-site assignments of the path probability along one recorded order and plan is 1."""
    res = paint(model, system, T, mu, 4, mask, values, generator=torch.Generator().manual_seed(3), **kw)
    again = paint_log_prob(model, T, mu, res.spins, res.order, res.plan)
    assert torch.allclose(res.log_p, again, atol=1e-5)
    N = system.n_sites
    free = np.flatnonzero(~res.plan.mask)
    states = all_assignments(free, res.plan.values, N)
    order = res.order[:1].expand(len(states), -1)
    lp = paint_log_prob(model, T, mu, states, order, res.plan)
    assert float(lp.exp().sum()) == pytest.approx(1.0, abs=1e-5)
    return res


# ---- correctness ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["centered", "sliding"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("symmetric", [False, True, "weighted"])
def test_ising_2x4_from_2x2_window_is_normalised(layout, stride, symmetric):
    system = make_system("ising", "2x4")
    mask = np.zeros((2, 4), bool)
    mask[0, 0] = mask[1, 2] = True
    values = np.where(mask, np.array([[1, 0, 0, 0], [0, 0, -1, 0]]), 0)
    res = check_normalised(mlp(4, symmetric), system, mask, values, 2.0, 0.25, stride=stride, layout=layout)
    # centered, stride 1 on a 2-wide window: two central windows per site, their conditionals combined
    # centered: one step per column block; sliding: windows at offsets 0, s, ... until the periodic image
    assert len(res.plan.windows) == {("centered", 1): 4, ("centered", 2): 2, ("sliding", 1): 3,
                                     ("sliding", 2): 2}[layout, stride]
    assert res.plan.layout == layout


def test_cuau_2x2x4_from_2x2x2_window_is_normalised():
    system = make_system("cuau", "2x2x4")
    rng = np.random.default_rng(0)
    mask = np.zeros(16, bool)
    mask[rng.choice(16, 6, replace=False)] = True
    values = rng.choice([-1.0, 1.0], 16)
    for layout in ("centered", "sliding", "auto"):
        res = check_normalised(mlp(8, T_scale=700.0, mu_scale=0.12), system, mask, values, 600.0, 0.05,
                               window=(2, 2, 2), layout=layout)
        assert res.plan.stride == (1, 1, 1) and len(res.plan.windows) >= 2
        # auto: a 2-wide window has no room around a site, so whole-cell sliding windows are used
        assert res.plan.layout == ("sliding" if layout == "auto" else layout)


def test_transformer_direct_paint_is_normalised():
    system = make_system("ising", "2x4")
    mask = np.zeros(8, bool)
    mask[[0, 5, 6]] = True
    values = np.array([1, 0, 0, 0, 0, -1, 1, 0])
    res = check_normalised(transformer((2, 2)), system, mask, values, 2.2, -0.1)
    assert res.plan.method == "direct" and len(res.plan.windows) == 1


def test_fixed_sites_are_never_changed_and_order_is_recorded():
    system = make_system("ising", "5x7")
    rng = np.random.default_rng(1)
    mask = rng.random((5, 7)) < 0.3
    values = rng.choice([-1, 1], (5, 7))
    T = torch.tensor([1.5, 2.5, 3.5] * 4, dtype=torch.float64)
    mu = torch.tensor([-0.4, 0.0, 0.4] * 4, dtype=torch.float64)
    for model in (mlp(9), mlp(9, symmetric=True)):
        res = paint(model, system, T, mu, 12, mask, values, generator=torch.Generator().manual_seed(0))
        m = torch.as_tensor(mask.reshape(-1))
        assert torch.equal(res.spins[:, m], torch.as_tensor(values.reshape(-1)[mask.reshape(-1)],
                                                            dtype=torch.float32).expand(12, -1))
        assert set(res.spins.unique().tolist()) <= {-1.0, 1.0}
        assert bool((res.order[:, m] == -1).all())
        n_free = int((~m).sum())
        assert torch.equal(res.order[:, ~m].sort(-1).values, torch.arange(n_free).expand(12, -1))
        assert torch.allclose(res.log_f, system.log_f(res.spins, T, mu))
        assert torch.allclose(res.log_p, paint_log_prob(model, T, mu, res.spins, res.order, res.plan), atol=1e-5)
        assert bool((res.log_p < 0).all())


def test_painting_samples_follow_their_path_probabilities():
    """With one fixed order, empirical frequencies of the 2^5 free-site states agree with exp(log p) (5 sigma)."""
    system = make_system("ising", "2x4")
    mask = np.zeros(8, bool)
    mask[[1, 6, 7]] = True
    values = np.array([0, -1, 0, 0, 0, 0, 1, 1])
    model = mlp(4, seed=2)
    order = torch.tensor([4.0, 0, 7, 1, 3, 6, 5, 2])
    n = 20_000
    res = paint(model, system, 2.0, 0.1, n, mask, values, generator=torch.Generator().manual_seed(5), stride=1,
                order=order)
    free = np.flatnonzero(~mask)
    idx = ((res.spins[:, free] > 0).long() * (2 ** torch.arange(len(free) - 1, -1, -1))).sum(1)
    counts = torch.bincount(idx, minlength=2 ** len(free)).double()
    states = all_assignments(free, np.where(mask, values, 0), 8)
    p = paint_log_prob(model, 2.0, 0.1, states, res.order[:1].expand(len(states), -1), res.plan).exp()
    assert float(p.sum()) == pytest.approx(1.0, abs=1e-5)
    sigma = torch.sqrt(n * p * (1 - p))
    assert bool(((counts - n * p).abs() <= 5 * sigma + 1).all())


def test_transformer_paints_6x6_from_3x3_directly_and_through_windows():
    system = make_system("ising", "6x6")
    model = transformer((3, 3))
    mask = np.zeros((6, 6), bool)
    mask[0, :] = mask[:, 2] = True
    values = np.where(np.indices((6, 6)).sum(0) % 2 == 0, 1, -1)
    for kw in ({}, {"period_mode": "target"}, {"method": "windows", "stride": 3}):
        res = paint(model, system, 2.27, 0.0, 3, mask, values, generator=torch.Generator().manual_seed(1), **kw)
        assert res.spins.shape == (3, 36)
        assert torch.equal(res.spins[:, mask.reshape(-1)],
                           torch.as_tensor(values[mask], dtype=torch.float32).expand(3, -1))
        assert torch.allclose(res.log_p, paint_log_prob(model, 2.27, 0.0, res.spins, res.order, res.plan),
                              atol=1e-5)
        assert res.plan.method == ("windows" if kw.get("method") else "direct")


def test_window_plans_cover_the_target():
    assert window_offsets(20, 10, 3) == [0, 3, 6, 9, 12]
    assert window_offsets(8, 4, 1) == [0, 1, 2, 3, 4]
    assert window_offsets(4, 4, 1) == [0]
    big = lattice_for("square", "20x20")
    wins = window_plan(big, (10, 10))
    assert len(wins) == 25 and set(np.concatenate(wins).tolist()) == set(range(400))
    fcc = lattice_for("fcc", "4x4x8")
    wins = window_plan(fcc, (2, 2, 4))
    assert len(wins) == 3 * 3 * 5 and set(np.concatenate(wins).tolist()) == set(range(128))
    # window site k sits at target grid (offset + window grid k), wrapped
    assert wins[-1][0] == fcc.index(np.array([2, 2, 4]))
    plan = make_plan(mlp(4), lattice_for("square", "2x4"), stride=2, layout="sliding")
    assert [w.tolist() for w in plan.windows] == [[0, 1, 4, 5], [2, 3, 6, 7]]


@pytest.mark.parametrize("stride", [1, 3])
def test_centered_blocks_sit_away_from_the_window_seams(stride):
    big = lattice_for("square", "20x20")
    steps = centered_plan(big, (10, 10), stride)
    assert len(steps) == (400 if stride == 1 else 7 * 7)
    generated = np.concatenate([st.block for st in steps])
    assert sorted(generated.tolist()) == list(range(400))  # every site exactly once
    wgrid = lattice_for("square", "10x10").grid
    margin = (10 - stride) // 2
    for st in steps:
        assert len(st.views) == 4  # w - s odd: two central positions per axis
        for idx in st.views:
            g = big.grid[idx]
            assert ((g - g[0]) % 20 == wgrid).all()  # a contiguous (periodic) 10x10 patch of the target
            # the block keeps >= `margin` window sites between itself and either edge (the wrong torus seam)
            local = (big.grid[st.block] - g[0]) % 20
            assert (local >= margin).all() and (local < 10 - margin).all()
    assert len(centered_plan(big, (10, 10), 1, views=1)[0].views) == 1
    assert make_plan(mlp(100), big).layout == "centered"  # auto, with room around every site
    # an axis the window spans completely is painted as the periodic whole
    fcc = lattice_for("fcc", "2x2x8")
    steps = centered_plan(fcc, (2, 2, 4), 1)
    assert len(steps) == 8 and all(st.block.size == 4 and len(st.views) == 2 for st in steps)


@pytest.mark.slow
def test_centered_layout_beats_the_sliding_one_with_a_perfect_window_model():
    """With the exact 3x3-torus conditionals as the window model, what is left of F_q - F is the layout's own
    error on the 6x6 target. The paper's sliding windows generate sites on the window edge, conditioned on the
    opposite edge as a neighbour; the centered layout gives each site its true neighbours."""
    window = make_system("ising", "3x3")
    target = make_system("ising", "6x6")
    oracle = ExactConditionals(window)
    T, mu, n = 2.5, 0.0, 400
    floor = -exact_reference(target, T, mu).log_Z
    gaps = {}
    for layout in ("centered", "sliding"):
        res = paint(oracle, target, T, mu, n, generator=torch.Generator().manual_seed(2), window=window.lattice,
                    layout=layout)
        d = (res.log_p - res.log_f).double()
        gaps[layout] = (float(d.mean()) - floor, float(d.std()) / n ** 0.5)
    # both above the exact floor (F_q is an upper bound), the centered one far closer (measured 0.49 vs 5.4)
    for gap, err in gaps.values():
        assert gap > -3 * err
    assert gaps["centered"][0] < 1.0 < 3.0 < gaps["sliding"][0]


@pytest.mark.parametrize("arch", ["mlp", "transformer"])
def test_a_symmetric_ao_mam_paints_its_own_mixture(arch):
    """Painted on its own cell in one window with no fixed site, a paint is the model's own sampler: the recorded
    log p is the model's log_prob along the recorded order, the Z2 mixture of the AO-MAM pair (not its component)."""
    torch.manual_seed(4)
    extra = dict(lattice="square", size=(2, 2), heads=2) if arch == "transformer" else dict(n_sites=4)
    model = perturb(build_model("ao-mam", arch, hidden=16, layers=1, symmetric=True, T_scale=2.5, mu_scale=0.4,
                                **extra), 0.4, 4)
    system = make_system("ising", "2x2")
    res = paint(model, system, 2.0, 0.3, 64, generator=torch.Generator().manual_seed(0), window=system.lattice,
                layout="sliding")
    assert len(res.plan.steps) == 1 and res.plan.conditionals.symmetric
    with torch.no_grad():
        own = model.log_prob(res.spins, 2.0, 0.3, res.order).double()
    assert torch.allclose(res.log_p, own, atol=1e-5)


# ---- errors ---------------------------------------------------------------------------------------------------
def test_bad_constraints_and_targets_are_one_line_errors():
    system = make_system("ising", "4x4")
    model = mlp(4)
    ok_mask = np.zeros((4, 4), bool)
    ok_mask[0, 0] = True
    ok_vals = np.ones((4, 4))
    cases = [
        (dict(mask=np.zeros((4, 5), bool), values=np.ones((4, 5))), "mask has shape"),
        (dict(mask=ok_mask, values=np.ones(15)), "values have shape"),
        (dict(mask=ok_mask, values=np.zeros((4, 4))), "-1/\\+1"),
        (dict(mask=ok_mask, values=2 * ok_vals), "-1/\\+1"),
        (dict(mask=np.ones((4, 4), bool), values=ok_vals), "every site is fixed"),
        (dict(mask=ok_mask, values=None), "values are missing"),
    ]
    for kw, msg in cases:
        with pytest.raises(LatthermError, match=msg) as exc:
            paint(model, system, 2.0, 0.0, 2, **kw)
        assert "\n" not in str(exc.value)
    with pytest.raises(LatthermError, match="larger than the target"):
        paint(mlp(9), make_system("ising", "2x4"), 2.0, 0.0, 2, window=(3, 3))
    with pytest.raises(LatthermError, match="stride"):
        paint(model, system, 2.0, 0.0, 2, stride=3)
    with pytest.raises(LatthermError, match="layout 'spiral'"):
        paint(model, system, 2.0, 0.0, 2, layout="spiral")
    with pytest.raises(LatthermError, match="window"):
        paint(mlp(8), make_system("cuau", "2x2x4"), 600.0, 0.0, 2)  # fcc window cannot be inferred
    with pytest.raises(LatthermError, match="cannot paint"):
        paint(mlp(4), make_system("cuau", "2x2x4"), 600.0, 0.0, 2, window=lattice_for("square", "2x2"))
    with pytest.raises(LatthermError, match="multiple"):
        paint(transformer((3, 3)), system, 2.0, 0.0, 2, period_mode="trained")
    with pytest.raises(LatthermError, match="square"):
        paint(transformer((3, 3)), make_system("cuau", "2x2x4"), 600.0, 0.0, 2)
    with pytest.raises(LatthermError, match="any-order"):
        paint(build_model("fo-arm", n_sites=4, hidden=8, layers=2), system, 2.0, 0.0, 2)
    with pytest.raises(LatthermError, match="temperature"):
        paint(model, system, -1.0, 0.0, 2)


def _fixed_list(mask, values):
    """The GUI's flat list: the spin at a fixed site, 0 at a free one."""
    return None if mask is None else np.where(np.asarray(mask).reshape(-1), np.asarray(values).reshape(-1), 0)


@pytest.mark.parametrize("problem", ["shape", "values", "all fixed"])
def test_every_constraint_entry_point_names_the_problem(tmp_path, problem):
    """Arrays, the GUI's -1/0/+1 list and a constraints file go through one check, each refusing a wrong shape,
    a value that is no spin and a lattice with nothing left to paint in one line that says which."""
    system = make_system("ising", "3x3")
    target = system.lattice
    mask, values = np.zeros((3, 3), bool), np.ones((3, 3))
    mask[1, 1] = True
    if problem == "shape":
        mask, values = np.zeros((3, 4), bool), np.ones((3, 4))
        expect = {"arrays": "mask has shape \\(3, 4\\)", "fixed": "fixed must list 9 values.*shape \\(12,\\)",
                  "file": "mask has shape \\(3, 4\\)"}
    elif problem == "values":
        values[1, 1] = 2.0
        expect = {"arrays": "spins -1/\\+1", "file": "values at fixed sites must be spins -1/\\+1",
                  "fixed": "fixed must list 9 values in -1, 0 \\(free\\), \\+1; site 4 has 2"}
    else:
        mask[:] = True
        expect = dict.fromkeys(("arrays", "fixed", "file"), "every site is fixed: nothing to paint")
    np.savez(tmp_path / "c.npz", mask=mask, values=values)
    calls = {"arrays": lambda: constraints_from_arrays(target, mask, values),
             "fixed": lambda: constraints_from_fixed(target, _fixed_list(mask, values).tolist()),
             "file": lambda: load_constraints(tmp_path / "c.npz", system)}
    for entry, call in calls.items():
        with pytest.raises(LatthermError, match=expect[entry]) as exc:
            call()
        assert "\n" not in str(exc.value), entry


def test_constraint_entry_points_agree(tmp_path):
    """The same fixed sites from arrays, from the GUI's list and from a file give one (mask, spins) pair; free sites
    hold 0, and a file missing its arrays or an unnumeric list is refused by name."""
    system = make_system("ising", "3x3")
    mask = np.eye(3, dtype=bool)
    values = np.where(np.indices((3, 3)).sum(0) % 4 == 0, 1.0, -1.0)
    np.savez(tmp_path / "c.npz", mask=mask, values=values)
    fixed = _fixed_list(mask, values)
    got = [constraints_from_arrays(system.lattice, mask, values), constraints_from_fixed(system.lattice, fixed),
           constraints_from_fixed(system.lattice, fixed.reshape(3, 3)), load_constraints(tmp_path / "c.npz", system)]
    for m, v in got:
        assert m.tolist() == mask.reshape(-1).tolist() and v.tolist() == np.where(mask, values, 0).reshape(-1).tolist()
    for m, v in (constraints_from_fixed(system.lattice, []), constraints_from_fixed(system.lattice, None)):
        assert not m.any() and not v.any()
    np.savez(tmp_path / "no_mask.npz", values=values)
    with pytest.raises(LatthermError, match="lacks mask"):
        load_constraints(tmp_path / "no_mask.npz", system)
    with pytest.raises(LatthermError, match="not numbers"):
        constraints_from_fixed(system.lattice, ["up"] * 9)


# ---- files ----------------------------------------------------------------------------------------------------
def test_constraint_files_and_output_npz(tmp_path):
    alloy = make_system("cuau", "2x2x4")
    mask = np.zeros((2, 2, 4), bool)
    mask[0, 0, :] = True
    species = np.zeros((2, 2, 4), np.int64)
    species[0, 0, 1::2] = 1  # Au at two fixed sites
    np.savez(tmp_path / "c.npz", mask=mask, values=species)
    m, v = load_constraints(tmp_path / "c.npz", alloy)
    assert m.shape == (16,) and v[m].tolist() == [-1.0, 1.0, -1.0, 1.0] and bool((v[~m] == 0).all())
    res = paint(mlp(8, T_scale=700.0, mu_scale=0.12), alloy, 600.0, 0.02, 3, m, v,
                generator=torch.Generator().manual_seed(0), window=(2, 2, 2))
    out = save_paint_npz(tmp_path / "out" / "painted.npz", res, alloy)
    with np.load(out) as z:
        assert z["samples"].shape == (3, 2, 2, 4) and set(np.unique(z["samples"]).tolist()) <= {0, 1}
        assert bool((z["samples"][:, 0, 0, :] == species[0, 0]).all())
        assert z["log_p"].dtype == np.float64 and z["log_p"].shape == (3,) and z["log_f"].shape == (3,)
        assert z["order"].shape == (3, 2, 2, 4) and z["mask"].shape == (2, 2, 4)
        assert np.allclose(z["log_p"], res.log_p.numpy())
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no temp file left

    ising = make_system("ising", "4x4")
    np.savez(tmp_path / "bad.npz", mask=np.ones((4, 4), bool)[:3], values=np.ones((4, 4)))
    with pytest.raises(LatthermError, match="mask has shape"):
        load_constraints(tmp_path / "bad.npz", ising)
    np.savez(tmp_path / "bad2.npz", mask=np.eye(4, dtype=bool), values=np.zeros((4, 4)))
    with pytest.raises(LatthermError, match="spins"):
        load_constraints(tmp_path / "bad2.npz", ising)
    np.savez(tmp_path / "bad3.npz", mask=np.eye(4, dtype=bool))
    with pytest.raises(LatthermError, match="lacks values"):
        load_constraints(tmp_path / "bad3.npz", ising)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(LatthermError, match="readable"):
        load_constraints(tmp_path / "junk.npz", ising)
    with pytest.raises(LatthermError, match="no such"):
        load_constraints(tmp_path / "missing.npz", ising)
