import numpy as np
import torch

from groklab.config import load_config
from groklab.data import make_task
from groklab.engine.trainer import Member, snapshot_steps, train
from groklab.nn import make_model
from tests.numerics import assert_close_scaled


def _setup(**sets):
    cfg = load_config("parity-demo", overrides=[f"{k}={v}" for k, v in sets.items()])
    data = make_task(cfg)
    return cfg, data, make_model(cfg, data)


MEMBERS = [Member(0, 1e-2, 0.2), Member(1, 3e-3, 0.5), Member(2, 1e-2, 0.0)]


def test_early_stop_compaction_leaves_other_members_unchanged():
    cfg, data, model = _setup(**{"train.steps": 60, "train.log_every": 20, "data.n_train": 100,
                                 "data.n_test": 50, "model.mlp.hidden": 8, "train.snapshots": 0})
    dev = torch.device("cpu")
    full = train(model, data, MEMBERS, cfg.optim, cfg.train, dev)
    calls = []

    def settled(h):  # stop member 0 (the first active row) at the 6th log step (step 20), nothing else
        calls.append(len(h["train_loss"]))
        return (np.arange(len(h["train_loss"])) == 0) & (h["train_loss"].shape[1] == 6)

    stop_first = train(model, data, MEMBERS, cfg.optim, cfg.train, dev, settled=settled)
    assert stop_first.stopped_at.tolist() == [20, -1, -1]
    assert calls[-1] == 2  # later checks only saw the two members still training
    assert stop_first.model_steps < full.model_steps
    for k in full.params:
        for i in (1, 2):  # a smaller batch of members may take another kernel: equal to float rounding
            assert_close_scaled(stop_first.params[k][i], full.params[k][i], 1e-6, f"{k}[{i}]")
    assert np.isnan(stop_first.metrics["test_acc"][0, -1]) and not np.isnan(full.metrics["test_acc"][0, -1])


def test_minibatch_is_deterministic_and_differs_from_full_batch():
    sets = {"train.steps": 30, "train.log_every": 10, "data.n_train": 128, "data.n_test": 32,
            "model.mlp.hidden": 8, "train.snapshots": 0}
    cfg, data, model = _setup(**sets, **{"train.batch_size": 16})
    a = train(model, data, MEMBERS[:2], cfg.optim, cfg.train, torch.device("cpu"))
    b = train(model, data, MEMBERS[:2], cfg.optim, cfg.train, torch.device("cpu"))
    cfg_full, _, _ = _setup(**sets)
    c = train(model, data, MEMBERS[:2], cfg_full.optim, cfg_full.train, torch.device("cpu"))
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k])
        assert not torch.equal(a.params[k], c.params[k])


def test_snapshot_steps_log_spaced():
    s = snapshot_steps(50_000, 24)
    assert s[0] == 0 and s[1] == 1 and s[-1] == 50_000 and len(s) <= 25
    assert all(b > a for a, b in zip(s, s[1:]))
    assert snapshot_steps(100, 0) == []
