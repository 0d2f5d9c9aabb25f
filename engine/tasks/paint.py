"""In-/out-paint a lattice of any size with an any-order model: fixed sites keep their values, the rest is drawn."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from ..distributed import current_world, rank_device, shard
from .limits import check_lattice, check_samples
from ._common import (DEFAULT_BATCH, check_positive, chunk_seed, chunks, load, npz_out, run_sharded, samples_path,
                      seeded, write_guarded)
from .sample import chunk_hint


@dataclass
class PaintTaskResult:
    path: Path
    size: list
    lattice: str
    label: str
    n_sites: int
    log_p: list
    log_f: list
    n_fixed: int

    def to_dict(self) -> dict:
        return {"path": str(self.path), "size": self.size, "lattice": self.lattice, "log_p": self.log_p,
                "log_f": self.log_f, "n_fixed": self.n_fixed}


def paint(model, T: float, mu: float = 0.0, n: int = 100, *, size=None, constraints=None, fixed=None,
          batch: int = DEFAULT_BATCH, seed: int = 0, device: str | None = "cpu", out=None, method: str = "auto",
          layout: str = "auto", stride=None, views: int | None = None, period_mode: str | None = None,
          progress=None, control=None) -> PaintTaskResult:
    """Paint ``n`` lattices of ``size`` (default: the model's own), ``batch`` at a time, at (T, mu).

    Fixed sites come from ``constraints`` (FILE.npz with mask and values shaped like the target) or ``fixed`` (one
    value per site: -1, 0 for free, +1); every site fixed is an error. Writes FILE.npz ``out`` (default: a fresh
    file beside the model) with log p of the free sites given the fixed ones along the order used, and log f.

    Chunk j is painted from its own generator (:func:`chunk_seed`): in a distributed world the chunks are split over
    the ranks and rank 0 writes the file one process writes for the same seed and batch; the others return None."""
    from ..sampling import constraints_from_fixed, load_constraints, paint_with_model
    from ..store.samples import save_paint_npz
    from ..systems import make_system

    check_positive(n=n, batch=batch)
    npz_out(out)
    lm = load(model, rank_device(device, current_world()))
    size = size or list(lm.system.lattice.size)
    n_target = check_lattice(lm.system.info, size)
    check_samples(int(n), n_target, what="painting")
    target = make_system(lm.system.info, size if isinstance(size, str) else "x".join(str(int(v)) for v in size))
    mask = values = None
    if constraints is not None:
        mask, values = load_constraints(constraints, target)
    elif fixed is not None:
        mask, values = constraints_from_fixed(target.lattice, fixed)
    target.check(T, mu)
    sizes = chunks(int(n), int(batch))

    keys = ("spins", "log_p", "log_f", "order", "T", "mu")

    def draw(j):  # the tensors only: they travel between ranks (the plan holds the model)
        res = paint_with_model(lm, target, T, mu, sizes[j], mask=mask, values=values,
                               generator=seeded(chunk_seed(seed, 0, j)), stride=stride, method=method,
                               layout=layout, views=views, period_mode=period_mode)
        return {k: getattr(res, k).cpu() for k in keys} | {"mask": res.mask.cpu()}

    share = [sizes[j] for j in shard(len(sizes))]  # this rank's chunks: what its progress counts
    parts = run_sharded(len(sizes), draw, what="chunks of lattices", hint=chunk_hint(n, batch), progress=progress,
                        control=control, extra=lambda done, _: {"painted": sum(share[:done]), "n": sum(share)})
    if parts is None:
        return None
    res = SimpleNamespace(mask=parts[0]["mask"], **{k: torch.cat([p[k] for p in parts]) for k in keys})
    path = out if out is not None else samples_path(lm.source, "paint")
    write_guarded(lambda: save_paint_npz(path, res, target), path)
    return PaintTaskResult(Path(path), list(target.lattice.size), target.lattice.kind, target.lattice.label,
                           target.n_sites, res.log_p.tolist(), res.log_f.tolist(),
                           0 if mask is None else int(np.asarray(mask).sum()))
