"""Mini-batch epochs, per-member data and chunked evaluation in the engine's trainer."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from groklab.data.members import member_data
from groklab.data.parity import parity_task
from groklab.engine.batches import MemberEpochs
from groklab.engine.ensemble import ModuleEnsemble
from groklab.engine.evaluation import evaluate, member_losses
from groklab.engine.trainer import Member, train
from groklab.nn.mlp import BitMLP
from tests.numerics import assert_close_scaled

CPU = torch.device("cpu")
MEMBERS = [Member(0, 1e-2, 0.2), Member(1, 3e-3, 0.5), Member(2, 1e-2, 0.0, 2.0)]


def optim_cfg(**kw):
    """An optim section with every field the engine reads (independent of groklab.config)."""
    d = dict(name="adamw", lr=1e-2, weight_decay=1.0, decay="l2", beta1=0.9, beta2=0.98, eps=1e-8, momentum=0.0,
             warmup=0, grokfast="none", grokfast_alpha=0.98, grokfast_lambda=2.0, grokfast_window=5,
             orthograd=False)
    return SimpleNamespace(**{**d, **kw})


def train_cfg(**kw):
    d = dict(steps=24, batch_size=0, seeds=3, seed=0, loss="ce", log_every=8, snapshots=0, early_stop=True,
             device="cpu", threads=1, member_chunk=0, softmax="softmax", logits_dtype="float32", progress_every=0)
    return SimpleNamespace(**{**d, **kw})


def parity(n_train=40, n_test=24):
    return parity_task(8, 2, n_train, n_test, True, seed=1)  # x (N, 9) in {-1, +1}


def mlp_ensemble():
    return ModuleEnsemble(lambda: nn.Sequential(nn.Linear(9, 8), nn.ReLU(), nn.Linear(8, 2)))


def same_metrics(a, b, rel=1e-5):
    for k in a.metrics:
        assert np.isnan(a.metrics[k]).tolist() == np.isnan(b.metrics[k]).tolist(), k
        ok = ~np.isnan(a.metrics[k])
        assert_close_scaled(torch.from_numpy(a.metrics[k][ok]), torch.from_numpy(b.metrics[k][ok]), rel, k)


def test_epochs_see_every_example_once_and_reshuffle():
    counts, b = torch.tensor([10, 7, 10]), 4
    s = MemberEpochs(counts, b, [5, 6, 7])
    seen = {i: [] for i in range(3)}
    for _ in range(6):
        idx, valid = s.next()  # (M, B)
        for i in range(3):
            seen[i].append(idx[i][valid[i]].tolist())
    for i, n in enumerate(counts.tolist()):
        per_epoch = -(-n // b)  # steps per epoch, the last one partial (masked)
        rows = [r for batch in seen[i] for r in batch]
        first, second = rows[:n], rows[n:2 * n]
        assert sorted(first) == list(range(n)) and first != sorted(first)
        assert len(seen[i][per_epoch - 1]) == n - b * (per_epoch - 1)  # the masked last batch
        if len(second) == n:
            assert sorted(second) == list(range(n)) and second != first  # reshuffled
    alone = MemberEpochs(counts[1:2], b, [6])  # a member's order does not depend on the others
    for step in range(6):
        idx, valid = alone.next()
        assert idx[0][valid[0]].tolist() == seen[1][step]


def test_epoch_orders_are_member_datas():
    base = parity(30)
    md = member_data(base, [30, 30], [3, 4])
    s = MemberEpochs(md.count, 6, md.seeds)
    for epoch in range(2):
        rows = torch.cat([s.next()[0] for _ in range(5)], 1)  # (M, 30): one epoch
        assert torch.equal(rows, md.epoch_order(epoch))


def test_draws_is_the_default_batching_and_epochs_differ():
    data = parity()
    a = train(BitMLP(9, 2, 8), data, MEMBERS, optim_cfg(), train_cfg(batch_size=8), CPU)
    b = train(BitMLP(9, 2, 8), data, MEMBERS, optim_cfg(), train_cfg(batch_size=8, batching="draws"), CPU)
    c = train(BitMLP(9, 2, 8), data, MEMBERS, optim_cfg(), train_cfg(batch_size=8, batching="epochs"), CPU)
    for k in a.params:
        assert torch.equal(a.params[k], b.params[k]) and not torch.equal(a.params[k], c.params[k])


@pytest.mark.parametrize("make", [lambda: BitMLP(9, 2, 8), mlp_ensemble], ids=["shared-input model", "per_member"])
def test_epoch_training_is_each_member_alone_with_its_own_order(make):
    """Batched epochs = each member trained alone (the shared-input model goes through the picked pool)."""
    data, cfg = parity(), train_cfg(batch_size=12, batching="epochs")  # 40 = 3 x 12 + a masked 4
    both = train(make(), data, MEMBERS, optim_cfg(), train_cfg(batch_size=12, batching="epochs", member_chunk=2), CPU)
    for i, m in enumerate(MEMBERS):
        alone = train(make(), data, [m], optim_cfg(), cfg, CPU)
        for k in both.params:
            assert_close_scaled(both.params[k][i], alone.params[k][0], 1e-5, f"{k}[{i}]")
        for k, v in both.metrics.items():
            assert_close_scaled(torch.from_numpy(v[i]), torch.from_numpy(alone.metrics[k][0]), 1e-5, k)


def test_epochs_match_a_lone_module_with_torch_adamw():
    """Per-member epochs through ModuleEnsemble = a lone module + torch.optim.AdamW on that member's own
    batches; the last batch of an epoch averages over its real rows only."""
    data, cfg = parity(), train_cfg(batch_size=12, batching="epochs", steps=9)
    res = train(mlp_ensemble(), data, MEMBERS[:2], optim_cfg(), cfg, CPU)
    for i, m in enumerate(MEMBERS[:2]):
        ref = mlp_ensemble().build(m.seed)
        opt = torch.optim.AdamW(ref.parameters(), lr=m.lr, betas=(0.9, 0.98), eps=1e-8, weight_decay=m.weight_decay)
        order = MemberEpochs(torch.tensor([40]), 12, [m.seed])
        for _ in range(9):
            idx, valid = order.next()
            rows = idx[0][valid[0]]
            opt.zero_grad()
            member_losses(ref(data.x_train[rows])[None], data.y_train[rows]).sum().backward()
            opt.step()
        for k, v in ref.named_parameters():
            assert_close_scaled(res.params[k][i], v, 1e-4, f"{k}[{i}]")


@pytest.mark.parametrize("batching,batch_size", [("draws", 0), ("epochs", 8), ("draws", 8)])
@pytest.mark.parametrize("make", [lambda: BitMLP(9, 2, 8), mlp_ensemble], ids=["shared-input model", "per_member"])
def test_member_data_trains_each_member_as_if_alone(make, batching, batch_size):
    """Per-member subsets of different sizes (full batch = masked mean; mini-batches per member)."""
    base = parity(48)
    sizes, seeds = [20, 33, 48], [m.seed for m in MEMBERS]
    cfg = train_cfg(batch_size=batch_size, batching=batching)
    both = train(make(), member_data(base, sizes, seeds), MEMBERS, optim_cfg(), cfg, CPU)
    for i, m in enumerate(MEMBERS):
        alone = train(make(), member_data(base, sizes[i:i + 1], seeds[i:i + 1]), [m], optim_cfg(), cfg, CPU)
        for k in both.params:
            assert_close_scaled(both.params[k][i], alone.params[k][0], 1e-5, f"{k}[{i}]")
        for k, v in both.metrics.items():
            assert_close_scaled(torch.from_numpy(v[i]), torch.from_numpy(alone.metrics[k][0]), 1e-5, k)
    if batching == "draws" and not batch_size:  # full batch on its own rows = shared training on those rows
        md = member_data(base, sizes[:1], seeds[:1])
        own = parity_task(8, 2, 48, 24, True, seed=1)
        own.x_train, own.y_train = md.x[0], md.y[0]
        shared = train(make(), own, MEMBERS[:1], optim_cfg(), cfg, CPU)
        for k in shared.params:
            assert_close_scaled(both.params[k][0], shared.params[k][0], 1e-5, k)


@pytest.mark.parametrize("make", [lambda: BitMLP(9, 2, 8), mlp_ensemble], ids=["shared-input model", "per_member"])
def test_per_member_test_sets(make):
    """A condition that changes the test inputs (pixel permutation): each member is tested on its own."""
    base, sizes, seeds = parity(48), [20, 33, 48], [m.seed for m in MEMBERS]
    md = member_data(base, sizes, seeds, "permute_pixels")
    assert md.x_test.stride(0) != 0
    cfg = train_cfg(batch_size=8, batching="epochs", eval_examples=10)
    both = train(make(), md, MEMBERS, optim_cfg(), cfg, CPU)
    for i, m in enumerate(MEMBERS):
        alone = train(make(), member_data(base, sizes[i:i + 1], seeds[i:i + 1], "permute_pixels"), [m], optim_cfg(),
                      cfg, CPU)
        for k, v in both.metrics.items():
            assert_close_scaled(torch.from_numpy(v[i]), torch.from_numpy(alone.metrics[k][0]), 1e-5, k)
    assert np.allclose(both.metrics["test_acc"] * 10, (both.metrics["test_acc"] * 10).round())  # 10 examples


@pytest.mark.parametrize("make", [lambda: BitMLP(9, 2, 8), mlp_ensemble], ids=["shared-input model", "per_member"])
def test_chunked_evaluation_equals_one_pass(make):
    model = make()
    params = model.init(list(range(5)), torch.ones(5))
    base = parity(64, 50)
    one = evaluate(model, params, base.x_test, base.y_test, {})
    for max_elems in (64 * 7, 64 * 50 * 2):  # 7 examples x 1 member at a time; all examples, 2 members
        chunked = evaluate(model, params, base.x_test, base.y_test, {"reduction": "pair"}, max_elems)
        assert_close_scaled(chunked[0], one[0] / 2, 1e-6, "loss")
        assert torch.equal(chunked[1], one[1])
    md = member_data(base, [10, 64, 30, 64, 5], list(range(5)))
    rows = torch.tensor([4, 0, 2, 1, 3])  # member j of params owns data row rows[j]
    ref = [evaluate(model, {k: v[j:j + 1] for k, v in params.items()}, md.x[r, :int(md.count[r])],
                    md.y[r, :int(md.count[r])], {}) for j, r in enumerate(rows.tolist())]
    for max_elems in (2**25, 64 * 9, 64):
        loss, acc = evaluate(model, params, md.x, md.y, {}, max_elems, per_member=True, mask=md.mask, rows=rows)
        assert_close_scaled(loss, torch.cat([r[0] for r in ref]), 1e-6, f"loss {max_elems}")
        assert_close_scaled(acc, torch.cat([r[1] for r in ref]), 1e-6, f"acc {max_elems}")


def test_eval_examples_is_a_fixed_subset():
    data = parity(64, 50)
    full = train(BitMLP(9, 2, 8), data, MEMBERS, optim_cfg(), train_cfg(steps=8), CPU)
    sub = train(BitMLP(9, 2, 8), data, MEMBERS, optim_cfg(), train_cfg(steps=8, eval_examples=20), CPU)
    again = train(BitMLP(9, 2, 8), data, MEMBERS, optim_cfg(), train_cfg(steps=8, eval_examples=20), CPU)
    for k in full.params:
        assert torch.equal(full.params[k], sub.params[k])  # training is untouched
    assert np.array_equal(sub.metrics["test_loss"], again.metrics["test_loss"])
    assert not np.array_equal(sub.metrics["test_loss"], full.metrics["test_loss"])
    assert np.array_equal(sub.metrics["l2_norm"], full.metrics["l2_norm"])
    acc = sub.metrics["test_acc"] * 20  # accuracies over 20 examples are multiples of 1/20
    assert np.allclose(acc, acc.round())
    big = train(BitMLP(9, 2, 8), data, MEMBERS, optim_cfg(), train_cfg(steps=8, eval_examples=500), CPU)
    same_metrics(big, full, 0)
