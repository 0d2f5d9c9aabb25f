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

    def to_dict(self) -> dict:
        return {"out": str(self.out), "files": [str(p) for p in self.files]}


def _stack_rows(rows: list[dict]) -> dict:
    """One grid from per-temperature grids (each sampled on its own, so progress and cancel come per row)."""
    grid = dict(rows[0])
    grid["T"] = np.concatenate([r["T"] for r in rows])
    for k in ("x_mean", "x_std", "x_hist"):
        grid[k] = np.concatenate([r[k] for r in rows])
    return grid


def phase_diagram(model, out, *, system: str | None = None, lattice_size: str | None = None, chains: int = 16,
                  sweeps: int = 200, boundary: str = "wl", boundary_size: str | None = None,
                  boundary_T_points: int = 8, T_points: int = 32, mu_points: int = 32, samples: int = 200,
                  T_range=None, mu_range=None, device: str | None = "cpu", seed: int = 0, formats="png,svg",
                  progress=None, control=None) -> PhaseDiagramResult:
    """``model``: a run or model, sampled ``samples`` times per condition, or "mc" for semi-grand-canonical
    Metropolis on ``system`` ``lattice_size`` (``chains`` x ``sweeps``, after as many to equilibrate). Ranges default
    to the model's trained ones (the paper's for mc). ``boundary``: "wl" overlays the two-phase boundary from
    Wang-Landau over composition on ``boundary_size`` (default the diagram's) at ``boundary_T_points``, or "none".
    ``formats``: the figures' formats ("png,svg,pdf" or a list), checked before any work starts.

    Temperature i of the grid is drawn from its own generator (condition_seed): in a distributed world the rows are
    split over the ranks, rank 0 computes the boundary and writes the files one process writes for the same seed;
    the other ranks return None."""
    from ..analysis.composition import phase_boundary
    from ..analysis.figures import parse_formats
    from ..analysis.phase_diagram import mc_phase_grid, model_phase_grid, write_phase_diagram
    from ..montecarlo import composition_free_energy
    from ..systems import make_system
    from ..systems.base import check_condition

    formats = parse_formats(formats)
    check_positive(T_points=T_points, mu_points=mu_points, samples=samples, chains=chains, sweeps=sweeps,
                   boundary_T_points=boundary_T_points)
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
        Ts, mus = zip(*paper_grid(sys_.name))  # the paper's ranges for this system
        default = {"T": [min(Ts), max(Ts)], "mu": [min(mus), max(mus)]}
    else:
        if system or lattice_size:
            raise LatthermError("--system and --lattice-size belong to 'phase-diagram mc'; a model brings its own")
        lm = load(model, rank_device(device, current_world()))
        sys_, default = lm.system, lm.trained_range() or {}
    T = np.linspace(*span(T_range, "T range", default.get("T")), T_points)
    mu = np.linspace(*span(mu_range, "mu range", default.get("mu")), mu_points)
    sys_.check(T, mu)
    bsys = make_system(sys_.name, boundary_size) if boundary_size else sys_
    total = len(shard(T_points)) + (boundary == "wl")
    corners = []
    if lm is not None:
        corners = [(float(t), float(m)) for t, m in ((T[0], mu[0]), (T[-1], mu[-1])) if lm.extrapolates(t, m)]

        def row(i):  # one temperature of the grid, from its own generator
            return model_phase_grid(lm, [T[i]], mu, samples, generator=seeded(condition_seed(seed, i)))

        what = f"{samples} model samples per condition"
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
        reference = phase_boundary(composition_free_energy(bsys, temps, generator=seeded(seed)))
        Meter(total, progress, control=control).update(total, extra={"stage": "boundary"})
        what += f"; two-phase boundary by Wang-Landau on {bsys.lattice.label} at {boundary_T_points} temperatures"
    files = write_guarded(lambda: write_phase_diagram(out, grid, sys_.name, reference=reference,
                                                      x_label=sys_.composition_name, formats=formats), out)
    return PhaseDiagramResult(Path(out), files, sys_.name, sys_.lattice.label, what, corners,
                              None if lm is None else lm.trained_range())
