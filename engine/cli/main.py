"""The `lattherm` command: exact references, training, evaluation, sampling and runs, headless.

Every user error (bad temperature, unknown system, a size the model can't serve, a malformed config, a missing or
truncated checkpoint) is one line on stderr and exit code 2; nothing is half-written.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys

from .. import __version__
from ..errors import LatthermError


def _number(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    return v


def _device(name: str | None) -> str | None:
    """Check a --device value up front: a typo or a missing GPU is a one-line error, not a torch traceback."""
    if name is None:
        return None
    from ..devices import pick_device

    return str(pick_device(name))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lattherm", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"lattherm {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    e = sub.add_parser("exact", help="exact log Z, free energy, <E>, <M>/<x_Au>, C of a small lattice")
    e.add_argument("system", help="ising or cuau")
    e.add_argument("--size", required=True, help="e.g. 10x10 (Ising) or 2x2x4 (CuAu)")
    e.add_argument("--T", type=_number, required=True, help="temperature (kT/eps for Ising, kelvin for CuAu)")
    e.add_argument("--mu", type=_number, default=0.0, help="field / chemical potential (eps or eV)")
    e.add_argument("--method", default="auto", choices=["auto", "kaufman", "transfer_matrix", "enumeration"])
    e.add_argument("--json", action="store_true", help="print one JSON object")

    t = sub.add_parser("train", help="train a model from a TOML config, or resume a run")
    t.add_argument("config", nargs="?", help="CONFIG.toml (see resources/configs/)")
    t.add_argument("--resume", metavar="RUN", help="run id or folder to continue")
    t.add_argument("--device", help="cpu, cuda or auto (overrides the config)")
    t.add_argument("--name", help="name hint for the run folder")
    t.add_argument("--init", metavar="MODEL", help="start from the weights of this run or model (same architecture)")

    v = sub.add_parser("evaluate", help="free energies of a run or model over a condition grid")
    v.add_argument("model", metavar="RUN_OR_MODEL")
    v.add_argument("--grid", default="paper", help="'paper' or 'T1,T2:mu1,mu2'")
    v.add_argument("--samples", type=int, default=2000, help="samples per condition")
    v.add_argument("--batch", type=int, default=2000)
    v.add_argument("--no-exact", action="store_true", help="skip exact references")
    v.add_argument("--size", help="evaluate lattices of this size, painted by the (any-order) model")
    v.add_argument("--layout", default="auto", choices=["auto", "centered", "sliding"],
                   help="painting windows (with --size): each block at its windows' centre, or the paper's sliding "
                        "ones (auto: centered where the window has room)")
    v.add_argument("--stride", type=int, help="painting stride (default 1 centered; sliding: 3 in 2D, 1 in 3D)")
    v.add_argument("--views", type=int, help="centered: central windows combined per site (default all)")
    v.add_argument("--method", default="auto", choices=["auto", "direct", "windows"],
                   help="painting a Transformer (with --size): the whole lattice at once (auto) or windows")
    v.add_argument("--device", default="cpu")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--json", action="store_true")
    v.add_argument("--out", help="also write the JSON result to this file")

    s = sub.add_parser("sample", help="draw configurations at one condition into an .npz file")
    s.add_argument("model", metavar="RUN_OR_MODEL")
    s.add_argument("--T", type=_number, required=True)
    s.add_argument("--mu", type=_number, default=0.0)
    s.add_argument("-n", type=int, default=1000, help="number of samples")
    s.add_argument("--size", help="target lattice (must be the model's own for MLP models)")
    s.add_argument("--out", required=True, help="FILE.npz")
    s.add_argument("--device", default="cpu")
    s.add_argument("--seed", type=int, default=0)

    pt = sub.add_parser("paint", help="in-/out-paint a (larger) lattice with an any-order model")
    pt.add_argument("model", metavar="MODEL")
    pt.add_argument("--size", required=True, help="target lattice, e.g. 20x20 or 4x4x8")
    pt.add_argument("--constraints", help="FILE.npz with 'mask' and 'values' shaped like the target")
    pt.add_argument("--T", type=_number, required=True)
    pt.add_argument("--mu", type=_number, default=0.0)
    pt.add_argument("-n", type=int, default=100, help="number of painted lattices")
    pt.add_argument("--method", default="auto", choices=["auto", "direct", "windows"],
                    help="Transformer: whole lattice at once (direct) or sliding windows; MLP: windows")
    pt.add_argument("--layout", default="auto", choices=["auto", "centered", "sliding"],
                    help="windows: each block generated at its windows' centre, or the paper's sliding ones "
                         "(auto: centered where the window has room)")
    pt.add_argument("--stride", type=int, help="window stride (default 1 centered; sliding: 3 in 2D, 1 in 3D)")
    pt.add_argument("--views", type=int, help="centered: central windows combined per site (default all)")
    pt.add_argument("--period-mode", choices=["trained", "target"], help="RoPE periods on the target (Transformer)")
    pt.add_argument("--out", required=True, help="FILE.npz")
    pt.add_argument("--device", default="cpu")
    pt.add_argument("--seed", type=int, default=0)

    r = sub.add_parser("runs", help="list runs with their status")
    r.add_argument("--json", action="store_true")

    d = sub.add_parser("demo", help="evaluate the bundled example model on the paper grid")
    d.add_argument("--samples", type=int, default=1000)

    x = sub.add_parser("export-model", help="write a run's latest weights as a self-contained model folder")
    x.add_argument("run", metavar="RUN")
    x.add_argument("--out", required=True, help="destination folder")
    x.add_argument("--info", help="JSON file with extra provenance (measured numbers) for model.json")

    xs = sub.add_parser("export", help="write configurations of a samples file as extended XYZ or CIF (OVITO, ASE)")
    xs.add_argument("samples", metavar="SAMPLES.npz")
    xs.add_argument("--format", choices=["extxyz", "cif"], help="default: from the --out suffix (.xyz/.extxyz, .cif)")
    xs.add_argument("--out", required=True, help="destination file")
    xs.add_argument("--max", type=int, help="export at most this many configurations (default: all)")

    pd = sub.add_parser("phase-diagram", help="temperature-composition map and <x>(mu) isotherms from model samples")
    pd.add_argument("model", metavar="MODEL_OR_MC", help="a run or model, or 'mc' for the Monte Carlo reference")
    pd.add_argument("--system", help="with mc: cuau or ising")
    pd.add_argument("--lattice-size", dest="lattice_size", help="with mc: the supercell, e.g. 2x2x4")
    pd.add_argument("--chains", type=int, default=16, help="with mc: chains per condition")
    pd.add_argument("--sweeps", type=int, default=200, help="with mc: recorded sweeps (after as many to equilibrate)")
    pd.add_argument("--boundary", choices=["wl", "none"], default="wl",
                    help="overlay the two-phase boundary from Wang-Landau over composition (default) or nothing")
    pd.add_argument("--boundary-size", help="supercell of the boundary calculation (default: the diagram's)")
    pd.add_argument("--boundary-T-points", type=int, default=8, help="temperatures of the boundary calculation")
    pd.add_argument("--T-points", type=int, default=32)
    pd.add_argument("--mu-points", type=int, default=32)
    pd.add_argument("--samples", type=int, default=200, help="samples per condition")
    pd.add_argument("--T-range", help="low,high (default: the model's trained range)")
    pd.add_argument("--mu-range", help="low,high (default: the model's trained range)")
    pd.add_argument("--out", required=True, help="destination folder")
    pd.add_argument("--device", default="cpu")
    pd.add_argument("--seed", type=int, default=0)
    return p


# ---- commands ---------------------------------------------------------------------------------------------------
def cmd_exact(a) -> int:
    from ..exact import exact_reference
    from ..systems import make_system

    system = make_system(a.system, a.size)
    res = exact_reference(system, a.T, a.mu, method=a.method)
    d = {**res.to_dict(), "system": system.name, "size": system.lattice.label,
         "T_unit": system.temperature_unit, "energy_unit": system.mu_unit}
    if a.json:
        print(json.dumps(d))
    else:
        for k, v in d.items():
            print(f"{k:>24}: {v}")
    return 0


def cmd_train(a) -> int:
    from ..training import Control, Trainer
    from .progress import Progress

    if a.resume:
        if a.config or a.init:
            raise LatthermError("--resume continues a run as it was: it takes neither CONFIG.toml nor --init")
        trainer = Trainer.resume(a.resume, device=_device(a.device))
    elif a.config:
        from pathlib import Path

        path = Path(a.config)
        if not path.is_file():
            raise LatthermError(f"config file {path} not found")
        from ..config import parse_config

        text = path.read_text(encoding="utf-8")
        parse_config(text, source=str(path))  # errors name the file; nothing is created for a bad config
        trainer = Trainer.create(text, name_hint=a.name, device=_device(a.device), init=a.init)
    else:
        raise LatthermError("train needs CONFIG.toml or --resume RUN")
    control = Control()

    def on_sigint(signum, frame):
        if control.stop:
            raise KeyboardInterrupt
        control.request_stop("interrupted (Ctrl-C)")
        print("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

    old = signal.signal(signal.SIGINT, on_sigint)
    cfg = trainer.cfg.training
    progress = Progress(cfg.steps, trainer.step, cfg.max_minutes * 60)
    print(f"run {trainer.run.id} in {trainer.run.path} on {trainer.device} (step {trainer.step})", file=sys.stderr)
    try:
        status = trainer.train(on_log=progress, control=control)
    finally:
        progress.close()
        signal.signal(signal.SIGINT, old)
    print(f"{status}: run {trainer.run.id}, step {trainer.step}, checkpoint {trainer.run.latest_checkpoint()}",
          file=sys.stderr)
    return 130 if status == "stopped" and control.reason.startswith("interrupted") else 0


def _print_table(ev: dict, unit: str) -> None:
    print(f"{'T':>8} {'mu':>7} {'<log p>':>10} {'<log f>':>10} {'F_q':>10} {'-logZ_nis':>10} {'ESS/N':>6} "
          f"{'exact':>10} {'gap':>8}")
    for c in ev["conditions"]:
        ex = "-" if c["exact_neg_log_Z"] is None else f"{c['exact_neg_log_Z']:.4f}"
        gap = "-" if c["gap"] is None else f"{c['gap']:.4f}"
        mark = "  extrapolation" if c.get("extrapolation") else ""
        print(f"{c['T']:8.3f} {c['mu']:7.3f} {c['mean_log_p']:10.4f} {c['mean_log_f']:10.4f} {c['F_q']:10.4f} "
              f"{c['neg_log_Z_nis']:10.4f} {c['ess_fraction']:6.3f} {ex:>10} {gap:>8}{mark}")
    av = ev["average"]
    ex = "-" if av["exact_neg_log_Z"] is None else f"{av['exact_neg_log_Z']:.4f}"
    gap = "-" if av["gap"] is None else f"{av['gap']:.4f}"
    print(f"{'average':>16} {av['mean_log_p']:10.4f} {av['mean_log_f']:10.4f} {av['F_q']:10.4f} "
          f"{av['neg_log_Z_nis']:10.4f} {av['ess_fraction']:6.3f} {ex:>10} {gap:>8}   (T in {unit})")


def _evaluate(ref, grid: str, samples: int, batch: int, exact: bool, device: str, seed: int, size=None,
              layout: str = "auto", stride: int | None = None, views: int | None = None,
              method: str = "auto") -> dict:
    import torch

    from ..analysis import evaluate
    from ..lattices import parse_size
    from ..models.io import load_model
    from ..sampling import paint_with_model
    from ..systems import make_system
    from ..training import parse_grid

    torch.manual_seed(seed)
    lm = load_model(ref, device=_device(device))
    system, draw = lm.system, None
    if size and parse_size(size) != lm.system.lattice.size:
        system = make_system(lm.system.name, size)

        def draw(T, mu, n):  # painted lattices, with the exact log p of the painting path
            res = paint_with_model(lm, system, T, mu, n, layout=layout, stride=stride, views=views, method=method)
            return res.spins, res.log_p

    conds = parse_grid(grid, system.name)
    for T, mu in conds:
        system.check(T, mu)
    ev = evaluate(lm.model, system, conds, samples, batch, exact=exact, draw=draw).to_dict()
    for c in ev["conditions"]:
        c["extrapolation"] = lm.extrapolates(c["T"], c["mu"])
    ev["trained_range"] = lm.trained_range()
    ev["source"] = {"kind": lm.source.kind, "path": str(lm.source.path), "step": lm.step,
                    "painted_from": lm.system.lattice.label if draw else None,
                    "layout": layout if draw else None, "stride": stride if draw else None,
                    "views": views if draw else None, "method": method if draw else None}
    ev["system"]["T_unit"] = system.temperature_unit
    return ev


def _note_extrapolation(lm, T: float, mu: float) -> None:
    """Conditions outside the trained range are allowed, and said to be an extrapolation."""
    if lm.extrapolates(T, mu):
        r = lm.trained_range()
        print(f"note: T={T:g}, mu={mu:g} lies outside the trained range T {r['T']}, mu {r['mu']}: extrapolation",
              file=sys.stderr)


def _write_guarded(write, path) -> None:
    """Run an (atomic) write; an unwritable destination is a one-line error, not a traceback."""
    try:
        write()
    except OSError as exc:
        raise LatthermError(f"cannot write {path}: {exc.strerror or exc}") from None


def cmd_evaluate(a) -> int:
    if a.batch < 1:
        raise LatthermError(f"--batch must be >= 1, got {a.batch}")
    ev = _evaluate(a.model, a.grid, a.samples, a.batch, not a.no_exact, a.device, a.seed, a.size, a.layout, a.stride,
                   a.views, a.method)
    if a.out:
        from ..store import atomic_write_json

        _write_guarded(lambda: atomic_write_json(a.out, ev), a.out)
    if a.json:
        print(json.dumps(ev))
    else:
        _print_table(ev, ev["system"]["T_unit"])
    return 0


def cmd_sample(a) -> int:
    import torch

    from ..lattices import parse_size
    from ..models.io import load_model
    from ..store.samples import write_samples

    if a.n < 1:
        raise LatthermError(f"-n must be >= 1, got {a.n}")
    if not a.out.endswith(".npz"):
        raise LatthermError(f"--out must name an .npz file, got {a.out!r}")
    device = _device(a.device)
    torch.manual_seed(a.seed)
    lm = load_model(a.model, device=device)
    system = lm.system
    if a.size and parse_size(a.size) != system.lattice.size:
        raise LatthermError(f"this {lm.model.kind} MLP model serves only the {system.lattice.label} lattice, "
                            f"not {a.size} (larger lattices need painting)")
    system.check(a.T, a.mu)
    _note_extrapolation(lm, a.T, a.mu)
    sb = lm.model.sample(a.T, a.mu, batch=a.n)
    spins = sb.spins.cpu()
    log_f = system.log_f(spins, a.T, a.mu)
    _write_guarded(lambda: write_samples(a.out, system, spins, sb.log_p, log_f, a.T, a.mu, order=sb.ranks), a.out)
    obs = float(system.observable(spins).mean())
    print(f"wrote {a.n} samples to {a.out}: <log p> {float(sb.log_p.mean()):.4f}, <log f> {float(log_f.mean()):.4f}, "
          f"<{system.observable_name}> {obs:.4f}")
    return 0


def cmd_paint(a) -> int:
    import torch

    from ..models.io import load_model
    from ..sampling import load_constraints, paint_with_model, save_paint_npz
    from ..systems import make_system

    if a.n < 1:
        raise LatthermError(f"-n must be >= 1, got {a.n}")
    if not a.out.endswith(".npz"):
        raise LatthermError(f"--out must name an .npz file, got {a.out!r}")
    lm = load_model(a.model, device=_device(a.device))
    target = make_system(lm.system.name, a.size)
    mask = values = None
    if a.constraints:
        mask, values = load_constraints(a.constraints, target)
    target.check(a.T, a.mu)
    _note_extrapolation(lm, a.T, a.mu)
    gen = torch.Generator().manual_seed(a.seed)
    res = paint_with_model(lm, target, a.T, a.mu, a.n, mask=mask, values=values, generator=gen, stride=a.stride,
                           method=a.method, layout=a.layout, views=a.views, period_mode=a.period_mode)
    _write_guarded(lambda: save_paint_npz(a.out, res, target), a.out)
    fq = float((res.log_p - res.log_f).mean())
    print(f"wrote {a.n} painted {target.lattice.label} lattices to {a.out}: <log p> {float(res.log_p.mean()):.4f}, "
          f"<log f> {float(res.log_f.mean()):.4f}, F_q {fq:.4f} ({fq / target.n_sites:.5f} per site)")
    return 0


def cmd_runs(a) -> int:
    from ..store import list_runs

    rows = list_runs()
    if a.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no runs yet (lattherm train CONFIG.toml)")
        return 0
    print(f"{'id':<44} {'status':<9} {'system':<7} {'size':<7} {'model':<10} {'step':>7} {'best F_q':>10}")
    for r in rows:
        fq = "-" if r.get("best_F_q") is None else f"{r['best_F_q']:.4f}"
        print(f"{r['id']:<44} {str(r['status']):<9} {str(r['system']):<7} {str(r['size']):<7} {str(r['model']):<10} "
              f"{str(r.get('step') or 0):>7} {fq:>10}")
    return 0


def cmd_demo(a) -> int:
    from ..store import bundled_models

    names = bundled_models()
    if not names:
        raise LatthermError("no bundled model found under resources/models")
    name = names[0]  # the example model when it is there
    print(f"lattherm {__version__}: evaluating the bundled model {name} on the paper grid "
          f"({a.samples} samples per condition)")
    ev = _evaluate(name, "paper", a.samples, 2000, True, "cpu", 0)
    _print_table(ev, ev["system"]["T_unit"])
    return 0


def cmd_export_model(a) -> int:
    from pathlib import Path

    from ..models.io import load_model, save_model_folder
    from ..store import Run

    run = Run.open(a.run)
    lm = load_model(str(run.path))
    info = {"source_run": run.id, "step": lm.step, "status": run.status().get("status")}
    if a.info:
        try:
            info.update(json.loads(Path(a.info).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise LatthermError(f"--info {a.info}: {exc}") from None
    out = save_model_folder(a.out, lm.model, lm.system, run.config_text(), info)
    print(f"wrote model folder {out}")
    return 0


def cmd_export(a) -> int:
    from pathlib import Path

    from ..analysis.structures import cif_text, extxyz_text, frames_from_samples
    from ..store.samples import read_samples
    from ..store import atomic_write_text

    fmt = a.format
    if fmt is None:
        suffix = Path(a.out).suffix.lower()
        fmt = {".xyz": "extxyz", ".extxyz": "extxyz", ".cif": "cif"}.get(suffix)
        if fmt is None:
            raise LatthermError(f"cannot tell the format from {a.out!r}: give --format extxyz or cif")
    if a.max is not None and a.max < 1:
        raise LatthermError(f"--max must be >= 1, got {a.max}")
    lattice, species, spins, infos = frames_from_samples(read_samples(a.samples), a.max)
    text = (extxyz_text if fmt == "extxyz" else cif_text)(lattice, species, spins, infos)
    _write_guarded(lambda: atomic_write_text(a.out, text), a.out)  # atomic: an error leaves no (half-)file
    print(f"wrote {len(spins)} {lattice.label} fcc configurations ({lattice.n_sites} atoms each) to {a.out} ({fmt})")
    return 0


def _range(text: str | None, name: str, default) -> tuple[float, float]:
    if text is None:
        if default is None:
            raise LatthermError(f"the model has no trained range: give {name} low,high")
        return float(default[0]), float(default[1])
    parts = text.split(",")
    try:
        lo, hi = (float(v) for v in parts)
    except ValueError:
        raise LatthermError(f"{name} must be two numbers low,high, got {text!r}") from None
    if not lo <= hi:
        raise LatthermError(f"{name} must have low <= high, got {text!r}")
    return lo, hi


def cmd_phase_diagram(a) -> int:
    import numpy as np
    import torch

    from ..analysis.phase_diagram import mc_phase_grid, model_phase_grid, write_phase_diagram
    from ..sampling.mc import composition_free_energy, phase_boundary
    from ..systems import make_system
    from ..systems.base import check_condition

    for name, v in (("--T-points", a.T_points), ("--mu-points", a.mu_points), ("--samples", a.samples),
                    ("--chains", a.chains), ("--sweeps", a.sweeps), ("--boundary-T-points", a.boundary_T_points)):
        if v < 1:
            raise LatthermError(f"{name} must be >= 1, got {v}")
    if a.T_range is not None:  # check before loading anything
        check_condition(np.asarray(_range(a.T_range, "--T-range", None)), 0.0)
    if a.mu_range is not None:
        check_condition(1.0, np.asarray(_range(a.mu_range, "--mu-range", None)))
    lm = None
    if a.model == "mc":
        if not (a.system and a.lattice_size):
            raise LatthermError("phase-diagram mc needs --system and --lattice-size (e.g. --system cuau "
                                "--lattice-size 2x2x4)")
        from ..training import paper_grid

        system = make_system(a.system, a.lattice_size)
        Ts, mus = zip(*paper_grid(system.name))  # the paper's ranges for this system
        default = {"T": [min(Ts), max(Ts)], "mu": [min(mus), max(mus)]}
    else:
        if a.system or a.lattice_size:
            raise LatthermError("--system and --lattice-size belong to 'phase-diagram mc'; a model brings its own")
        from ..models.io import load_model

        lm = load_model(a.model, device=_device(a.device))
        system, default = lm.system, lm.trained_range() or {}
    T = np.linspace(*_range(a.T_range, "--T-range", default.get("T")), a.T_points)
    mu = np.linspace(*_range(a.mu_range, "--mu-range", default.get("mu")), a.mu_points)
    system.check(T, mu)
    bsys = make_system(system.name, a.boundary_size) if a.boundary_size else system
    if lm is not None:
        for t, m in ((T[0], mu[0]), (T[-1], mu[-1])):
            _note_extrapolation(lm, float(t), float(m))
        torch.manual_seed(a.seed)
        grid = model_phase_grid(lm, T, mu, a.samples)
        what = f"{a.samples} model samples per condition"
    else:
        gen = torch.Generator().manual_seed(a.seed)
        grid = mc_phase_grid(system, T, mu, n_chains=a.chains, sweeps=a.sweeps, equilibration=a.sweeps,
                             generator=gen)
        what = f"Metropolis, {a.chains} chains x {a.sweeps} sweeps per condition"
    boundary = None
    if a.boundary == "wl":
        temps = np.linspace(T[0], T[-1], a.boundary_T_points)
        profiles = composition_free_energy(bsys, temps, generator=torch.Generator().manual_seed(a.seed))
        boundary = phase_boundary(profiles)
        what += f"; two-phase boundary by Wang-Landau on {bsys.lattice.label} at {a.boundary_T_points} temperatures"
    _write_guarded(lambda: write_phase_diagram(a.out, grid, system.name, reference=boundary,
                                               x_label=system.composition_name), a.out)
    print(f"wrote the {a.T_points}x{a.mu_points} phase grid of {system.name} {system.lattice.label} ({what}) "
          f"to {a.out}")
    return 0


COMMANDS = {"exact": cmd_exact, "train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample,
            "runs": cmd_runs, "paint": cmd_paint, "demo": cmd_demo, "export-model": cmd_export_model,
            "export": cmd_export, "phase-diagram": cmd_phase_diagram}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except LatthermError as exc:
        print(f"lattherm: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lattherm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
