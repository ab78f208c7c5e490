"""The batched optimizer must give each member exactly the trajectory it would have alone."""

import json
import math

import pytest
import torch

from groklab.data.modular import modular_task
from groklab.data.parity import parity_task
from groklab.engine.optim import BatchedOptimizer, decay_mask_of
from groklab.engine.schedule import clip_grads, lr_factor
from groklab.engine.trainer import member_losses, train_step
from groklab.nn.gpt import GPT, GPTShape
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


@pytest.mark.parametrize("decay", ["l1", "l2_coupled"])
def test_gradient_side_decay_matches_torch_adam(decay):
    """decay = l1 adds wd·sign(w) to the gradient before Adam's moments (PAIR); l2_coupled is
    torch.optim.Adam(weight_decay=wd), wd·w joining the gradient (Grokfast)."""
    data = parity_task(8, 2, 64, 16, False, seed=2)
    model = BitMLP(8, 2, hidden=5)
    init, params = _batched(model, data, "adamw", decay, steps=15)
    for i in range(3):
        ref = BitMLPReference(member_params(init, i))
        opt = torch.optim.Adam(ref.parameters(), lr=LRS[i], betas=(0.9, 0.98), eps=1e-8,
                               weight_decay=WDS[i] if decay == "l2_coupled" else 0.0)
        for _ in range(15):
            opt.zero_grad()
            member_losses(ref(data.x_train)[None], data.y_train, "ce").sum().backward()
            if decay == "l1":
                with torch.no_grad():
                    for p in ref.parameters():
                        p.grad += WDS[i] * torch.sign(p)
            opt.step()
        for k, v in ref.w.items():
            assert_close_scaled(params[k][i], v, 1e-4, f"{k}[{i}]")  # a wrong update is >= lr/scale ~ 1e-2
    _, decoupled = _batched(model, data, "adamw", "l2", steps=15)
    assert (params["w1"][2] - decoupled["w1"][2]).abs().max() > 1e-3  # differs from AdamW's decay at wd 2


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


def test_pair_mlp_writes_its_embedding_gradient_into_out():
    """loss_grads(out=) puts the embedding gradient in the caller's buffer (the engine's chunk slice), the same
    numbers as without it, and leaves the other gradients to the caller."""
    data = modular_task(13, "add", 0.5, False, seed=0)
    model = PairMLP(13, 13, hidden=6, embed_size=10)
    params = model.init([0, 1, 2], torch.ones(3))
    loss, grads = model.loss_grads(params, data.x_train, data.y_train, "pair")
    buf = {k: torch.full((5, *v.shape[1:]), float("nan")) for k, v in params.items()}  # 5 members, slice 1:4
    out = {k: b[1:4] for k, b in buf.items()}
    loss2, grads2 = model.loss_grads(params, data.x_train, data.y_train, "pair", out=out)
    assert grads2["embed"] is out["embed"] and torch.equal(buf["embed"][1:4], grads["embed"])
    assert buf["embed"][0].isnan().all() and buf["embed"][4].isnan().all()  # nothing outside the slice
    assert torch.equal(loss2, loss) and all(torch.equal(grads2[k], grads[k]) for k in grads)


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


# --- schedule, clipping, decay mask (the compression lab's torch.optim loop, on the engine) ---------------

