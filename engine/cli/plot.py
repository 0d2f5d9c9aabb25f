"""`lattherm plot`: figures of a run (its training curves, and its evaluation when the run folder holds one) or a
gallery of the configurations in a samples file, as PNG, SVG or PDF.

An evaluation is found as ``evaluation*.json`` in the run folder, the file ``lattherm evaluate RUN --out
RUN_FOLDER/evaluation.json`` writes. A missing or corrupt run, evaluation or samples file is one line and exit 2;
every figure is rendered before the first file is written.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import LatthermError

NAME = "plot"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="figures of a run (training curves, its evaluation) or of a samples file (gallery)")
    p.add_argument("source", metavar="RUN_OR_SAMPLES", help="run id or folder, or a SAMPLES.npz file")
    p.add_argument("--out", required=True, help="destination folder")
    p.add_argument("--format", default="png", help="comma-separated figure formats: png, svg, pdf (default png)")
    p.add_argument("--max", type=int, default=8, help="samples file: draw at most this many configurations")


def _read_evaluation(path: Path) -> dict:
    try:
        ev = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise LatthermError(f"{path}: not a readable evaluation ({type(exc).__name__})") from None
    if not isinstance(ev, dict) or not isinstance(ev.get("conditions"), list) or not isinstance(ev.get("system"),
                                                                                                  dict):
        raise LatthermError(f"{path}: not a lattherm evaluation (needs 'system' and 'conditions')")
    return ev


def run_figures(ref) -> dict[str, object]:
    """{stem: Figure} of a run: training_curves, and free_energy / gaps from each evaluation*.json in its folder."""
    from ..analysis import figures
    from ..store.runs import Run, run_summary

    run = Run.open(ref)
    records = run.read_metrics()
    if not records:
        raise LatthermError(f"run {run.id} has no readable metric records ({run.metrics_path.name} is missing, "
                            "empty or damaged)")
    s = run_summary(run)
    title = f"run {run.id}: {s.get('model') or 'model'} on {s.get('system') or '?'} {s.get('size') or ''}".strip()
    out: dict[str, object] = {"training_curves": figures.training_curves(records, title=title)}
    for path in sorted(run.path.glob("evaluation*.json")):
        ev = _read_evaluation(path)
        suffix = path.stem[len("evaluation"):]
        out[f"free_energy{suffix}"] = figures.free_energy(ev, title=f"{run.id}: free energy per site")
        if any(c.get("gap") is not None for c in ev["conditions"]):
            out[f"gaps{suffix}"] = figures.gaps(ev, title=f"{run.id}: variational gap per condition")
    return out


def samples_figures(path, limit: int) -> dict[str, object]:
    """{"gallery": Figure} of the first ``limit`` configurations of a samples file (the first condition's, if it
    holds several)."""
    from ..analysis import figures
    from ..store.samples import read_samples

    if limit < 1:
        raise LatthermError(f"--max must be >= 1, got {limit}")
    data = read_samples(path)
    for key in ("system", "size"):
        if key not in data:
            raise LatthermError(f"{path}: the samples file does not name its {key}")
    system, size = str(data["system"]), str(data["size"])
    info = figures.system_info_of(system, data.get("species"), str(data["lattice"]) if "lattice" in data else None)
    dim = info.lattice_of(size).dim
    configs = data["samples"]
    while configs.ndim > dim + 1:  # (C, n, *size): the first condition
        configs = configs[0]
    T, mu = (float(data[k].reshape(-1)[0]) for k in ("T", "mu")) if "T" in data and "mu" in data else (None, None)
    where = "" if T is None else f" at T = {T:g} {figures.unit(info.T_unit)}, μ = {mu:g} {figures.unit(info.mu_unit)}"
    fig = figures.lattice_gallery(configs[:limit], info, size, title=f"{Path(path).name}: {size} {info.title}{where}")
    return {"gallery": fig}


def run(args) -> int:
    from ..analysis import figures

    formats = figures.parse_formats(args.format)
    src = Path(args.source)
    drawn = (samples_figures(src, args.max) if src.suffix.lower() == ".npz" else run_figures(args.source))
    files = {f"{stem}.{fmt}": figures.render(fig, fmt) for stem, fig in drawn.items() for fmt in formats}
    written = figures.write_folder(args.out, files)
    print(f"wrote {len(written)} figure files to {args.out}: {', '.join(p.name for p in written)}")
    return 0
