"""Run configuration: a TOML file with [system], [model], [conditions], [training] tables, and its schema.

Every key is checked: an unknown key, a wrong type or an impossible value is a ConfigError naming the key, so a
typo never silently trains the wrong thing. Defaults follow the paper (Appendix F for Ising, J for CuAu).

The dataclass fields carry the schema a form is built from (label, help, choices, bounds, and which model fields
apply to which kind/architecture/system, see :func:`schema` and :meth:`FieldSpec.applies`); the GUI builds its
Training panel from it. Torch-free: sizes come from :mod:`lattherm.engine.lattices`, site counts and the Z2 parity
of the energy from the system catalog, so the GUI validates exactly as the engine does.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, LatthermError
from .systems import CATALOG, SystemInfo, info_from_ce_file, system_info
from .systems.ce_file import load_json as ce_file_json

#: the model kinds x architectures lattherm trains (lattherm.engine.models builds one class for each)
MODEL_KINDS: tuple[tuple[str, str], ...] = (("fo-arm", "mlp"), ("ao-arm", "mlp"), ("ao-arm", "transformer"),
                                            ("ao-mam", "mlp"), ("ao-mam", "transformer"))
KINDS = tuple(dict.fromkeys(k for k, _ in MODEL_KINDS))
ARCHS = tuple(dict.fromkeys(a for _, a in MODEL_KINDS))
DEVICES = ("auto", "cpu", "cuda")
#: training objectives: on-policy REINFORCE (reverse KL), maximum likelihood on Monte Carlo data (forward KL), or
#: MLE until ``switch_step`` and REINFORCE after it
OBJECTIVES = ("reinforce", "mle", "mle+reinforce")
#: arithmetic of the training step (lattherm.engine.training.precision): TF32 and bf16 act on GPUs only
PRECISIONS = ("float32", "tf32", "bf16")
#: Monte Carlo samplers a data set can be drawn with (cluster updates: square-lattice Ising only)
MC_SAMPLERS = ("metropolis", "wolff", "swendsen-wang")


def archs_for(kind: str) -> tuple[str, ...]:
    """The architectures a model kind comes in (FO-ARM: MLP only)."""
    return tuple(a for k, a in MODEL_KINDS if k == kind)


def _spec(default, label: str, help: str, *, choices=None, low=None, high=None, open_low: bool = False,
          open_high: bool = False, open_choices: bool = False,
          applies: Callable[[str, str, SystemInfo], bool] | None = None):
    """A dataclass field with its form metadata: ``low``/``high`` are validated bounds (``open_*``: strict);
    ``choices`` are the values a form offers (``open_choices``: others are valid too, e.g. cuda:1)."""
    meta = {"label": label, "help": help, "choices": choices, "open_choices": open_choices, "low": low, "high": high,
            "open_low": open_low, "open_high": open_high, "applies": applies}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


def _transformer(kind, arch, info):
    return arch == "transformer"


def _mam(kind, arch, info):
    return kind == "ao-mam"


def _even_energy(kind, arch, info):
    return info.energy_even


def _ao_arm(kind, arch, info):
    return kind == "ao-arm"


def _window_model(kind, arch, info):
    """Any-order models of one fixed cell: the ones that paint a larger lattice through windows of it."""
    return kind in ("ao-arm", "ao-mam") and arch == "mlp"


@dataclass
class SystemConfig:
    name: str = _spec("ising", "system", "the lattice system (the catalog's name; with a cluster-expansion file "
                      "below, a label of your own or the file's name)", choices=tuple(CATALOG), open_choices=True)
    size: str = _spec("5x5", "lattice size", "periodic supercell, e.g. 10x10 (square) or 2x2x4 (fcc)")
    ce: str = _spec("", "cluster-expansion file", "a cluster-expansion JSON (lattherm's, or one `lattherm ce "
                    "import` made from icet or CLEASE) to train instead of a catalog system; relative to the config "
                    "file; copied into the run; empty = the catalog system named above")


#: the name a run's copy of its cluster-expansion file has, beside its config.toml (model folders too)
CE_COPY = "cluster_expansion.json"


def system_of(cfg: "RunConfig") -> SystemInfo:
    """The catalog entry a config trains: its cluster-expansion file when ``[system] ce`` is set, else the catalog
    system ``[system] name`` names."""
    if cfg.system.ce:
        return info_from_ce_file(cfg.system.ce, name=cfg.system.name)
    return system_info(cfg.system.name)


@dataclass
class ModelConfig:
    kind: str = _spec("ao-arm", "model", "FO-ARM (fixed order), AO-ARM (any order) or AO-MAM (marginalization model)",
                      choices=KINDS)
    arch: str = _spec("mlp", "architecture", "network of the model (FO-ARM: MLP only)", choices=ARCHS)
    hidden: int = _spec(512, "hidden width", "width of every hidden layer / attention block", low=1)
    layers: int = _spec(4, "layers", "hidden layers (MLP) or blocks (Transformer)", low=1)
    symmetric: bool = _spec(False, "Z2-symmetric", "symmetrise q under (s, mu) -> (-s, -mu); needs E(-s) = E(s)",
                            applies=_even_energy)
    heads: int = _spec(4, "attention heads", "heads per attention block (hidden must be a multiple)", low=1,
                       applies=_transformer)
    lam: float = _spec(0.0, "lambda", "self-consistency weight lambda; 0 = the paper's (100 MLP, 10 Transformer)",
                       low=0.0, applies=_mam)
    gibbs_steps: int = _spec(5, "Gibbs sites", "sites redrawn per block-Gibbs update of the persistent chains "
                             "(paper: 5 at 5x5)", low=1, applies=_mam)

    def mam_lambda(self) -> float:
        """The self-consistency weight actually used (paper Appendix F defaults when ``lam`` is 0)."""
        if self.lam > 0:
            return self.lam
        return 10.0 if self.arch == "transformer" else 100.0


@dataclass
class ConditionsConfig:
    T: list = _spec([1.5, 3.5], "T range", "training temperatures [low, high], in the system's T unit",
                    low=0.0, open_low=True)
    T_points: int = _spec(5, "T points", "grid points across the T range", low=1)
    mu: list = _spec([-0.4, 0.4], "mu range", "training chemical potentials / fields [low, high]")
    mu_points: int = _spec(5, "mu points", "grid points across the mu range", low=1)
    jitter_T: float = _spec(0.2, "T jitter", "standard deviation of the per-epoch jitter of each grid T", low=0.0)
    jitter_mu: float = _spec(0.05, "mu jitter", "standard deviation of the per-epoch jitter of each grid mu", low=0.0)
    samples_per_epoch: int = _spec(100_000, "samples per epoch", "samples between two jitters of the grid", low=1)


@dataclass
class TrainingConfig:
    batch: int = _spec(1250, "batch", "samples per step, a multiple of the number of conditions (>= 2 each)", low=2)
    steps: int = _spec(40_000, "steps", "training budget in optimiser steps", low=1)
    max_minutes: float = _spec(0.0, "time budget (min)", "stop after this many minutes; 0 = no time budget", low=0.0)
    lr: float = _spec(1e-3, "learning rate", "Adam learning rate", low=0.0, open_low=True)
    lr_final: float = _spec(0.0, "final learning rate", "cosine decay to this lr over the steps when > 0", low=0.0)
    beta_anneal: float = _spec(0.0, "beta annealing", "beta_t = beta (1 - a^t); 0 disables", low=0.0, high=1.0,
                               open_high=True)
    clip_grad: float = _spec(1.0, "gradient clip", "clip the gradient norm to this; 0 disables", low=0.0)
    seed: int = _spec(0, "seed", "seed of the model init, the samples and the condition jitter")
    device: str = _spec("auto", "device", "auto, cpu, cuda or cuda:N", choices=DEVICES,
                        open_choices=True)
    checkpoint_every: int = _spec(500, "checkpoint every", "steps between checkpoints", low=1)
    keep_checkpoints: int = _spec(3, "keep checkpoints", "newest checkpoints kept on disk", low=1)
    log_every: int = _spec(10, "log every", "steps between metric records", low=1)
    threads: int = _spec(0, "CPU threads", "torch CPU threads; 0 = torch's default", low=0, high=1024)
    objective: str = _spec("reinforce", "objective", "reinforce (reverse KL on model samples), mle (forward KL on "
                           "Monte Carlo data, one pass per sample) or mle+reinforce (MLE until the switch step)",
                           choices=OBJECTIVES)
    switch_step: int = _spec(0, "switch step", "mle+reinforce: the step at which REINFORCE takes over (0 < it < "
                             "steps)", low=0)
    finetune_lr: float = _spec(0.0, "fine-tune learning rate", "mle+reinforce: the REINFORCE phase's own cosine "
                               "starts at this lr (0 = lr)", low=0.0)
    reinforce_steps: int = _spec(0, "REINFORCE steps K", "AO-ARM: gradient from K random generation steps of "
                                 "the N, scaled N/K (unbiased); 0 = all N", low=0, applies=_ao_arm)
    z2_confident: float = _spec(0.99, "Z2 drawn-component threshold", "symmetric models, REINFORCE: rows whose "
                                "larger component responsibility is at least this are scored through the component "
                                "they were drawn from (one path with gradient instead of two; unbiased); 0.5 = every "
                                "row, 1 = none", low=0.5, high=1.0)
    precision: str = _spec("float32", "precision", "float32, tf32 (CUDA matmuls) or bf16 (autocast of the gradient "
                           "passes; sampling and log p stay float32)", choices=PRECISIONS)
    compile: bool = _spec(False, "compile sampler", "torch.compile the network passes of sampling (a GPU speed-up; "
                          "falls back to eager where the compiler fails)")
    levels: str = _spec("", "warm-start levels", "Transformer: smaller sizes trained first, in order, each from the "
                        "weights of the one before, e.g. '4x4:2000, 6x6:2000:batch=500:lr=2e-3'; the [system] size "
                        "then trains the rest of the steps; empty = one size", applies=_transformer)


@dataclass
class DataConfig:
    """The Monte Carlo data set of the maximum-likelihood phase (:mod:`lattherm.engine.montecarlo.dataset`)."""

    samples: int = _spec(100_000, "MC samples", "configurations in the data set", low=1)
    chains: int = _spec(1000, "MC chains", "independent chains, each at its own (T, mu) drawn uniformly over the "
                        "condition ranges", low=1)
    equilibration: int = _spec(200, "equilibration sweeps", "sweeps discarded before the pilot run", low=0)
    pilot: int = _spec(200, "pilot sweeps", "sweeps whose series measure tau_int (the thinning is 2 tau_int)",
                       low=8)
    max_thin: int = _spec(50, "max thinning", "upper limit of the sweeps between two kept configurations", low=1)
    batch: int = _spec(0, "MLE batch", "data rows per maximum-likelihood step (one pass each, so MLE affords "
                       "larger batches than REINFORCE); 0 = [training] batch", low=0)
    sampler: str = _spec("metropolis", "MC sampler", "metropolis (any system), or cluster updates wolff / "
                         "swendsen-wang (square-lattice Ising)", choices=MC_SAMPLERS)
    gauge: float = _spec(0.0, "Z2 gauge", "even-energy systems: flip (x, mu) -> (-x, -mu) with probability "
                         "sigmoid(-gauge M / sqrt N), so ordered rows reach a symmetric model's component with "
                         "M > 0 (the mixture stays exact); 0 = flip half of the rows at random", low=0.0)
    paint_known: float = _spec(0.0, "painting known sets", "fraction of the data rows whose known set is one the "
                               "painting walk meets on paint_size (scored at the site it generates there) instead of "
                               "a uniformly random one: weights the conditionals a window model paints with",
                               low=0.0, high=1.0, applies=_window_model)
    paint_size: str = _spec("", "painting target", "the lattice whose paint (default layout, stride and views) gives "
                            "those known sets; empty = twice the cell on every axis", applies=_window_model)
    seed: int = _spec(0, "data seed", "seed of the data set's conditions and chains")
    path: str = _spec("", "data set file", "a dataset.npz to train on instead of generating one (it must be made "
                      "for this system, size and condition ranges); empty = generate")


@dataclass
class RunConfig:
    system: SystemConfig = field(default_factory=SystemConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    conditions: ConditionsConfig = field(default_factory=ConditionsConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_toml(self) -> str:
        return toml_text(self.to_dict())


SECTIONS = {"system": SystemConfig, "model": ModelConfig, "conditions": ConditionsConfig,
            "training": TrainingConfig, "data": DataConfig}


@dataclass(frozen=True)
class FieldSpec:
    """One config key as a form sees it. ``type`` is bool, int, float, str or "range" (a [low, high] pair)."""

    section: str
    name: str
    type: Any
    default: Any
    label: str
    help: str
    choices: tuple | None
    open_choices: bool
    low: float | None
    high: float | None
    open_low: bool
    open_high: bool
    #: (kind, arch, SystemInfo) -> bool, or None for a key that always applies
    rule: Callable | None

    @property
    def key(self) -> str:
        return f"[{self.section}] {self.name}"

    def applies(self, kind: str, arch: str, system: str) -> bool:
        """Whether this key means anything for the model kind/arch on this system (heads: Transformer; lam and
        gibbs_steps: AO-MAM; symmetric: an energy even in the spins). A form disables the others."""
        if self.rule is None:
            return True
        info = CATALOG.get(system)
        return info is not None and bool(self.rule(kind, arch, info))

    def in_bounds(self, v) -> bool:
        if self.low is not None and (v <= self.low if self.open_low else v < self.low):
            return False
        return self.high is None or (v < self.high if self.open_high else v <= self.high)

    def bounds_text(self) -> str:
        if self.high is None:
            return f"{'>' if self.open_low else '>='} {self.low:g}"
        return (f"in {'(' if self.open_low else '['}{self.low:g}, {self.high:g}{')' if self.open_high else ']'}")


def schema() -> list[FieldSpec]:
    """Every config key, table by table in file order, with its type, default, label, help, choices and bounds."""
    out = []
    for section, cls in SECTIONS.items():
        default = cls()
        for f in fields(cls):
            value = getattr(default, f.name)
            kind = "range" if isinstance(value, list) else type(value)
            m = f.metadata
            out.append(FieldSpec(section, f.name, kind, value, m["label"], m["help"], m["choices"],
                                 m["open_choices"], m["low"], m["high"], m["open_low"], m["open_high"],
                                 m["applies"]))
    return out


def _coerce(section: str, key: str, value, default):
    where = f"[{section}] {key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(default, list):
        if not isinstance(value, list) or len(value) != 2 or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
            raise ConfigError(f"{where} must be a range [low, high], got {value!r}")
        return [float(x) for x in value]
    return value


#: tables a config must have: without [system] a config would silently train the default Ising 5x5
REQUIRED = ("system",)


def config_from_dict(data: dict, base=None) -> RunConfig:
    """A checked RunConfig from parsed TOML. ``base``: the folder a relative ``[system] ce`` path is resolved from
    (the config file's; default the working directory); the parsed config holds the absolute path."""
    missing = [t for t in REQUIRED if t not in data]
    if missing:
        raise ConfigError(f"the config has no [{missing[0]}] table (it names what to train: name and size)")
    cfg = RunConfig()
    for section, values in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"unknown config table [{section}] (known: {', '.join(SECTIONS)})")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table")
        target = getattr(cfg, section)
        known = {f.name for f in fields(target)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"unknown key {key!r} in [{section}] (known: {', '.join(sorted(known))})")
            setattr(target, key, _coerce(section, key, value, getattr(target, key)))
    if cfg.system.ce:
        _resolve_ce(cfg.system, base)
    validate(cfg)
    return cfg


