"""Figures a person reads, drawn with matplotlib for every figure the CLI writes: the temperature-composition map,
<x>(mu) isotherms, free energy per site against T, per-condition gaps, a run's training curves and a gallery of
lattice configurations; PNG, SVG or PDF by the file's suffix or a list of formats.

Each figure is a ``matplotlib.figure.Figure`` on an Agg canvas, built without pyplot: no global backend switch, no
figure registry that grows in a long-lived process, and nothing here touches the GUI's Qt (the app never imports
this module). The house style (font sizes, SVG text kept as text so the axis labels can be read and checked, PDF
fonts embedded as TrueType) is applied with ``rc_context`` around building and saving, so matplotlib's global
rcParams are left as they were. Every axis names its quantity and unit, with units from the system catalog (K, eV
for CuAu; kT/ε and ε for Ising); tick labels come from matplotlib's round-number locators; a colour bar replaces a
legend entry per series, and legends sit outside the data.
"""

from __future__ import annotations

from dataclasses import replace

import io
import math
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..errors import LatthermError
from ..systems.catalog import CATALOG, CLUSTER_EXPANSION, SystemInfo

FORMATS = ("png", "svg", "pdf")

STYLE = {
    "font.size": 11, "axes.titlesize": 12, "axes.labelsize": 12, "xtick.labelsize": 10, "ytick.labelsize": 10,
    "legend.fontsize": 10, "figure.titlesize": 13, "axes.grid": True, "grid.alpha": 0.3, "grid.linewidth": 0.6,
    "axes.formatter.useoffset": False, "axes.formatter.limits": (-4, 5), "svg.fonttype": "none",
    "pdf.fonttype": 42, "savefig.dpi": 150, "savefig.bbox": "tight", "image.cmap": "viridis",
}

#: the catalog's ASCII unit names as a reader writes them
_PRETTY_UNITS = {"kT/eps": "kT/ε", "eps": "ε"}
#: at most this many series get a legend entry each; more get a colour bar
MAX_LEGEND = 6


@contextmanager
def style():
    """The house style for building and saving one figure; rcParams are restored afterwards."""
    with rc_context(STYLE):
        yield


def _new_figure(**kw) -> Figure:
    fig = Figure(**kw)
    FigureCanvasAgg(fig)
    return fig


# ---- systems and units ------------------------------------------------------------------------------------------
def system_info_of(system, species=None, lattice: str | None = None) -> SystemInfo:
    """A catalog entry from a SystemInfo, a torch System (its ``info``) or a system name. A name the catalog does
    not know (a user's cluster expansion, named in a file) gets an alloy's units (K, eV) and, when given, the
    ``species`` [spin -1, spin +1] and ``lattice`` kind the file records."""
    if isinstance(system, SystemInfo):
        return system
    info = getattr(system, "info", None)
    if isinstance(info, SystemInfo):
        return info
    name = str(system).lower()
    if name in CATALOG:
        return CATALOG[name]
    if name == CLUSTER_EXPANSION.name:
        return CLUSTER_EXPANSION
    if name and species is not None and len(species) == 2:
        minus, plus = (str(v) for v in species)
        return replace(CLUSTER_EXPANSION, name=str(system), title=str(system), species=(minus, plus),
                       value_labels=(f"{plus} (+1)", f"{minus} (−1)"), observable=f"x_{plus}",
                       composition=f"x_{plus}", lattice_kind=str(lattice or CLUSTER_EXPANSION.lattice_kind))
    raise LatthermError(f"no figure units for system {system!r} (known: {', '.join([*CATALOG, CLUSTER_EXPANSION.name])})")


def unit(text: str) -> str:
    return _PRETTY_UNITS.get(text, text)


def label(quantity: str, unit_text: str) -> str:
    """"quantity (unit)"; a dimensionless quantity says so rather than leaving the unit out."""
    return f"{quantity} ({unit(unit_text) or 'dimensionless'})"


def T_label(info: SystemInfo) -> str:
    return label("temperature T", info.T_unit)


def mu_label(info: SystemInfo) -> str:
    return label("chemical potential μ" if info.encoding == "species" else "field μ", info.mu_unit)


def composition_label(info: SystemInfo) -> str:
    return label(f"composition {info.composition}", "fraction of sites")


def energy_unit(info: SystemInfo) -> str:
    """The system's energy unit (that of μ: eV for alloys, ε for Ising)."""
    return unit(info.mu_unit)


