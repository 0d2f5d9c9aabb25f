"""Data parallelism over processes, GPUs and nodes with torch.distributed: the one place that knows about ranks.

A process is one rank of a world when torchrun (or torch's elastic launcher behind ``lattherm train --nproc N``)
set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in its environment; without them
it is the single rank of a world of one, and every helper here is a no-op (the single-process code path is the
one that always ran). The backend is chosen from the device: NCCL for CUDA, gloo on CPU
(``LATTHERM_DIST_BACKEND`` asks for one; NCCL without a GPU is a one-line error). ``LATTHERM_DIST_TIMEOUT_S``
(default 3600) bounds how long a rank waits in a collective for a peer that hangs.

Why the helpers look as they do (ALGORITHMS.md's estimators over a batch split across ranks): each rank draws
``M / W`` of the ``M`` samples of every condition, rows grouped by condition as in one process. Per-condition sums
(:func:`sum_over_ranks`) give baselines, standardisation and F_q equal to the single-process ones with the whole
batch; :func:`gather_by_condition` puts the union batch in condition-major, rank-minor order (what an ESS needs);
:func:`average_gradients` averages the gradient of each rank's local mean loss, which is the gradient of the
global mean. Gradients are all-reduced explicitly (one flat buffer) rather than by DDP's forward hooks: the models
are sampled and scored through methods other than ``forward``, which DDP would not see.
"""

from __future__ import annotations

import hashlib
import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch

from .errors import LatthermError

BACKENDS = ("gloo", "nccl")


@dataclass(frozen=True)
class World:
    """This process's place in the world: ``rank`` of ``size`` (``local_rank`` on its node)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one rank that writes metrics, checkpoints and status."""
        return self.rank == 0


SINGLE = World()


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise LatthermError(f"environment variable {name}={text!r} is not an integer") from None


def detect_world() -> World:
    """The world torchrun's environment describes (RANK, WORLD_SIZE, LOCAL_RANK); a world of one without it."""
    size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local = _env_int("LOCAL_RANK", rank)
    if size < 1 or not 0 <= rank < size:
        raise LatthermError(f"RANK={rank} and WORLD_SIZE={size} do not describe a rank of a world")
    return World(rank, size, local)


def current_world() -> World:
    """The initialised process group's world, else the single process (helpers below take it when not told)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return World(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", dist.get_rank()))
    return SINGLE


#: on a node with GPUs: NCCL for CUDA tensors (gradients, samples), gloo for the small CPU ones (stop flags, objects)
MIXED = "cpu:gloo,cuda:nccl"


def backend_for(device: str | None) -> str:
    """NCCL when the ranks may run on CUDA (as ``cpu:gloo,cuda:nccl``: the few CPU tensors go through gloo), gloo on
    CPU; ``LATTHERM_DIST_BACKEND`` overrides (and is checked: NCCL without a GPU is a one-line error)."""
    asked = os.environ.get("LATTHERM_DIST_BACKEND", "").strip().lower()
    if asked:
        if asked not in BACKENDS:
            raise LatthermError(f"LATTHERM_DIST_BACKEND must be gloo or nccl, got {asked!r}")
        if asked == "nccl" and not torch.cuda.is_available():
            raise LatthermError("the NCCL backend was requested but no CUDA GPU is available here (use gloo)")
        return MIXED if asked == "nccl" else asked
    if device is not None and str(device).startswith("cuda") and not torch.cuda.is_available():
        raise LatthermError(f"device {device!r} requested but CUDA is not available here")
    want_cuda = device not in (None, "cpu") and torch.cuda.is_available()
    return MIXED if want_cuda else "gloo"


def rank_device(device: str | None, world: World) -> str | None:
    """One GPU per rank: 'cuda'/'auto' on a node with GPUs becomes cuda:LOCAL_RANK; CPU stays CPU."""
    if not world.distributed or device is None:
        return device
    if (device == "cuda" or device == "auto") and torch.cuda.is_available():
        n = torch.cuda.device_count()
        if world.local_rank >= n:
            raise LatthermError(f"local rank {world.local_rank} has no GPU of its own ({n} on this node): launch at "
                                f"most {n} processes per node")
        return f"cuda:{world.local_rank}"
    return device


def init_world(device: str | None = None) -> World:
    """Join the world torchrun's environment describes (once per process); a world of one does nothing."""
    import torch.distributed as dist

    world = detect_world()
    if not world.distributed:
        return world
    if dist.is_initialized():
        return current_world()
    backend = backend_for(device)
    if "nccl" in backend:
        torch.cuda.set_device(world.local_rank % max(1, torch.cuda.device_count()))
    try:  # a long timeout: rank 0 may make a Monte Carlo data set while the others wait (a dead peer is seen at once)
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=_env_int("LATTHERM_DIST_TIMEOUT_S", 3600)))
    except (RuntimeError, ValueError) as exc:
        raise LatthermError(f"rank {world.rank} could not join the {world.size}-process world "
                            f"({backend}): {str(exc).splitlines()[0]}") from None
    return world


