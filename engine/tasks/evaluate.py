"""Evaluate a model's free energies over a condition grid: on its own lattice, or on a larger one it paints.

Condition i is drawn from its own generator, seeded from (seed, i), so the table does not depend on which process
drew which condition: in a distributed world (torchrun, or ``lattherm evaluate --nproc N``) the conditions are
split over the ranks (strided), every rank draws its own, and the rows are gathered in grid order into the table
one process writes for the same seed (distributed.shard_map; the other ranks return None).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._common import (DEFAULT_BATCH, check_positive, chunk_seed, draw_conditions, load, model_draw, run_sharded,
                      seeded)
from .limits import check_lattice, check_samples
from .sample import estimate_table, resolve_conditions


@dataclass
class EvaluateResult:
    result: dict  # the evaluation as ``lattherm evaluate --json`` prints it

    def to_dict(self) -> dict:
        return self.result


def painted_draw(lm, target, generator, **options):
    """draw(T, mu, k) of painted target lattices, with the exact log p of each painting path."""
    from ..sampling import paint_with_model

    def draw(T, mu, k):
        res = paint_with_model(lm, target, T, mu, k, generator=generator, **options)
        return res.spins, res.log_p, res.order

    return draw


def evaluate(model, grid="paper", samples: int = 2000, *, batch: int = DEFAULT_BATCH, exact: bool = True,
             device: str | None = "cpu", seed: int = 0, size=None, layout: str = "auto", stride: int | None = None,
             views: int | None = None, method: str = "auto", progress=None, control=None) -> EvaluateResult | None:
    """``samples`` per condition of ``grid`` ("paper", "T1,T2:mu1,mu2" or (T, mu) pairs), drawn ``batch`` at a time
    by the model, or painted on a ``size`` lattice (``layout``, ``stride``, ``views``, ``method`` as in painting);
    F_q, -log Z_nis, ESS and, with ``exact``, the gap to the exact reference per condition."""
    from ..analysis.free_energy import Evaluation
    from ..distributed import current_world, rank_device
    from ..lattices import parse_size
    from ..systems import make_system
    from ..training import parse_grid

    world = current_world()
    lm = load(model, rank_device(device, world))
    system = lm.system
    painted = bool(size) and parse_size(size) != lm.system.lattice.size
    if painted:
        check_lattice(lm.system.info, size)
        system = make_system(lm.system.info, size)
    conds = resolve_conditions(parse_grid(grid, system.info) if isinstance(grid, str) else grid, system)
    check_positive(samples=samples, batch=batch)
    check_samples(int(samples), system.n_sites, len(conds), what="evaluating with")

    def make_draw(i, c):
        gen = seeded(chunk_seed(seed, i, c))
        return (painted_draw(lm, system, gen, layout=layout, stride=stride, views=views, method=method) if painted
                else model_draw(lm, gen))

    def condition(i):  # one row of the table: its estimate and JSON row (the samples stay on the rank)
        estimates, rows = estimate_table(lm, system, draw_conditions(make_draw, conds, samples, batch, None, control,
                                                                     indices=[i]), exact)
        return estimates[0][0], rows[0]

    done = run_sharded(len(conds), condition, what="conditions", hint="the conditions of the grid",
                       progress=progress, control=control,
                       extra=lambda k, mine: {"condition": k, "conditions": mine})
    if done is None:  # a rank other than 0: rank 0 has every row
        return None
    estimates, rows = [(est,) for est, _ in done], [row for _, row in done]
    ev = Evaluation(system=system.describe(), model=lm.model.hparams(), conditions=[e[0] for e in estimates])
    out = ev.to_dict()
    out["conditions"] = rows
    out["trained_range"] = lm.trained_range()
    out["source"] = {"kind": lm.source.kind, "path": str(lm.source.path), "step": lm.step,
                     "painted_from": lm.system.lattice.label if painted else None,
                     "layout": layout if painted else None, "stride": stride if painted else None,
                     "views": views if painted else None, "method": method if painted else None}
    out["system"]["T_unit"] = system.temperature_unit
    return EvaluateResult(out)