def _resolve_ce(system: SystemConfig, base) -> None:
    """Make ``[system] ce`` absolute (relative to ``base``) and name its system: ``name`` when it is a label of the
    user's (not a catalog name, such as the default), else the file's ``name`` key, else the file's stem. A
    missing, corrupt or unsupported file (not lattherm's CE JSON, a ternary, another lattice) is one ConfigError."""
    path = Path(system.ce).expanduser()
    if not path.is_absolute():
        path = Path(base if base is not None else Path.cwd()) / path
    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f"[system] ce: cluster-expansion file {str(path)!r} not found")
    try:
        info = info_from_ce_file(path)
    except ConfigError:
        raise
    except LatthermError as exc:
        hint = "" if "lattice" not in str(exc) or "lacks" not in str(exc) else \
            " (a file from icet or CLEASE needs `lattherm ce import` first)"
        raise ConfigError(f"[system] ce: {exc}{hint}") from None
    name = system.name
    if name.lower() in CATALOG:
        name = info.name if info.name.lower() in CATALOG or "name" in ce_file_json(path) else path.stem
    bundled = CATALOG.get(name.lower())
    if bundled is not None and (bundled.ce_file is None or Path(bundled.ce_file).resolve() != path):
        raise ConfigError(f"[system] ce: {str(path)!r} calls itself {name!r}, a catalog system's name; give "
                          "[system] name a label of its own")
    system.ce, system.name = str(path), name


