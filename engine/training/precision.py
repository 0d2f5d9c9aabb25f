"""The GPU fast path of a training step: TF32 matmuls, bf16 autocast of the gradient passes, a compiled network for
the sampling loop. Each is a switch of the run's config and falls back to plain float32 eager code where the device
or the installation has no use for it.

Precision (``[training] precision``):

* ``float32`` (default): everything in float32 (the path every measured number in BENCHMARKS.md used).
* ``tf32``: CUDA matmuls and convolutions may use TF32 tensor cores (10-bit mantissa inputs, float32 accumulate);
  on CPU it changes nothing.
* ``bf16``: the passes with gradient run under ``torch.autocast`` in bfloat16 (CUDA, or CPU autocast where torch
  offers it). Sampling and the exact path log p it returns, the rewards, baselines and logged F_q stay in full
  precision (:meth:`Precision.full`): the importance weights and the estimator are never rounded, only the
  score-function gradient's network passes are (a noisy gradient is noisier by a little, not biased).

Compile (``[training] compile``): the per-pass network modules (the residual MLP stacks, the Transformer blocks,
the masked layers of the MADE) are compiled with ``torch.compile``; the N sequential passes of ancestral sampling
are launch-bound on a GPU, which is what a compiled (fused, with ``reduce-overhead``: CUDA-graphed) pass removes.
A compiler that fails (no C++ toolchain, an unsupported op) is found by a trial pass at setup, the modules go back
to eager, and the run says so once.
"""

from __future__ import annotations

import contextlib
import logging

import torch

from ..config import PRECISIONS

__all__ = ["PRECISIONS", "Precision", "compile_sampling"]

#: the modules whose forward is one network pass of a sampling step
COMPILED_MODULES = ("ResidualStack", "_Block", "MaskedLinear")

log = logging.getLogger(__name__)


class Precision:
    """What one run's steps run in on ``device``; ``autocast()`` around gradient passes, ``full()`` around sampling."""

    def __init__(self, name: str, device: torch.device):
        if name not in PRECISIONS:
            from ..errors import ConfigError

            raise ConfigError(f"[training] precision must be one of {', '.join(PRECISIONS)}, got {name!r}")
        self.name, self.device = name, torch.device(device)
        self.tf32 = name == "tf32" and self.device.type == "cuda"
        self.bf16 = name == "bf16" and (self.device.type == "cuda" or self.device.type == "cpu")

    def apply(self) -> None:
        """Set the process-wide TF32 flags for this run (both off unless ``tf32`` on CUDA)."""
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32

    def autocast(self):
        """bf16 autocast for the passes with gradient, or nothing."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def full(self):
        """Full precision inside an autocast region (sampling, exact log p): autocast off, or nothing."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, enabled=False)

    def describe(self) -> str:
        if self.tf32:
            return "tf32"
        if self.bf16:
            return f"bf16 autocast on {self.device.type}"
        return "float32"


def compile_sampling(model: torch.nn.Module, trial, mode: str | None = None) -> str:
    """Compile ``model``'s per-pass modules in place; ``trial()`` (a tiny sample) must run compiled, else the modules
    go back to eager. Returns what happened, one line: "compiled k modules" or why not."""
    targets = [m for m in model.modules() if type(m).__name__ in COMPILED_MODULES]
    if not targets:
        return "nothing to compile in this model"
    if not hasattr(torch, "compile"):
        return "torch.compile is not available in this torch: sampling runs eagerly"
    mode = mode or ("reduce-overhead" if next(model.parameters()).is_cuda else None)
    try:
        for m in targets:
            m.compile(mode=mode)
        trial()
    except Exception as exc:  # any compiler failure: the run goes on eagerly  # noqa: BLE001
        for m in targets:
            m._compiled_call_impl = None
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        log.warning("torch.compile failed (%s): sampling runs eagerly", first)
        return f"torch.compile unavailable here ({first}): sampling runs eagerly"
    return f"compiled {len(targets)} modules" + (f" ({mode})" if mode else "")
