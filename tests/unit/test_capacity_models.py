"""Capacity lab: Shampoo (pytorch-optimizer) looped over members, the ViT (1-D and 2-D patches), the
activation in every architecture, the parameter count."""

import numpy as np
import pytest
import torch

from groklab.engine.ensemble import ModuleEnsemble
from groklab.labs.capacity.config import load
from groklab.labs.capacity.loop import make_optimizer, train_round_looped
from groklab.labs.capacity.train import ensemble, load_base, member_set
from groklab.nn.modules import ViT, build_module
from tests.numerics import assert_close_scaled

CPU = torch.device("cpu")
SHAMPOO = ["data.name=digits", "optim.name=shampoo", "optim.lrs=shampoo:0.1,adam:0.5", "model.width=8",
           "search.n_min=10", "search.n_max=200", "search.max_epochs=30", "search.check_every=5", "search.window=10",
           "train.batch_size=0", "optim.schedule=constant"]


@pytest.fixture(scope="module")
def shampoo(tmp_path_factory):
    cfg = load(None, None, SHAMPOO)
    base = load_base(cfg, tmp_path_factory.mktemp("cache"))
    return cfg, base, ensemble(cfg, base)


def test_shampoo_lowers_the_loss_and_the_loop_equals_each_training_alone(shampoo):
    cfg, base, ens = shampoo
    cands = [(0, 40), (1, 120)]
    both = train_round_looped(cfg, base, ens, cands, CPU)
    c = both.curves
    for i in range(2):
        loss = c["value"][(c["member"] == i) & (c["metric"] == "train_loss")]
        assert loss[-1] < 0.5 * loss[0]  # trained: the loss at least halved in 30 epochs
        alone = train_round_looped(cfg, base, ens, [cands[i]], CPU)
        assert alone.status[0] == both.status[i] and alone.steps[0] == both.steps[i]
        for k in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert_close_scaled(torch.tensor(alone.final[k]), torch.tensor(both.final[k][i:i + 1]), 1e-5, k)
    assert both.model_steps == int(both.steps.sum())


def test_shampoo_steps_are_the_packages_shampoo_on_the_members_own_shapes(shampoo):
    """One full-batch step by hand with pytorch_optimizer.Shampoo on the lone module equals the loop's."""
    cfg, base, ens = shampoo
    cfg1 = load(None, None, [*SHAMPOO, "search.max_epochs=1", "search.check_every=1", "search.window=1"])
    data = member_set(cfg1, base, [50], [3])
    mod = ens.build(3)
    opt = make_optimizer(cfg1, list(mod.parameters()))
    assert type(opt).__name__ == "Shampoo" and type(opt).__module__.startswith("pytorch_optimizer")
    assert opt.param_groups[0]["lr"] == 0.1 and cfg1.optim.lr == 1e-3  # optim.lrs picks shampoo's lr
    loss = torch.nn.functional.cross_entropy(mod(data.x[0, :50]), data.y[0, :50])
    loss.backward()
    opt.step()
    acc = (mod(data.x[0, :50]).argmax(-1) == data.y[0, :50]).float().mean().item()
    r = train_round_looped(cfg1, base, ens, [(3, 50)], CPU)
    assert r.steps[0] == 1 and abs(r.final["train_acc"][0] - acc) < 1e-6
    x_loss = torch.nn.functional.cross_entropy(mod(data.x[0, :50]), data.y[0, :50]).item()
    assert abs(r.final["train_loss"][0] - x_loss) <= 1e-5 * abs(x_loss)


@pytest.mark.parametrize("shape,dim,size,patch,tokens", [((40,), 1, 40, 4, 10), ((30,), 1, 30, 4, 8),
                                                          ((1, 8, 8), 2, (8, 8), 2, 16), ((3, 9, 9), 2, (9, 9), 4, 9)])
def test_vit_patches_cover_the_input_and_batched_equals_alone(shape, dim, size, patch, tokens):
    in_ch = 1 if dim == 1 else shape[0]
    m = ViT(in_ch, 5, size, width=8, depth=1, heads=2, patch=patch, dim=dim)
    x = torch.randn(6, *shape)
    p = m.patches(x)
    assert p.shape == (6, tokens, in_ch * patch**dim)
    # every input value lands in exactly one patch; the rest is zero padding
    assert_close_scaled(p.flatten(1).abs().sum(1), x.flatten(1).abs().sum(1), 1e-5, "patch sums")
    assert (p != 0).sum() == (x != 0).sum()
    ens = ModuleEnsemble(lambda: build_module("vit", in_ch=in_ch, n_classes=5, size=size, width=8, depth=1,
                                              heads=2, patch=patch, dim=dim))
    params = ens.init([0, 1], torch.ones(2))
    out = ens.forward(params, x)  # (2, 6, 5)
    for i in range(2):
        assert_close_scaled(out[i], ens.to_module(params, i)(x), 1e-5, f"member {i}")


def test_vit_1d_patch_order_is_the_sequence_order():
    m = ViT(1, 3, 12, width=4, depth=1, heads=1, patch=4, dim=1)
    x = torch.arange(12.0).unsqueeze(0)  # (1, 12)
    assert m.patches(x)[0].tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    m2 = ViT(1, 3, (4, 4), width=4, depth=1, heads=1, patch=2, dim=2)
    img = torch.arange(16.0).view(1, 1, 4, 4)
    assert m2.patches(img)[0].tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13], [10, 11, 14, 15]]


@pytest.mark.parametrize("kind", ["mlp", "cnn", "resnet", "vit"])
def test_activation_reaches_every_architecture_and_params_are_counted(kind):
    sets = ["data.name=digits", f"model.kind={kind}", "model.width=8", "model.depth=1", "search.n_max=400"]
    counts, outs = {}, {}
    base = None
    for act in ("relu", "tanh", "gelu"):
        cfg = load(None, None, [*sets, f"model.act={act}"])
        base = base or load_base(cfg, None)
        ens = ensemble(cfg, base)
        counts[act] = ens.n_params
        mod = ens.build(0)
        assert sum(p.numel() for p in mod.parameters()) == ens.n_params
        acts = {type(m).__name__ for m in mod.modules()}
        assert {"relu": "ReLU", "tanh": "Tanh", "gelu": "GELU"}[act] in acts
        assert not ({"ReLU", "Tanh", "GELU"} - {{"relu": "ReLU", "tanh": "Tanh", "gelu": "GELU"}[act]}) & acts
        outs[act] = mod(base.x_train[:4])
    assert len(set(counts.values())) == 1  # the activation has no parameters
    assert not np.allclose(outs["relu"].detach().numpy(), outs["tanh"].detach().numpy())


def test_a_diverging_shampoo_training_stops_as_diverged_not_fitted(shampoo):
    cfg, base, ens = shampoo
    wild = load(None, None, [*SHAMPOO, "optim.lrs=shampoo:1e8"])
    r = train_round_looped(wild, base, ens, [(0, 60)], CPU)
    assert r.status == ["diverged"] and not r.fitted[0] and r.steps[0] < 30
