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


def test_pair_mlp_float32_gradient_keeps_well_fitted_examples():
    """PAIR's MLP deep in memorization (per-example losses 1e-12..1e-6): the hand-written float32 backward
    matches float64 autograd; float32 p_y − 1 would drop the target's gradient of every example whose loss
    is below 6e-8 (measured here: a ~20% error of the largest gradient entry)."""
    from groklab.data.modular import modular_task
    from groklab.nn.mlp import PairMLP

    data = modular_task(13, "add", 0.5, False, seed=0)
    model = PairMLP(13, 13, hidden=6, embed_size=10)
    for seed in (0, 1):
        params = model.init([seed], torch.ones(1) * 8)  # large weights: confident, like a memorized net
        y = model.forward(params, data.x_train)[0].argmax(-1)  # labels it already fits
        _, grads = model.loss_grads(params, data.x_train, y, "pair")
        p64 = {k: v.double().requires_grad_(True) for k, v in params.items()}
        logp = torch.log_softmax(model.forward(p64, data.x_train), -1)  # (1, N, C) float64
        ref = -logp.gather(-1, y.view(1, -1, 1)).mean() / 13
        for k, g in zip(p64, torch.autograd.grad(ref, list(p64.values()))):
            assert_close_scaled(grads[k][0].double(), g[0], 2e-3, f"{k} seed {seed}")


def test_bit_mlp_reads_bits_as_0_1_with_the_bias_column_kept():
    """model.mlp.bits = "01" (PAIR's 0/1 sequences): the same net as pm1 fed (x + 1) / 2, loss and grads."""
    from groklab.nn.mlp import BitMLP

    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randint(0, 2, (50, 6), generator=g).float() * 2 - 1, torch.ones(50, 1)], 1)  # (N, 7)
    y = torch.randint(0, 2, (50,), generator=g)
    m01, mpm = BitMLP(7, 2, hidden=5, bits="01"), BitMLP(7, 2, hidden=5)
    params = m01.init([0, 1], torch.ones(2))
    x01 = (x + 1) / 2
    assert x01[:, -1].eq(1).all() and set(x01[:, :-1].unique().tolist()) == {0.0, 1.0}
    assert_close_scaled(m01.forward(params, x), mpm.forward(params, x01), 1e-6, "logits")
    (l1, g1), (l2, g2) = m01.loss_grads(params, x, y), mpm.loss_grads(params, x01, y)
    assert_close_scaled(l1, l2, 1e-6, "loss")
    for k in g1:
        assert_close_scaled(g1[k], g2[k], 1e-6, k)
    assert not torch.allclose(mpm.forward(params, x), m01.forward(params, x))  # the encoding matters