# ---- files ------------------------------------------------------------------------------------------------------
def render(fig: Figure, fmt: str) -> bytes:
    """The figure as PNG, SVG or PDF bytes, in the house style."""
    if fmt not in FORMATS:
        raise LatthermError(f"unknown figure format {fmt!r} (choose from: {', '.join(FORMATS)})")
    buf = io.BytesIO()
    with style():
        fig.savefig(buf, format=fmt, metadata={"Software": None} if fmt == "png" else None)
    return buf.getvalue()


def parse_formats(text) -> tuple[str, ...]:
    """"png,svg" or a list -> checked, de-duplicated formats; an unknown one is a LatthermError naming it."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = tuple(dict.fromkeys(str(f).strip().lower().lstrip(".") for f in items if str(f).strip()))
    if not out:
        raise LatthermError("no figure format given (choose from: png, svg, pdf)")
    bad = [f for f in out if f not in FORMATS]
    if bad:
        raise LatthermError(f"unknown figure format {bad[0]!r} (choose from: {', '.join(FORMATS)})")
    return out


def figure_files(path, formats=None) -> dict[Path, str]:
    """{file: format}: ``path`` as given, its format from the suffix; or with ``formats``, ``path`` with each
    format's suffix in place of any it has."""
    p = Path(path)
    if formats is None:
        fmt = p.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            raise LatthermError(f"{p}: a figure file ends in .png, .svg or .pdf (or give formats)")
        return {p: fmt}
    stem = p.with_suffix("") if p.suffix.lower().lstrip(".") in FORMATS else p
    return {stem.with_name(f"{stem.name}.{f}"): f for f in parse_formats(formats)}


def save(fig: Figure, path, formats=None) -> list[Path]:
    """Write ``fig`` to ``path`` (format from its suffix) or to ``path``.<fmt> for each of ``formats``; every file
    is rendered first, then written atomically."""
    from ..store import atomic_write_bytes

    data = {p: render(fig, f) for p, f in figure_files(path, formats).items()}
    return [atomic_write_bytes(p, b) for p, b in data.items()]


def write_folder(out_dir, files: dict[str, bytes]) -> list[Path]:
    """Write already-rendered ``files`` ({name: bytes}) into ``out_dir``, each atomically; a new folder appears
    whole or not at all (filled as a hidden sibling, then renamed)."""
    from ..store import atomic_write_bytes

    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise LatthermError(f"{out} exists and is not a folder")
        return [atomic_write_bytes(out / name, data) for name, data in files.items()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        for name, data in files.items():
            atomic_write_bytes(tmp / name, data)
        os.chmod(tmp, 0o755)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / name for name in files]


def _series_colours(values, cmap: str = "coolwarm"):
    """One colour per value from a colour map, and the mappable a colour bar shows."""
    v = np.asarray(values, dtype=np.float64)
    lo, hi = float(v.min()), float(v.max())
    norm = Normalize(lo, hi if hi > lo else lo + 1.0)
    sm = ScalarMappable(norm=norm, cmap=cmap)
    return [sm.to_rgba(x) for x in v], sm


def _legend_outside(ax, handles=None, **kw):
    if handles is None:
        handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False,
                  **kw)


def _edges(centres) -> np.ndarray:
    """Cell edges around sorted centres (half way between neighbours; a single centre gets a unit-free width)."""
    c = np.asarray(centres, dtype=np.float64)
    if c.size == 1:
        w = abs(c[0]) * 0.05 or 0.5
        return np.array([c[0] - w, c[0] + w])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