def _check_bounds(cfg: RunConfig) -> None:
    for spec in schema():
        value = getattr(getattr(cfg, spec.section), spec.name)
        if spec.type in (float, "range") and not all(math.isfinite(v) for v in (value if spec.type == "range"
                                                                                  else [value])):
            raise ConfigError(f"{spec.key} must be finite, got {value!r}")  # nan passes every comparison
        if spec.type in (bool, str) or (spec.low is None and spec.high is None):
            continue
        if not all(spec.in_bounds(v) for v in (value if spec.type == "range" else [value])):
            raise ConfigError(f"{spec.key} must be {spec.bounds_text()}, got {value!r}")


def validate(cfg: RunConfig) -> None:
    """Check a whole config, torch-free; raise a ConfigError naming the first bad key."""
    c, t, m = cfg.conditions, cfg.training, cfg.model
    info = system_of(cfg)
    n_sites = info.n_sites(cfg.system.size)  # names a bad size
    if c.T[0] <= 0 or c.T[1] < c.T[0]:
        raise ConfigError(f"[conditions] T must be a range of positive temperatures [low, high], got {c.T}")
    if c.mu[1] < c.mu[0]:
        raise ConfigError(f"[conditions] mu must be [low, high], got {c.mu}")
    if (m.kind, m.arch) not in MODEL_KINDS:
        known = ", ".join(f"{k}/{a}" for k, a in MODEL_KINDS)
        raise ConfigError(f"[model] unknown model {m.kind}/{m.arch} (known: {known})")
    _check_bounds(cfg)
    if t.lr_final > t.lr:
        raise ConfigError(f"[training] lr_final ({t.lr_final:g}) must not exceed lr ({t.lr:g}): the schedule decays")
    n_cond = c.T_points * c.mu_points
    if t.batch < 2 * n_cond or t.batch % n_cond:
        raise ConfigError(f"[training] batch must be a multiple of the {n_cond} conditions with at least two samples "
                          f"each (per-condition baselines), got {t.batch}")
    if t.device not in DEVICES and not t.device.startswith("cuda:"):
        raise ConfigError(f"[training] device must be auto, cpu or cuda, got {t.device!r}")
    if t.precision not in PRECISIONS:
        raise ConfigError(f"[training] precision must be one of {', '.join(PRECISIONS)}, got {t.precision!r}")
    if m.arch == "transformer" and m.hidden % m.heads:
        raise ConfigError(f"[model] hidden ({m.hidden}) must be a multiple of heads ({m.heads})")
    if m.symmetric and not info.energy_even:
        raise ConfigError(f"[model] symmetric needs an energy even in the spins (E(-s) = E(s)); "
                          f"{info.name} {cfg.system.size} is not, so set symmetric = false")
    if cfg.data.gauge and m.kind == "ao-mam":
        raise ConfigError("[data] gauge is for ARMs (fo-arm, ao-arm): an AO-MAM's marginals have no mode weight")
    if cfg.data.gauge and not m.symmetric:
        raise ConfigError("[data] gauge needs a Z2-symmetric model (model.symmetric = true): a gauge-fixed data set "
                          "has one ordered state only, which the symmetric mixture restores")
    if m.kind == "ao-mam" and m.gibbs_steps > n_sites:
        raise ConfigError(f"[model] gibbs_steps must be in 1..{n_sites} (the number of sites), got {m.gibbs_steps}")
    _check_objective(cfg, n_sites)
    _check_levels(cfg, info)


