"""ModuleEnsemble: M vmapped copies of an nn.Module train exactly like M lone modules with torch.optim."""

import numpy as np
import pytest
import torch
from torch import nn

from groklab import GroklabError
from groklab.config import load_config
from groklab.data.parity import parity_task
from groklab.engine.ensemble import ModuleEnsemble
from groklab.engine.optim import BatchedOptimizer
from groklab.engine.trainer import Member, member_losses, train, train_step
from groklab.nn.modules import build_module
from tests.numerics import assert_close_scaled

SEEDS = [3, 4, 5]
WDS = [0.0, 0.5, 2.0]
KINDS = {  # small CNN (GroupNorm) and MLP on MNIST-1D-shaped inputs (N, 40), 10 classes
    "cnn": dict(kind="cnn", in_ch=1, n_classes=10, width=4, depth=2, act="relu", norm="group"),
    "mlp": dict(kind="mlp", d_in=40, n_classes=10, width=16, depth=2, act="tanh"),
}
OPTS = {"adamw": ([1e-3, 3e-3, 1e-2], 0.0), "sgd": ([1e-2, 3e-2, 1e-1], 0.9)}  # name: (per-member lr, momentum)


def _make(spec: dict):
    kw = dict(spec)
    kind = kw.pop("kind")
    return lambda: build_module(kind, **kw)


def _lone(spec: dict, seed: int) -> nn.Module:
    torch.manual_seed(seed)  # what a user writes for one model
    return _make(spec)()


def _data(n: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 40, generator=g), torch.randint(0, 10, (n,), generator=g)  # (N, 40), (N,)


