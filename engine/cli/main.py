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
    return v  # nan and inf reach the task, whose check names the quantity


def _device(name: str | None) -> str | None:
    """Check a --device value up front: a typo or a missing GPU is a one-line error, not a torch traceback."""
    if name is None:
        return None
    from ..devices import pick_device

    return str(pick_device(name))


#: the --nproc of every sharded command (train has its own)
NPROC_HELP = ("split the {what} over N processes of this machine (torch's elastic launcher, as torchrun); rank 0 "
              "writes what one process writes for the same seed. Under torchrun leave it out")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lattherm", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"lattherm {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    e = sub.add_parser("exact", help="exact log Z, free energy, <E>, <M>/<x_Au>, C (tensor network for a large "
                                     "Ising torus in a field, with its error)")
    e.add_argument("system", help="ising or cuau")
    e.add_argument("--size", required=True, help="e.g. 10x10 (Ising) or 2x2x4 (CuAu)")
    e.add_argument("--T", type=_number, required=True, help="temperature (kT/eps for Ising, kelvin for CuAu)")
    e.add_argument("--mu", type=_number, default=0.0, help="field / chemical potential (eps or eV)")
    e.add_argument("--method", default="auto",
                   choices=["auto", "kaufman", "transfer_matrix", "enumeration", "tensor_network"])
    e.add_argument("--chi", type=int, help="tensor network bond dimension (default 16)")
    e.add_argument("--chi-check", type=int, help="larger bond dimension for the error estimate (default 24)")
    e.add_argument("--json", action="store_true", help="print one JSON object")

    t = sub.add_parser("train", help="train a model from a TOML config, or resume a run")
    t.add_argument("config", nargs="?", help="CONFIG.toml (see resources/configs/)")
    t.add_argument("--resume", metavar="RUN", help="run id or folder to continue")
    t.add_argument("--device", help="cpu, cuda or auto (overrides the config)")
    t.add_argument("--name", help="name hint for the run folder")
    t.add_argument("--init", metavar="MODEL", help="start from the weights of this run or model (same architecture)")
    t.add_argument("--nproc", type=int, metavar="N",
                   help="train data-parallel on N processes of this machine (torch's elastic launcher, as torchrun; "
                        "one GPU each where there are GPUs); under torchrun leave it out")

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
    v.add_argument("--nproc", type=int, metavar="N", help=NPROC_HELP.format(what="conditions"))

    s = sub.add_parser("sample", help="draw configurations at one condition into an .npz file")
    s.add_argument("model", metavar="RUN_OR_MODEL")
    s.add_argument("--T", type=_number, required=True)
    s.add_argument("--mu", type=_number, default=0.0)
    s.add_argument("-n", type=int, default=1000, help="number of samples")
    s.add_argument("--size", help="target lattice (must be the model's own for MLP models)")
    s.add_argument("--out", required=True, help="FILE.npz")
    s.add_argument("--device", default="cpu")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--batch", type=int, default=2000,
                   help="samples drawn per chunk (each chunk from its own seed: the unit --nproc splits)")
    s.add_argument("--nproc", type=int, metavar="N", help=NPROC_HELP.format(what="chunks"))

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
    pt.add_argument("--batch", type=int, default=2000,
                    help="lattices painted per chunk (each chunk from its own seed: the unit --nproc splits)")
    pt.add_argument("--nproc", type=int, metavar="N", help=NPROC_HELP.format(what="chunks"))

    r = sub.add_parser("runs", help="list runs with their status")
    r.add_argument("--json", action="store_true")

    d = sub.add_parser("demo", help="evaluate the bundled example model on the paper grid")
    d.add_argument("--samples", type=int, default=1000)

    x = sub.add_parser("export-model", help="write a run's latest weights as a self-contained model folder")
    x.add_argument("run", metavar="RUN")
    x.add_argument("--out", required=True, help="destination folder")
    x.add_argument("--info", help="JSON file with extra provenance (measured numbers) for model.json")

    xs = sub.add_parser("export", help="write configurations of a samples file as atomic structures through ASE "
                        "(extended XYZ, CIF, VASP POSCAR, LAMMPS data)")
    xs.add_argument("samples", metavar="SAMPLES.npz")
    xs.add_argument("--format", help="extxyz, cif, vasp or lammps-data; default: from the --out suffix "
                    "(.xyz/.extxyz, .cif, .vasp/POSCAR, .data)")
    xs.add_argument("--out", required=True, help="destination file (extxyz, cif) or folder of one file per "
                    "configuration (vasp, lammps-data)")
    xs.add_argument("--max", type=int, help="export at most this many configurations (default: all)")

    pd = sub.add_parser("phase-diagram", help="temperature-composition map and <x>(mu) isotherms from model samples")
    pd.add_argument("model", metavar="MODEL_OR_MC", help="a run or model, or 'mc' for the Monte Carlo reference")
    pd.add_argument("--system", help="with mc: cuau or ising")
    pd.add_argument("--lattice-size", dest="lattice_size", help="with mc: the supercell, e.g. 2x2x4")
    pd.add_argument("--chains", type=int, default=16, help="with mc: chains per condition")
    pd.add_argument("--sweeps", type=int, default=200, help="with mc: recorded sweeps (after as many to equilibrate)")
    pd.add_argument("--boundary", choices=["wl", "none"], default="wl",
                    help="overlay the two-phase boundary from Wang-Landau over composition (default) or nothing")
    pd.add_argument("--size", help="paint the model onto this larger cell at every condition, e.g. 4x4x8 (129 "
                    "compositions where the 2x2x4 model has 17); the boundary is then computed on it too")
    pd.add_argument("--boundary-size", help="supercell of the boundary calculation (default: the diagram's)")
    pd.add_argument("--boundary-T-points", type=int, default=8, help="temperatures of the boundary calculation")
    pd.add_argument("--boundary-sweeps", type=int, default=20000,
                    help="most Wang-Landau sweeps of the boundary before its production run (a 4x4x8 cell: "
                    "about 0.3 CPU s per sweep at 8 temperatures)")
    pd.add_argument("--T-points", type=int, default=32)
    pd.add_argument("--mu-points", type=int, default=32)
    pd.add_argument("--samples", type=int, default=200, help="samples per condition")
    pd.add_argument("--T-range", help="low,high (default: the model's trained range)")
    pd.add_argument("--mu-range", help="low,high (default: the model's trained range)")
    pd.add_argument("--out", required=True, help="destination folder")
    pd.add_argument("--format", default="png,svg", help="figure formats, e.g. png,svg,pdf")
    pd.add_argument("--device", default="cpu")
    pd.add_argument("--seed", type=int, default=0)
    pd.add_argument("--nproc", type=int, metavar="N", help=NPROC_HELP.format(what="temperatures of the grid"))

    for module in _command_modules():
        module.add_parser(sub)
    return p