def teardown() -> None:
    """Leave the process group (if this process joined one) together with the other ranks: on gloo they first meet
    at a barrier with a short timeout, so no rank destroys its group while a peer's gloo threads still talk to it
    (seen as a rank aborting at exit after its work was done: "terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        try:
            if dist.get_backend() == "gloo":
                dist.monitored_barrier(timeout=timedelta(seconds=_env_int("LATTHERM_DIST_TEARDOWN_S", 30)))
            dist.destroy_process_group()
        except (RuntimeError, ValueError):  # a peer is gone already: nothing left to tear down
            pass


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s own random stream, from the run's seed: distinct per rank, stable across runs
    (a hash, so streams of nearby seeds and ranks share nothing)."""
    digest = hashlib.sha256(f"lattherm:{int(seed)}:{int(rank)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


# ---- collectives (no-ops in a world of one) ----------------------------------------------------------------------
def _reduced(x: torch.Tensor, op: str, world: World | None) -> torch.Tensor:
    """``x`` all-reduced with ReduceOp ``op`` over the ranks (a new tensor; ``x`` itself in a world of one)."""
    world = world or current_world()
    if not world.distributed:
        return x
    import torch.distributed as dist

    out = x.detach().clone()
    dist.all_reduce(out, op=getattr(dist.ReduceOp, op))
    return out


def sum_over_ranks(x: torch.Tensor, world: World | None = None) -> torch.Tensor:
    """The elementwise sum of ``x`` over all ranks (a new tensor; ``x`` itself in a world of one)."""
    return _reduced(x, "SUM", world)


def max_over_ranks(x: torch.Tensor, world: World | None = None) -> torch.Tensor:
    """The elementwise maximum of ``x`` over all ranks."""
    return _reduced(x, "MAX", world)


def mean_of_floats(values: dict, world: World | None = None) -> dict:
    """The float entries of ``values`` averaged over ranks (others kept as this rank has them): the logged scalars
    of per-rank means over equal shares, i.e. the means over the whole batch."""
    world = world or current_world()
    if not world.distributed:
        return values
    keys = [k for k, v in values.items() if isinstance(v, float)]
    if not keys:
        return values
    t = sum_over_ranks(torch.tensor([values[k] for k in keys], dtype=torch.float64), world) / world.size
    return {**values, **{k: float(v) for k, v in zip(keys, t)}}


def gather_by_condition(x: torch.Tensor, groups: int, world: World | None = None) -> torch.Tensor:
    """The union batch of a per-rank tensor whose rows are grouped by condition (``groups`` groups of M/W rows):
    condition-major, rank-minor, so row g*M + r*(M/W) + i is rank r's i-th sample of condition g."""
    world = world or current_world()
    if not world.distributed:
        return x
    import torch.distributed as dist

    parts = [torch.empty_like(x) for _ in range(world.size)]
    dist.all_gather(parts, x.contiguous())
    stacked = torch.stack([p.reshape(groups, -1, *x.shape[1:]) for p in parts], 1)  # (G, W, M/W, ...)
    return stacked.reshape(-1, *x.shape[1:])


def average_gradients(parameters, world: World | None = None) -> None:
    """Replace every gradient by its mean over ranks (one flat all-reduce; a missing gradient counts as zero, so
    every rank takes part in the same collective)."""
    world = world or current_world()
    if not world.distributed:
        return
    import torch.distributed as dist

    params = [p for p in parameters if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world.size
    offset = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n


def broadcast_parameters(module: torch.nn.Module, world: World | None = None) -> None:
    """Every rank starts from rank 0's weights (the same seed builds the same model; this makes it certain)."""
    world = world or current_world()
    if not world.distributed:
        return
    import torch.distributed as dist

    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src=0)


def broadcast_object(obj, world: World | None = None):
    """Rank 0's ``obj`` on every rank (a run path, an error message)."""
    world = world or current_world()
    if not world.distributed:
        return obj
    import torch.distributed as dist

    box = [obj if world.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj, world: World | None = None) -> list | None:
    """Every rank's ``obj`` on rank 0 (a list by rank), None elsewhere; ``[obj]`` in a world of one."""
    world = world or current_world()
    if not world.distributed:
        return [obj]
    import torch.distributed as dist

    out = [None] * world.size if world.is_main else None
    dist.gather_object(obj, out, dst=0)
    return out


def all_gather_objects(obj, world: World | None = None) -> list:
    world = world or current_world()
    if not world.distributed:
        return [obj]
    import torch.distributed as dist

    out = [None] * world.size
    dist.all_gather_object(out, obj)
    return out


def barrier(world: World | None = None) -> None:
    world = world or current_world()
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def shard(n: int, world: World | None = None) -> range:
    """The indices 0..n-1 this rank handles (strided, so every rank gets a mix of the items: a grid of conditions
    split this way costs about the same on each rank)."""
    world = world or current_world()
    return range(world.rank, n, world.size)


# ---- the launcher ------------------------------------------------------------------------------------------------
def check_nproc(nproc: int) -> int:
    if nproc is None or int(nproc) < 1:
        raise LatthermError(f"--nproc must be >= 1, got {nproc}")
    return int(nproc)


def strip_nproc(argv: list[str]) -> list[str]:
    """``argv`` without ``--nproc N`` / ``--nproc=N`` (what each launched rank is given)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = True
            continue
        if a.startswith("--nproc="):
            continue
        out.append(a)
    return out


class RankFailed(LatthermError):
    """A launched rank exited with an error: the others were stopped by the launcher. ``codes``: the exit codes of
    the ranks that failed."""

    def __init__(self, message: str, codes=()):
        super().__init__(message)
        self.codes = tuple(codes)


def follower_error(message: str) -> LatthermError:
    """Rank 0's error as the other ranks raise it: the CLI lets rank 0 alone print it."""
    exc = LatthermError(message)
    exc.from_rank0 = True
    return exc


def launch(argv: list[str], nproc: int, run_id: str | None = None) -> None:
    """Run ``python -m lattherm.engine.cli ARGV`` as ``nproc`` ranks on this node through torch's elastic launcher
    (the agent torchrun uses: a local c10d rendezvous on a free port, no restarts); returns when all ranks
    finished, raises :class:`RankFailed` naming the first failed rank otherwise (the agent has then stopped
    the others)."""
    import uuid

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    nproc = check_nproc(nproc)
    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=run_id or uuid.uuid4().hex[:12],
                          rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0, monitor_interval=0.1,
                          start_method="spawn")
    args = ["-m", f"{__package__}.cli", *strip_nproc(argv)]
    import logging

    for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed.elastic")]:
        logging.getLogger(name).setLevel(logging.CRITICAL)  # the agent's chatter (it sets levels per module): ours
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # is one line
    os.environ[LAUNCHED_ENV] = "1"  # the ranks inherit it
    try:
        elastic_launch(config, entrypoint=sys.executable)(*args)
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()
        code = failure.exitcode
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        raise RankFailed(f"rank {rank} of {nproc} {how}; the other ranks were stopped",
                         [f.exitcode for f in exc.failures.values()]) from None
    except SignalException as exc:  # Ctrl-C / SIGTERM to the launcher: the agent passed it on to the ranks
        sig = int(exc.sigval)
        raise RankFailed(f"interrupted ({signal_name(sig)}): the ranks were stopped", [128 + sig]) from None
    finally:
        os.environ.pop(LAUNCHED_ENV, None)


