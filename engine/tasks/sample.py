"""Sample a model at one condition or a list of them into a samples file, with the free-energy table per condition."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import LatthermError
from .limits import check_samples
from ._common import (DEFAULT_BATCH, check_positive, chunk_seed, chunks, load, model_draw, npz_out, run_sharded,
                      samples_path, seeded, write_guarded)


def resolve_conditions(conditions, system) -> list[tuple[float, float]]:
    """"paper" (the paper's grid for the system) or (T, mu) pairs -> checked float pairs."""
    from ..training import paper_grid

    conds = paper_grid(system.info) if conditions == "paper" else [(float(T), float(mu)) for T, mu in conditions]
    if not conds:
        raise LatthermError("no conditions to sample")
    for T, mu in conds:
        system.check(T, mu)
    return conds


def estimate_table(lm, system, drawn, exact: bool = True) -> tuple[list, list]:
    """(estimates, rows): the free-energy estimate of each drawn condition and its JSON row (``extrapolation``
    marks conditions outside the trained range)."""
    from ..analysis.free_energy import estimate_condition, exact_or_none

    estimates, rows = [], []
    for T, mu, spins, log_p, order in drawn:
        est = estimate_condition(system, T, mu, spins, log_p, exact_or_none(system, T, mu) if exact else None)
        estimates.append((est, spins, log_p, order))
        rows.append({**est.to_dict(), "extrapolation": lm.extrapolates(T, mu)})
    return estimates, rows


@dataclass
class SampleResult:
    path: Path
    table: list
    model: dict
    n: int
    observable: str  # the name of the observable whose mean each table row has
    trained_range: dict | None = None

    def to_dict(self) -> dict:
        return {"path": str(self.path), "table": self.table, "model": self.model}


def chunk_hint(n: int, batch: int) -> str:
    """What the user changes when a sharded draw has fewer chunks than processes."""
    return f"-n {n} is drawn in chunks of --batch {batch}: lower --batch for more chunks"


def sample(model, conditions, n: int = 1000, *, size=None, batch: int = DEFAULT_BATCH, seed: int = 0,
           device: str | None = "cpu", out=None, progress=None, control=None) -> SampleResult | None:
    """Draw ``n`` samples per condition from the model's own sampler, ``batch`` at a time.

    ``conditions``: one (T, mu) pair (the file holds ``samples`` (n, *size), scalar T and mu), a list of pairs or
    "paper" (``samples`` (C, n, *size), T and mu (C,)). ``out``: FILE.npz (default: a fresh file beside the
    model). ``size`` may only name the model's own lattice: larger ones are painted (:func:`paint`).

    Chunk j of condition i is drawn from its own generator (:func:`chunk_seed`), so in a distributed world the
    chunks are split over the ranks and rank 0 writes the file one process writes for the same seed and batch
    (bitwise); the other ranks return None."""
    from ..distributed import current_world, rank_device
    from ..lattices import parse_size
    from ..store.samples import write_samples
    from .runs import model_info

    single = not isinstance(conditions, str) and len(conditions) == 2 and all(
        isinstance(v, (int, float)) for v in conditions)
    npz_out(out)
    check_positive(n=n, batch=batch)
    lm = load(model, rank_device(device, current_world()))
    system = lm.system
    if size and parse_size(size) != system.lattice.size:
        raise LatthermError(f"this {lm.model.kind} MLP model serves only the {system.lattice.label} lattice, "
                            f"not {size} (larger lattices need painting)")
    conds = resolve_conditions([conditions] if single else conditions, system)
    check_samples(int(n), system.n_sites, len(conds))
    sizes = chunks(int(n), int(batch))

    def draw(k):
        i, j = divmod(k, len(sizes))
        T, mu = conds[i]
        return [t.cpu() for t in model_draw(lm, seeded(chunk_seed(seed, i, j)))(float(T), float(mu), sizes[j])]

    parts = run_sharded(len(conds) * len(sizes), draw, what="chunks of samples", hint=chunk_hint(n, batch),
                        progress=progress, control=control,
                        extra=lambda done, mine: {"chunk": done, "chunks": mine})
    if parts is None:
        return None
    per = len(sizes)
    drawn = ((float(T), float(mu), *(torch.cat(ts) for ts in zip(*parts[i * per:(i + 1) * per])))
             for i, (T, mu) in enumerate(conds))
    estimates, table = estimate_table(lm, system, drawn)
    spins, log_p, order = (torch.stack([e[k] for e in estimates]) for k in (1, 2, 3))
    log_f = torch.stack([system.log_f(s, T, mu) for (T, mu), s in zip(conds, spins)])
    obs = torch.stack([system.observable(s) for s in spins])
    T = np.array([c[0] for c in conds])
    mu = np.array([c[1] for c in conds])
    if single:
        spins, log_p, log_f, order, obs, T, mu = spins[0], log_p[0], log_f[0], order[0], obs[0], T[0], mu[0]
    path = out if out is not None else samples_path(lm.source, "samples")
    write_guarded(lambda: write_samples(path, system, spins, log_p, log_f, T, mu, order=order, observable=obs), path)
    return SampleResult(Path(path), table, model_info(lm), n, system.observable_name, lm.trained_range())
