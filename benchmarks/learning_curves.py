"""Learning curves: gap to the exact bound against wall minutes for REINFORCE, MLE, MLE + REINFORCE fine-tune and
subsampled REINFORCE, side by side, Monte Carlo data time included (issue 12).

    .venv/bin/python benchmarks/learning_curves.py [--size 5x5|10x10] [--minutes 10] [--threads 2]
        [--methods reinforce,mle,mle+reinforce,reinforce-k] [--k 5] [--samples 2000] [--out DIR]
    .venv/bin/python benchmarks/learning_curves.py --variance 1,5,10 [--init MODEL]   # gradient variance vs K

Each method trains the same model (the size's ``ising-<size>-ao-mle-cpu.toml`` preset, only ``[training]
objective``, ``switch_step``, ``reinforce_steps`` and ``max_minutes`` changed) for ``--minutes`` of wall time, the
data set's generation counted in it (the trainer adds it to the run's elapsed time). The logged records give the
curve (the logged gap: F_q from batch / G fresh samples per condition minus the exact -log Z at the schedule's
conditions); at the end each model is evaluated on the paper grid with ``--samples`` per condition. Prints a table
(gap at 1, 2, 5, 10... minutes, final evaluated gap, seconds per training sample by phase) and, where matplotlib is
installed, writes ``learning_curves-<size>.png``; always writes the curves as JSON. For mle+reinforce the switch
is put at ``--switch-fraction`` of the steps the preset names (the minutes decide where the run actually stops).
"""

from __future__ import annotations

import argparse
import json
import re
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def preset(size: str) -> str:
    return (ROOT / "resources" / "configs" / f"ising-{size}-ao-mle-cpu.toml").read_text(encoding="utf-8")


def set_key(text: str, key: str, value) -> str:
    """Set ``key = value`` in the [training] table of a TOML text (replaced if present, else appended there)."""
    v = json.dumps(value) if isinstance(value, (str, bool)) else repr(value)
    line = re.compile(rf"^{re.escape(key)}\s*=.*$", re.M)
    if line.search(text):
        return line.sub(f"{key} = {v}", text, count=1)
    return text.replace("[training]\n", f"[training]\n{key} = {v}\n", 1)


def method_config(base: str, method: str, minutes: float, threads: int, k: int, switch_fraction: float) -> str:
    steps = int(re.search(r"^steps\s*=\s*(\d+)", base, re.M).group(1))
    text = set_key(set_key(base, "max_minutes", float(minutes)), "threads", threads)
    if method == "reinforce-k":
        return set_key(set_key(text, "objective", "reinforce"), "reinforce_steps", k)
    text = set_key(set_key(text, "objective", method), "reinforce_steps", 0)
    if method == "mle+reinforce":
        text = set_key(text, "switch_step", max(1, int(steps * switch_fraction)))
    return text


def run_method(text: str, root: Path, samples: int, seed: int) -> dict:
    from lattherm.engine.tasks.evaluate import evaluate
    from lattherm.engine.training import Trainer

    t0 = time.perf_counter()
    tr = Trainer.create(text, root=root)
    tr.train()
    wall = time.perf_counter() - t0
    records = tr.run.read_metrics()
    ev = evaluate(tr.run.path, grid="paper", samples=samples, seed=seed).to_dict()
    av = ev["average"]
    rows = {"mle": tr.cfg.data.batch or tr.cfg.training.batch, "reinforce": tr.cfg.training.batch}
    return {"run": str(tr.run.path), "steps": tr.step, "wall_s": wall, "elapsed_s": tr.elapsed,
            "data": tr.run.status().get("dataset"),
            "curve": [(r["elapsed_s"] / 60, r.get("exact_gap"), r["phase"]) for r in records],
            "final_gap": av["gap"], "final_gap_stderr": av.get("gap_stderr"), "final_F_q": av["F_q"],
            "final_ess": av.get("ess_fraction"),
            "sec_per_sample": sec_per_sample(records, rows)}


def sec_per_sample(records: list[dict], rows: dict) -> dict:
    """Seconds per training row by phase, from the wall time between consecutive records of one phase without the
    logged step itself (whose diagnostics draw fresh samples in an MLE phase: ``sec_per_step`` of a record is that
    one step's time, not the phase's rate); a phase with one record falls back to its logged step."""
    out = {}
    for phase in dict.fromkeys(r["phase"] for r in records):
        recs = [r for r in records if r["phase"] == phase]
        pairs = [(b["elapsed_s"] - a["elapsed_s"] - b["sec_per_step"], b["step"] - a["step"] - 1)
                 for a, b in zip(recs, recs[1:]) if b["step"] - a["step"] > 1]
        secs, steps = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
        out[phase] = (secs / steps if steps else recs[-1]["sec_per_step"]) / rows[phase]
    return out


