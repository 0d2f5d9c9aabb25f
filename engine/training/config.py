"""Run configuration: a TOML file with [system], [model], [conditions], [training] tables.

Every key is checked: an unknown key, a wrong type or an impossible value is a ConfigError naming the key, so a
typo never silently trains the wrong thing. Defaults follow the paper (Appendix F for Ising, J for CuAu).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..errors import ConfigError, LatthermError
from ..tomlwrite import toml_text


@dataclass
class SystemConfig:
    name: str = "ising"
    size: str = "5x5"


@dataclass
class ModelConfig:
    kind: str = "ao-arm"  # fo-arm | ao-arm | ao-mam
    arch: str = "mlp"
    hidden: int = 512
    layers: int = 4
    symmetric: bool = False  # Z2: (s, mu) -> (-s, -mu)
    heads: int = 4  # attention heads (transformer only)
    lam: float = 0.0  # ao-mam: self-consistency weight lambda; 0 = the paper's (100 for MLP, 10 for Transformer)
    gibbs_steps: int = 5  # ao-mam: sites redrawn per block-Gibbs update of the persistent chains (paper: 5 at 5x5)

    def mam_lambda(self) -> float:
        """The self-consistency weight actually used (paper Appendix F defaults when ``lam`` is 0)."""
        if self.lam > 0:
            return self.lam
        return 10.0 if self.arch == "transformer" else 100.0


@dataclass
class ConditionsConfig:
    T: list = field(default_factory=lambda: [1.5, 3.5])
    T_points: int = 5
    mu: list = field(default_factory=lambda: [-0.4, 0.4])
    mu_points: int = 5
    jitter_T: float = 0.2
    jitter_mu: float = 0.05
    samples_per_epoch: int = 100_000


@dataclass
class TrainingConfig:
    batch: int = 1250
    steps: int = 40_000
    max_minutes: float = 0.0  # 0: no time budget
    lr: float = 1e-3
    lr_final: float = 0.0  # cosine decay to this lr over `steps` when > 0
    beta_anneal: float = 0.0  # beta_t = beta (1 - a^t); 0 disables
    clip_grad: float = 1.0
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    log_every: int = 10
    threads: int = 0  # torch CPU threads; 0 = torch's default


@dataclass
class RunConfig:
    system: SystemConfig = field(default_factory=SystemConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    conditions: ConditionsConfig = field(default_factory=ConditionsConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_toml(self) -> str:
        return toml_text(self.to_dict())


_SECTIONS = {"system": SystemConfig, "model": ModelConfig, "conditions": ConditionsConfig, "training": TrainingConfig}


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


def config_from_dict(data: dict) -> RunConfig:
    cfg = RunConfig()
    for section, values in data.items():
        if section not in _SECTIONS:
            raise ConfigError(f"unknown config table [{section}] (known: {', '.join(_SECTIONS)})")
        if not isinstance(values, dict):
            raise ConfigError(f"[{section}] must be a table")
        target = getattr(cfg, section)
        known = {f.name for f in fields(target)}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"unknown key {key!r} in [{section}] (known: {', '.join(sorted(known))})")
            setattr(target, key, _coerce(section, key, value, getattr(target, key)))
    validate(cfg)
    return cfg


def validate(cfg: RunConfig) -> None:
    c, t, m = cfg.conditions, cfg.training, cfg.model
    from ..systems import make_system

    system = make_system(cfg.system.name, cfg.system.size)  # names a bad system or size
    if c.T[0] <= 0 or c.T[1] < c.T[0]:
        raise ConfigError(f"[conditions] T must be a range of positive temperatures [low, high], got {c.T}")
    if c.mu[1] < c.mu[0]:
        raise ConfigError(f"[conditions] mu must be [low, high], got {c.mu}")
    for key in ("T_points", "mu_points"):
        if getattr(c, key) < 1:
            raise ConfigError(f"[conditions] {key} must be >= 1")
    if c.jitter_T < 0 or c.jitter_mu < 0:
        raise ConfigError("[conditions] jitter_T and jitter_mu must be >= 0")
    n_cond = c.T_points * c.mu_points
    if t.batch < 2 * n_cond or t.batch % n_cond:
        raise ConfigError(f"[training] batch must be a multiple of the {n_cond} conditions with at least two samples "
                          f"each (per-condition baselines), got {t.batch}")
    for key in ("steps", "checkpoint_every", "log_every", "keep_checkpoints"):
        if getattr(t, key) < 1:
            raise ConfigError(f"[training] {key} must be >= 1")
    if t.lr <= 0 or t.lr_final < 0 or t.clip_grad < 0 or t.max_minutes < 0 or t.threads < 0:
        raise ConfigError("[training] lr must be > 0; lr_final, clip_grad, max_minutes and threads >= 0")
    if not 0 <= t.beta_anneal < 1:
        raise ConfigError(f"[training] beta_anneal must be in [0, 1), got {t.beta_anneal}")
    if t.device not in ("auto", "cpu", "cuda") and not t.device.startswith("cuda:"):
        raise ConfigError(f"[training] device must be auto, cpu or cuda, got {t.device!r}")
    if m.hidden < 1 or m.layers < 1 or m.heads < 1:
        raise ConfigError("[model] hidden, layers and heads must be >= 1")
    if m.arch == "transformer" and m.hidden % m.heads:
        raise ConfigError(f"[model] hidden ({m.hidden}) must be a multiple of heads ({m.heads})")
    from ..models import MODEL_KINDS

    if (m.kind, m.arch) not in MODEL_KINDS:
        known = ", ".join(f"{k}/{a}" for k, a in MODEL_KINDS)
        raise ConfigError(f"[model] unknown model {m.kind}/{m.arch} (known: {known})")
    if m.symmetric and not system.z2_symmetric:
        raise ConfigError(f"[model] symmetric needs an energy even in the spins (E(-s) = E(s)); "
                          f"{system.name} {system.lattice.label} is not, so set symmetric = false")
    if m.lam < 0:
        raise ConfigError(f"[model] lam must be >= 0 (0: the paper's default), got {m.lam}")
    if m.gibbs_steps < 1 or (m.kind == "ao-mam" and m.gibbs_steps > system.n_sites):
        raise ConfigError(f"[model] gibbs_steps must be in 1..{system.n_sites} (the number of sites), "
                          f"got {m.gibbs_steps}")


def parse_config(text: str, source: str = "config") -> RunConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} is not valid TOML: {exc}") from None
    return config_from_dict(data)


def load_config(path) -> RunConfig:
    p = Path(path)
    if not p.is_file():
        raise LatthermError(f"config file {p} not found")
    return parse_config(p.read_text(encoding="utf-8"), source=str(p))
