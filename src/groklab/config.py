"""Experiment configuration: dataclasses with help per field, TOML presets, `--set a.b=c` overrides.

This module holds the machinery and the engine's shared sections ([optim], [train]); each lab defines its
root config (a `RootConfig` subclass) and its own sections in `labs/<lab>/config.py`.

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


def opt(default, help: str, *, choices=None, ge=None, gt=None, le=None, lt=None):
    """A config field with its help line and its allowed values."""
    meta = {"help": help, "choices": choices, "ge": ge, "gt": gt, "le": le, "lt": lt}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class OptimConfig:
    name: str = opt("adamw", "optimizer", choices=("adamw", "sgd"))
    lr: float = opt(1e-3, "learning rate", gt=0.0)
    weight_decay: float = opt(1.0, "weight decay strength", ge=0.0)
    decay: str = opt("l2", "l2 = decoupled (AdamW) decay; l2_coupled = wd*w added to the gradient before the "
                     "moments (torch.optim.Adam's weight_decay, Grokfast's runs); l1 = wd*sign(w) added to the "
                     "gradient before Adam (PAIR's l1_regularizer); l1_decoupled = w -= lr*wd*sign(w)",
                     choices=("l2", "l2_coupled", "l1", "l1_decoupled"))
    beta1: float = opt(0.9, "Adam beta1", ge=0.0, lt=1.0)
    beta2: float = opt(0.98, "Adam beta2", ge=0.0, lt=1.0)
    eps: float = opt(1e-8, "Adam epsilon", gt=0.0)
    momentum: float = opt(0.0, "SGD momentum", ge=0.0, lt=1.0)
    warmup: int = opt(0, "linear learning-rate warm-up steps (Power et al.: 10)", ge=0)
    warmup_from_zero: bool = opt(False, "warm-up as torch's LambdaLR(lambda s: min(s / warmup, 1)) in Nanda's "
                                 "code: update 1 runs at lr 0 (its gradient still enters Adam's moments), update k "
                                 "at (k - 1) / warmup; off: update k at k / warmup")
    schedule: str = opt("constant", "lr after warm-up: constant, or cosine from lr down to lr * min_lr_frac",
                        choices=("constant", "cosine"))
    min_lr_frac: float = opt(1.0, "cosine schedule: final lr as a fraction of the peak", ge=0.0, le=1.0)
    cooldown: int = opt(0, "last steps: the lr falls linearly to 0 (after the schedule)", ge=0)
    clip: float = opt(0.0, "clip each member's global gradient norm to this (0 = no clipping)", ge=0.0)
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
    batching: str = opt("draws", "mini-batches: draws = a random batch each step (shared by members); epochs = "
                        "each member sees each of its examples once per epoch, reshuffled from its seed",
                        choices=("draws", "epochs"))
    eval_examples: int = opt(0, "evaluate on a fixed seeded subset of this many examples (0 = all)", ge=0)
    checkpoint_every: int = opt(0, "write a resumable checkpoint every k steps (0 = at log steps, at most "
                                "one per minute)", ge=0)
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
class RootConfig:
    """Base of every lab's root config: a `lab` name, name/description/source strings, then one
    dataclass per section (a section may hold sub-tables, e.g. [model.transformer])."""

    lab: ClassVar[str] = ""
    name: str = "custom"
    description: str = ""
    source: str = ""

    def to_dict(self) -> dict:
        return {"lab": self.lab, **dataclasses.asdict(self)}

    def to_toml(self) -> str:
        return tomli_w.dumps(self.to_dict())

    def check(self) -> None:
        """Cross-field rules (field-level ranges and choices are checked from metadata)."""

    @classmethod
    def upgrade(cls, raw: dict) -> dict:
        """Rewrite a config of an older layout (e.g. a run folder's config.toml) into the current one."""
        return raw


META_KEYS = ("lab", "name", "description", "source")


def _is_table(f: dataclasses.Field) -> bool:
    return f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory)


def sections(cfg) -> dict[str, type]:
    """Section name -> dataclass, for a root config (instance or class)."""
    return {f.name: f.default_factory for f in fields(cfg) if f.name not in META_KEYS}


def leaf_fields(cls, prefix: str) -> list[tuple[str, dataclasses.Field]]:
    """(dotted name, field) of every setting in a section, sub-tables included."""
    out = []
    for f in fields(cls):
        name = f"{prefix}.{f.name}"
        out.extend(leaf_fields(f.default_factory, name) if _is_table(f) else [(name, f)])
    return out


# ---------------------------------------------------------------------------------------- parsing

def _coerce(name: str, f: dataclasses.Field, value: Any) -> Any:
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


def _check(name: str, f: dataclasses.Field, value: Any) -> None:
    m = f.metadata
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


def is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def _validate_table(obj, prefix: str) -> None:
    for f in fields(obj):
        value = getattr(obj, f.name)
        if _is_table(f):
            _validate_table(value, f"{prefix}.{f.name}")
        else:
            _check(f"{prefix}.{f.name}", f, value)


def validate(cfg):
    """Field-level and cross-field checks. Raises GroklabError naming the field."""
    for sname in sections(cfg):
        _validate_table(getattr(cfg, sname), sname)
    o = getattr(cfg, "optim", None)
    if getattr(o, "warmup_from_zero", False) and not o.warmup:
        raise GroklabError("optim.warmup_from_zero: needs a warm-up (optim.warmup >= 1); allowed with "
                           "optim.warmup = 0: false")
    cfg.check()
    return cfg