def _lr_at(step: int, lr: float, n: int, warmup: int, cooldown: int, min_lr_frac: float) -> float:
    """labs/compression/train.py's lr_at (0-based step), copied as the reference."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if step >= n - cooldown:
        return lr * min_lr_frac * (n - step) / cooldown
    t = (step - warmup) / max(1, n - cooldown - warmup)
    return lr * (min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


@pytest.mark.parametrize("n,warmup,cooldown,frac", [(20, 3, 5, 0.1), (20, 0, 0, 0.0), (12, 4, 0, 0.5),
                                                    (10, 0, 10, 1.0), (7, 7, 0, 0.2)])
def test_cosine_schedule_is_compressions_lr_at(n, warmup, cooldown, frac):
    for step in range(n):
        got = 1e-3 * lr_factor(step + 1, warmup, n, "cosine", frac, cooldown)
        assert got == pytest.approx(_lr_at(step, 1e-3, n, warmup, cooldown, frac), rel=1e-12, abs=1e-18)


def test_constant_schedule_warms_up_then_cools_down_from_the_peak():
    f = [lr_factor(t, warmup=2, total=8, schedule="constant", min_lr_frac=0.3, cooldown=4) for t in range(1, 9)]
    assert f == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25])
    assert [lr_factor(t, 4) for t in (1, 4, 5, 10**6)] == [0.25, 1.0, 1.0, 1.0]  # the engine's old warm-up


def test_per_member_clipping_is_clip_grad_norm():
    g = torch.Generator().manual_seed(0)
    grads = {"a": torch.randn(3, 4, 5, generator=g), "b": torch.randn(3, 7, generator=g) * 3}
    grads["a"][1] *= 1e-3  # member 1 below the threshold after scaling b down too
    grads["b"][1] *= 1e-3
    clipped = clip_grads(grads, 2.0)
    for i in range(3):
        lone = [grads["a"][i].clone().requires_grad_(), grads["b"][i].clone().requires_grad_()]
        for t in lone:
            t.grad = t.detach().clone()
        torch.nn.utils.clip_grad_norm_(lone, 2.0)
        assert_close_scaled(clipped["a"][i], lone[0].grad, 1e-6, f"a[{i}]")
        assert_close_scaled(clipped["b"][i], lone[1].grad, 1e-6, f"b[{i}]")
    assert torch.equal(clipped["a"][1], grads["a"][1])


def _tiny_gpt(seed: int) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTShape(vocab=14, block=8, layers=1, heads=2, width=8))


@pytest.mark.parametrize("name,fused", [("adamw", True), ("adamw", False), ("sgd", False)])
def test_schedule_clip_and_decay_mask_match_torch_on_gpt(name, fused, monkeypatch):
    """Two GPT members with their own lr and wd, cosine schedule with warm-up and cool-down, clipping and
    no decay on biases/LayerNorms/embeddings = torch.optim.AdamW (or SGD) on each lone GPT, as the
    compression lab trains it."""
    monkeypatch.setattr(BatchedOptimizer, "_fused_ok", fused and BatchedOptimizer._fused_ok)
    lrs, wds, steps = [3e-2, 1e-2], [0.1, 0.5], 12
    sched = dict(warmup=3, total_steps=steps, min_lr_frac=0.1, cooldown=4)
    refs = [_tiny_gpt(s) for s in (0, 1)]
    mask = decay_mask_of(refs[0], refs[0].param_groups(1.0))
    assert any(mask.values()) and not all(mask.values())
    params = {k: torch.stack([dict(r.named_parameters())[k].detach().clone() for r in refs]) for k in mask}
    opt = BatchedOptimizer(params, name, torch.tensor(lrs), torch.tensor(wds), "l2", (0.9, 0.98), 1e-8,
                           0.9 if name == "sgd" else 0.0, schedule="cosine", clip=0.05, decay_mask=mask, **sched)
    g = torch.Generator().manual_seed(3)
    batches = [torch.randint(0, 14, (6, 9), generator=g) for _ in range(steps)]  # (B, T+1) tokens

    def loss_of(model_out, x):
        return torch.nn.functional.cross_entropy(model_out.transpose(1, 2), x[:, 1:])

    for x in batches:
        grads = {k: [] for k in params}
        for i in range(2):
            p_i = {k: v[i].detach().requires_grad_(True) for k, v in params.items()}
            loss = loss_of(torch.func.functional_call(refs[0], p_i, (x[:, :-1],)), x)
            for k, gk in zip(p_i, torch.autograd.grad(loss, list(p_i.values()))):
                grads[k].append(gk)
        opt.step(params, {k: torch.stack(v) for k, v in grads.items()})
    for i, ref in enumerate(refs):
        if name == "adamw":
            topt = torch.optim.AdamW(ref.param_groups(wds[i]), lr=lrs[i], betas=(0.9, 0.98), eps=1e-8)
        else:
            topt = torch.optim.SGD(ref.parameters(), lr=lrs[i], momentum=0.9)
        for step, x in enumerate(batches):
            lr = _lr_at(step, lrs[i], steps, 3, 4, 0.1)
            for grp in topt.param_groups:
                grp["lr"] = lr
            topt.zero_grad()
            loss_of(ref(x[:, :-1]), x).backward()
            torch.nn.utils.clip_grad_norm_(ref.parameters(), 0.05)
            if name == "sgd":  # groklab's SGD decay is decoupled: w·(1 − lr·wd) before the step
                with torch.no_grad():
                    for k, p in ref.named_parameters():
                        p.mul_(1 - lr * wds[i] if mask[k] else 1.0)
            topt.step()
        for k, v in ref.named_parameters():
            assert_close_scaled(params[k][i], v, 1e-4, f"{k}[{i}]")  # a wrong update is >= lr/scale ~ 1e-2


@pytest.mark.parametrize("decay", ["l2", "l2_coupled", "l1", "l1_decoupled"])
def test_unfused_adamw_matches_fused(decay, monkeypatch):
    """The tensor-ops AdamW (GROKLAB_FUSED_ADAM=0, or torch without the kernel) = torch's fused kernel."""
    if not BatchedOptimizer._fused_ok:
        pytest.skip("no fused AdamW kernel in this torch (or GROKLAB_FUSED_ADAM=0)")
    data = modular_task(13, "add", 0.5, False, seed=0)
    model = PairMLP(13, 13, hidden=8, embed_size=6, tied=False)
    out, calls = {}, []
    for fused in (True, False):
        monkeypatch.setattr(BatchedOptimizer, "_fused_ok", fused)
        params = {k: v.requires_grad_(True) for k, v in model.init([0, 1, 2], torch.ones(3)).items()}
        opt = BatchedOptimizer(params, "adamw", torch.tensor(LRS), torch.tensor(WDS), decay, (0.9, 0.98), 1e-8,
                               warmup=3, schedule="cosine", total_steps=20, cooldown=5, clip=1.0,
                               decay_mask={"unembed": False})
        real = opt._step_fused
        monkeypatch.setattr(opt, "_step_fused", lambda p, g, real=real, f=fused: (calls.append(f), real(p, g))[1])
        for _ in range(20):
            train_step(model, params, opt, data.x_train, data.y_train, {})
        out[fused] = params
    assert calls == [True] * 20  # the fused run used the kernel, the other run never did
    for k in out[True]:
        for i in range(3):
            assert_close_scaled(out[False][k][i], out[True][k][i], 1e-5, f"{k}[{i}]")


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_optimizer_state_round_trip_continues_exactly(name):
    data = parity_task(8, 2, 64, 16, True, seed=1)
    model = BitMLP(9, 2, hidden=6)
    kw = dict(momentum=0.9 if name == "sgd" else 0.0, warmup=2, schedule="cosine", total_steps=10, cooldown=3,
              clip=0.5)

    def fresh():
        params = {k: v.requires_grad_(True) for k, v in model.init([0, 1], torch.ones(2)).items()}
        return params, BatchedOptimizer(params, name, torch.tensor(LRS[:2]), torch.tensor(WDS[:2]), **kw)

    a, opt_a = fresh()
    for _ in range(10):
        train_step(model, a, opt_a, data.x_train, data.y_train, {})
    b, opt_b = fresh()
    for _ in range(4):
        train_step(model, b, opt_b, data.x_train, data.y_train, {})
    tensors, meta = opt_b.state_dict()
    c, opt_c = fresh()
    c = {k: v.detach().clone().requires_grad_(True) for k, v in b.items()}
    opt_c.load_state_dict(tensors, json.loads(json.dumps(meta)))
    for _ in range(6):
        train_step(model, c, opt_c, data.x_train, data.y_train, {})
    for k in a:
        assert torch.equal(a[k], c[k]), k