# Commands that live in their own module of this package: each defines NAME, add_parser(sub) and run(args).
COMMAND_MODULES: tuple[str, ...] = ("plot", "structure_import", "ce", "mcmc")


def _command_modules():
    import importlib

    return [importlib.import_module(f".{name}", __package__) for name in COMMAND_MODULES]


# ---- commands ---------------------------------------------------------------------------------------------------
def _at_least_one(**flags) -> None:
    """Counts given on the command line, checked under their flag names (n -> -n, T_points -> --T-points)."""
    for name, v in flags.items():
        if v is not None and v < 1:
            flag = f"-{name}" if len(name) == 1 else "--" + name.replace("_", "-")
            raise LatthermError(f"{flag} must be >= 1, got {v}")


def _bar(unit: str):
    """A progress bar for the long tasks on a terminal; nothing on a pipe (logs keep the result lines only)."""
    from .progress import Bar

    return Bar(unit) if sys.stderr.isatty() else None


def _run_with_bar(unit: str, task, **kwargs):
    bar = _bar(unit)
    try:
        return task(progress=bar, **kwargs)
    finally:
        if bar is not None:
            bar.close()


def cmd_exact(a) -> int:
    from ..tasks import exact

    d = exact(a.system, a.size, a.T, a.mu, method=a.method, chi=a.chi, chi_check=a.chi_check).to_dict()
    if a.json:
        print(json.dumps(d))
    else:
        for k, v in d.items():
            print(f"{k:>24}: {v}")
    return 0


