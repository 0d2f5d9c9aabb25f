"""Choosing the torch device from a user string, with one-line errors."""

from __future__ import annotations

import torch

from .errors import LatthermError


def pick_device(name: str) -> torch.device:
    """'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'; anything else is a one-line error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise LatthermError(f"unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if dev.type not in ("cpu", "cuda"):
        raise LatthermError(f"unsupported device {name!r} (use auto, cpu, cuda or cuda:N)")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise LatthermError(f"device {name!r} requested but CUDA is not available here")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise LatthermError(f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    return dev


def generator_on(generator: torch.Generator | None, device) -> torch.Generator | None:
    """A generator usable on ``device``: the given one when it lives there, else a new one on ``device`` seeded
    from it (a CPU seed stays reproducible when the model runs on a GPU). None stays None."""
    device = torch.device(device)
    if generator is None or generator.device.type == device.type:
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)
