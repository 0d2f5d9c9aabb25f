"""Time per training iteration and peak memory, FO-ARM vs AO-ARM, at 5x5 and 10x10 with batch 1250.

    .venv/bin/python benchmarks/iteration_cost.py [--steps 3] [--hidden 512] [--layers 4] [--device cpu]

Each case runs in a fresh subprocess (so peak RSS is its own): one warm-up step, then the mean of --steps timed
REINFORCE steps (sampling with N sequential passes, log q with gradient, backward, Adam). Peak memory is the
process's maximum resident set size growth over the model-built baseline (CPU) or torch's peak allocation (CUDA).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CASE = r"""
import json, resource, sys, time, torch
from lattherm.engine.training import Trainer, parse_config
size, kind, hidden, layers, steps, device = sys.argv[1:7]
text = f'''
[system]
name = "ising"
size = "{size}"
[model]
kind = "{kind}"
hidden = {hidden}
layers = {layers}
[training]
batch = 1250
steps = 1000
device = "{device}"
'''
tr = Trainer(parse_config(text))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tr.train_step()
if device.startswith("cuda"):
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
t0 = time.perf_counter()
for _ in range(int(steps)):
    tr.train_step()
if device.startswith("cuda"):
    torch.cuda.synchronize()
dt = (time.perf_counter() - t0) / int(steps)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
mem = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else (peak - base) / 1024
print(json.dumps({"sec_per_step": dt, "peak_mib": mem, "threads": torch.get_num_threads()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="5x5,10x10")
    a = ap.parse_args()
    print(f"batch 1250, MLP {a.layers}x{a.hidden}, device {a.device}, {a.steps} timed steps after 1 warm-up")
    print(f"{'size':>6} {'model':>7} {'s/step':>8} {'peak MiB':>9}")
    rows = {}
    for size in a.sizes.split(","):
        for kind in ("fo-arm", "ao-arm"):
            out = subprocess.run([sys.executable, "-c", CASE, size, kind, str(a.hidden), str(a.layers), str(a.steps),
                                  a.device], capture_output=True, text=True)
            if out.returncode:
                print(f"{size:>6} {kind:>7} failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows[(size, kind)] = r
            print(f"{size:>6} {kind:>7} {r['sec_per_step']:8.2f} {r['peak_mib']:9.0f}")
    for size in a.sizes.split(","):
        if (size, "fo-arm") in rows and (size, "ao-arm") in rows:
            fo, ao = rows[(size, "fo-arm")], rows[(size, "ao-arm")]
            print(f"{size}: AO/FO time {ao['sec_per_step'] / fo['sec_per_step']:.1f}x, "
                  f"memory {ao['peak_mib'] / max(fo['peak_mib'], 1):.1f}x")


if __name__ == "__main__":
    main()
