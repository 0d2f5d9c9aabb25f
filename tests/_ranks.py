"""The ranks of a distributed lattherm command started by a test, found through /proc."""

from __future__ import annotations

from pathlib import Path


def rank_pids(home: Path) -> dict[int, int]:
    """{rank: pid} of the elastic-launcher ranks started with this LATTHERM_HOME (read from /proc)."""
    out = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = dict(x.split("=", 1) for x in (d / "environ").read_text().split("\0") if "=" in x)
        except OSError:
            continue
        if env.get("LATTHERM_HOME") == str(home) and "RANK" in env and "TORCHELASTIC_RUN_ID" in env:
            out[int(env["RANK"])] = int(d.name)
    return out