# ---- multilevel warm start ([training] levels) -------------------------------------------------------------------
@dataclass(frozen=True)
class Level:
    """One size of a multilevel schedule: ``steps`` optimiser steps at ``size`` with that ``batch`` and ``lr``
    (None: the [training] value)."""

    size: str
    steps: int
    batch: int | None = None
    lr: float | None = None


#: per-level options a level may set after SIZE:STEPS, and their types
LEVEL_OPTIONS = {"batch": int, "lr": float}


def parse_levels(text: str) -> list[Level]:
    """The warm-up levels of ``[training] levels``: 'SIZE:STEPS[:batch=B][:lr=X]' separated by commas or spaces.
    Only the syntax is checked here (sizes against the system in :func:`validate`)."""
    out = []
    for item in text.replace(",", " ").split():
        size, _, rest = item.partition(":")
        parts = rest.split(":") if rest else []
        where = f"[training] levels: {item!r}"
        if not parts or not parts[0].strip().lstrip("-").isdigit():
            raise ConfigError(f"{where} must be SIZE:STEPS (e.g. 4x4:2000)")
        steps = int(parts[0])
        if steps < 1:
            raise ConfigError(f"{where} has {steps} steps; every level needs at least 1")
        opts: dict[str, Any] = {}
        for opt in parts[1:]:
            key, eq, value = opt.partition("=")
            if key not in LEVEL_OPTIONS or not eq:
                raise ConfigError(f"{where}: unknown option {opt!r} (a level sets {', '.join(LEVEL_OPTIONS)} as "
                                  "key=value)")
            try:
                opts[key] = LEVEL_OPTIONS[key](value)
            except ValueError:
                raise ConfigError(f"{where}: {key} must be a number, got {value!r}") from None
        out.append(Level(size, steps, **opts))
    return out


