"""Autoregressive models conditioned on (T, mu): FO-ARM (MADE), AO-ARM (MLP) and the AO-ARM Transformer with
periodic RoPE, and AO-MAM (marginal + conditional network, MLP or Transformer)."""

from __future__ import annotations

from ..errors import LatthermError
from .ao_arm import AOARMMLP
from .base import AutoregressiveModel, SampleBatch, random_ranks, tokens_from_spins
from .fo_arm import FOARMMADE
from .mam import MarginalizationMLP, MarginalizationModel, MarginalizationTransformer
from .transformer import TransformerAOARM

MODEL_KINDS = {("fo-arm", "mlp"): FOARMMADE, ("ao-arm", "mlp"): AOARMMLP,
               ("ao-arm", "transformer"): TransformerAOARM, ("ao-mam", "mlp"): MarginalizationMLP,
               ("ao-mam", "transformer"): MarginalizationTransformer}


def build_model(kind: str, arch: str = "mlp", **hparams) -> AutoregressiveModel:
    """Construct a model from its kind/arch and hyper-parameters (as stored in checkpoints)."""
    cls = MODEL_KINDS.get((str(kind).lower(), str(arch).lower()))
    if cls is None:
        known = ", ".join(f"{k}/{a}" for k, a in MODEL_KINDS)
        raise LatthermError(f"unknown model {kind}/{arch} (known: {known})")
    hparams = dict(hparams)
    mode_weight = bool(hparams.pop("mode_weight", False))
    model = cls(**hparams)
    if mode_weight:
        model.add_mode_weight(hparams.get("T_scale", 1.0), hparams.get("mu_scale", 1.0))
    return model


def model_for_system(kind: str, arch: str, system, hidden: int, layers: int, symmetric: bool = False,
                     heads: int = 4, mode_weight: bool = False) -> AutoregressiveModel:
    """The model a run config asks for, sized for ``system`` (a Transformer also learns its lattice cell);
    ``mode_weight``: a learned Z2 mixture weight (for gauge-fixed maximum-likelihood data)."""
    hp = dict(n_sites=system.n_sites, n_species=system.n_species, hidden=hidden, layers=layers, symmetric=symmetric,
              T_scale=system.T_scale, mu_scale=system.mu_scale, mode_weight=mode_weight)
    if str(arch).lower() == "transformer":
        hp.update(heads=heads, lattice=system.lattice.kind, size=system.lattice.size)
    return build_model(kind, arch, **hp)


__all__ = ["model_for_system", "AutoregressiveModel", "SampleBatch", "AOARMMLP", "FOARMMADE", "MarginalizationModel", "build_model", "random_ranks",
           "tokens_from_spins", "MODEL_KINDS"]
