"""The temperature-composition map and <x>(mu) isotherms of a system, from model samples or Monte Carlo, with the
two-phase boundary from Wang-Landau over composition."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import LatthermError
from ..progress import Meter
from ..distributed import current_world, rank_device, shard
from ._common import check_positive, condition_seed, load, run_sharded, seeded, write_guarded


def span(value, name: str, default) -> tuple[float, float]:
    """(low, high) from "low,high", a pair, or the default (a model's trained range)."""
    if value is None:
        if default is None:
            raise LatthermError(f"the model has no trained range: give {name} low,high")
        return float(default[0]), float(default[1])
    parts = value.split(",") if isinstance(value, str) else list(value)
    try:
        lo, hi = (float(v) for v in parts)
    except (ValueError, TypeError):
        raise LatthermError(f"{name} must be two numbers low,high, got {value!r}") from None
    if not lo <= hi:
        raise LatthermError(f"{name} must have low <= high, got {value!r}")
    return lo, hi


@dataclass
class PhaseDiagramResult:
    out: Path
    files: list
    system: str
    label: str
    what: str
    extrapolation: list = field(default_factory=list)  # (T, mu) corners outside the model's trained range
    trained_range: dict | None = None
    boundary_sites: int | None = None  # sites of the cell the Wang-Landau boundary was computed on

    def to_dict(self) -> dict:
        return {"out": str(self.out), "files": [str(p) for p in self.files]}


def _stack_rows(rows: list[dict]) -> dict:
    """One grid from per-temperature grids (each sampled on its own, so progress and cancel come per row)."""
    grid = dict(rows[0])
    grid["T"] = np.concatenate([r["T"] for r in rows])
    for k in ("x_mean", "x_std", "x_hist"):
        grid[k] = np.concatenate([r[k] for r in rows])
    return grid


def painted_target(lm, size):
    """The cell a model's phase diagram is painted on: ``size`` of the model's own system (a user's CE included),
    checked against the memory limit; painting needs an any-order model."""
    from ..systems import make_system
    from .limits import check_lattice

    if not lm.model.any_order:
        raise LatthermError(f"--size paints the model onto a larger cell, which needs an any-order model; "
                            f"{lm.source.name} is a {lm.model.kind}")
    size = size if isinstance(size, str) else "x".join(str(int(v)) for v in size)
    check_lattice(lm.system.info, size)
    return make_system(lm.system.info, size)


def painted_phase_row(lm, target, T: float, mu_values, samples: int, generator=None) -> dict:
    """One temperature of the phase grid from lattices painted onto ``target`` by the painting walk (default
    layout, as ``lattherm paint``): compositions in steps of 1/N of the target, not of the model's cell."""
    import torch

    from ..analysis.phase_diagram import _grid
    from ..sampling import paint_with_model

    row = []
    with torch.no_grad():
        for m in mu_values:
            res = paint_with_model(lm, target, float(T), float(m), int(samples), generator=generator)
            row.append(target.composition(res.spins).numpy())
    return _grid(np.asarray([float(T)]), np.asarray(mu_values, dtype=np.float64), target.n_sites, [row])


def wang_landau_profiles(system, temps, max_sweeps: int, seed: int, progress=None, control=None):
    """The composition free energies of the boundary (Wang-Landau on ``system``), reported sweep by sweep as their
    own stage: on a 128-site cell they take minutes, so the bar shows their ETA and a cancel stops them."""
    from ..montecarlo import composition_free_energy

    meter = Meter(1, progress, control=control)

    def on_sweep(done, total):
        if control is not None:
            control.raise_if_stopped()
        meter.total = total
        if done % 10 == 0 or done == total:
            meter.update(done, extra={"stage": "boundary", "sites": system.n_sites})

    return composition_free_energy(system, temps, max_sweeps=max_sweeps, generator=seeded(seed), on_sweep=on_sweep)


def phase_diagram(model, out, *, system: str | None = None, lattice_size: str | None = None, chains: int = 16,
                  sweeps: int = 200, boundary: str = "wl", boundary_size: str | None = None,
                  boundary_T_points: int = 8, T_points: int = 32, mu_points: int = 32, samples: int = 200,
                  T_range=None, mu_range=None, device: str | None = "cpu", seed: int = 0, formats="png,svg",
                  size: str | None = None, boundary_sweeps: int = 20000, progress=None,
                  control=None) -> PhaseDiagramResult:
    """``model``: a run or model, sampled ``samples`` times per condition, or "mc" for semi-grand-canonical
    Metropolis on ``system`` ``lattice_size`` (``chains`` x ``sweeps``, after as many to equilibrate). Ranges default
    to the model's trained ones (the paper's for mc). ``size``: paint the model onto this larger cell at every
    condition (a cell that resolves composition: 4x4x8 has 129 compositions where the 2x2x4 model has 17).
    ``boundary``: "wl" overlays the two-phase boundary from Wang-Landau over composition on ``boundary_size``
    (default: the diagram's cell, the painted one with ``size``) at ``boundary_T_points``, at most
    ``boundary_sweeps`` Wang-Landau sweeps (then the frozen-bias production run), or "none".
    ``formats``: the figures' formats ("png,svg,pdf" or a list), checked before any work starts.

    Temperature i of the grid is drawn from its own generator (condition_seed): in a distributed world the rows are
    split over the ranks, rank 0 computes the boundary and writes the files one process writes for the same seed;
    the other ranks return None."""
    from ..analysis.composition import phase_boundary
    from ..analysis.figures import parse_formats
    from ..analysis.phase_diagram import mc_phase_grid, model_phase_grid, write_phase_diagram
    from ..systems import make_system
    from ..systems.base import check_condition

    formats = parse_formats(formats)
    check_positive(T_points=T_points, mu_points=mu_points, samples=samples, chains=chains, sweeps=sweeps,
                   boundary_T_points=boundary_T_points, boundary_sweeps=boundary_sweeps)
    if boundary not in ("wl", "none"):
        raise LatthermError(f"boundary must be wl or none, got {boundary!r}")
    if T_range is not None:  # check before loading anything
        check_condition(np.asarray(span(T_range, "T range", None)), 0.0)
    if mu_range is not None:
        check_condition(1.0, np.asarray(span(mu_range, "mu range", None)))
    lm = None
    if model == "mc":
        if not (system and lattice_size):
            raise LatthermError("phase-diagram mc needs a system and a lattice size (e.g. --system cuau "
                                "--lattice-size 2x2x4)")
        from ..training import paper_grid

        sys_ = make_system(system, lattice_size)
        Ts, mus = zip(*paper_grid(sys_.info))  # the paper's ranges for this system
        default = {"T": [min(Ts), max(Ts)], "mu": [min(mus), max(mus)]}
    else:
        if system or lattice_size:
            raise LatthermError("--system and --lattice-size belong to 'phase-diagram mc'; a model brings its own")
        lm = load(model, rank_device(device, current_world()))
        sys_, default = lm.system, lm.trained_range() or {}
    if size is not None:
        if lm is None:
            raise LatthermError("--size paints a model onto a larger cell; 'phase-diagram mc' takes --lattice-size")
        sys_ = painted_target(lm, size)
    T = np.linspace(*span(T_range, "T range", default.get("T")), T_points)
    mu = np.linspace(*span(mu_range, "mu range", default.get("mu")), mu_points)
    sys_.check(T, mu)
    if boundary_size:
        from .limits import check_lattice

        check_lattice(sys_.info, boundary_size)
    bsys = make_system(sys_.info, boundary_size) if boundary_size else sys_
    total = len(shard(T_points)) + (boundary == "wl")
    corners = []
    if lm is not None:
        corners = [(float(t), float(m)) for t, m in ((T[0], mu[0]), (T[-1], mu[-1])) if lm.extrapolates(t, m)]

        def row(i):  # one temperature of the grid, from its own generator
            gen = seeded(condition_seed(seed, i))
            if size is not None:
                return painted_phase_row(lm, sys_, T[i], mu, samples, generator=gen)
            return model_phase_grid(lm, [T[i]], mu, samples, generator=gen)

        what = (f"{samples} lattices per condition painted onto {sys_.lattice.label} by the {lm.system.lattice.label} "
                "model" if size is not None else f"{samples} model samples per condition")
    else:
        def row(i):
            return mc_phase_grid(sys_, [T[i]], mu, n_chains=chains, sweeps=sweeps, equilibration=sweeps,
                                 generator=seeded(condition_seed(seed, i)))

        what = f"Metropolis, {chains} chains x {sweeps} sweeps per condition"
    rows = run_sharded(T_points, row, what="temperatures", hint="the rows of the grid: raise --T-points",
                       progress=progress, control=control, total=total, extra=lambda done, mine: {"stage": "grid"})
    if rows is None:
        return None
    grid = _stack_rows(rows)
    reference = None
    if boundary == "wl":
        if control is not None:
            control.raise_if_stopped()
        temps = np.linspace(T[0], T[-1], boundary_T_points)
        reference = phase_boundary(wang_landau_profiles(bsys, temps, boundary_sweeps, seed, progress, control))
        Meter(total, progress, control=control).update(total, extra={"stage": "boundary"})
        what += f"; two-phase boundary by Wang-Landau on {bsys.lattice.label} at {boundary_T_points} temperatures"
    files = write_guarded(lambda: write_phase_diagram(out, grid, sys_.info, reference=reference,
                                                      x_label=sys_.composition_name, formats=formats), out)
    return PhaseDiagramResult(Path(out), files, sys_.name, sys_.lattice.label, what, corners,
                              None if lm is None else lm.trained_range(),
                              bsys.n_sites if reference is not None else None)