@pytest.mark.parametrize("opt_name", list(OPTS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_batched_training_matches_lone_modules_with_torch_optim(kind, opt_name):
    spec, (lrs, momentum), steps = KINDS[kind], OPTS[opt_name], 20
    x, y = _data()
    ens = ModuleEnsemble(_make(spec))
    params = {k: v.requires_grad_(True) for k, v in ens.init(SEEDS, torch.ones(3)).items()}
    opt = BatchedOptimizer(params, opt_name, torch.tensor(lrs), torch.tensor(WDS), "l2", (0.9, 0.98), 1e-8, momentum)
    losses = torch.stack([train_step(ens, params, opt, x, y, {}) for _ in range(steps)])  # (steps, M)
    for i, seed in enumerate(SEEDS):
        ref = _lone(spec, seed)
        if opt_name == "adamw":
            ropt = torch.optim.AdamW(ref.parameters(), lr=lrs[i], betas=(0.9, 0.98), eps=1e-8, weight_decay=WDS[i])
        else:
            ropt = torch.optim.SGD(ref.parameters(), lr=lrs[i], momentum=momentum)
        ref_losses = []
        for _ in range(steps):
            ropt.zero_grad()
            loss = member_losses(ref(x)[None], y).sum()
            loss.backward()
            ref_losses.append(loss.detach())
            if opt_name == "sgd":  # groklab's SGD: decoupled decay w·(1 − lr·wd) before the gradient step
                with torch.no_grad():
                    for p in ref.parameters():
                        p.mul_(1 - lrs[i] * WDS[i])
            ropt.step()
        assert_close_scaled(losses[:, i], torch.stack(ref_losses), 1e-5, f"{kind} losses[{i}]")
        for k, v in ref.named_parameters():  # a wrong update is >= lr / scale ~ 1e-2
            assert_close_scaled(params[k][i], v, 1e-4, f"{kind} {k}[{i}]")
    assert float(losses[-1].mean()) < float(losses[0].mean())


def test_initial_weights_equal_lone_module_times_scale_and_rng_untouched():
    spec = KINDS["cnn"]
    ens = ModuleEnsemble(_make(spec))
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    params = ens.init([7, 11], torch.tensor([1.0, 2.5]))
    assert torch.equal(torch.rand(3), before)  # init leaves the caller's RNG alone
    for i, (seed, scale) in enumerate([(7, 1.0), (11, 2.5)]):
        lone = dict(_lone(spec, seed).named_parameters())
        assert list(params) == list(lone)
        for k, v in lone.items():
            assert torch.equal(params[k][i], v.detach() * scale), f"{k}[{i}]"
    assert ens.n_params == sum(v.numel() for v in lone.values())
    assert not torch.equal(params["head.weight"][0], params["head.weight"][1] / 2.5)  # seeds differ


def test_shared_and_per_member_inputs():
    ens = ModuleEnsemble(_make(KINDS["cnn"]))
    params = ens.init(SEEDS, torch.ones(3))
    x, _ = _data(8)
    xs = torch.stack([x, _data(8, 1)[0], _data(8, 2)[0]])  # (M, N, 40)
    shared = ens.forward(params, x)  # (M, N, C)
    assert shared.shape == (3, 8, 10)
    assert_close_scaled(ens.forward(params, x.expand(3, -1, -1), per_member=True), shared, 1e-6, "repeated")
    per = ens.forward(params, xs, per_member=True)
    for i, seed in enumerate(SEEDS):
        lone = _lone(KINDS["cnn"], seed)
        assert_close_scaled(shared[i], lone(x), 1e-5, f"shared[{i}]")
        assert_close_scaled(per[i], lone(xs[i]), 1e-5, f"per_member[{i}]")
        one = ens.forward({k: v[i:i + 1] for k, v in params.items()}, x)  # M == 1 skips vmap
        assert_close_scaled(one[0], shared[i], 1e-6, f"M=1 [{i}]")
    assert not torch.allclose(per[1], shared[1])  # member 1 really saw its own batch
    with pytest.raises(GroklabError, match="per_member"):
        ens.forward(params, xs[:2], per_member=True)


@pytest.mark.parametrize("bn", [nn.BatchNorm1d, nn.BatchNorm2d, nn.SyncBatchNorm])
def test_batchnorm_is_rejected_naming_the_replacement(bn):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(1, 4, 3), bn(4))

        def forward(self, x):
            return self.body(x).flatten(1)

    with pytest.raises(GroklabError, match="GroupNorm or nn.LayerNorm") as e:
        ModuleEnsemble(Net)
    assert "body.1" in str(e.value)


@pytest.mark.parametrize("make", [
    lambda: build_module("cnn", in_ch=1, n_classes=3, width=4, depth=2, norm="layer"),
    lambda: nn.Sequential(nn.Linear(40, 8), nn.LayerNorm(8), nn.GELU(), nn.Linear(8, 3)),
    lambda: build_module("resnet", in_ch=1, n_classes=3, k=2, blocks=(1, 1, 1, 1), dim=1),
])
def test_group_and_layer_norm_models_match_lone_modules(make):
    ens = ModuleEnsemble(make)
    x, _ = _data(6)
    out = ens.forward(ens.init([0, 1], torch.ones(2)), x)  # (2, 6, 3)
    for i in range(2):
        torch.manual_seed(i)
        assert_close_scaled(out[i], make()(x), 1e-5, f"member {i}")


class _Masked(nn.Module):
    def __init__(self, random_buffer: bool = False):
        super().__init__()
        self.lin = nn.Linear(40, 3)
        self.register_buffer("mask", torch.rand(40) if random_buffer else (torch.arange(40) % 2).float())

    def forward(self, x):
        return self.lin(x * self.mask)


def test_buffers_are_shared_constants():
    ens = ModuleEnsemble(_Masked)
    params = ens.init([0, 1], torch.ones(2))
    assert list(params) == ["lin.weight", "lin.bias"]  # buffers are not trained
    x, _ = _data(5)
    out = ens.forward(params, x)
    torch.manual_seed(1)
    assert_close_scaled(out[1], _Masked()(x), 1e-6, "masked")
    with pytest.raises(GroklabError, match="buffer 'mask' differs"):
        ModuleEnsemble(lambda: _Masked(random_buffer=True)).init([0, 1], torch.ones(2))


def test_dropout_masks_differ_per_member_in_training_and_vanish_in_eval():
    def make():
        return nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Dropout(0.5), nn.Linear(64, 3))

    ens = ModuleEnsemble(make)
    params = ens.init([0, 0], torch.ones(2))  # two identical members
    x, _ = _data(16)
    with torch.no_grad():  # mode "auto": eval under no_grad (the trainer's evaluate)
        ev = ens.forward(params, x)
    torch.manual_seed(0)
    lone = make().eval()
    assert_close_scaled(ev[0], lone(x), 1e-6, "eval")
    assert torch.equal(ev[0], ev[1])
    tr = ens.forward(params, x)  # grad enabled: train mode, each member its own dropout mask
    assert not torch.allclose(tr[0], tr[1]) and not torch.allclose(tr[0], ev[0])
    fixed = ModuleEnsemble(make, mode="eval")
    assert_close_scaled(fixed.forward(params, x), ev, 1e-6, "mode=eval")
    with pytest.raises(GroklabError, match="mode"):
        ModuleEnsemble(make, mode="test")