def run_levels(cfg: RunConfig) -> list[Level]:
    """Every level of the run in order, with batch and lr filled in: the warm-up levels, then the [system] size for
    the remaining steps. A config without levels is one level."""
    t = cfg.training
    warm = parse_levels(t.levels)
    last = Level(cfg.system.size, t.steps - sum(lv.steps for lv in warm), t.batch, t.lr)
    return [Level(lv.size, lv.steps, t.batch if lv.batch is None else lv.batch, t.lr if lv.lr is None else lv.lr)
            for lv in warm] + [last]


def _check_levels(cfg: RunConfig, info: SystemInfo) -> None:
    """Levels only for a size-agnostic model (Transformer), trained by REINFORCE, at strictly growing sizes of the
    system's lattice that end below [system] size, each with steps, a batch that fits the conditions and an lr."""
    t, m = cfg.training, cfg.model
    warm = parse_levels(t.levels)
    if not warm:
        return
    if m.arch != "transformer":
        raise ConfigError(f"[training] levels need a size-agnostic model (arch = \"transformer\"): the weights of a "
                          f"{m.kind}/{m.arch} depend on the number of sites")
    if t.objective != "reinforce":
        raise ConfigError(f"[training] levels train by objective = \"reinforce\" (a Monte Carlo data set is made for "
                          f"one size), got {t.objective!r}")
    levels = run_levels(cfg)
    if levels[-1].steps < 1:
        raise ConfigError(f"[training] steps ({t.steps}) must exceed the levels' {t.steps - levels[-1].steps} steps: "
                          f"the [system] size {cfg.system.size} trains the rest")
    n_cond = cfg.conditions.T_points * cfg.conditions.mu_points
    prev = None
    for i, lv in enumerate(levels[:-1], 1):
        where = f"[training] levels: level {i} ({lv.size})"
        try:
            lat = info.lattice_of(lv.size)
        except LatthermError as exc:
            raise ConfigError(f"{where}: not a size of {info.name}: {exc}") from None
        if lv.batch < 2 * n_cond or lv.batch % n_cond:
            raise ConfigError(f"{where}: batch must be a multiple of the {n_cond} conditions with at least two "
                              f"samples each, got {lv.batch}")
        if not (math.isfinite(lv.lr) and lv.lr > 0) or t.lr_final > lv.lr:
            raise ConfigError(f"{where}: lr must be positive and not below lr_final ({t.lr_final:g}), got {lv.lr:g}")
        if m.kind == "ao-mam" and m.gibbs_steps > lat.n_sites:
            raise ConfigError(f"{where} has {lat.n_sites} sites, fewer than [model] gibbs_steps ({m.gibbs_steps})")
        if prev is not None and lat.n_sites <= prev[1]:
            raise ConfigError(f"{where} must be larger than level {i - 1} ({prev[0]}): sizes grow level by level")
        prev = (lv.size, lat.n_sites)
    if info.n_sites(cfg.system.size) <= prev[1]:
        raise ConfigError(f"[training] levels: the last level ({prev[0]}) must be smaller than [system] size "
                          f"{cfg.system.size}, the size the run ends at")