def gap_at(curve, minute: float):
    """The logged gap at ``minute``: the mean over the records of the last 10% of the time up to it (a smoothed
    read), or where records are sparser than that, the straight line between the two around it; None before the
    first record or more than 5% after the run's last."""
    pts = [(m, g) for m, g, _ in curve if g is not None]
    if not pts or not pts[0][0] <= minute <= pts[-1][0] * 1.05:
        return None
    tail = [g for m, g in pts if 0.9 * minute <= m <= minute]
    if tail:
        return sum(tail) / len(tail)
    (m0, g0), (m1, g1) = next((a, b) for a, b in zip(pts, pts[1:]) if a[0] <= minute <= b[0])
    return g0 + (g1 - g0) * (minute - m0) / (m1 - m0)


def gradient_variance(text: str, ks, draws: int, init=None) -> list[dict]:
    """Subsampled REINFORCE against the full gradient at one model state (the preset's initialisation, or
    ``init``'s weights): for each K, seconds per gradient (sampling excluded: it is the same N passes for every K)
    and the relative variance E|g_K - g|^2 / |g|^2 over ``draws`` draws of the step subsets on one batch."""
    import torch

    from lattherm.engine.config import parse_config
    from lattherm.engine.training import Trainer
    from lattherm.engine.training.reinforce import leave_one_out_advantage, score

    tr = Trainer(parse_config(text))
    if init:
        tr.init_weights(init)
    model, G = tr.model, tr.schedule.n_conditions
    T, mu = tr.schedule.batch(0)
    sb = model.sample(T, mu)
    adv = leave_one_out_advantage(sb.log_p - tr.system.log_f(sb.spins, T, mu), G).float()
    params = [p for p in model.parameters()]

    def grad(surrogate):
        gs = torch.autograd.grad((adv * surrogate).mean(), params, allow_unused=True)
        return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(gs, params)])

    t0 = time.perf_counter()
    full = grad(model.log_prob(sb.spins, T, mu, sb.ranks))
    rows = [{"K": model.n_sites, "s_per_gradient": time.perf_counter() - t0, "relative_variance": 0.0}]
    # the scale to compare with: the full gradient's own batch-to-batch spread, E|g_batch - mean|^2 / |mean|^2
    batches = []
    for _ in range(4):
        b = model.sample(T, mu)
        a_b = leave_one_out_advantage(b.log_p - tr.system.log_f(b.spins, T, mu), G).float()
        gs = torch.autograd.grad((a_b * model.log_prob(b.spins, T, mu, b.ranks)).mean(), params, allow_unused=True)
        batches.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                                  for g, p in zip(gs, params)]))
    bt = torch.stack(batches)
    m = bt.mean(0)
    rows[0]["batch_relative_variance"] = float(((bt - m) ** 2).sum(1).mean() * len(bt) / (len(bt) - 1) / (m ** 2).sum())
    for K in ks:
        t0 = time.perf_counter()
        g = torch.stack([grad(score(model, sb, T, mu, K))
                         for _ in range(draws)])
        rows.append({"K": K, "s_per_gradient": (time.perf_counter() - t0) / draws,
                     "relative_variance": float(((g - full) ** 2).sum(1).mean() / (full ** 2).sum())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="5x5", choices=["5x5", "10x10"])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default="reinforce,mle,mle+reinforce,reinforce-k")
    ap.add_argument("--k", type=int, default=5, help="reinforce_steps of the subsampled method")
    ap.add_argument("--switch-fraction", type=float, default=0.8)
    ap.add_argument("--samples", type=int, default=2000, help="evaluation samples per paper condition")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/out")
    ap.add_argument("--variance", default="", help="only measure the subsampled gradient: comma-separated K")
    ap.add_argument("--init", default=None, help="--variance at this model's weights (run, folder or bundled)")
    ap.add_argument("--log-every", type=int, default=0, help="override the preset's log_every (points on the curve)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a [training] key of the preset for every method (e.g. steps=6000, so the cosine "
                         "ends inside a short budget); repeatable")
    ap.add_argument("--tag", default="", help="suffix of the JSON and figure names (runs split over processes)")
    ap.add_argument("--merge", nargs="+", default=None, help="only draw the table and figure of these JSON files")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    base = preset(a.size)
    for item in a.set:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            ap.error(f"--set needs KEY=VALUE, got {item!r}")
        try:  # a TOML value (2e-5, true, "text"); anything else is taken as a string
            parsed = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value
        base = set_key(base, key.strip(), parsed)
    if a.variance:
        import torch

        torch.set_num_threads(a.threads)
        rows = gradient_variance(set_key(base, "threads", a.threads), [int(k) for k in a.variance.split(",")], 8,
                                 a.init)
        print(f"Ising {a.size}: subsampled REINFORCE gradient, one batch, 8 draws per K")
        print(f"{'K':>5}{'s/gradient':>12}{'E|g_K - g|^2 / |g|^2':>24}   (g: the full gradient of the same batch)")
        for r in rows:
            print(f"{r['K']:5d}{r['s_per_gradient']:12.3f}{r['relative_variance']:24.3f}")
        print(f"batch-to-batch spread of the full gradient, E|g_b - <g>|^2 / |<g>|^2 ~ "
              f"{rows[0]['batch_relative_variance']:.3f} (4 batches)")
        return
    if a.merge:
        results = {}
        for path in a.merge:
            results.update(json.loads(Path(path).read_text(encoding="utf-8")))
        report(results, a.size, a.threads, a.samples, a.minutes, out)
        return
    results = {}
    for method in a.methods.split(","):
        text = method_config(base, method, a.minutes, a.threads, a.k, a.switch_fraction)
        if a.log_every:
            text = set_key(text, "log_every", a.log_every)
        print(f"--- {method}: {a.minutes:g} min, {a.threads} threads", flush=True)
        results[method] = run_method(text, out / "runs", a.samples, a.seed)
        r = results[method]
        print(f"    {r['steps']} steps, final gap {r['final_gap']:.4f} ({r['run']})", flush=True)
    tag = f"-{a.tag}" if a.tag else ""
    (out / f"learning_curves-{a.size}{tag}.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    report(results, a.size, a.threads, a.samples, a.minutes, out, tag)


def report(results: dict, size: str, threads: int, samples: int, minutes: float, out: Path, tag: str = "") -> None:
    """The table (gap at round minutes, final evaluated gap, cost per sample) and the figure of ``results``."""
    marks = sorted({m for m in (1, 2, 5, 10, 20, 30, 60) if m < minutes} | {minutes})
    print(f"\nIsing {size} AO-ARM, {threads} thread(s) per run: logged gap (F_q - exact, smoothed) at wall minutes "
          f"(MC data included); final = paper grid, {samples} samples per condition")
    head = f"{'method':<16}{'data s':>8}{'steps':>7}" + "".join(f"{f'{m:g} min':>9}" for m in marks)
    print(head + f"{'final':>9}{'ESS/N':>7}   s/sample by phase")
    for method, r in results.items():
        data_s = (r["data"] or {}).get("seconds", 0.0)
        cells = "".join(f"{g:9.4f}" if (g := gap_at(r["curve"], m)) is not None else f"{'-':>9}" for m in marks)
        sps = ", ".join(f"{p} {v * 1e3:.3f} ms" for p, v in r["sec_per_sample"].items())
        print(f"{method:<16}{data_s:8.1f}{r['steps']:7d}{cells}{r['final_gap']:9.4f}{r['final_ess'] or 0:7.3f}   {sps}")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.add_subplot()
    for method, r in results.items():
        pts = [(m, g) for m, g, _ in r["curve"] if g is not None and g > 0]
        line, = ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=method)
        end = r["curve"][-1][0] if r["curve"] else minutes
        ax.errorbar([end], [r["final_gap"]], yerr=[r.get("final_gap_stderr") or 0.0], color=line.get_color(),
                    marker="*", markersize=11, linestyle="none")
    ax.set_yscale("log")
    ax.set_xlabel("wall minutes on this 2-core CPU (Monte Carlo data included)")
    ax.set_ylabel("gap F_q - F (kT per lattice)")
    ax.set_title(f"Ising {size} AO-ARM, {threads} CPU thread(s) per run (stars: paper-grid evaluation)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    path = out / f"learning_curves-{size}{tag}.png"
    fig.savefig(path, dpi=120)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