#: where rank 0 of a launched training writes its run folder (so the launcher can tell a failure's run)
RUN_FILE_ENV = "LATTHERM_LAUNCH_RUN_FILE"


def cmd_train(a) -> int:
    from ..distributed import detect_world

    if a.config is None and a.resume is None:
        raise LatthermError("train needs CONFIG.toml or --resume RUN")
    if a.nproc is not None:
        if detect_world().distributed:
            raise LatthermError("--nproc launches the processes itself: under torchrun (or srun) leave it out")
        return _launch_train(a)
    return _train_here(a)


def _launch_train(a) -> int:
    """``--nproc N``: check what can be checked, then run this very command as N ranks (torch's elastic agent)."""
    import os
    import tempfile

    from ..distributed import RankFailed, launch
    from ..store import Run
    from ..tasks.train import check_launch

    check_launch(a.nproc, config_path=a.config, resume=a.resume, init=a.init, device=_device(a.device))
    if a.nproc == 1:
        return _train_here(a)
    fd, run_file = tempfile.mkstemp(prefix="lattherm-launch-", suffix=".txt")
    os.close(fd)
    os.environ[RUN_FILE_ENV] = run_file
    try:
        launch(a.argv, a.nproc)
        return 0
    except RankFailed as exc:
        codes = set(exc.codes)
        if codes <= {130, 143, -signal.SIGINT, -signal.SIGTERM}:  # interrupted on purpose (a rank the launcher
            return 130 if codes & {130, -signal.SIGINT} else 143  # ended after its last write reads as killed)
        path = open(run_file, encoding="utf-8").read().strip() if os.path.getsize(run_file) else ""
        if path:
            run = Run(path)
            st = run.recorded_status()
            if st.get("status") in ("running", "created"):  # rank 0 could not say it: the launcher does
                ck = run.latest_checkpoint()
                run.set_status("failed", message=f"{exc}; the run keeps its last good checkpoint "
                               f"({ck.name if ck else 'none'})", pid=None)
            print(f"lattherm: run {run.id}: {exc}", file=sys.stderr)
        elif 2 in codes:  # a user error before any run existed: the rank said it already
            return 2
        else:
            print(f"lattherm: error: {exc}", file=sys.stderr)
        return 1 if 2 not in codes else 2
    finally:
        os.environ.pop(RUN_FILE_ENV, None)
        try:
            os.unlink(run_file)
        except OSError:
            pass