# ---- phase diagrams ---------------------------------------------------------------------------------------------
def temperature_composition(grid: dict, system, reference=None, title: str | None = None) -> Figure:
    """The density of sampled compositions x (bins 0, 1/N, ..., 1) against T, each temperature's row scaled to its
    peak (pooled over μ), with a colour bar; ``reference`` rows (T, x_a, x_b) draw the two-phase boundary."""
    info = system_info_of(system)
    T, bins = np.asarray(grid["T"], dtype=np.float64), np.asarray(grid["x_bins"], dtype=np.float64)
    hist = np.asarray(grid["x_hist"], dtype=np.float64)
    peak = hist.max(axis=1, keepdims=True)
    dens = np.divide(hist, peak, out=np.zeros_like(hist), where=peak > 0)
    with style():
        fig = _new_figure(figsize=(7.2, 4.8), layout="constrained")
        ax = fig.add_subplot()
        mesh = ax.pcolormesh(_edges(bins), _edges(T), dens, cmap="Blues", vmin=0.0, vmax=1.0, shading="flat",
                             rasterized=True)
        cb = fig.colorbar(mesh, ax=ax, pad=0.02)
        cb.set_label(label("sampled density, per T", "fraction of the row's peak"))
        handles = []
        ref = np.asarray([tuple(float(v) for v in r) for r in (reference or [])], dtype=np.float64).reshape(-1, 3)
        if len(ref):
            order = np.argsort(ref[:, 0], kind="stable")
            ref = ref[order]
            ax.plot(ref[:, 1], ref[:, 0], "o", color="tab:red", ms=4, mec="white", mew=0.5)
            ax.plot(ref[:, 2], ref[:, 0], "o", color="tab:red", ms=4, mec="white", mew=0.5)
            for t, a, b in ref:
                ax.plot([a, b], [t, t], "-", color="tab:red", lw=0.8, alpha=0.6)
            handles.append(Line2D([], [], color="tab:red", marker="o", lw=0.8, ms=4,
                                  label="two-phase boundary\n(Wang–Landau)"))
        ax.set_xlim(-0.5 / max(len(bins) - 1, 1), 1 + 0.5 / max(len(bins) - 1, 1))
        ax.set_xlabel(composition_label(info))
        ax.set_ylabel(T_label(info))
        ax.grid(False)
        ax.set_title(title or f"{info.title}: sampled compositions")
        if handles:
            fig.legend(handles=handles, loc="outside lower center", frameon=False)
    return fig


def _condition_counts(grid: dict) -> np.ndarray:
    """Samples per (T, mu) condition: each T row's histogram pools its mu values equally."""
    hist = np.asarray(grid["x_hist"])
    return hist.sum(axis=1) / max(len(np.asarray(grid["mu"])), 1)


def isotherms(grid: dict, system, title: str | None = None) -> Figure:
    """<x>(μ) at each T, coloured by T with a colour bar; error bars are the standard error of the mean,
    std / sqrt(n), exact for independent model samples and a lower bound for correlated Monte Carlo states."""
    info = system_info_of(system)
    T, mu = np.asarray(grid["T"], dtype=np.float64), np.asarray(grid["mu"], dtype=np.float64)
    xm, xs = np.asarray(grid["x_mean"], dtype=np.float64), np.asarray(grid["x_std"], dtype=np.float64)
    n = _condition_counts(grid)
    se = xs / np.sqrt(np.maximum(n, 1))[:, None]
    with style():
        fig = _new_figure(figsize=(7.2, 4.8), layout="constrained")
        ax = fig.add_subplot()
        colours, sm = _series_colours(T)
        few = len(T) <= MAX_LEGEND
        for k in range(len(T)):
            ax.errorbar(mu, xm[k], yerr=se[k], color=colours[k], lw=1.4, marker="o", ms=3, capsize=2,
                        label=f"T = {T[k]:g} {unit(info.T_unit)}")
        if few:
            _legend_outside(ax, title="isotherm")
        else:
            fig.colorbar(sm, ax=ax, pad=0.02).set_label(T_label(info))
        ax.set_xlabel(mu_label(info))
        ax.set_ylabel(label(f"mean composition ⟨{info.composition}⟩", "fraction of sites"))
        ax.set_ylim(-0.03, 1.03)
        ax.set_title(title or f"{info.title}: ⟨{info.composition}⟩(μ) isotherms (±1 standard error)")
    return fig


# ---- evaluations ------------------------------------------------------------------------------------------------
def _evaluation_system(ev: dict) -> tuple[SystemInfo, int]:
    sysd = ev.get("system") or {}
    info = system_info_of(sysd.get("system", ""))
    size = sysd.get("size")
    if not size:
        raise LatthermError("the evaluation names no lattice size")
    return info, int(np.prod([int(v) for v in size]))


def _per_site_se(c: dict, key: str, info: SystemInfo, n_sites: int) -> float:
    se = c.get(key)
    return float("nan") if se is None else float(se) * info.k_B * float(c["T"]) / n_sites


def _by_mu(conditions: list[dict]) -> list[tuple[float, list[dict]]]:
    groups: dict[float, list[dict]] = {}
    for c in conditions:
        groups.setdefault(round(float(c["mu"]), 10), []).append(c)
    return [(m, sorted(cs, key=lambda c: c["T"])) for m, cs in sorted(groups.items())]


