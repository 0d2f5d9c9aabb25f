"""Maximum likelihood weighted to the conditionals a window model paints with ([data] paint_known).

The table of (known set, site) pairs is exactly what the painting walk shows each window (a probe records it); the
painting rows of the MLE estimator, summed over the table on the windows of one target configuration, are the
teacher-forced path log p of painting it; the other rows stay the order-agnostic estimator; a run trains with
them; bad keys are one line and no run.
"""

import numpy as np
import pytest
import torch

from _training import assert_refused_without_run
from lattherm.engine.config import parse_config
from lattherm.engine.lattices import lattice_for
from lattherm.engine.models import build_model
from lattherm.engine.models.any_order import Conditionals
from lattherm.engine.sampling.painting import _walk, make_plan, paint_log_prob
from lattherm.engine.sampling.plan import PaintPlan, free_steps, known_sets, layout_steps
from lattherm.engine.training import Trainer
from lattherm.engine.training.mle import PaintingKnownSets, forward_log_likelihood, order_agnostic_log_likelihood, \
    random_known_sets


def _model(n, seed=0):
    torch.manual_seed(seed)
    model = build_model("ao-arm", "mlp", n_sites=n * n, n_species=2, hidden=16, layers=2, symmetric=False,
                        T_scale=2.5, mu_scale=0.4)
    with torch.no_grad():  # make the conditionals depend strongly on the known sites
        for name, p in model.named_parameters():
            if "out_w" in name:
                p.normal_(0, 1.0)
    return model


@pytest.mark.parametrize("cell, size", [((3, 3), (6, 6)), ((4, 4), (8, 8)), ((4, 4), (6, 9))])
def test_the_table_is_what_the_walk_shows_every_window(cell, size):
    """A probe conditional records the known tokens and the site of every call of the paint walk: they are the
    table's rows in order (one view per site for an odd cell, four for an even one)."""
    target = lattice_for("square", list(size))
    steps = layout_steps(target, cell)[0]
    seen = []

    def probe(tokens, c, site):
        seen.append(((tokens[0] != 0).numpy().copy(), int(site[0])))
        return torch.full((tokens.shape[0], 2), float(np.log(0.5)))

    n_w = cell[0] * cell[1]
    cond = Conditionals(probe, lambda T, mu: torch.zeros(len(T), 2), n_w, False, torch.device("cpu"))
    mask = np.zeros(target.n_sites, dtype=bool)
    plan = PaintPlan(target, mask, np.zeros(target.n_sites), free_steps(steps, mask), cond, "windows", cell,
                     (1, 1), "centered")
    _walk(plan, torch.full((1,), 2.0), torch.zeros(1), torch.zeros(1, target.n_sites, dtype=torch.long),
          torch.rand(1, target.n_sites), generator=torch.Generator().manual_seed(0))
    known, site = known_sets(target, steps)
    assert len(seen) == len(site) == target.n_sites * (1 if cell[0] % 2 else 4)
    for (k, s), k_table, s_table in zip(seen, known, site):
        assert s == s_table and np.array_equal(k, k_table)
    assert known[0].sum() == 0 and known[-1].sum() == n_w - 1  # the first site sees nothing, the last everything else


