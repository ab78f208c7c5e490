"""scaling-addition pieces: the plateau rule, the per-width learning rate, one width trained through the engine's
stream loop until the rule (or the cap) stops it, and its config errors."""

from types import SimpleNamespace

import numpy as np
import pytest

from groklab import GroklabError
from groklab.labs.curves import scaling_addition as sa
from groklab.labs.curves.config import CurvesConfig


def rule(**kw):
    return SimpleNamespace(**{"min_steps": 1000, "window": 0.5, "tol": 0.02, "abs_tol": 1e-3, **kw})


def test_plateau_rule():
    steps = list(range(0, 4001, 250))
    flat = [2.0] + [1.5] * (len(steps) - 1)
    assert sa.converged(steps, flat, 1.0, rule())
    assert not sa.converged(steps[:4], flat[:4], 1.0, rule())  # before min_steps
    falling = [1.0 + 1.0 / (1 + s / 500) for s in steps]  # excess halves every doubling: still learning
    assert not sa.converged(steps, falling, 1.0, rule())
    late_drop = flat[:-1] + [1.3]  # a long plateau, then a drop in the last window: keep going
    assert not sa.converged(steps, late_drop, 1.0, rule())
    near_floor = [1.0 + 1e-4 * (1 + np.sin(s)) for s in steps]  # noise below abs_tol at the floor
    assert sa.converged(steps, near_floor, 1.0, rule())


def test_lr_rule():
    c = CurvesConfig()
    c.optim.lr, c.addition.lr_width, c.addition.lr_max = 3e-3, 32, 0.01
    assert sa.lr_for(c, 64) == pytest.approx(1.5e-3) and sa.lr_for(c, 32) == pytest.approx(3e-3)
    assert sa.lr_for(c, 4) == 0.01  # capped
    c.addition.lr_rule = "constant"
    assert sa.lr_for(c, 64) == pytest.approx(3e-3)


def tiny(**kw) -> CurvesConfig:
    c = CurvesConfig()
    c.experiment.kind, c.scaling.source, c.scaling.forms = "scaling", "addition", ["power", "hoffmann_n"]
    c.optim.name, c.optim.lr, c.optim.weight_decay = "adamw", 0.01, 0.0
    a = c.addition
    a.n_digits, a.batch_size, a.eval_every, a.min_steps, a.max_steps = 2, 32, 5, 10, 30
    a.val_examples, a.test_examples, a.lr_width = 64, 64, 8
    for k, v in kw.items():
        setattr(a, k, v)
    c.train.device, c.train.threads = "cpu", 1
    return c


@pytest.mark.parametrize("tol,abs_tol,stops", [(10.0, 10.0, True), (0.0, 0.0, False)])
def test_train_width_stops_on_the_plateau_or_at_the_cap(tol, abs_tol, stops):
    c = tiny(tol=tol, abs_tol=abs_tol)
    dev, sets = sa.prepare_addition(c, None)
    row, mets = sa.train_width(c, 8, 0, dev, sets)
    assert row["converged"] is stops
    assert row["steps"] == (c.addition.min_steps if stops else c.addition.max_steps)
    val = [v for s, m, v in mets if m == "val_loss"]
    assert len(val) == row["steps"] // c.addition.eval_every + 1
    assert min(val) < val[0] - 0.1  # it learned (ln 14 = 2.64 nats at the start)
    fmt = sa.fmt_of(c)
    assert row["bits_per_example"] == pytest.approx(row["test_loss"] * fmt.n_targets / np.log(2))
    assert row["gap_bits"] == pytest.approx(row["bits_per_example"] - fmt.floor_bits())
    assert row["params"] == sa.n_params(c, 8)


def test_prequential_code_is_the_pre_update_loss_of_the_first_min_steps(monkeypatch):
    """preq_bits_per_example = the stream's own code length (code_nats) of the first min_steps batches, recomputed
    here by replaying the run: train the same width for exactly min_steps with no plateau stop."""
    c = tiny(tol=0.0, abs_tol=0.0, min_steps=10, max_steps=20)
    dev, sets = sa.prepare_addition(c, None)
    row, mets = sa.train_width(c, 8, 0, dev, sets)
    fmt = sa.fmt_of(c)
    seen = {}
    real = sa.train_stream

    def spy(*a, **kw):
        seen["res"] = real(*a, **kw)
        return seen["res"]

    monkeypatch.setattr(sa, "train_stream", spy)
    short = tiny(tol=0.0, abs_tol=0.0, min_steps=10, max_steps=10)
    sa.train_width(short, 8, 0, dev, sets)
    res = seen["res"]
    nats_per_target = res.code_nats / (res.code_examples * fmt.n_targets)
    assert row["preq_bits_per_example"] == pytest.approx(fmt.bits_per_example(nats_per_target), rel=1e-6)
    assert fmt.floor_bits() < row["preq_bits_per_example"] < fmt.n_targets * np.log2(14) + 1
    running = {s: v for s, m, v in mets if m == "preq_loss"}
    assert sorted(running) == list(range(5, 21, 5))  # every evaluation after step 0
    assert running[10] == pytest.approx(nats_per_target, rel=1e-6)
    assert running[20] < running[5]  # it learns while it codes


@pytest.mark.parametrize("field,value,words", [
    ("forms", ["power", "hoffmann_nd"], ["scaling.forms", "hoffmann_nd"]),
    ("widths", [8, 12, 16, 18], ["scaling.widths", "multiple of 4"]),
    ("widths", [8, 12, 16], ["scaling.widths", "at least 4"]),
])
def test_config_errors(field, value, words):
    c = tiny()
    c.scaling.widths = [8, 12, 16, 20]
    c.check()
    setattr(c.scaling, field, value)
    with pytest.raises(GroklabError) as e:
        c.check()
    assert all(w in str(e.value) for w in words), str(e.value)