def _check_objective(cfg: RunConfig, n_sites: int) -> None:
    """The [training] objective keys and the [data] table: names, the switch point, the REINFORCE subsample."""
    t, m, d = cfg.training, cfg.model, cfg.data
    if t.objective not in OBJECTIVES:
        raise ConfigError(f"[training] objective must be one of {', '.join(OBJECTIVES)}, got {t.objective!r}")
    if t.objective == "mle+reinforce" and not 0 < t.switch_step < t.steps:
        raise ConfigError(f"[training] switch_step must be in 1..{t.steps - 1} (before steps = {t.steps}) for "
                          f"objective mle+reinforce, got {t.switch_step}")
    if t.finetune_lr and t.objective != "mle+reinforce":
        raise ConfigError(f"[training] finetune_lr applies to objective mle+reinforce only (got {t.objective!r})")
    if t.lr_final > (t.finetune_lr or t.lr):
        raise ConfigError(f"[training] lr_final ({t.lr_final:g}) must not exceed finetune_lr ({t.finetune_lr:g})")
    if t.reinforce_steps and m.kind != "ao-arm":
        raise ConfigError(f"[training] reinforce_steps needs an ao-arm model (a {m.kind} scores a sample in one "
                          f"pass already); set it to 0")
    if t.reinforce_steps > n_sites:
        raise ConfigError(f"[training] reinforce_steps must be in 0..{n_sites} (the number of sites), "
                          f"got {t.reinforce_steps}")
    if d.sampler not in MC_SAMPLERS:
        raise ConfigError(f"[data] sampler must be one of {', '.join(MC_SAMPLERS)}, got {d.sampler!r}")
    if d.paint_size and not d.paint_known:
        raise ConfigError("[data] paint_size needs paint_known > 0 (the fraction of rows with painting known sets)")
    if d.paint_known:
        if not _window_model(m.kind, m.arch, None):
            raise ConfigError(f"[data] paint_known needs an any-order MLP (ao-arm or ao-mam with arch = \"mlp\"): "
                              f"a {m.kind}/{m.arch} does not paint through windows of its cell")
        if t.objective == "reinforce":
            raise ConfigError("[data] paint_known weights the maximum-likelihood phase; objective \"reinforce\" has "
                              "none (use mle or mle+reinforce)")
        paint_cell(cfg)  # names a bad paint_size


