"""Limits checked before allocating: a memory estimate of a lattice, a model, a training step or a set of samples
against a configurable limit, and caps on request sizes.

A size or count typed by mistake (``--size 1000000x1000000``, ``-n 1e9``, ``hidden = 1e9``, a model folder with
crafted hyper-parameters) must be a one-line error naming the estimate and the limit, not an allocation that takes
the machine down. The estimates are lower bounds of what torch will allocate (weights, optimizer state, one
batch of activations, the drawn samples), so a refusal is never a false alarm. Torch-free.
"""

from __future__ import annotations

import os

from ..errors import LatthermError

#: environment variable holding the memory limit in GiB (default: half the machine's memory)
MEMORY_ENV = "LATTHERM_MEMORY_GB"
#: temperatures one ``exact`` request may ask for (each costs milliseconds to seconds)
MAX_TEMPERATURES = 500
#: bytes a system keeps per site (neighbour tables, positions, energy terms), a lower bound
SYSTEM_BYTES_PER_SITE = 64
#: bytes one drawn sample keeps per site (spins, generation order) until it is written
SAMPLE_BYTES_PER_SITE = 9
FLOAT = 4


def memory_limit() -> int:
    """The limit in bytes: ``LATTHERM_MEMORY_GB`` when set, else half the physical memory (8 GiB if unknown)."""
    text = os.environ.get(MEMORY_ENV)
    if text:
        try:
            gb = float(text)
        except ValueError:
            raise LatthermError(f"{MEMORY_ENV} must be a number of GiB, got {text!r}") from None
        if not gb > 0 or gb == float("inf"):
            raise LatthermError(f"{MEMORY_ENV} must be a positive number of GiB, got {text!r}")
        return int(gb * 2**30)
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 * 2**30


def human(nbytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if nbytes < 1024 or unit == "PiB":
            return f"{nbytes:.3g} {unit}" if unit != "B" else f"{int(nbytes)} B"
        nbytes /= 1024
    return f"{nbytes:.3g} PiB"  # pragma: no cover


def require_memory(what: str, nbytes: float) -> None:
    """A LatthermError when ``what`` would need more than the memory limit."""
    limit = memory_limit()
    if nbytes > limit:
        raise LatthermError(f"{what} needs about {human(nbytes)}, more than the memory limit of {human(limit)} "
                            f"(set {MEMORY_ENV} to change it)")


def lattice_sites(system: str, size) -> int:
    """Sites of ``system`` at ``size`` from the catalog, without building anything (names a bad size or system)."""
    from ..systems import system_info

    return int(system_info(system).n_sites(size if isinstance(size, str) else "x".join(str(int(v)) for v in size)))


def check_lattice(system: str, size) -> int:
    """Refuse a lattice too large to build; returns its number of sites."""
    n = lattice_sites(system, size)
    require_memory(f"a {getattr(system, 'name', system)} {size} lattice ({n:,} sites)", n * SYSTEM_BYTES_PER_SITE)
    return n


def check_samples(n: int, n_sites: int, conditions: int = 1, what: str = "drawing") -> None:
    """Refuse holding ``n`` samples of ``n_sites`` sites for each of ``conditions`` conditions."""
    require_memory(f"{what} {n:,} samples of {n_sites:,} sites x {conditions} condition(s)",
                   float(n) * n_sites * conditions * SAMPLE_BYTES_PER_SITE)


def model_parameters(arch: str, n_sites: int, hidden: int, layers: int, n_species: int = 2) -> float:
    """A lower bound of the parameter count: the hidden-to-hidden layers plus the site embedding and read-out."""
    per_layer = (12 if arch == "transformer" else 1) * float(hidden) ** 2
    io = float(hidden) * (n_species + 1) * (1 if arch == "transformer" else 2 * n_sites)
    return layers * per_layer + io


def model_bytes(arch: str, n_sites: int, hidden: int, layers: int, batch: int = 1, training: bool = False,
                passes: int = 1) -> float:
    """Weights (times 4 when training: gradient and Adam's two moments) plus one batch of activations, ``passes``
    times over when the network runs that often on the batch with every pass kept for the backward pass."""
    weights = model_parameters(arch, n_sites, hidden, layers) * FLOAT * (4 if training else 1)
    tokens = n_sites if arch == "transformer" else 1
    return weights + float(batch) * max(int(passes), 1) * tokens * hidden * max(layers, 1) * FLOAT


def check_model(hp: dict, n_sites: int, batch: int = 1, training: bool = False, what: str = "the model",
                passes: int = 1) -> None:
    """Refuse a model (from a config or a checkpoint's hyper-parameters) too large to build."""
    try:
        hidden, layers = int(hp.get("hidden", 1)), int(hp.get("layers", 1))
    except (TypeError, ValueError):
        raise LatthermError(f"{what}: hidden and layers must be integers, got {hp.get('hidden')!r}, "
                            f"{hp.get('layers')!r}") from None
    if hidden < 1 or layers < 1:
        raise LatthermError(f"{what}: hidden and layers must be >= 1, got {hidden}, {layers}")
    arch = str(hp.get("arch", "mlp"))
    require_memory(f"{what} ({arch}, hidden {hidden}, layers {layers}, {n_sites:,} sites, batch {batch})",
                   model_bytes(arch, n_sites, hidden, layers, batch, training, passes))


def check_config(cfg) -> None:
    """A run config's lattice, model and one training batch against the memory limit, before anything is built."""
    n = check_lattice(cfg.system.ce or cfg.system.name, cfg.system.size)
    m = cfg.model
    # an AO-ARM's differentiable log q sums N conditionals, one network pass per generation step, all kept for
    # the gradient (K of them with reinforce_steps = K): batch 999999 on 5x5 is ~77 GB, not the 3 GB of one pass
    passes = (cfg.training.reinforce_steps or n) if m.kind == "ao-arm" else 1
    check_model({"arch": m.arch, "hidden": m.hidden, "layers": m.layers}, n, cfg.training.batch, training=True,
                what="training this config", passes=passes)
    check_samples(cfg.training.batch, n, what="a training batch of")


def check_temperatures(Ts) -> None:
    if len(Ts) > MAX_TEMPERATURES:
        raise LatthermError(f"T: at most {MAX_TEMPERATURES} temperatures per request, got {len(Ts)}")