def free_energy(ev: dict, title: str | None = None) -> Figure:
    """Free energy per site k_B T F_q / N against T for each μ, with ±1 standard-error bars, the importance-sampled
    estimate beside it, and the exact reference where it exists; a second panel shows model minus reference."""
    info, n_sites = _evaluation_system(ev)
    conds = ev.get("conditions") or []
    if not conds:
        raise LatthermError("the evaluation has no conditions to plot")
    groups = _by_mu(conds)
    has_ref = any(c.get("exact_free_energy_per_site") is not None for c in conds)
    eu = energy_unit(info)
    with style():
        fig = _new_figure(figsize=(7.6, 6.4 if has_ref else 4.6), layout="constrained")
        axes = fig.subplots(2, 1, sharex=True, height_ratios=[2, 1]) if has_ref else [fig.add_subplot()]
        ax = axes[0]
        colours, sm = _series_colours([m for m, _ in groups], cmap="viridis")
        for (m, cs), col in zip(groups, colours):
            T = np.array([c["T"] for c in cs])
            fq = np.array([c["free_energy_per_site_q"] for c in cs])
            fq_se = np.array([_per_site_se(c, "F_q_stderr", info, n_sites) for c in cs])
            nis = np.array([c["free_energy_per_site_nis"] for c in cs])
            nis_se = np.array([_per_site_se(c, "neg_log_Z_nis_stderr", info, n_sites) for c in cs])
            ax.errorbar(T, fq, yerr=fq_se, color=col, marker="o", ms=4, lw=1.2, capsize=2)
            ax.errorbar(T, nis, yerr=nis_se, color=col, marker="s", ms=4, mfc="none", ls="none", capsize=2)
            ex = [(c["T"], c["exact_free_energy_per_site"]) for c in cs if c.get("exact_free_energy_per_site")
                  is not None]
            if ex:
                ax.plot(*zip(*ex), color=col, lw=1.0, ls="--", zorder=0)
            if has_ref:
                rows = [(c["T"], c["free_energy_per_site_q"] - c["exact_free_energy_per_site"],
                         _per_site_se(c, "F_q_stderr", info, n_sites),
                         c["free_energy_per_site_nis"] - c["exact_free_energy_per_site"],
                         _per_site_se(c, "neg_log_Z_nis_stderr", info, n_sites))
                        for c in cs if c.get("exact_free_energy_per_site") is not None]
                if rows:
                    t, d, dse, dn, dnse = (np.array(v) for v in zip(*rows))
                    axes[1].errorbar(t, d, yerr=dse, color=col, marker="o", ms=4, lw=1.2, capsize=2)
                    axes[1].errorbar(t, dn, yerr=dnse, color=col, marker="s", ms=4, mfc="none", ls="none",
                                     capsize=2)
        kinds = [Line2D([], [], color="0.3", marker="o", ms=4, label="variational F_q"),
                 Line2D([], [], color="0.3", marker="s", ms=4, mfc="none", ls="none", label="importance-sampled")]
        if has_ref:
            kinds.append(Line2D([], [], color="0.3", ls="--", lw=1.0, label="exact reference"))
        if len(groups) <= MAX_LEGEND:
            kinds += [Patch(color=col, label=f"μ = {m:g} {unit(info.mu_unit)}") for (m, _), col in zip(groups, colours)]
        else:
            fig.colorbar(sm, ax=list(axes), pad=0.02).set_label(mu_label(info))
        _legend_outside(ax, handles=kinds)
        ax.set_ylabel(label("free energy per site", eu))
        ax.set_title(title or f"{info.title}: free energy per site (±1 standard error)")
        if has_ref:
            axes[1].axhline(0.0, color="black", lw=0.8)
            axes[1].set_ylabel(label("model − reference", eu))
        axes[-1].set_xlabel(T_label(info))
    return fig


def _first(*values) -> float:
    """The first value that is not None, else nan (a zero error bar stays zero)."""
    return next((float(v) for v in values if v is not None), float("nan"))