def test_protocol_runs_through_trainer_train_with_early_stop():
    cfg = load_config("parity-demo", overrides=["optim.name=adamw", "train.steps=30", "train.log_every=10",
                                                "train.snapshots=0", "train.early_stop=true", "train.device=cpu"])
    data = parity_task(6, 2, 64, 32, False, seed=0)  # x (64, 6) in {-1, +1}, 2 classes
    spec = dict(kind="mlp", d_in=6, n_classes=2, width=16, depth=1, act="relu")
    members = [Member(0, 1e-2, 0.1), Member(1, 3e-2, 0.5), Member(2, 1e-2, 0.0, init_scale=0.5)]
    calls = []

    def settled(h):  # stop member 1 at the first check; the others train on in a compacted batch
        calls.append(len(h["train_loss"]))
        return np.arange(len(h["train_loss"])) == (1 if len(calls) == 1 else -1)

    res = train(ModuleEnsemble(_make(spec)), data, members, cfg.optim, cfg.train, torch.device("cpu"), settled=settled)
    assert res.stopped_at[1] >= 0 and res.stopped_at[0] == res.stopped_at[2] == -1 and calls[-1] == 2
    assert list(res.params) == ["net.1.weight", "net.1.bias", "net.3.weight", "net.3.bias"]
    loss = res.metrics["train_loss"]  # (M, L)
    assert np.isfinite(loss[[0, 2], -1]).all() and (loss[[0, 2], -1] < loss[[0, 2], 0]).all()
    o = cfg.optim
    for i in (0, 2):  # the full-batch trajectory of a lone module with torch.optim.AdamW
        ref = _lone(spec, members[i].seed)
        with torch.no_grad():
            for p in ref.parameters():
                p.mul_(members[i].init_scale)
        ropt = torch.optim.AdamW(ref.parameters(), lr=members[i].lr, betas=(o.beta1, o.beta2), eps=o.eps,
                                 weight_decay=members[i].weight_decay)
        for _ in range(30):
            ropt.zero_grad()
            member_losses(ref(data.x_train)[None], data.y_train).sum().backward()
            ropt.step()
        for k, v in ref.named_parameters():
            assert_close_scaled(res.params[k][i], v, 1e-4, f"{k}[{i}]")


def test_build_module_kinds_and_errors():
    h, c = 7, 5
    assert sum(p.numel() for p in build_module("mnist1d_mlp", hidden=h).parameters()) == h * h + 52 * h + 10
    cnn = build_module("mnist1d_cnn", channels=c)
    assert cnn.linear.in_features == 5 * c and cnn(torch.randn(4, 40)).shape == (4, 10)
    assert cnn(torch.randn(4, 1, 40)).shape == (4, 10)
    assert build_module("cnn", in_ch=3, n_classes=4, width=8, depth=2, dim=2)(torch.randn(2, 3, 9, 9)).shape == (2, 4)
    widths = [m.out_channels for m in build_module("resnet", k=3).modules() if isinstance(m, nn.Conv2d)]
    assert sorted(set(widths)) == [3, 6, 12, 24]  # k·[1, 2, 4, 8]
    with pytest.raises(GroklabError, match="choose one of: mlp, cnn, resnet, vit, mnist1d_mlp, mnist1d_cnn"):
        build_module("vgg")
    with pytest.raises(GroklabError, match="width"):
        build_module("mlp", d_in=4, n_classes=2, widht=3)
    with pytest.raises(GroklabError, match="norm"):
        build_module("cnn", in_ch=1, n_classes=2, width=4, norm="batch")
    with pytest.raises(GroklabError, match="act"):
        build_module("mlp", d_in=4, n_classes=2, width=3, act="swish")