def _train_here(a) -> int:
    """Train in this process: alone, or as one rank of the world torchrun's environment describes."""
    import os

    from ..distributed import init_world, teardown
    from ..progress import Control
    from ..tasks import open_trainer, train
    from .progress import Bar

    device = _device(a.device)
    world = init_world(device or "auto")
    try:
        trainer = open_trainer(config_path=a.config, resume=a.resume, name=a.name, device=device, init=a.init)
        main = world.is_main
        if main and os.environ.get(RUN_FILE_ENV):
            with open(os.environ[RUN_FILE_ENV], "w", encoding="utf-8") as f:
                f.write(str(trainer.run.path))
        control = Control()

        def on_signal(signum, frame):
            """Ctrl-C and SIGTERM (what SLURM and systemd send) stop after this step with one checkpoint; on any
            rank, all ranks stop after the same step. Ctrl-C twice aborts (a repeated SIGTERM, as a launcher
            forwards it, does not)."""
            if control.stop:
                if signum == signal.SIGINT:
                    raise KeyboardInterrupt
                return
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            control.request_stop(f"interrupted ({name})")
            if main or not world.distributed:
                print("\nstopping after this step and saving a checkpoint (Ctrl-C again to abort)", file=sys.stderr)

        old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        bar = Bar("step") if main else None
        if main:
            ranks = f" x {world.size} processes" if world.distributed else ""
            print(f"run {trainer.run.id} in {trainer.run.path} on {trainer.device}{ranks} (step {trainer.step})",
                  file=sys.stderr)
            if trainer.resumed_world is not None and trainer.resumed_world != world.size:
                print(f"note: resuming with {world.size} process(es) a run checkpointed by {trainer.resumed_world}: "
                      "new random streams, chains re-split", file=sys.stderr)
            if trainer.compiled:
                print(f"compile: {trainer.compiled}", file=sys.stderr)
        try:
            res = train(trainer, progress=bar, control=control)
        finally:
            if bar is not None:
                bar.close()
            for sig, handler in old.items():
                signal.signal(sig, handler)
        if main:
            print(f"{res.status}: run {res.run}, step {res.step}, checkpoint {res.checkpoint}", file=sys.stderr)
        if res.status == "stopped" and (res.reason.startswith("interrupted") or "another rank" in res.reason):
            return 143 if "SIGTERM" in res.reason or "another rank" in res.reason else 130
        return 0
    finally:
        teardown()


def _pm(value, stderr, width: int = 19) -> str:
    """``value ± stderr`` to 4 decimals, right-aligned; "-" where the estimate does not exist."""
    if value is None:
        return f"{'-':>{width}}"
    se = "nan" if stderr is None or stderr != stderr else f"{stderr:.4f}"
    return f"{f'{value:.4f} ± {se}':>{width}}"


def _print_table(ev: dict, unit: str) -> None:
    """One row per condition with every estimate beside its standard error (a gap of -0.0016 ± 0.0030 is zero
    within its error bar, not a violated bound); the mean log-densities stay in --json."""
    head = (f"{'T':>8} {'mu':>7} {'F_q ± se':>19} {'-logZ_nis ± se':>19} {'ESS/N':>6} {'exact -logZ':>11} "
            f"{'gap ± se':>17}")
    print(head)
    for c in ev["conditions"]:
        ex = "-" if c["exact_neg_log_Z"] is None else f"{c['exact_neg_log_Z']:.4f}"
        mark = "  extrapolation" if c.get("extrapolation") else ""
        print(f"{c['T']:8.3f} {c['mu']:7.3f} {_pm(c['F_q'], c['F_q_stderr'])} "
              f"{_pm(c['neg_log_Z_nis'], c['neg_log_Z_nis_stderr'])} {c['ess_fraction']:6.3f} {ex:>11} "
              f"{_pm(c['gap'], c.get('gap_stderr'), 17)}{mark}")
    av = ev["average"]
    ex = "-" if av["exact_neg_log_Z"] is None else f"{av['exact_neg_log_Z']:.4f}"
    print(f"{'average':>16} {_pm(av['F_q'], av['F_q_stderr'])} {_pm(av['neg_log_Z_nis'], av['neg_log_Z_nis_stderr'])} "
          f"{av['ess_fraction']:6.3f} {ex:>11} {_pm(av['gap'], av.get('gap_stderr'), 17)}   (T in {unit}; "
          f"free energies in units of kT; se = standard error)")


def _note_extrapolation(trained_range, T: float, mu: float) -> None:
    """Conditions outside the trained range are allowed, and said to be an extrapolation."""
    print(f"note: T={T:g}, mu={mu:g} lies outside the trained range T {trained_range['T']}, mu {trained_range['mu']}: "
          "extrapolation", file=sys.stderr)


