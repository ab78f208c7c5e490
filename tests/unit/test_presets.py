"""Every shipped preset loads, validates, round-trips through TOML and names its source."""

import pytest

from groklab import GroklabError
from groklab.config import from_dict, load_config, load_preset_raw, preset_names, read_toml
from groklab.labs import LABS, get_lab
from groklab.sweep.grid import groups, parse_spec

LAB_PRESETS = [n for lab in LABS for n in preset_names(lab)]


def test_every_preset_belongs_to_a_known_folder():
    assert set(preset_names()) == set(LAB_PRESETS) | set(preset_names("sweep"))
    assert {"demo", "pair-mlp", "addition8-cpu"} <= set(LAB_PRESETS)


@pytest.mark.parametrize("name", LAB_PRESETS)
def test_lab_preset_loads_validates_and_round_trips(name):
    raw = load_preset_raw(name)
    assert raw.get("description") and raw.get("source"), f"{name}: description and source lines are required"
    cfg = load_config(name)
    assert cfg.lab == raw["lab"] and cfg.name == name
    back = from_dict(read_toml(cfg.to_toml(), name), get_lab(cfg.lab).config())
    assert back.to_dict() == cfg.to_dict()


@pytest.mark.parametrize("name", preset_names("sweep"))
def test_sweep_preset_expands_at_both_scales(name):
    for scale in ("small", "full"):
        spec = parse_spec(load_preset_raw(name), name, scale)
        plan = groups(spec)
        n_points = 1
        for values in spec.grid.values():
            n_points *= len(values)
        assert sum(len(pts) for _, pts in plan) == n_points * spec.seeds


def test_grokking_config_of_the_old_flat_layout_is_upgraded():
    """Run folders written before the per-architecture sub-tables still load."""
    cls = get_lab("grokking").config
    cfg = from_dict({"lab": "grokking", "model": {"kind": "mlp", "hidden": 7, "init_scale": 2.0}}, cls())
    assert (cfg.model.kind, cfg.model.mlp.hidden, cfg.model.init_scale) == ("mlp", 7, 2.0)


def test_lab_of_a_preset_must_match():
    with pytest.raises(GroklabError, match="--preset"):
        load_config("addition8-cpu", cls=get_lab("grokking").config)
