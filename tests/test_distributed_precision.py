"""The GPU fast path's accuracy, checked where it runs on this machine: bf16 autocast (engine/training/precision.py
as the trainer uses it) of the bundled 5x5 AO-ARM gives the exact gap F_q - (-log Z) of float32 to within 0.005
(units of kT, for the whole 25-site lattice: 2e-4 per site, against a gap of about 0.015), and its ``full()``
region is float32 bit for bit. On a device without bf16 autocast the Precision says so instead."""

from __future__ import annotations

import pytest
import torch

from lattherm.engine.analysis.free_energy import exact_or_none
from lattherm.engine.tasks._common import load, seeded
from lattherm.engine.training.precision import Precision

GAP_TOLERANCE = 0.005  # |gap(bf16) - gap(float32)|, kT per lattice
CONDITIONS = [(2.0, 0.0), (3.5, -0.3)]  # near T_c at zero field (Kaufman), hot in a field (transfer matrix)
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_bf16_autocast_keeps_the_exact_gap_of_float32(device):
    lm = load("ising-5x5-ao-mlp", device)
    model, system = lm.model.eval(), lm.system
    precision = Precision("bf16", torch.device(device))
    if not precision.bf16:
        pytest.skip(f"no bf16 autocast on {device}: {precision.describe()}")
    assert precision.describe() == f"bf16 autocast on {device}"
    for T, mu in CONDITIONS:
        neg_log_Z = -exact_or_none(system, T, mu).log_Z
        with torch.no_grad():
            sb = model.sample(T, mu, batch=1000, generator=seeded(1) if device == "cpu" else None)
            log_f = system.log_f(sb.spins, T, mu).double()
            f32 = model.log_prob(sb.spins, T, mu, ranks=sb.ranks).double()
            with precision.autocast():
                bf16 = model.log_prob(sb.spins, T, mu, ranks=sb.ranks).double()
                with precision.full():
                    inner = model.log_prob(sb.spins, T, mu, ranks=sb.ranks).double()
        gap32 = float((f32 - log_f).mean()) - neg_log_Z
        gap16 = float((bf16 - log_f).mean()) - neg_log_Z
        assert torch.equal(inner, f32)  # full() switches autocast off: sampling and the exact log p stay float32
        assert not torch.equal(bf16, f32)  # autocast did run in bf16
        assert -0.01 < gap32 < 0.1  # a trained model: a small, positive gap (up to its sampling error)
        assert abs(gap16 - gap32) < GAP_TOLERANCE, (T, mu, gap32, gap16)
        assert float((bf16 - f32).abs().max()) < 0.1  # per configuration: bf16's 3 digits of a log q near -10


def test_tf32_and_float32_are_the_plain_cpu_passes():
    for name in ("float32", "tf32"):
        p = Precision(name, torch.device("cpu"))
        assert not p.bf16 and p.describe() == "float32"
