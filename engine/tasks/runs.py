"""Runs and models on disk: list, open, delete; the bundled models and what a model is."""

from __future__ import annotations


METRIC_KEYS = ("step", "loss", "F_q", "grad_norm", "ess_fraction", "lr", "sec_per_step", "elapsed_s", "time",
               "self_consistency")


def list_runs() -> list:
    from ..store import list_runs as rows

    return rows()


def open_run(run) -> dict:
    """Status, config and the scalar metrics of a run (for the browser and for curves of a finished run)."""
    from ..store import Run

    r = Run.open(run)
    metrics = [{k: rec[k] for k in METRIC_KEYS if k in rec} for rec in r.read_metrics()]
    ckpt = r.latest_checkpoint()
    return {"id": r.id, "path": str(r.path), "status": r.status(), "config": r.config_text(), "metrics": metrics,
            "checkpoint": None if ckpt is None else str(ckpt), "checkpoints": [str(p) for p in r.checkpoints()]}


def delete_run(run) -> dict:
    """Delete a run folder inside the runs root; a run that any live process owns (training it, in this engine or
    elsewhere, or about to) is refused. The folder deleted is exactly the one checked: no id is looked up twice."""
    from ..store import Run
    from ..store import delete_run as delete

    return {"deleted": str(delete(Run.open(run)))}


def bundled_models() -> list:
    from ..store import bundled_models as names
    from ..store import resolve_model_source

    out = []
    for name in names():
        src = resolve_model_source(name)
        out.append({"name": name, "path": str(src.path), "info": src.info})
    return out


def model_info(lm) -> dict:
    """What a front end needs to know of a loaded model: system, lattice kind and size, species, units, and the
    primitive vectors (rows, Cartesian, in units of ``unit_length`` angstrom) that place site g at g @ vectors."""
    s = lm.system
    return {"source": lm.source.kind, "path": str(lm.source.path), "name": lm.source.name, "model": lm.model.hparams(),
            "system": s.name, "lattice": s.lattice.kind, "size": list(s.lattice.size), "species": list(s.species),
            "labels": list(s.info.value_labels), "encoding": s.encoding, "observable": s.observable_name,
            "composition": s.info.composition,  # the x of phase diagrams (x_up for Ising, x_Au for CuAu)
            "observable_unit": s.info.observable_unit, "T_unit": s.temperature_unit, "mu_unit": s.mu_unit,
            "step": lm.step, "vectors": [[float(v) for v in row] for row in s.lattice.vectors],
            "unit_length": float(s.lattice.unit_length), "trained_range": lm.trained_range()}


def describe_model(ref) -> dict:
    """:func:`model_info` of a run, model folder or bundled name."""
    from ._common import load

    return model_info(load(ref))
