"""Sweep specs: a base preset of any lab, a grid over config fields, seeds; expansion into groups.

A sweep preset (TOML, `lab = "sweep"`):

    base = "pair-parity"            # the preset (of any lab that sweeps) every point starts from
    seeds = 9                       # members per grid point (seeds base.train.seed, +1, ...)
    x = "optim.weight_decay"        # phase-diagram axes (facet optional)
    y = "data.n_train"
    facet = "model.mlp.hidden"
    [grid]                          # any config field -> list of values
    "optim.weight_decay" = [0.01, 0.03, 0.1, 0.3, 1.0]
    [set]                           # fixed overrides of the base preset
    "train.steps" = 20000
    [small]                         # --scale small replaces seeds / grid axes / set entries
    seeds = 3

Fields that only change a member's hyper-parameters (the lab's `LabSweep.member_fields`, e.g. lr, weight
decay, init scale; and the seed) vary inside one ensemble; every other field defines a group (same shapes,
same data) trained as one batched run.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from dataclasses import dataclass, field

from groklab import GroklabError
from groklab.config import RootConfig as Config
from groklab.config import load_config, load_preset_raw, set_field, validate


def lab_sweep(cfg):
    """The LabSweep of the config's lab (a GroklabError if that lab cannot sweep)."""
    from groklab.labs import get_lab
    return get_lab(cfg.lab).sweep


@dataclass
class SweepSpec:
    name: str
    base: str
    seeds: int
    grid: dict[str, list]
    sets: dict[str, object] = field(default_factory=dict)
    x: str | None = None
    y: str | None = None
    facet: str | None = None
    description: str = ""
    source: str = ""
    scale: str = "full"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def parse_spec(raw: dict, name: str, scale: str = "full", overrides: list[tuple[str, object]] = ()) -> SweepSpec:
    """Validate a sweep preset (already parsed TOML) at the given scale; raises GroklabError."""
    if raw.get("lab") != "sweep":
        raise GroklabError(f"--preset: {name!r} is not a sweep preset (lab = {raw.get('lab')!r})")
    if scale not in ("small", "full"):
        raise GroklabError(f"--scale: {scale!r} is not allowed; choose one of: small, full")
    raw = copy.deepcopy(raw)
    if scale == "small":
        small = raw.get("small", {})
        raw["seeds"] = small.get("seeds", raw.get("seeds", 1))
        raw.setdefault("grid", {}).update(small.get("grid", {}))
        raw.setdefault("set", {}).update(small.get("set", {}))
    allowed = {"lab", "name", "description", "source", "base", "seeds", "x", "y", "facet", "grid", "set", "small"}
    for k in raw:
        if k not in allowed:
            raise GroklabError(f"{k}: unknown sweep key; allowed: {', '.join(sorted(allowed))}")
    seeds = raw.get("seeds", 1)
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise GroklabError(f"seeds: expected an integer >= 1, got {seeds!r}")
    for key, kind, what in (("set", dict, "a table of base overrides"), ("base", str, "a preset name"),
                            ("x", str, "a grid axis"), ("y", str, "a grid axis"), ("facet", str, "a grid axis"),
                            ("description", str, "a string"), ("source", str, "a string")):
        if key in raw and not isinstance(raw[key], kind):
            raise GroklabError(f"{key}: expected {what}, got {raw[key]!r}")
    grid = raw.get("grid", {})
    if not isinstance(grid, dict) or not grid:
        raise GroklabError("grid: a sweep needs at least one axis, e.g. \"optim.weight_decay\" = [0.1, 1.0]")
    sets = dict(raw.get("set", {}))
    sets.update(dict(overrides))
    spec = SweepSpec(name=name, base=str(raw.get("base", "")), seeds=seeds,
                     grid={k: v for k, v in grid.items()}, sets=sets, x=raw.get("x"), y=raw.get("y"),
                     facet=raw.get("facet"), description=raw.get("description", ""),
                     source=raw.get("source", ""), scale=scale)
    check_spec(spec)
    return spec


def check_spec(spec: SweepSpec) -> None:
    """Every axis non-empty, every value valid for its field, every grid point a valid config."""
    base = base_config(spec)
    for key, values in spec.grid.items():
        if key == "train.seed" or key == "train.seeds":
            raise GroklabError(f"grid.{key}: seeds are set with `seeds = N`, not as a grid axis")
        if not isinstance(values, list) or not values:
            raise GroklabError(f"grid.{key}: expected a non-empty list of values, got {values!r}")
        for v in values:
            probe = copy.deepcopy(base)
            try:
                set_field(probe, key, v)
                validate(probe)
            except GroklabError as e:
                raise GroklabError(f"grid.{e}") from None
    for axis in (spec.x, spec.y, spec.facet):
        if axis is not None and axis not in spec.grid:
            raise GroklabError(f"x/y/facet: {axis!r} is not a grid axis; axes: {', '.join(spec.grid)}")
    for cfg, _ in groups(spec):
        validate(cfg)


def base_config(spec: SweepSpec) -> Config:
    if not spec.base:
        raise GroklabError("base: a sweep needs `base = \"<preset>\"` (a preset of a lab that sweeps)")
    if load_preset_raw(spec.base).get("lab") == "sweep":
        raise GroklabError(f"base: {spec.base!r} is a sweep preset; a sweep's base is a preset of a lab that sweeps")
    cfg = load_config(spec.base)
    for k, v in spec.sets.items():
        set_field(cfg, k, v)
    return validate(cfg)


def points(spec: SweepSpec) -> list[dict]:
    """Every grid point as {field: value}, in a fixed order."""
    keys = list(spec.grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(spec.grid[k] for k in keys))]


def groups(spec: SweepSpec) -> list[tuple[Config, list[dict]]]:
    """Group grid points by their non-member fields. Returns [(group config, member points)], where each
    member point is {field: value, ..., "seed": s} and the group config holds the shared fields."""
    base = base_config(spec)
    member_fields = lab_sweep(base).member_fields
    shape_keys = [k for k in spec.grid if k not in member_fields]
    out: dict[tuple, tuple[Config, list[dict]]] = {}
    for pt in points(spec):
        gkey = tuple((k, pt[k]) for k in shape_keys)
        if gkey not in out:
            cfg = copy.deepcopy(base)
            for k, v in gkey:
                set_field(cfg, k, v)
            out[gkey] = (cfg, [])
        for s in range(spec.seeds):
            out[gkey][1].append({**pt, "seed": base.train.seed + s})
    return list(out.values())
