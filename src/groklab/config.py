"""Experiment configuration: dataclasses with help per field, TOML presets, `--set a.b=c` overrides.

Every field carries `help` (shown by `groklab presets --fields`) and, where it has one, its allowed set
or range, so a bad value is reported as one line naming the field and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar

import tomli_w

from groklab import GroklabError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MOD_OPS = ("add", "sub", "mul", "div", "x2+y2", "x2+xy+y2", "x3+xy", "x2+xy+y2+x", "x3+xy2+y", "s5")


def opt(default, help: str, *, choices=None, ge=None, gt=None, le=None, lt=None):
    """A config field with its help line and its allowed values."""
    meta = {"help": help, "choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TaskConfig:
    kind: str = opt("modular", "which task generates the data", choices=("modular", "parity"))
    p: int = opt(67, "modulus of the modular task (a ∘ b mod p)", ge=2)
    op: str = opt("add", "modular operation (Power et al.); s5 = composition of permutations of 5 items, "
                  "120 tokens, p ignored", choices=MOD_OPS)
    n_bits: int = opt(30, "parity: number of input bits", ge=1)
    k_bits: int = opt(3, "parity: the label is the parity of the first k bits", ge=1)
    bias_column: bool = opt(False, "parity: append a constant-1 input column as a bias (PAIR)")


@dataclass
class DataConfig:
    train_fraction: float = opt(0.4, "modular: fraction of all pairs used for training", gt=0.0, lt=1.0)
    only_a_le_b: bool = opt(False, "modular: keep only pairs with a <= b (PAIR's symmetric input)")
    n_train: int = opt(1200, "parity: number of training sequences (fixed set)", ge=1)
    n_test: int = opt(2000, "parity: number of test sequences", ge=1)
    seed: int = opt(0, "seed of the data split / parity samples (shared by all members)", ge=0)


@dataclass
class ModelConfig:
    kind: str = opt("pair_mlp", "architecture", choices=("pair_mlp", "mlp", "transformer"))
    hidden: int = opt(24, "hidden neurons", ge=1)
    embed_size: int = opt(0, "pair_mlp: width of the factored embedding (0 = no factoring)", ge=0)
    tied: bool = opt(True, "pair_mlp: output weights are the transposed embedding")
    act: str = opt("relu", "hidden activation", choices=("relu", "gelu", "tanh", "quadratic"))
    init: str = opt("pair", "initializer", choices=("pair", "torch"))
    init_scale: float = opt(1.0, "multiplies every initial weight (Omnigrok's alpha)", gt=0.0)
    fixed_embed: str = opt("none", "pair_mlp: 'fourier' fixes the embedding to cos/sin(2πi/p) (PAIR's "
                           "5-neuron construction; set embed_size = 2)", choices=("none", "fourier"))
    d_model: int = opt(128, "transformer: residual width", ge=1)
    n_heads: int = opt(4, "transformer: attention heads (d_model divisible by n_heads)", ge=1)
    d_mlp: int = opt(512, "transformer: MLP width", ge=1)
    n_layers: int = opt(1, "transformer: blocks", ge=1)
    layernorm: bool = opt(False, "transformer: LayerNorm before attention/MLP (Nanda: none)")


@dataclass
class OptimConfig:
    name: str = opt("adamw", "optimizer", choices=("adamw", "sgd"))
    lr: float = opt(1e-3, "learning rate", gt=0.0)
    weight_decay: float = opt(1.0, "weight decay strength", ge=0.0)
    decay: str = opt("l2", "l2 = decoupled (AdamW) decay; l1 = wd*sign(w) added to the gradient before Adam "
                     "(PAIR's l1_regularizer); l1_decoupled = w -= lr*wd*sign(w)", choices=("l2", "l1", "l1_decoupled"))
    beta1: float = opt(0.9, "Adam beta1", ge=0.0, lt=1.0)
    beta2: float = opt(0.98, "Adam beta2", ge=0.0, lt=1.0)
    eps: float = opt(1e-8, "Adam epsilon", gt=0.0)
    momentum: float = opt(0.0, "SGD momentum", ge=0.0, lt=1.0)
    warmup: int = opt(0, "linear learning-rate warm-up steps (Power et al.: 10)", ge=0)
    grokfast: str = opt("none", "gradient filter (Lee et al. 2024): ema h←αh+(1−α)g, g←g+λh; "
                        "ma g←g+λ·mean(last w grads)", choices=("none", "ema", "ma"))
    grokfast_alpha: float = opt(0.98, "Grokfast EMA momentum α", ge=0.0, lt=1.0)
    grokfast_lambda: float = opt(2.0, "Grokfast amplification λ (EMA default 2, MA default 5)", ge=0.0)
    grokfast_window: int = opt(100, "Grokfast MA window w", ge=1)
    orthograd: bool = opt(False, "⊥Grad (Prieto et al. 2025): drop the gradient component parallel to each "
                          "member's weights")


@dataclass
class TrainConfig:
    steps: int = opt(50_000, "optimizer steps", ge=1)
    batch_size: int = opt(0, "examples per step (0 = full batch)", ge=0)
    seeds: int = opt(1, "number of members (seeds seed, seed+1, ...) trained as one ensemble", ge=1)
    seed: int = opt(0, "first member's init seed", ge=0)
    loss: str = opt("ce", "ce = cross-entropy; pair = CE divided by the number of classes (PAIR)",
                    choices=("ce", "pair"))
    log_every: int = opt(100, "log metrics every k steps", ge=1)
    snapshots: int = opt(24, "weight snapshots at log-spaced steps (0 = none)", ge=0)
    early_stop: bool = opt(True, "stop members whose outcome is settled (see analysis)")
    device: str = opt("auto", "where to train", choices=("auto", "cpu", "cuda"))
    threads: int = opt(0, "torch CPU threads (0 = $OMP_NUM_THREADS or all cores)", ge=0)
    member_chunk: int = opt(0, "forward/backward this many members at a time (0 = all); exact, bounds memory "
                            "and keeps activations in cache", ge=0)
    softmax: str = opt("softmax", "output normalization: softmax, or StableMax s(x)=x+1 (x>=0), 1/(1-x) (x<0) "
                       "(Prieto et al. 2025)", choices=("softmax", "stablemax"))
    logits_dtype: str = opt("float32", "dtype of logits and the loss (float64 avoids softmax collapse)",
                            choices=("float32", "float64"))
    progress_every: int = opt(0, "log progress measures (Fourier key freqs, restricted/excluded loss, Gini, "
                              "weight norm) every k steps; 0 = off", ge=0)


@dataclass
class AnalysisConfig:
    memorized_acc: float = opt(0.99, "step_memorized = first log step with train acc >= this", gt=0, le=1)
    generalized_acc: float = opt(0.95, "step_generalized = first log step with test acc >= this", gt=0, le=1)
    fail_loss: float = opt(1e-5, "PAIR rule 1: min train loss above this -> fail", gt=0)
    memorize_loss: float = opt(1e-5, "PAIR rule 2: min test loss above this -> memorize", gt=0)
    direct_ratio: float = opt(5e4, "PAIR rule 3: max test/train loss ratio below this -> direct", gt=0)
    freq_threshold: float = opt(0.5, "a neuron counts in Fourier analysis if its top coefficient has "
                                "at least this fraction of its weight norm", ge=0, le=1)


@dataclass
class Config:
    """The grokking lab's config. Other labs define their own root dataclass the same way: a
    `lab` name, the name/description/source strings, and one dataclass per section."""

    lab: ClassVar[str] = "grokking"
    name: str = "custom"
    description: str = ""
    source: str = ""
    task: TaskConfig = field(default_factory=TaskConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    def to_dict(self) -> dict:
        return {"lab": self.lab, **dataclasses.asdict(self)}

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def check(self) -> None:
        """Cross-field rules (field-level ranges and choices are checked from metadata)."""
        t, d = self.task, self.data
        if t.kind == "modular" and t.op == "div" and not _is_prime(t.p):
            raise GroklabError(f"task.p: op 'div' needs a prime modulus, got {t.p}")
        if t.kind == "parity" and t.k_bits > t.n_bits:
            raise GroklabError(f"task.k_bits: must be <= task.n_bits ({t.n_bits}), got {t.k_bits}")
        if t.kind == "parity" and self.model.kind != "mlp":
            raise GroklabError("model.kind: the parity task needs 'mlp'")
        if t.kind == "modular" and self.model.kind not in ("pair_mlp", "transformer"):
            raise GroklabError("model.kind: the modular task needs 'pair_mlp' or 'transformer'")
        if self.model.fixed_embed == "fourier" and self.model.embed_size != 2:
            raise GroklabError(f"model.embed_size: the fixed Fourier embedding is 2 wide, got {self.model.embed_size}")
        if self.model.kind == "transformer" and self.model.d_model % self.model.n_heads:
            raise GroklabError(f"model.n_heads: must divide model.d_model ({self.model.d_model}), "
                               f"got {self.model.n_heads}")
        if t.kind == "parity" and t.n_bits < 60 and d.n_train > 2**t.n_bits:
            raise GroklabError(f"data.n_train: at most 2**task.n_bits = {2**t.n_bits}, got {d.n_train}")


GrokConfig = Config
META_KEYS = ("lab", "name", "description", "source")


def sections(cfg) -> dict[str, type]:
    """Section name -> dataclass, for a root config (instance or class)."""
    return {f.name: f.default_factory for f in fields(cfg) if f.name not in META_KEYS}


# ---------------------------------------------------------------------------------------- parsing

def _coerce(section: str, f: dataclasses.Field, value: Any) -> Any:
    name = f"{section}.{f.name}"
    kind = type(f.default) if f.default is not dataclasses.MISSING else list
    if kind is bool:
        if not isinstance(value, bool):
            raise GroklabError(f"{name}: expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise GroklabError(f"{name}: expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GroklabError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise GroklabError(f"{name}: expected a string, got {value!r}")
        return value
    return value


def _check(section: str, f: dataclasses.Field, value: Any) -> None:
    m, name = f.metadata, f"{section}.{f.name}"
    if m.get("choices") and value not in m["choices"]:
        allowed = ", ".join(map(str, m["choices"]))
        raise GroklabError(f"{name}: {value!r} is not allowed; choose one of: {allowed}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise GroklabError(f"{name}: must be a finite number, got {value!r}")
        lo = [f"{op} {m[k]}" for k, op in (("ge", ">="), ("gt", ">")) if m.get(k) is not None]
        hi = [f"{op} {m[k]}" for k, op in (("le", "<="), ("lt", "<")) if m.get(k) is not None]
        ok = ((m.get("ge") is None or value >= m["ge"]) and (m.get("gt") is None or value > m["gt"])
              and (m.get("le") is None or value <= m["le"]) and (m.get("lt") is None or value < m["lt"]))
        if not ok:
            raise GroklabError(f"{name}: {value!r} is out of range; allowed: {' and '.join(lo + hi)}")


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def validate(cfg):
    """Field-level and cross-field checks. Raises GroklabError naming the field."""
    for sname, cls in sections(cfg).items():
        sec = getattr(cfg, sname)
        for f in fields(cls):
            _check(sname, f, getattr(sec, f.name))
    cfg.check()
    return cfg


def from_dict(raw: dict, base):
    """Build a config from nested dicts (TOML) on top of `base` (a root config); unknown keys are errors."""
    secs = sections(base)
    cfg = dataclasses.replace(base, **{s: dataclasses.replace(getattr(base, s)) for s in secs})
    for key, value in raw.items():
        if key == "lab":
            if value != cfg.lab:
                raise GroklabError(f"lab: this config is for the {value!r} lab, not {cfg.lab!r}")
            continue
        if key in META_KEYS:
            setattr(cfg, key, str(value))
            continue
        if key not in secs:
            allowed = ", ".join([*META_KEYS, *secs])
            raise GroklabError(f"{key}: unknown config section; allowed: {allowed}")
        if not isinstance(value, dict):
            raise GroklabError(f"{key}: expected a table of settings")
        for k, v in value.items():
            set_field(cfg, f"{key}.{k}", v)
    return cfg


def set_field(cfg, dotted: str, value: Any) -> None:
    secs = sections(cfg)
    section, _, key = dotted.partition(".")
    if section not in secs or not key:
        raise GroklabError(f"{dotted}: unknown setting; use section.key with section one of: "
                           f"{', '.join(secs)}")
    by_name = {f.name: f for f in fields(secs[section])}
    if key not in by_name:
        raise GroklabError(f"{dotted}: unknown key in [{section}]; allowed: {', '.join(by_name)}")
    setattr(getattr(cfg, section), key, _coerce(section, by_name[key], value))


def parse_override(text: str) -> tuple[str, Any]:
    """`section.key=value` with a TOML value (1e-3, true, "div", [1, 2]); bare words are strings."""
    if "=" not in text:
        raise GroklabError(f"--set {text!r}: expected section.key=value")
    key, _, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


# ---------------------------------------------------------------------------------------- presets

def preset_names(lab: str | None = None) -> list[str]:
    """Presets shipped in the package, optionally only those of one lab."""
    files = resources.files("groklab") / "presets"
    names = sorted(p.name[:-5] for p in files.iterdir() if p.name.endswith(".toml"))
    if lab is None:
        return names
    return [n for n in names if load_preset_raw(n).get("lab", "grokking") == lab]


def read_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GroklabError(f"{where}: not valid TOML ({e})") from None


def load_preset_raw(name: str, lab: str | None = None) -> dict:
    if name not in preset_names():
        raise GroklabError(f"--preset: unknown preset {name!r}; choose one of: {', '.join(preset_names(lab))}")
    text = (resources.files("groklab") / "presets" / f"{name}.toml").read_text()
    return read_toml(text, f"preset {name}")


def load_config(preset: str | None = None, config_file: str | Path | None = None,
                overrides: list[str] = (), cls=Config, **cli: Any):
    """preset, then config file, then --set overrides, then explicit CLI options (e.g. train__seeds=16).
    `cls` is the lab's root config dataclass."""
    cfg = cls()
    if preset:
        raw = load_preset_raw(preset, cfg.lab)
        if raw.get("lab", "grokking") != cfg.lab:
            raise GroklabError(f"--preset: {preset!r} is a {raw.get('lab')!r} preset; choose one of: "
                               f"{', '.join(preset_names(cfg.lab))}")
        cfg = from_dict({"lab": cfg.lab, **{k: v for k, v in raw.items() if k != "lab"}}, cfg)
        cfg.name = preset
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise GroklabError(f"--config: no such file {str(path)!r}")
        cfg = from_dict(read_toml(path.read_text(), f"--config {path}"), cfg)
    for text in overrides:
        key, value = parse_override(text)
        set_field(cfg, key, value)
    for dotted, value in cli.items():
        if value is not None:
            set_field(cfg, dotted.replace("__", "."), value)
    return validate(cfg)


# Root config classes of every lab, for `groklab presets --fields`. Labs append theirs on import.
ROOTS: list[type] = [Config]
