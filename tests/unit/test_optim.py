"""The batched optimizer must give each member exactly the trajectory it would have alone."""

import pytest
import torch

from groklab.data.modular import modular_task
from groklab.data.parity import parity_task
from groklab.engine.optim import BatchedOptimizer
from groklab.engine.trainer import member_losses, train_step
from groklab.nn.mlp import BitMLP, PairMLP
from groklab.nn.reference import BitMLPReference, PairMLPReference, member_params
from tests.numerics import assert_close_scaled

LRS = [1e-3, 3e-3, 1e-2]
WDS = [0.0, 0.5, 2.0]


def _batched(model, data, name, decay, steps, momentum=0.0):
    params = {k: v.requires_grad_(True) for k, v in model.init([0, 1, 2], torch.ones(3)).items()}
    init = {k: v.detach().clone() for k, v in params.items()}
    opt = BatchedOptimizer(params, name, torch.tensor(LRS), torch.tensor(WDS), decay, (0.9, 0.98), 1e-8,
                           momentum)
    for _ in range(steps):
        train_step(model, params, opt, data.x_train, data.y_train, {})
    return init, params


@pytest.mark.parametrize("embed_size,tied", [(16, True), (16, False), (0, True), (0, False)])
def test_adamw_matches_torch_adamw_per_member(embed_size, tied):
    torch.manual_seed(0)
    data = modular_task(13, "add", 0.5, False, seed=0)
    model = PairMLP(13, 13, hidden=8, embed_size=embed_size, tied=tied)
    init, params = _batched(model, data, "adamw", "l2", steps=25)
    for i in range(3):
        ref = PairMLPReference(member_params(init, i), tied=tied)
        opt = torch.optim.AdamW(ref.parameters(), lr=LRS[i], betas=(0.9, 0.98), eps=1e-8, weight_decay=WDS[i])
        for _ in range(25):
            opt.zero_grad()
            member_losses(ref(data.x_train)[None], data.y_train, "ce").sum().backward()
            opt.step()
        for k, v in ref.w.items():
            assert_close_scaled(params[k][i], v, 1e-4, f"{k}[{i}]")  # a wrong update is >= lr/scale ~ 1e-2


def test_sgd_momentum_matches_torch_sgd():
    data = parity_task(8, 2, 64, 16, True, seed=1)
    model = BitMLP(9, 2, hidden=6)
    init, params = _batched(model, data, "sgd", "l2", steps=20, momentum=0.9)
    for i in range(3):
        ref = BitMLPReference(member_params(init, i))
        opt = torch.optim.SGD(ref.parameters(), lr=LRS[i], momentum=0.9)
        for _ in range(20):
            opt.zero_grad()
            member_losses(ref(data.x_train)[None], data.y_train, "ce").sum().backward()
            with torch.no_grad():  # decoupled decay after the gradient, as groklab does for SGD
                for p in ref.parameters():
                    p.mul_(1 - LRS[i] * WDS[i])
            opt.step()
        for k, v in ref.w.items():
            assert_close_scaled(params[k][i], v, 1e-4, f"{k}[{i}]")  # a wrong update is >= lr/scale ~ 1e-2


def test_l1_adds_sign_to_gradient_before_adam():
    data = parity_task(8, 2, 64, 16, False, seed=2)
    model = BitMLP(8, 2, hidden=5)
    init, params = _batched(model, data, "adamw", "l1", steps=15)
    for i in range(3):
        ref = BitMLPReference(member_params(init, i))
        opt = torch.optim.Adam(ref.parameters(), lr=LRS[i], betas=(0.9, 0.98), eps=1e-8)
        for _ in range(15):
            opt.zero_grad()
            loss = member_losses(ref(data.x_train)[None], data.y_train, "ce").sum()
            loss.backward()
            with torch.no_grad():
                for p in ref.parameters():
                    p.grad += WDS[i] * torch.sign(p)
            opt.step()
        for k, v in ref.w.items():
            assert_close_scaled(params[k][i], v, 1e-4, f"{k}[{i}]")  # a wrong update is >= lr/scale ~ 1e-2