def _ranked_bar(world, unit: str, task, **kwargs):
    """``task`` with a progress bar on rank 0 only (the other ranks of a sharded command report nothing)."""
    return _run_with_bar(unit, task, **kwargs) if world.is_main else task(progress=None, **kwargs)


def _known_model(ref: str) -> None:
    """A model that does not exist is one line before any rank starts (its weights are not loaded here)."""
    from ..store.models import resolve_model_source

    resolve_model_source(ref)


def _chunked_precheck(a, what: str):
    """The launcher's precheck of a command drawn in chunks of ``--batch``: the ranks can share the chunks and the
    model exists, each one line before any rank starts."""
    from ..distributed import check_shardable
    from ..tasks._common import chunks
    from ..tasks.sample import chunk_hint

    def precheck():
        check_shardable(len(chunks(a.n, a.batch)), a.nproc, what, chunk_hint(a.n, a.batch))
        _known_model(a.model)

    return precheck


def cmd_evaluate(a) -> int:
    from ..distributed import run_command
    from ..tasks import evaluate

    _at_least_one(batch=a.batch)
    device = _device(a.device)

    def precheck():
        from ..tasks._common import load
        from ..training import parse_grid

        parse_grid(a.grid, load(a.model, "cpu").system.info)  # a typo is one line here, not one per rank

    def body(world) -> int:
        ev = _ranked_bar(world, "chunk", evaluate, model=a.model, grid=a.grid, samples=a.samples, batch=a.batch,
                         exact=not a.no_exact, device=device, seed=a.seed, size=a.size, layout=a.layout,
                         stride=a.stride, views=a.views, method=a.method)
        if ev is None:  # a rank other than 0: rank 0 writes and prints
            return 0
        ev = ev.to_dict()
        if a.out:
            from ..store import atomic_write_json
            from ..tasks._common import write_guarded

            write_guarded(lambda: atomic_write_json(a.out, ev), a.out)
        if a.json:
            print(json.dumps(ev))
        else:
            _print_table(ev, ev["system"]["T_unit"])
        return 0

    return run_command(a.argv, a.nproc, body, device=device, precheck=precheck)


def cmd_sample(a) -> int:
    from ..distributed import run_command
    from ..tasks import sample

    _at_least_one(n=a.n, batch=a.batch)
    device = _device(a.device)

    def body(world) -> int:
        res = _ranked_bar(world, "chunk", sample, model=a.model, conditions=(a.T, a.mu), n=a.n, size=a.size,
                          batch=a.batch, device=device, seed=a.seed, out=a.out)
        if res is None:
            return 0
        row = res.table[0]
        if row["extrapolation"]:
            _note_extrapolation(res.trained_range, a.T, a.mu)
        print(f"wrote {a.n} samples to {res.path}: <log p> {row['mean_log_p']:.4f}, <log f> "
              f"{row['mean_log_f']:.4f}, <{res.observable}> {row['mean_observable']:.4f}")
        return 0

    return run_command(a.argv, a.nproc, body, device=device, precheck=_chunked_precheck(a, "chunks of samples"))


def cmd_paint(a) -> int:
    from ..distributed import run_command
    from ..tasks import paint

    _at_least_one(n=a.n, batch=a.batch)
    device = _device(a.device)

    def body(world) -> int:
        res = _ranked_bar(world, "batch", paint, model=a.model, size=a.size, T=a.T, mu=a.mu, n=a.n,
                          constraints=a.constraints, batch=a.batch, seed=a.seed, device=device, out=a.out,
                          method=a.method, layout=a.layout, stride=a.stride, views=a.views,
                          period_mode=a.period_mode)
        if res is None:
            return 0
        lp, lf = sum(res.log_p) / len(res.log_p), sum(res.log_f) / len(res.log_f)
        print(f"wrote {a.n} painted {res.label} lattices to {res.path}: <log p> {lp:.4f}, <log f> {lf:.4f}, "
              f"F_q {lp - lf:.4f} ({(lp - lf) / res.n_sites:.5f} per site)")
        return 0

    return run_command(a.argv, a.nproc, body, device=device, precheck=_chunked_precheck(a, "chunks of lattices"))