def test_painting_rows_sum_to_the_paint_path_log_p_and_the_other_rows_stay_order_agnostic():
    """3x3 windows paint 6x6 with one central view: N log p(x_site | x_known) over the table's rows, each on the
    window of one 6x6 configuration and divided by N, adds up to the teacher-forced path log p of painting that
    configuration; with paint_known = 1/2 the unpainted rows equal the order-agnostic estimator of the same draws."""
    model = _model(3)
    target = lattice_for("square", [6, 6])
    plan = make_plan(model, target, layout="centered")
    known, site = known_sets(target, [st for st in plan.steps])
    y = torch.where(torch.rand(2, 36, generator=torch.Generator().manual_seed(3)) < 0.6, 1.0, -1.0)
    order = torch.empty(2, 36, dtype=torch.long)
    for t, st in enumerate(plan.steps):
        order[:, st.block] = t
    T, mu = torch.tensor([2.2, 3.0]), torch.tensor([0.3, -0.1])
    path = paint_log_prob(plan, T, mu, y, order)
    total = torch.zeros(2, dtype=torch.float64)
    with torch.no_grad():
        for r, st in enumerate(plan.steps):  # one view per step: row r of the table is step r
            table = PaintingKnownSets(torch.as_tensor(known[r:r + 1]), torch.as_tensor(site[r:r + 1]), 1.0)
            x = y[:, torch.as_tensor(st.views[0])]
            total += forward_log_likelihood(model, x, T.float(), mu.float(), paint=table).double() / 9
    assert torch.allclose(total, path, atol=1e-4), (total, path)

    x = torch.where(torch.rand(64, 9, generator=torch.Generator().manual_seed(4)) < 0.5, 1.0, -1.0)
    T, mu = torch.full((64,), 2.5), torch.full((64,), 0.1)
    table = PaintingKnownSets(torch.as_tensor(known), torch.as_tensor(site), 0.5)
    with torch.no_grad():
        mixed = forward_log_likelihood(model, x, T, mu, generator=torch.Generator().manual_seed(5), paint=table)
        g = torch.Generator().manual_seed(5)
        ranks, k = random_known_sets(64, 9, generator=g)
        painted = torch.rand(64, generator=g) < 0.5
        plain = order_agnostic_log_likelihood(model, x, T, mu, ranks < k[:, None])
    assert 10 < int(painted.sum()) < 54
    assert torch.allclose(mixed[~painted], plain[~painted], atol=1e-5)
    assert not torch.allclose(mixed[painted], plain[painted], atol=1e-3)


RUN = """
[system]
name = "ising"
size = "3x3"
[model]
kind = "ao-arm"
hidden = 16
layers = 1
[conditions]
T = [1.5, 3.5]
T_points = 2
mu = [-0.4, 0.4]
mu_points = 2
samples_per_epoch = 64
[training]
objective = "mle"
batch = 16
steps = 6
lr = 2e-3
seed = 1
checkpoint_every = 3
log_every = 3
threads = 1
[data]
paint_known = 0.5
samples = 200
chains = 20
equilibration = 20
pilot = 16
max_thin = 4
"""


def test_a_run_with_painting_known_sets_trains_and_keeps_the_keys():
    tr = Trainer.create(RUN.replace("paint_known = 0.5", "paint_known = 0.5\npaint_size = \"6x9\""))
    assert tr.train() == "finished"
    assert tr.objectives["mle"].paint.known.shape == (54, 9)
    records = tr.run.read_metrics()
    assert all(np.isfinite(r["nll_per_site"]) for r in records)
    saved = parse_config(tr.run.config_text())
    assert saved.data.paint_known == 0.5 and saved.data.paint_size == "6x9"


BAD = [
    (("paint_known = 0.5", "paint_known = 1.5"), "[data] paint_known must be"),
    (("paint_known = 0.5", "paint_known = 0.5\npaint_size = \"3x3\""), "[data] paint_size (3x3) must be larger"),
    (("paint_known = 0.5", "paint_known = 0.5\npaint_size = \"2x8\""), "[data] paint_size (2x8) must be larger"),
    (("paint_known = 0.5", "paint_known = 0.5\npaint_size = \"6x\""), "[data] paint_size: not a size of ising"),
    (("paint_known = 0.5", "paint_size = \"6x6\""), "[data] paint_size needs paint_known > 0"),
    (("kind = \"ao-arm\"", "kind = \"fo-arm\""), "[data] paint_known needs an any-order MLP"),
    (("objective = \"mle\"", "objective = \"reinforce\""), "[data] paint_known weights the maximum-likelihood"),
]


@pytest.mark.parametrize("change, message", BAD)
def test_bad_painting_keys_name_the_key_and_create_no_run(change, message):
    assert_refused_without_run(RUN.replace(*change), message)