def signal_name(sig: int) -> str:
    import signal

    return "Ctrl-C" if sig == signal.SIGINT else signal.Signals(sig).name


# ---- sharded tasks (sample, paint, phase diagram, MC, evaluate) -------------------------------------------------
#: set in the ranks that ``launch`` starts: a rank whose peer died stays quiet, the launcher names the dead rank
LAUNCHED_ENV = "LATTHERM_LAUNCHED"
_gathered = False  # this process has taken part in its task's one gather (see shard_map)


def check_shardable(count: int, size: int, what: str, hint: str = "") -> None:
    """``size`` processes need at least ``size`` items of work (one line naming both, and what to change)."""
    if size > count:
        raise LatthermError(f"{size} processes cannot share {count} {what}: use --nproc {count} or fewer"
                            + (f" ({hint})" if hint else ""))


def _gather_outcome(payload, world: World) -> list | None:
    """Every rank's ("ok", rows) or ("error", message) on rank 0, the one collective of a sharded task. A peer that
    died meanwhile is one line (none at all in a rank the launcher started: the launcher names the dead rank)."""
    global _gathered
    _gathered = True
    try:
        return gather_objects(payload, world)
    except RuntimeError as exc:
        err = LatthermError(f"another rank of the {world.size} stopped before its share was gathered "
                            f"({str(exc).splitlines()[0][:200]})")
        err.exit_code = 1
        err.quiet = bool(os.environ.get(LAUNCHED_ENV)) or not world.is_main  # one line: the launcher's or rank 0's
        raise err from None


