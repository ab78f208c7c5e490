"""data.split = "per_seed": every PAIR-MLP member trains and is evaluated on its own split (PAIR's seeds)."""

import numpy as np
import pytest
import torch

from groklab import GroklabError
from groklab.config import load_config
from groklab.data.modular import all_pairs, modular_member_splits, modular_task
from groklab.engine.trainer import member_losses
from groklab.labs.grokking.run import run_grok
from groklab.nn.mlp import PairMLP
from tests.numerics import assert_close_scaled


def test_member_splits_are_pairs_numpy_permutations():
    d = modular_member_splits(13, "add", 0.4, True, [3, 165])
    pairs = all_pairs(13, "add", True)
    n_train = int(0.4 * len(pairs))
    assert d.x.shape == (2, n_train, 2) and d.x_test.shape == (2, len(pairs) - n_train, 2)
    for i, s in enumerate((3, 165)):
        perm = np.random.RandomState(s).permutation(len(pairs))  # PAIR: np.random.seed(s); permutation
        assert torch.equal(d.x[i], pairs[perm[:n_train]]) and torch.equal(d.x_test[i], pairs[perm[n_train:]])
        assert torch.equal(d.y[i], (d.x[i].sum(1)) % 13) and torch.equal(d.y_test[i], d.x_test[i].sum(1) % 13)
    assert not torch.equal(d.x[0], d.x[1])


def test_per_member_loss_grads_match_autograd_and_the_shared_path():
    model = PairMLP(13, 13, hidden=6, embed_size=16, tied=True)
    params = {k: v.requires_grad_(True) for k, v in model.init([0, 1, 2], torch.ones(3) * 3).items()}
    d = modular_member_splits(13, "add", 0.5, False, [0, 1, 2])
    loss, grads = model.loss_grads(params, d.x, d.y, "pair")  # (M,), per-member rows
    ref = member_losses(model.forward(params, d.x, per_member=True), d.y, "pair")
    assert_close_scaled(loss, ref, 1e-5, "loss")
    for k, g in zip(params, torch.autograd.grad(ref.sum(), list(params.values()))):
        for i in range(len(g)):
            assert_close_scaled(grads[k][i], g[i], 1e-5, f"{k}[{i}]")
    shared = modular_task(13, "add", 0.5, False, seed=0)  # every member the same rows: the shared path's result
    xs, ys = shared.x_train.expand(3, -1, -1), shared.y_train.expand(3, -1)
    l_pm, g_pm = model.loss_grads(params, xs, ys, "pair")
    l_sh, g_sh = model.loss_grads(params, shared.x_train, shared.y_train, "pair")
    assert_close_scaled(l_pm, l_sh, 1e-6, "loss")
    for k in g_sh:
        assert_close_scaled(g_pm[k], g_sh[k], 1e-5, k)


def _cfg(seed: int, seeds: int, split: str = "per_seed"):
    return load_config("pair-mlp", overrides=[f"data.split={split}", f"train.seed={seed}", f"train.seeds={seeds}",
                                              "train.steps=60", "train.log_every=20", "train.snapshots=0",
                                              "model.pair_mlp.embed_size=32", "train.threads=1"])


def test_a_member_of_the_ensemble_trains_as_it_would_alone(tmp_path):
    """Member seed 1 of a 2-seed per_seed run = a 1-seed run of seed 1 (its own split, its own metrics), and
    differs from seed 0 in split as well as init."""
    both = run_grok(_cfg(0, 2), root=tmp_path)["models"]
    alone = run_grok(_cfg(1, 1), root=tmp_path)["models"][0]
    assert both[1]["seed"] == alone["seed"] == 1
    for key in ("train_loss", "test_loss", "train_acc", "test_acc"):
        assert both[1][key] == pytest.approx(alone[key], rel=1e-3, abs=1e-6), key
    shared = run_grok(_cfg(0, 2, "shared"), root=tmp_path)["models"]
    assert shared[1]["test_loss"] != pytest.approx(both[1]["test_loss"], rel=1e-3)  # another split


@pytest.mark.parametrize("over,field", [(["model.kind=transformer"], "data.split"),
                                        (["train.progress_every=10"], "train.progress_every")])
def test_per_seed_needs_the_pair_mlp_without_progress_measures(over, field):
    with pytest.raises(GroklabError, match=field):
        load_config("pair-mlp", overrides=["data.split=per_seed", *over])


def test_python_split_needs_a_modular_task():
    with pytest.raises(GroklabError, match="data.split"):
        load_config("parity-demo", overrides=["data.split=python"])
    assert load_config("nanda-transformer").data.split == "python"
