"""Multilevel warm start against training at the target size alone, for the same wall time (issue 12 item 5).

Trains resources/configs/ising-transformer-multilevel-cpu.toml (4x4 -> 6x6 -> 8x8 -> 10x10), then the same config
without levels at 10x10 from scratch with a time budget equal to the multilevel run's training seconds, and
evaluates both at 10x10 on the config's condition grid against the exact reference (transfer matrix). Prints one
JSON line per arm and writes them to --out. CPU only; one thread."""

from __future__ import annotations

import argparse
import json
import time
import tomllib
from pathlib import Path

from lattherm.engine.config import toml_text
from lattherm.engine.paths import RESOURCES
from lattherm.engine.tasks.evaluate import evaluate
from lattherm.engine.training import Trainer

PRESET = Path(RESOURCES) / "configs" / "ising-transformer-multilevel-cpu.toml"


def arm(name: str, text: str, samples: int, grid: str) -> dict:
    tr = Trainer.create(text, name_hint=name)
    t0 = time.perf_counter()
    tr.train()
    wall = time.perf_counter() - t0
    ev = evaluate(tr.run.path, grid=grid, samples=samples, seed=1).to_dict()
    gaps = [row["gap"] for row in ev["conditions"]]
    return {"arm": name, "steps": tr.step, "train_s": round(tr.elapsed, 1), "wall_s": round(wall, 1),
            "mean_gap_10x10": round(sum(gaps) / len(gaps), 4), "gaps": [round(g, 3) for g in gaps],
            "run": str(tr.run.path)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=60, help="evaluation samples per condition")
    ap.add_argument("--out", default="multilevel.json")
    args = ap.parse_args()
    text = PRESET.read_text()
    c = tomllib.loads(text)["conditions"]
    import numpy as np

    grid = (",".join(f"{v:g}" for v in np.linspace(*c["T"], c["T_points"])) + ":"
            + ",".join(f"{v:g}" for v in np.linspace(*c["mu"], c["mu_points"])))
    multi = arm("multilevel", text, args.samples, grid)
    print(json.dumps(multi), flush=True)
    tables = tomllib.loads(text)
    tables["training"].pop("levels")
    tables["training"].update(steps=100_000, max_minutes=multi["train_s"] / 60.0)
    single = arm("10x10-only", toml_text(tables), args.samples, grid)
    print(json.dumps(single), flush=True)
    Path(args.out).write_text(json.dumps([multi, single], indent=1))


if __name__ == "__main__":
    main()