def cmd_runs(a) -> int:
    from ..tasks import list_runs

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
    from ..tasks import bundled_models, evaluate

    names = [m["name"] for m in bundled_models()]
    if not names:
        raise LatthermError("no bundled model found under resources/models")
    name = names[0]  # the example model when it is there
    print(f"lattherm {__version__}: evaluating the bundled model {name} on the paper grid "
          f"({a.samples} samples per condition)")
    ev = _run_with_bar("chunk", evaluate, model=name, grid="paper", samples=a.samples).to_dict()
    _print_table(ev, ev["system"]["T_unit"])
    return 0


def cmd_export_model(a) -> int:
    from ..tasks import export_model

    print(f"wrote model folder {export_model(a.run, a.out, a.info).path}")
    return 0


def cmd_export(a) -> int:
    from ..tasks import export_structures

    res = export_structures(a.samples, a.out, a.format, a.max)
    where = f"{res.files} files in {res.path}" if res.files > 1 else str(res.path)
    print(f"wrote {res.frames} {res.lattice} {res.kind} configurations ({res.atoms} atoms each) to {where} "
          f"({res.format})")
    return 0


def cmd_phase_diagram(a) -> int:
    from ..distributed import check_shardable, run_command
    from ..tasks import phase_diagram

    _at_least_one(T_points=a.T_points, mu_points=a.mu_points, samples=a.samples, chains=a.chains, sweeps=a.sweeps,
                  boundary_T_points=a.boundary_T_points, boundary_sweeps=a.boundary_sweeps)
    device = _device(a.device)

    def precheck():
        check_shardable(a.T_points, a.nproc, "temperatures", "the rows of the grid: raise --T-points")
        if a.model != "mc":
            _known_model(a.model)

    def body(world) -> int:
        res = _ranked_bar(world, "part", phase_diagram, model=a.model, out=a.out, system=a.system,
                          lattice_size=a.lattice_size, chains=a.chains, sweeps=a.sweeps, boundary=a.boundary,
                          boundary_size=a.boundary_size, boundary_T_points=a.boundary_T_points,
                          T_points=a.T_points, mu_points=a.mu_points, samples=a.samples, T_range=a.T_range,
                          mu_range=a.mu_range, device=device, seed=a.seed, formats=a.format,
                          size=a.size, boundary_sweeps=a.boundary_sweeps)
        if res is None:
            return 0
        for T, mu in res.extrapolation:
            _note_extrapolation(res.trained_range, T, mu)
        print(f"wrote the {a.T_points}x{a.mu_points} phase grid of {res.system} {res.label} ({res.what}) to {a.out}")
        return 0

    return run_command(a.argv, a.nproc, body, device=device, precheck=precheck)


COMMANDS = {"exact": cmd_exact, "train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample,
            "runs": cmd_runs, "paint": cmd_paint, "demo": cmd_demo, "export-model": cmd_export_model,
            "export": cmd_export, "phase-diagram": cmd_phase_diagram}


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what a launcher hands on to the ranks it starts
    commands = dict(COMMANDS, **{m.NAME: m.run for m in _command_modules()})
    try:
        return commands[args.command](args)
    except LatthermError as exc:
        from ..distributed import detect_world

        world = detect_world()
        if getattr(exc, "quiet", False) or (getattr(exc, "from_rank0", False) and not world.is_main):
            return exc.exit_code  # rank 0 (or the launcher) says it: one line, not one per rank
        where = f"rank {world.rank}: " if world.distributed and not world.is_main else ""
        print(f"lattherm: {where}error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("lattherm: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permissions: one line naming the file
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"lattherm: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        print("lattherm: error: out of memory (lower the sizes or counts, or LATTHERM_MEMORY_GB)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
