import pytest

from groklab import GroklabError
from groklab.config import load_preset_raw
from groklab.sweep.grid import groups, parse_spec, points
from groklab.sweep.run import work_order

RAW = {"lab": "sweep", "base": "parity-demo", "seeds": 2, "x": "optim.weight_decay", "y": "data.n_train",
       "grid": {"optim.weight_decay": [0.1, 1.0], "data.n_train": [100, 200], "model.mlp.hidden": [8]},
       "set": {"train.steps": 50}}


def test_pair_grid_has_1125_runs_in_25_groups():
    spec = parse_spec(load_preset_raw("pair-parity-grid"), "pair-parity-grid")
    g = groups(spec)
    assert len(points(spec)) * spec.seeds == 1125
    assert len(g) == 25 and all(len(m) == 45 for _, m in g)  # 5 wd x 9 seeds vary inside a group
    small = parse_spec(load_preset_raw("pair-parity-grid"), "pair-parity-grid", "small")
    assert set(small.grid) == set(spec.grid) and small.sets["train.steps"] == 8000


def test_groups_share_shapes_and_vary_members():
    spec = parse_spec(RAW, "t")
    g = groups(spec)
    assert len(g) == 2  # n_train x hidden
    cfg, members = g[0]
    assert cfg.data.n_train == 100 and cfg.model.mlp.hidden == 8 and cfg.train.steps == 50
    assert [(m["optim.weight_decay"], m["seed"]) for m in members] == [(0.1, 0), (0.1, 1), (1.0, 0), (1.0, 1)]


@pytest.mark.parametrize("change,field", [
    ({"grid": {"optim.weight_decay": []}}, "grid.optim.weight_decay"),
    ({"grid": {"optim.weight_decay": ["big"]}}, "grid.optim.weight_decay"),
    ({"grid": {"model.mlp.hidden": [8.5]}}, "grid.model.mlp.hidden"),
    ({"grid": {"model.nope": [1]}}, "grid.model.nope"),
    ({"grid": {}}, "grid"),
    ({"seeds": 0}, "seeds"),
    ({"x": "optim.lr"}, "x/y/facet"),
    ({"base": "no-such"}, "--preset"),
    ({"lab": "grokking"}, "--preset"),
])
def test_bad_specs_name_the_field(change, field):
    raw = {**RAW, **change}
    with pytest.raises(GroklabError) as e:
        parse_spec(raw, "t")
    assert str(e.value).startswith(field)


def test_work_order_takes_the_most_expensive_group_first():
    spec = parse_spec(load_preset_raw("pair-parity-grid"), "pair-parity-grid")
    plan = groups(spec)
    order = work_order(plan)
    assert sorted(order) == list(range(25))
    first, last = plan[order[0]][0], plan[order[-1]][0]
    assert (first.model.mlp.hidden, first.data.n_train) == (258, 1750)
    assert (last.model.mlp.hidden, last.data.n_train) == (16, 750)