def paint_cell(cfg: RunConfig) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(window cell, painting target) sizes of ``[data] paint_size`` (default: twice the cell on every axis); a
    target that is not a size of the system or not larger than the cell is a ConfigError."""
    info = system_of(cfg)
    cell = info.lattice_of(cfg.system.size).size
    text = cfg.data.paint_size or "x".join(str(2 * v) for v in cell)
    try:
        target = info.lattice_of(text).size
    except (LatthermError, ValueError) as exc:
        raise ConfigError(f"[data] paint_size: not a size of {info.name}: {exc}") from None
    if len(target) != len(cell) or any(w > L for w, L in zip(cell, target)) or tuple(target) == tuple(cell):
        raise ConfigError(f"[data] paint_size ({text}) must be larger than the {cfg.system.size} cell and contain it "
                          f"on every axis")
    return tuple(cell), tuple(target)


def _toml_ready(value, where: str):
    """A value tomli_w accepts: numpy scalars and arrays (anything with ``dtype``) become Python numbers and lists,
    tuples become lists; None inside a list, or a type TOML cannot hold, is a ConfigError naming the key."""
    if hasattr(value, "dtype") and hasattr(value, "tolist"):  # numpy scalar or array, torch-free and numpy-free
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _toml_ready(v, f"{where}.{k}") for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        if any(v is None for v in value):
            raise ConfigError(f"{where} holds None, which TOML cannot write")
        return [_toml_ready(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"{where} is a {type(value).__name__}, which TOML cannot write")


def toml_text(tables: dict[str, dict]) -> str:
    """{section: {key: value}} -> TOML text through tomli_w (escaping every control character). A key whose value is
    None is left out (TOML has no null: the key keeps its default); numpy scalars are written as plain numbers."""
    import tomli_w

    return tomli_w.dumps({str(s): _toml_ready(v, str(s)) for s, v in tables.items() if v is not None})


def read_config_text(path) -> str:
    """The text of a config file; a missing file, a folder or bytes that are not UTF-8 are one ConfigError."""
    p = Path(path)
    if not p.is_file():
        raise LatthermError(f"config file {p} not found")
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{p} is {len(raw):,} bytes; a config is at most {MAX_CONFIG_BYTES:,}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})") from None


#: a config is a page of TOML; anything far larger is not one
MAX_CONFIG_BYTES = 1_000_000


def parse_config(text: str, source: str = "config", base=None) -> RunConfig:
    """A checked RunConfig from TOML text; errors name ``source``. A relative ``[system] ce`` is resolved from
    ``base``, else from the folder of ``source`` when that names a file (a run's config.toml: its own copy), else
    from the working directory."""
    if not isinstance(text, str):
        raise ConfigError(f"{source} must be TOML text, got {type(text).__name__}")
    try:
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ConfigError(f"{source} is not valid TOML: {' '.join(str(exc).split()) or 'nested too deeply'}") from None
    if source is None:
        source = "config"
    if base is None and source != "config" and Path(source).is_file():
        base = Path(source).parent
    return config_from_dict(data, base)


def load_config(path) -> RunConfig:
    return parse_config(read_config_text(path), source=str(path))


def self_contained(config_text: str, cfg: RunConfig) -> tuple[str, dict[str, bytes]]:
    """The config text a run folder (or model folder) keeps, and the files to write beside it, so that it needs
    nothing outside itself: with ``[system] ce`` set, the expansion file is copied in as :data:`CE_COPY` and the
    text names that copy (rewritten through TOML, so comments go); otherwise the text as it is and no files."""
    if not cfg.system.ce:
        return config_text, {}
    path = Path(cfg.system.ce)
    try:
        blob = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"[system] ce: cannot read {str(path)!r}: {exc.strerror or exc}") from None
    data = tomllib.loads(config_text)
    data["system"] = {**data.get("system", {}), "name": cfg.system.name, "ce": CE_COPY}
    return toml_text(data), {CE_COPY: blob}


def ce_beside(config_path) -> SystemInfo | None:
    """The system of the cluster-expansion file the config at ``config_path`` names (a run's or model folder's
    copy), or None when it names none or cannot be read; the model loader builds a user's alloy from it."""
    try:
        cfg = parse_config(read_config_text(config_path), source=str(config_path))
    except LatthermError:
        return None
    return system_of(cfg) if cfg.system.ce else None
