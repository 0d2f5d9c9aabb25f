"""What every task shares: loading a model on a checked device, the one seeding, drawing in chunks with progress and
cancel, and where a task's files go when the caller names none."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import paths
from ..errors import LatthermError
from ..progress import Control, Meter

DEFAULT_BATCH = 2000  # samples drawn in one call at most, unless the caller says otherwise


def load(ref, device: str | None = "cpu"):
    """The model of a run, model folder or bundled name on ``device`` (a typo or missing GPU is one line)."""
    from ..models.io import load_model

    return load_model(ref, device=device or "cpu")


def seeded(seed: int) -> torch.Generator:
    """The one place a task seeds: the generator every draw of the task takes, so one seed gives the same numbers
    whoever calls. torch's global generator is never touched (a run training beside the task keeps its stream)."""
    return torch.Generator().manual_seed(int(seed))


def check_positive(**values) -> None:
    for name, v in values.items():
        if v is not None and v < 1:
            raise LatthermError(f"{name} must be >= 1, got {v}")


def chunks(n: int, batch: int) -> list[int]:
    return [min(batch, n - start) for start in range(0, n, batch)]


@torch.no_grad()
def condition_seed(seed: int, i: int) -> int:
    """The seed of condition i's own generator (condition 0 keeps the task's seed): each condition's draws then do
    not depend on which conditions came before it or on which process of a sharded task draws it."""
    return int(seed) + 1_000_003 * int(i)


def chunk_seed(seed: int, i: int, j: int) -> int:
    """The seed of chunk j of condition i (chunk 0 keeps the condition's seed): the unit a sharded task splits over
    processes, so its draws do not depend on which process draws it or on the chunks before it."""
    if j == 0:
        return condition_seed(seed, i)
    import hashlib

    digest = hashlib.sha256(f"lattherm-chunk:{int(seed)}:{int(i)}:{int(j)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


@torch.no_grad()
def draw_conditions(make_draw, conditions, n: int, batch: int, progress=None, control: Control | None = None,
                    indices=None):
    """Yield (T, mu, spins, log_p, order) for the conditions at ``indices`` (default all), ``n`` samples each in
    chunks of at most ``batch``, chunk c of condition i drawn by ``make_draw(i, c)(T, mu, k) -> (spins, log_p,
    order)`` (its own generator, seeded by :func:`chunk_seed`, as the sample task draws it: one seed gives the same
    samples in both); one progress report per chunk, cancel honoured between chunks."""
    check_positive(samples=n, batch=batch)
    indices = range(len(conditions)) if indices is None else list(indices)
    sizes = chunks(n, batch)
    meter = Meter(len(indices) * len(sizes), progress, control=control)
    done = 0
    for j, i in enumerate(indices):
        T, mu = conditions[i]
        parts = []
        for c, k in enumerate(sizes):
            if control is not None:
                control.raise_if_stopped()
            parts.append([t.cpu() for t in make_draw(i, c)(float(T), float(mu), k)])
            done += 1
            meter.update(done, extra={"condition": j + 1, "conditions": len(indices)})
        yield (float(T), float(mu), *(torch.cat(ts) for ts in zip(*parts)))


def model_draw(lm, generator: torch.Generator):
    """draw(T, mu, k) from the model's own ancestral sampler: spins, exact path log p, generation order."""
    lm.model.eval()

    def draw(T, mu, k):
        sb = lm.model.sample(T, mu, batch=k, generator=generator)
        return sb.spins, sb.log_p, sb.ranks

    return draw


def samples_path(source, stem: str) -> Path:
    """A fresh ``<stem>-<k>.npz`` beside the model: in the run's samples folder, or under LATTHERM_HOME for a model
    folder or bundled model (which may live in a read-only place)."""
    from ..store import Run
    from ..store.runs import new_samples_path

    if source.kind == "run":
        return Run(source.path).new_samples_path(stem)
    return new_samples_path(paths.lattherm_home() / "samples" / source.name, stem)


def write_guarded(write, path):
    """Run an (atomic) write; an unwritable destination is a one-line error, not a traceback."""
    try:
        return write()
    except OSError as exc:
        raise LatthermError(f"cannot write {path}: {exc.strerror or exc}") from None


def npz_out(out) -> None:
    if out is not None and not str(out).endswith(".npz"):
        raise LatthermError(f"out must name an .npz file, got {str(out)!r}")


def run_sharded(count: int, work, *, what: str, hint: str = "", progress=None, control: Control | None = None,
                extra=None, total: int | None = None):
    """``[work(i) for i in range(count)]``, split over the ranks of the world this process is in (torchrun, or a
    command's ``--nproc N``): rank 0 gets every result in item order, the other ranks None (distributed.shard_map).
    Progress counts this rank's share (``total`` units, default its item count; ``extra(done, mine)`` adds to each
    report); cancel is honoured between items."""
    from ..distributed import current_world, shard, shard_map

    world = current_world()
    mine = len(shard(count, world))
    meter = Meter(total or mine, progress, control=control)
    done = 0

    def one(i):
        nonlocal done
        if control is not None:
            control.raise_if_stopped()
        out = work(i)
        done += 1
        meter.update(done, extra=extra(done, mine) if extra is not None else None)
        return out

    return shard_map(count, one, what=what, hint=hint, world=world)
