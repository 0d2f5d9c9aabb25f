"""Autoregressive models conditioned on (T, mu): FO-ARM (MADE) and AO-ARM (MLP)."""

from __future__ import annotations

from ..errors import LatthermError
from .ao_arm import AOARMMLP
from .base import AutoregressiveModel, SampleBatch, random_ranks, tokens_from_spins
from .fo_arm import FOARMMADE

MODEL_KINDS = {("fo-arm", "mlp"): FOARMMADE, ("ao-arm", "mlp"): AOARMMLP}


def build_model(kind: str, arch: str = "mlp", **hparams) -> AutoregressiveModel:
    """Construct a model from its kind/arch and hyper-parameters (as stored in checkpoints)."""
    cls = MODEL_KINDS.get((str(kind).lower(), str(arch).lower()))
    if cls is None:
        known = ", ".join(f"{k}/{a}" for k, a in MODEL_KINDS)
        raise LatthermError(f"unknown model {kind}/{arch} (known: {known})")
    return cls(**hparams)


__all__ = ["AutoregressiveModel", "SampleBatch", "AOARMMLP", "FOARMMADE", "build_model", "random_ranks",
           "tokens_from_spins", "MODEL_KINDS"]