def test_members_do_not_interact():
    """Dropping member 1 from the ensemble leaves members 0 and 2 unchanged (to float rounding)."""
    data = modular_task(11, "add", 0.5, False, seed=0)
    model = PairMLP(11, 11, hidden=6, embed_size=10)
    _, full = _batched(model, data, "adamw", "l2", steps=10)
    params = {k: v[[0, 2]].clone().requires_grad_(True)
              for k, v in model.init([0, 1, 2], torch.ones(3)).items()}
    opt = BatchedOptimizer(params, "adamw", torch.tensor([LRS[0], LRS[2]]), torch.tensor([WDS[0], WDS[2]]),
                           "l2", (0.9, 0.98), 1e-8)
    for _ in range(10):
        train_step(model, params, opt, data.x_train, data.y_train, {})
    for k in params:
        for j, i in enumerate([0, 2]):
            assert_close_scaled(params[k][j], full[k][i], 1e-6, f"{k}[{i}]")


def test_member_chunks_give_identical_gradients():
    from groklab.engine.trainer import member_grads
    data = modular_task(13, "add", 0.5, False, seed=0)
    model = PairMLP(13, 13, hidden=6, embed_size=10)
    params = {k: v.requires_grad_(True) for k, v in model.init(list(range(5)), torch.ones(5)).items()}
    l0, g0 = member_grads(model, params, data.x_train, data.y_train, {}, chunk=0)
    l2, g2 = member_grads(model, params, data.x_train, data.y_train, {}, chunk=2)
    assert_close_scaled(l2, l0, 1e-6, "loss")
    for k in g0:
        for i in range(len(g0[k])):
            assert_close_scaled(g2[k][i], g0[k][i], 1e-6, f"{k}[{i}]")


@pytest.mark.parametrize("embed_size,tied,act,fixed,reduction", [
    (16, True, "relu", "none", "pair"), (16, False, "relu", "none", "ce"), (0, True, "gelu", "none", "ce"),
    (0, False, "relu", "none", "pair"), (2, True, "relu", "fourier", "pair"), (16, True, "tanh", "none", "ce")])
def test_hand_written_loss_grads_match_autograd(embed_size, tied, act, fixed, reduction):
    data = modular_task(13, "add", 0.5, False, seed=0)
    model = PairMLP(13, 13, hidden=6, embed_size=embed_size, tied=tied, act=act, fixed_embed=fixed)
    params = {k: v.requires_grad_(True) for k, v in model.init([0, 1, 2], torch.ones(3) * 3).items()}
    loss, grads = model.loss_grads(params, data.x_train, data.y_train, reduction)
    ref = member_losses(model.forward(params, data.x_train), data.y_train, reduction)  # (M,)
    assert_close_scaled(loss, ref, 1e-5, "loss")
    for k, g in zip(params, torch.autograd.grad(ref.sum(), list(params.values()))):  # float32 sums in another
        for i in range(len(g)):  # order: errors of a few ulps of each member's largest gradient entry
            assert_close_scaled(grads[k][i], g[i], 1e-5, f"{k}[{i}]")


@pytest.mark.parametrize("act,reduction,chunk_elems", [("relu", "ce", 2**20), ("relu", "pair", 64),
                                                      ("tanh", "ce", 64)])
def test_bit_mlp_chunked_loss_grads_match_autograd(act, reduction, chunk_elems):
    """The chunked hand-written parity backward = autograd over all examples (several chunks when small)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (100, 9), generator=g).float() * 2 - 1  # (N, d)
    y = torch.randint(0, 2, (100,), generator=g)
    model = BitMLP(9, 2, hidden=6, act=act)
    params = {k: v.requires_grad_(True) for k, v in model.init([0, 1, 2], torch.ones(3)).items()}
    loss, grads = model.loss_grads(params, x, y, reduction, chunk_elems=chunk_elems)
    ref = member_losses(model.forward(params, x), y, reduction)  # (M,)
    assert_close_scaled(loss, ref, 1e-5, "loss")
    for k, gr in zip(params, torch.autograd.grad(ref.sum(), list(params.values()))):
        for i in range(len(gr)):
            assert_close_scaled(grads[k][i], gr[i], 1e-5, f"{k}[{i}]")
