"""Time per training iteration and peak memory: FO-ARM vs AO-ARM at 5x5 and 10x10 with batch 1250 (issue 2), and
AO-ARM vs AO-MAM at 10x10 and 20x20 (issue 3: O(N) vs O(1) passes with gradient per step).

    .venv/bin/python benchmarks/iteration_cost.py [--steps 3] [--hidden 512] [--layers 4] [--device cpu]
    .venv/bin/python benchmarks/iteration_cost.py --kinds ao-arm,ao-mam --sizes 10x10,20x20 --batch 100 --steps 1

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
from lattherm.engine.config import parse_config
from lattherm.engine.training import Trainer
size, kind, hidden, layers, steps, device, batch, arch = sys.argv[1:9]
text = f'''
[system]
name = "ising"
size = "{size}"
[model]
kind = "{kind}"
arch = "{arch}"
hidden = {hidden}
layers = {layers}
[training]
batch = {batch}
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
    tr.train_step(log=False)
if device.startswith("cuda"):
    torch.cuda.synchronize()
dt = (time.perf_counter() - t0) / int(steps)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
mem = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else (peak - base) / 1024
print(json.dumps({"sec_per_step": dt, "peak_mib": mem, "threads": torch.get_num_threads()}))
"""


STACKED = r"""
import json, sys, time, torch
from lattherm.engine.models import build_model
n_sites, hidden, layers, chunk = map(int, sys.argv[1:5])
torch.manual_seed(0)
m = build_model("ao-arm", n_sites=n_sites, hidden=hidden, layers=layers, T_scale=2.5, mu_scale=0.4, chunk_rows=chunk)
B = 1250
T, mu = torch.full((B,), 2.5), torch.zeros(B)
sb = m.sample(T, mu)
times = []
for _ in range(3):
    t0 = time.perf_counter()
    m.log_prob(sb.spins, T, mu, sb.ranks).sum().backward()
    times.append(time.perf_counter() - t0)
print(json.dumps({"sec": min(times)}))
"""


def stacked_vs_separate(hidden: int, layers: int, sizes) -> None:
    """AO-ARM log p with gradient: N passes of B rows, chunks of <= 4096 rows (the default), or all N partial
    lattices stacked into one (N*B)-row pass."""
    print(f"\nAO-ARM log p + backward, batch 1250: N separate passes, 4096-row chunks (default), one stacked pass")
    print(f"{'size':>6} {'separate s':>11} {'chunks s':>9} {'stacked s':>10}")
    for size in sizes:
        n = 1
        for d in size.split("x"):
            n *= int(d)
        res = {}
        for label, chunk in (("separate", 1250), ("chunks", 4096), ("stacked", 10**9)):
            out = subprocess.run([sys.executable, "-c", STACKED, str(n), str(hidden), str(layers), str(chunk)],
                                 capture_output=True, text=True)
            res[label] = json.loads(out.stdout.strip().splitlines()[-1])["sec"] if not out.returncode else float("nan")
        print(f"{size:>6} {res['separate']:11.2f} {res['chunks']:9.2f} {res['stacked']:10.2f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="5x5,10x10")
    ap.add_argument("--kinds", default="fo-arm,ao-arm")
    ap.add_argument("--arch", default="mlp", choices=["mlp", "transformer"])
    ap.add_argument("--batch", type=int, default=1250, help="a multiple of the 25 training conditions")
    a = ap.parse_args()
    print(f"batch {a.batch}, {a.arch} {a.layers}x{a.hidden}, device {a.device}, {a.steps} timed steps after 1 warm-up")
    print(f"{'size':>6} {'model':>7} {'s/step':>8} {'peak MiB':>9}")
    rows = {}
    for size in a.sizes.split(","):
        for kind in a.kinds.split(","):
            out = subprocess.run([sys.executable, "-c", CASE, size, kind, str(a.hidden), str(a.layers), str(a.steps),
                                  a.device, str(a.batch), a.arch], capture_output=True, text=True)
            if out.returncode:
                print(f"{size:>6} {kind:>7} failed: {out.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            rows[(size, kind)] = r
            print(f"{size:>6} {kind:>7} {r['sec_per_step']:8.2f} {r['peak_mib']:9.0f}")
    kinds = a.kinds.split(",")
    for size in a.sizes.split(","):
        if len(kinds) == 2 and all((size, k) in rows for k in kinds):
            base, other = rows[(size, kinds[0])], rows[(size, kinds[1])]
            print(f"{size}: {kinds[1]}/{kinds[0]} time {other['sec_per_step'] / base['sec_per_step']:.2f}x, "
                  f"memory {other['peak_mib'] / max(base['peak_mib'], 1):.2f}x")
    if a.device == "cpu" and "ao-arm" in kinds and "ao-mam" not in kinds:
        stacked_vs_separate(a.hidden, a.layers, a.sizes.split(","))


if __name__ == "__main__":
    main()