def gaps(ev: dict, title: str | None = None) -> Figure:
    """Per-condition gap F_q − (−log Z) ≥ 0 (in units of kT) against μ, one series per T, with ±1 standard-error
    bars: a gap within its error bar of zero is the bound met, not violated."""
    info, _ = _evaluation_system(ev)
    conds = [c for c in ev.get("conditions") or [] if c.get("gap") is not None]
    if not conds:
        raise LatthermError("the evaluation has no exact reference, so no gaps to plot")
    Ts = sorted({float(c["T"]) for c in conds})
    with style():
        fig = _new_figure(figsize=(7.6, 4.6), layout="constrained")
        ax = fig.add_subplot()
        colours, sm = _series_colours(Ts)
        mus = sorted({float(c["mu"]) for c in conds})
        step = (min(np.diff(mus)) if len(mus) > 1 else 1.0) * 0.25 / max(len(Ts), 1)
        for k, (t, col) in enumerate(zip(Ts, colours)):
            cs = sorted((c for c in conds if float(c["T"]) == t), key=lambda c: c["mu"])
            x = np.array([c["mu"] for c in cs]) + (k - (len(Ts) - 1) / 2) * step  # side by side, not on top
            y = np.array([c["gap"] for c in cs])
            se = np.array([_first(c.get("gap_stderr"), c.get("F_q_stderr")) for c in cs], dtype=np.float64)
            ax.errorbar(x, y, yerr=se, color=col, marker="o", ms=4, ls="none", capsize=2,
                        label=f"T = {t:g} {unit(info.T_unit)}")
        ax.axhline(0.0, color="black", lw=0.8)
        if len(Ts) <= MAX_LEGEND:
            _legend_outside(ax)
        else:
            fig.colorbar(sm, ax=ax, pad=0.02).set_label(T_label(info))
        ax.set_xlabel(mu_label(info))
        ax.set_ylabel(label("gap F_q + log Z", "kT"))
        ax.set_title(title or f"{info.title}: variational gap per condition (±1 standard error)")
    return fig


# ---- training ---------------------------------------------------------------------------------------------------
#: axis labels of the metrics a trainer logs (engine/training); anything else is plotted under its own name
METRIC_LABELS = {
    "F_q": ("F_q (batch mean)", "kT"),
    "exact_gap": ("gap F_q + log Z", "kT"),
    "loss": ("loss", "kT"),
    "grad_norm": ("gradient norm", ""),
    "ess_fraction": ("ESS / n", "fraction"),
    "lr": ("learning rate", ""),
    "beta_factor": ("β annealing factor", ""),
    "sec_per_step": ("time per step", "s"),
    "elapsed_s": ("training time", "s"),
    "self_consistency": ("self-consistency", "kT²"),
    "kl_term": ("KL term", "kT"),
    "marginal_vs_path_gap": ("|log p_marginal − log p_path|", "nats"),
    "marginal_minus_path_mean": ("log p_marginal − log p_path", "nats"),
    "empty_set_penalty": ("empty-set penalty", ""),
    "empty_set_drift": ("empty-set drift", "nats"),
    "chain_mean_log_f": ("⟨log f⟩ of the chains", "nats"),
    "nll": ("negative log-likelihood", "nats"),
}
#: record keys that are bookkeeping, not curves
_NOT_CURVES = {"step", "time"}