def _copy_table(obj):
    return dataclasses.replace(obj, **{f.name: _copy_table(getattr(obj, f.name)) for f in fields(obj) if _is_table(f)})


def _set_table(cfg, prefix: str, table: dict) -> None:
    for k, v in table.items():
        dotted = f"{prefix}.{k}"
        if isinstance(v, dict):
            _, f = _lookup(cfg, dotted)
            if not _is_table(f):
                raise GroklabError(f"{dotted}: expected a value, got a table")
            _set_table(cfg, dotted, v)
        else:
            set_field(cfg, dotted, v)


def from_dict(raw: dict, base):
    """Build a config from nested dicts (TOML) on top of `base` (a root config); unknown keys are errors."""
    raw = base.upgrade(raw)
    secs = sections(base)
    cfg = dataclasses.replace(base, **{s: _copy_table(getattr(base, s)) for s in secs})
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
        _set_table(cfg, key, value)
    return cfg


def _lookup(cfg, dotted: str) -> tuple[Any, dataclasses.Field]:
    """(the table object holding the setting, its field) for `section.key` or `section.sub.key`."""
    secs = sections(cfg)
    parts = dotted.split(".")
    if parts[0] not in secs or len(parts) < 2:
        raise GroklabError(f"{dotted}: unknown setting; use section.key with section one of: {', '.join(secs)}")
    obj = getattr(cfg, parts[0])
    for i, part in enumerate(parts[1:], 1):
        by_name = {f.name: f for f in fields(obj)}
        if part not in by_name:
            where = ".".join(parts[:i])
            raise GroklabError(f"{dotted}: unknown key in [{where}]; allowed: {', '.join(by_name)}")
        f = by_name[part]
        if i == len(parts) - 1:
            return obj, f
        if not _is_table(f):
            raise GroklabError(f"{dotted}: {'.'.join(parts[:i + 1])} is a value, not a table")
        obj = getattr(obj, part)
    raise AssertionError("unreachable")


def get_field(cfg, dotted: str) -> Any:
    obj, f = _lookup(cfg, dotted)
    return getattr(obj, f.name)


def set_field(cfg, dotted: str, value: Any) -> None:
    obj, f = _lookup(cfg, dotted)
    if _is_table(f):
        raise GroklabError(f"{dotted}: is a table; set one of its keys ({dotted}.KEY=...)")
    setattr(obj, f.name, _coerce(dotted, f, value))


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

def _preset_files() -> dict[str, tuple[str, Any]]:
    """Preset name -> (lab folder, file): presets/<lab>/<name>.toml."""
    out = {}
    for folder in (resources.files("groklab") / "presets").iterdir():
        if folder.is_dir():
            for p in folder.iterdir():
                if p.name.endswith(".toml"):
                    out[p.name[:-5]] = (folder.name, p)
    return out


def preset_names(lab: str | None = None) -> list[str]:
    """Presets shipped in the package, optionally only those of one lab (or "sweep")."""
    return sorted(n for n, (folder, _) in _preset_files().items() if lab is None or folder == lab)


def read_text(path: Path, where: str) -> str:
    """A text file's content; one line naming `where` if it cannot be read or is not UTF-8."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise GroklabError(f"{where}: {path} is unreadable ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise GroklabError(f"{where}: {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_toml(text: str, where: str) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GroklabError(f"{where}: not valid TOML ({e})") from None


def load_preset_raw(name: str, lab: str | None = None) -> dict:
    files = _preset_files()
    if name not in files:
        raise GroklabError(f"--preset: unknown preset {name!r}; choose one of: {', '.join(preset_names(lab))}")
    return read_toml(files[name][1].read_text(), f"preset {name}")


def root_class(lab: str) -> type:
    """A lab's root config class (imports groklab.labs.<lab>.config on first use)."""
    from groklab.labs import get_lab
    return get_lab(lab).config


def load_config(preset: str | None = None, config_file: str | Path | None = None,
                overrides: list[str] = (), cls=None, **cli: Any):
    """preset, then config file, then --set overrides, then explicit CLI options (e.g. train__seeds=16).
    `cls` is the lab's root config dataclass (default: the preset's lab, else grokking)."""
    raw = load_preset_raw(preset) if preset else None
    if cls is None:
        cls = root_class(raw.get("lab", "grokking") if raw else "grokking")
    cfg = cls()
    if raw is not None:
        if raw.get("lab") != cfg.lab:
            raise GroklabError(f"--preset: {preset!r} is a {raw.get('lab')!r} preset; choose one of: "
                               f"{', '.join(preset_names(cfg.lab))}")
        cfg = from_dict(raw, cfg)
        cfg.name = preset
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise GroklabError(f"--config: no such file {str(path)!r}")
        cfg = from_dict(read_toml(read_text(path, "--config"), f"--config {path}"), cfg)
    for text in overrides:
        key, value = parse_override(text)
        set_field(cfg, key, value)
    for dotted, value in cli.items():
        if value is not None:
            set_field(cfg, dotted.replace("__", "."), value)
    return validate(cfg)


def load_run_config(path: str | Path):
    """The resolved config a run folder was made with (its lab from the `lab` key)."""
    p = Path(path) / "config.toml"
    raw = read_toml(read_text(p, "RUN"), str(p))
    return validate(from_dict(raw, root_class(str(raw.get("lab", "grokking")))()))
