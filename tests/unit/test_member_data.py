"""Per-member data: nested subsets, each condition's defining property, MemberData layout and epoch orders."""

import pytest
import torch

from groklab import GroklabError
from groklab.data import TaskData
from groklab.data.members import (
    Condition,
    MemberData,
    gaussian_inputs,
    label_noise,
    member_data,
    member_subsets,
    merge_classes,
    permute_pixels,
    random_labels,
)


def image_task(n_train=300, n_test=40, classes=10, shape=(3, 4, 5), seed=0) -> TaskData:
    g = torch.Generator().manual_seed(seed)
    return TaskData(torch.rand(n_train, *shape, generator=g), torch.randint(0, classes, (n_train,), generator=g),
                    torch.rand(n_test, *shape, generator=g), torch.randint(0, classes, (n_test,), generator=g),
                    n_classes=classes)


def test_member_subsets_nested_padded_and_seeded():
    index, count = member_subsets(100, [10, 30, 30], [5, 5, 6])
    assert index.shape == (3, 30) and index.dtype == torch.int64 and count.tolist() == [10, 30, 30]
    assert torch.equal(index[0, :10], index[1, :10])  # same seed: the larger subset contains the smaller
    assert not torch.equal(index[1], index[2])
    assert (index[0, 10:] == 0).all()
    for row, n in zip(index, count):
        assert len(set(row[:n].tolist())) == n and 0 <= row.min() and row.max() < 100
    again, _ = member_subsets(100, [30], [5])
    assert torch.equal(again[0], index[1])
    with pytest.raises(GroklabError):
        member_subsets(100, [101], [0])
    with pytest.raises(GroklabError):
        member_subsets(100, [10, 20], [0])


def test_random_labels_uniform_and_deterministic():
    y = torch.zeros(20000, dtype=torch.int64)
    x = torch.zeros(20000, 2)
    _, r = random_labels(x, y, seed=3, n_classes=10)
    freq = torch.bincount(r, minlength=10).double() / len(r)
    assert (freq - 0.1).abs().max() < 0.01
    assert torch.equal(r, random_labels(x, y, 3, 10)[1]) and not torch.equal(r, random_labels(x, y, 4, 10)[1])


@pytest.mark.parametrize("p", [0.0, 0.15, 0.5, 1.0])
def test_label_noise_exclude_true_never_keeps_the_true_label(p):
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 10, (20000,), generator=g)
    _, noisy = label_noise(None, y, seed=1, n_classes=10, p=p, exclude_true=True)
    changed = noisy != y
    assert abs(changed.double().mean().item() - p) < 0.012  # every replaced label is wrong: changed share = p
    assert noisy.min() >= 0 and noisy.max() < 10
    # replacements are uniform over the 9 incorrect classes: offsets (new - true) mod 10 cover 1..9 evenly
    if p >= 0.5:
        offsets = ((noisy - y) % 10)[changed]
        freq = torch.bincount(offsets, minlength=10).double() / len(offsets)
        assert freq[0] == 0 and (freq[1:] - 1 / 9).abs().max() < 0.015


def test_label_noise_uniform_class_keeps_some_true_labels():
    y = torch.full((20000,), 3, dtype=torch.int64)
    _, noisy = label_noise(None, y, seed=2, n_classes=10, p=0.5, exclude_true=False)
    assert abs((noisy != y).double().mean().item() - 0.5 * 0.9) < 0.012
    assert abs((noisy == y).double().mean().item() - (0.5 + 0.5 * 0.1)) < 0.012


def test_gaussian_inputs_match_mean_and_std():
    g = torch.Generator().manual_seed(0)
    x = 3.0 + 2.0 * torch.rand(20000, 6, generator=g) * torch.arange(1, 7)  # (N, 6) features of different scale
    z, _ = gaussian_inputs(x, None, seed=4)
    assert z.shape == x.shape and z.dtype == x.dtype
    torch.testing.assert_close(z.mean(0), x.mean(0), atol=0.05 * x.std(0).max().item(), rtol=0)
    torch.testing.assert_close(z.std(0), x.std(0), rtol=0.03, atol=0)
    # Gaussian: about 68% within one std of the mean (uniform data would give ~58%)
    inside = ((z - x.mean(0)).abs() < x.std(0)).double().mean().item()
    assert abs(inside - 0.6827) < 0.01
    with pytest.raises(GroklabError):
        gaussian_inputs(torch.zeros(4, 2, dtype=torch.int64), None, seed=0)


def test_permute_pixels_one_permutation_channels_together():
    n, c, h, w = 7, 3, 4, 5
    code = torch.arange(h * w).float().reshape(1, 1, h, w)  # pixel position id
    x = code + 100 * torch.arange(c).reshape(1, c, 1, 1) + 1000 * torch.arange(n).reshape(n, 1, 1, 1)
    xp, _ = permute_pixels(x, None, seed=9)
    perm = (xp[0, 0].flatten() % 100).long()
    assert sorted(perm.tolist()) == list(range(h * w)) and perm.tolist() != list(range(h * w))
    expected = x.reshape(n, c, h * w)[:, :, perm].reshape(n, c, h, w)
    assert torch.equal(xp, expected)  # every example and every channel moved by the same permutation
    test_x = x[:2] + 0.5
    assert torch.equal((permute_pixels(test_x, None, seed=9)[0][1, 2].flatten() % 100).floor().long(), perm)
    flat, _ = permute_pixels(torch.arange(12.0).reshape(2, 6), None, seed=1)
    assert sorted(flat[0].tolist()) == list(range(6)) and torch.equal(flat[1] - flat[0], torch.full((6,), 6.0))