def metric_series(records: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{metric: (steps, values)} of every finite scalar number the records carry, in order of first appearance."""
    out: dict[str, tuple[list, list]] = {}
    for r in records:
        step = r.get("step")
        if isinstance(step, bool) or not isinstance(step, (int, float)):
            continue
        for k, v in r.items():
            if k in _NOT_CURVES or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                continue
            xs, ys = out.setdefault(k, ([], []))
            xs.append(step)
            ys.append(v)
    return {k: (np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)) for k, (x, y) in out.items()}


def training_curves(records: list[dict], title: str = "training", columns: int = 2) -> Figure:
    """One panel per metric of a run's metrics stream against the training step (a constant metric still gets its
    panel: a learning rate without schedule is worth seeing); log scale where a positive metric spans decades."""
    series = metric_series(records)
    if not series:
        raise LatthermError("the run has no metric records to plot yet")
    keys = list(series)
    cols = min(columns, len(keys))
    rows = math.ceil(len(keys) / cols)
    with style():
        fig = _new_figure(figsize=(5.0 * cols, 2.4 * rows + 0.8), layout="constrained")
        axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, squeeze=False)).reshape(-1)
        for ax, key in zip(axes, keys):
            x, y = series[key]
            ax.plot(x, y, lw=1.2, marker="o" if len(x) < 30 else None, ms=3)
            name, u = METRIC_LABELS.get(key, (key.replace("_", " "), ""))
            ax.set_title(name, fontsize=11)
            ax.set_ylabel(unit(u) or "dimensionless", fontsize=10)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if (y > 0).all() and y.max() / y.min() > 100:
                ax.set_yscale("log")
            if key == "exact_gap":
                ax.axhline(0.0, color="black", lw=0.8)
        for ax in axes[len(keys):]:
            ax.set_visible(False)
        for ax in axes[max(len(keys) - cols, 0):len(keys)]:
            ax.set_xlabel(label("training step", "steps"))
            ax.xaxis.set_tick_params(labelbottom=True)
        fig.suptitle(title)
    return fig


# ---- configurations ---------------------------------------------------------------------------------------------
def _species_index(configs: np.ndarray, info: SystemInfo) -> np.ndarray:
    """Samples-file values (spins -1/+1 or species 0/1, by the system's encoding) -> species index 0/1."""
    a = np.asarray(configs)
    return (a > 0).astype(np.int8) if info.encoding == "spin" else (a != 0).astype(np.int8)


def lattice_gallery(configs, system, size, titles=None, columns: int = 4, title: str | None = None) -> Figure:
    """Configurations (n, *size) as a samples file stores them, one panel each: a 2D lattice as an image (rows x
    columns of sites); a 3D one layer by layer, each layer g_3 = const of the primitive grid drawn at its real
    in-plane site positions (for fcc the close-packed planes spanned by a_1 and a_2)."""
    info = system_info_of(system)
    lattice = info.lattice_of(size)
    species = _species_index(configs, info)
    shape = tuple(lattice.size)
    if species.shape[1:] != shape:
        species = species.reshape((-1, *shape))
    n = species.shape[0]
    if n == 0:
        raise LatthermError("no configurations to draw")
    cmap = ListedColormap(["#d9a441", "#3b5ba5"])  # species 0, species 1
    legend = [Patch(color=cmap(k), label=info.species[k]) for k in (0, 1)]
    with style():
        if lattice.dim == 2:
            cols = min(columns, n)
            rows = math.ceil(n / cols)
            fig = _new_figure(figsize=(2.6 * cols + 1.4, 2.6 * rows + 0.6), layout="constrained")
            axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
            for k, ax in enumerate(axes):
                if k >= n:
                    ax.set_visible(False)
                    continue
                ax.imshow(species[k], cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
                ax.set_title(titles[k] if titles else f"#{k}", fontsize=10)
                ax.set_xlabel(label("column", "sites"), fontsize=9)
                ax.set_ylabel(label("row", "sites"), fontsize=9)
                ax.grid(False)
        elif lattice.dim == 3:
            layers = shape[2]
            a1, a2 = (np.asarray(v, dtype=np.float64) * lattice.unit_length for v in lattice.vectors[:2])
            e1 = a1 / np.linalg.norm(a1)
            e2 = a2 - (a2 @ e1) * e1
            e2 /= np.linalg.norm(e2)
            g = lattice.grid
            xy = np.stack([(g[:, 0:1] * a1 + g[:, 1:2] * a2) @ e1, (g[:, 0:1] * a1 + g[:, 1:2] * a2) @ e2], 1)
            extent = np.ptp(xy, axis=0) + np.linalg.norm(a1)
            aspect = float(np.clip(extent[1] / extent[0], 0.4, 2.0))
            fig = _new_figure(figsize=(2.4 * layers + 1.4, 2.4 * aspect * n + 1.0), layout="constrained")
            axes = fig.subplots(n, layers, squeeze=False)
            flat = species.reshape(n, -1)
            for k in range(n):
                for layer in range(layers):
                    ax = axes[k, layer]
                    on = g[:, 2] == layer
                    ax.scatter(xy[on, 0], xy[on, 1], c=flat[k, on], cmap=cmap, vmin=0, vmax=1, s=60,
                               edgecolors="0.2", linewidths=0.4)
                    ax.set_aspect("equal")
                    ax.margins(0.15)
                    ax.grid(False)
                    ax.set_title((f"{titles[k]}, " if titles else f"#{k}, ") + f"layer {layer}", fontsize=9)
                    if layer == 0:
                        ax.set_ylabel(label("in-plane y", "Å"), fontsize=9)
                    if k == n - 1:
                        ax.set_xlabel(label("in-plane x", "Å"), fontsize=9)
        else:
            raise LatthermError(f"cannot draw a {lattice.dim}D lattice")
        fig.legend(handles=legend, loc="outside right upper", frameon=False, title="species")
        fig.suptitle(title or f"{info.title}: {lattice.label} configurations")
    return fig