def test_warmup_from_zero_is_torchs_lambdalr_as_nanda_steps_it():
    """optim.warmup_from_zero: the transformer's AdamW under LambdaLR(min(step / 10, 1)), stepped after each
    update as in Nanda's Trainer (update 1 at lr 0, its gradient still in the moments) — member by member."""
    f = [lr_factor(t, warmup=4, from_zero=True) for t in range(1, 7)]
    assert f == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr_factor(1, warmup=4) == 0.25  # the default warm-up is one update ahead
    from groklab.nn.transformer import Transformer
    data = modular_task(11, "add", 0.5, False, seed=0)
    model = Transformer(11, 11, d_model=8, n_heads=2, d_mlp=16, init="normal")
    params = {k: v.requires_grad_(True) for k, v in model.init([0], torch.ones(1)).items()}
    init = {k: v.detach().clone() for k, v in params.items()}
    opt = BatchedOptimizer(params, "adamw", torch.tensor([1e-2]), torch.tensor([1.0]), "l2", (0.9, 0.98), 1e-8,
                           warmup=10, warmup_from_zero=True)
    steps = 14
    for s in range(steps):
        train_step(model, params, opt, data.x_train, data.y_train, {})
        if s == 0:  # lr 0: nothing moved
            assert all(torch.equal(params[k].detach(), init[k]) for k in init)
    ref = {k: v[0].clone().requires_grad_(True) for k, v in init.items()}
    topt = torch.optim.AdamW(list(ref.values()), lr=1e-2, betas=(0.9, 0.98), eps=1e-8, weight_decay=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(topt, lambda step: min(step / 10, 1))
    for _ in range(steps):
        topt.zero_grad()
        logits = model.forward({k: v[None] for k, v in ref.items()}, data.x_train)  # (1, N, C)
        member_losses(logits, data.y_train, "ce").sum().backward()
        topt.step()
        sched.step()
    for k, v in ref.items():
        assert_close_scaled(params[k][0], v, 1e-4, k)  # one update early would be off by >= lr / 10