def test_merge_classes_balanced_consistent_map():
    y = torch.arange(10).repeat(5)  # (50,)
    _, m = merge_classes(None, y, seed=2, n_classes=10, k=3)
    mapping = m[:10]
    assert torch.equal(m, mapping.repeat(5))  # one class -> one merged class
    assert sorted(torch.bincount(mapping, minlength=3).tolist()) == [3, 3, 4]
    assert any(not torch.equal(merge_classes(None, y, seed=s, n_classes=10, k=3)[1][:10], mapping) for s in (3, 4))


def test_member_data_semantic_layout_and_shared_test():
    base = image_task()
    md = member_data(base, [20, 50], [0, 1])
    assert md.x.shape == (2, 50, 3, 4, 5) and md.y.shape == (2, 50) and md.n_classes == 10
    assert md.mask.sum(1).tolist() == [20, 50] and md.count.tolist() == [20, 50]
    assert torch.equal(md.x[0, :20], base.x_train[md.index[0, :20]]) and (md.x[0, 20:] == 0).all()
    assert torch.equal(md.y[1], base.y_train[md.index[1]]) and torch.equal(md.y, md.y_true)
    assert md.x_test.shape == (2, 40, 3, 4, 5) and md.x_test.stride(0) == 0  # a view, not M copies
    moved = md.to("cpu")
    assert moved.x_test.stride(0) == 0 and torch.equal(moved.x_test[1], base.x_test)
    # full-batch masked mean: padded rows do not count
    per_row = torch.ones(2, 50)
    per_row[0, 20:] = 1e6
    assert torch.allclose((per_row * md.mask).sum(1) / md.count, torch.ones(2))


def test_member_data_conditions_are_nested_in_n():
    base = image_task()
    for cond in ("random_labels", "label_noise:p=0.3,exclude_true=1", "gaussian_inputs", "permute_pixels"):
        md = member_data(base, [40, 200], [8, 8], cond)
        assert torch.equal(md.x[0, :40], md.x[1, :40]) and torch.equal(md.y[0, :40], md.y[1, :40]), cond


def test_member_data_test_sets_per_condition():
    base = image_task()
    md = member_data(base, [50, 50], [0, 1], ["label_noise:p=0.5", "permute_pixels"])
    assert torch.equal(md.x_test[0], base.x_test) and torch.equal(md.y_test[0], base.y_test)  # clean test set
    assert (md.y[0] != md.y_true[0]).any()
    # member 1: the permutation that moved its train inputs moved its test inputs too
    x_tr, _ = permute_pixels(base.x_train, base.y_train, seed=1)
    x_te, _ = permute_pixels(base.x_test, base.y_test, seed=1)
    assert torch.equal(md.x[1], x_tr[md.index[1]]) and torch.equal(md.x_test[1], x_te)
    merged = member_data(base, [50], [3], Condition("merge_classes", k=4))
    assert merged.n_classes == 4 and merged.y.max() < 4 and merged.y_test.max() < 4
    lut = {}
    for old, new in zip(torch.cat([merged.y_true[0], base.y_test]).tolist(),
                        torch.cat([merged.y[0], merged.y_test[0]]).tolist()):
        assert lut.setdefault(old, new) == new  # train and test share one class map


def test_epoch_order_permutes_each_members_rows():
    md = member_data(image_task(), [7, 30], [0, 1])
    o0, o1 = md.epoch_order(0), md.epoch_order(1)
    assert o0.shape == (2, 30)
    assert sorted(o0[0, :7].tolist()) == list(range(7)) and (o0[0, 7:] == 0).all()
    assert sorted(o0[1].tolist()) == list(range(30))
    assert not torch.equal(o0[1], o1[1]) and torch.equal(o0, md.epoch_order(0))


def test_condition_parse_and_errors():
    assert Condition.parse("label_noise:p=0.15,exclude_true=1") == Condition("label_noise", p=0.15, exclude_true=True)
    assert Condition.parse("merge_classes:k=5").k == 5 and Condition.parse("semantic") == Condition()
    for bad in ("nonsense", "label_noise:p=2", "label_noise:q=1", "merge_classes:k=0", "label_noise:p=x"):
        with pytest.raises(GroklabError):
            Condition.parse(bad)
    with pytest.raises(GroklabError, match="k = 20"):
        member_data(image_task(), [10], [0], "merge_classes:k=20")
    with pytest.raises(GroklabError):
        MemberData.build(image_task(), *member_subsets(300, [10], [0]), seeds=[0, 1])