def _raise_agreed(parts: list, world: World) -> None:
    """On rank 0: the first rank's error of a gathered outcome, as one line naming a rank other than 0."""
    for rank, (kind, body) in enumerate(parts):
        if kind == "error":
            raise LatthermError(body if rank == 0 else f"rank {rank}: {body}")


def shard_map(count: int, work, *, what: str = "items", hint: str = "", world: World | None = None) -> list | None:
    """``[work(i) for i in range(count)]`` split over the ranks: each rank runs its strided share (:func:`shard`)
    and rank 0 gets every result in item order; the other ranks get None. In a world of one it is the plain loop,
    so a task whose items draw from their own seeds (condition_seed, chunk_seed) writes the same file whatever the
    world size. A LatthermError on any rank is raised on rank 0 (one line, naming the rank) and silently on the
    others; more ranks than items is refused on every rank before any work."""
    world = world or current_world()
    if not world.distributed:
        return [work(i) for i in range(count)]
    mine = list(shard(count, world))
    failure = None
    try:
        check_shardable(count, world.size, what, hint)
        payload = ("ok", [(i, work(i)) for i in mine])
    except LatthermError as exc:
        failure, payload = exc, ("error", str(exc))
    parts = _gather_outcome(payload, world)
    if not world.is_main:
        if failure is not None:
            raise follower_error(str(failure))
        return None
    _raise_agreed(parts, world)
    got = dict(row for _, rows in parts for row in rows)
    return [got[i] for i in range(count)]


def settle_failure(exc: LatthermError, world: World) -> None:
    """A LatthermError raised in a rank before it reached its task's gather (a bad temperature, a missing model):
    take part in the gather with the message, so rank 0 alone says it (one line) and no rank waits for another
    forever. Marks ``exc`` to be printed by rank 0 only."""
    if not world.distributed or _gathered:
        return
    parts = _gather_outcome(("error", str(exc)), world)
    if not world.is_main:
        exc.from_rank0 = True
        return
    try:
        _raise_agreed(parts, world)
    except LatthermError as first:
        exc.args = first.args


def run_command(argv: list[str], nproc: int | None, body, *, device: str | None = None, precheck=None) -> int:
    """The front of every sharded command. ``--nproc N`` (N > 1) runs ``precheck()`` here (what a rank would refuse:
    said once, before any process starts), then this very command as N ranks through :func:`launch`; a user error
    in a rank is said by rank 0 and the exit code is 2. Without ``--nproc`` (a world of one, or a rank that torchrun
    or the launcher started) this process joins its world and returns ``body(world)``, the exit code."""
    if nproc is not None:
        check_nproc(nproc)
        if detect_world().distributed:
            raise LatthermError("--nproc launches the processes itself: under torchrun (or srun) leave it out")
        if nproc > 1:
            if precheck is not None:
                precheck()
            try:
                launch(argv, nproc)
            except RankFailed as exc:
                if 2 in exc.codes:
                    return 2  # a user error: rank 0 said it
                exc.exit_code = 1  # a rank died: not the user's input
                raise
            return 0
    world = init_world(device)
    try:
        with sharded_task(world):
            return body(world)
    finally:
        teardown()


@contextmanager
def sharded_task(world: World):
    """The span of one sharded task in a rank: a LatthermError raised in it before the task's gather is taken to
    the gather (:func:`settle_failure`), so rank 0 alone says it and no rank waits for another."""
    global _gathered
    _gathered = False
    try:
        yield
    except LatthermError as exc:
        settle_failure(exc, world)
        raise
