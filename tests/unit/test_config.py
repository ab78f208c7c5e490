import pytest

from groklab import GroklabError
from groklab.config import load_config, parse_override, preset_names


def test_presets_load_and_pair_is_faithful():
    assert {"demo", "pair-mlp"} <= set(preset_names())
    c = load_config("pair-mlp")
    assert (c.task.p, c.data.train_fraction, c.data.only_a_le_b) == (67, 0.4, True)
    assert (c.model.pair_mlp.hidden, c.model.pair_mlp.embed_size, c.model.pair_mlp.tied) == (24, 500, True)
    assert (c.optim.lr, c.optim.weight_decay, c.optim.beta1, c.optim.beta2) == (1e-3, 1.0, 0.9, 0.98)
    assert (c.train.steps, c.train.batch_size, c.train.loss) == (50_000, 0, "pair")


def test_overrides_and_cli_values():
    c = load_config("demo", overrides=["optim.lr=3e-3", "task.op=mul", "model.pair_mlp.tied=false"], train__seeds=4)
    assert (c.optim.lr, c.task.op, c.model.pair_mlp.tied, c.train.seeds) == (3e-3, "mul", False, 4)
    assert parse_override("task.op=div") == ("task.op", "div")
    assert parse_override("optim.lr=1") == ("optim.lr", 1)
    assert load_config("demo", overrides=["optim.lr=1"]).optim.lr == 1.0


@pytest.mark.parametrize("sets,field", [
    (["task.p=1"], "task.p"), (["task.op=div", "task.p=12"], "task.p"),
    (["data.train_fraction=1.5"], "data.train_fraction"), (["model.foo=1"], "model.foo"),
    (["nosection.x=1"], "nosection.x"), (["task.op=pow"], "task.op"), (["train.steps=1.5"], "train.steps"),
    (["model.pair_mlp.tied=3"], "model.pair_mlp.tied"), (["model.pair_mlp=3"], "model.pair_mlp"),
    (["model.pair_mlp.hidden.x=3"], "model.pair_mlp.hidden.x"), (["optim.lr=nan"], "optim.lr"),
])
def test_bad_values_name_the_field(sets, field):
    with pytest.raises(GroklabError) as e:
        load_config("demo", overrides=sets)
    assert str(e.value).startswith(field)


def test_config_file(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[task]\np = 11\n[train]\nsteps = 7\n')
    c = load_config("demo", f)
    assert (c.task.p, c.train.steps) == (11, 7)
    f.write_text("[task\n")
    with pytest.raises(GroklabError, match="not valid TOML"):
        load_config(None, f)
    with pytest.raises(GroklabError, match="no such file"):
        load_config(None, tmp_path / "missing.toml")
