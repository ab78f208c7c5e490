import pytest
import torch

from groklab import GroklabError
from groklab.data.modular import all_pairs, apply_op, modular_task
from groklab.data.parity import parity_task


def test_pair_counts_match_pair():
    assert len(all_pairs(67, "add", only_a_le_b=True)) == 67 * 68 // 2 == 2278
    assert len(all_pairs(67, "add", only_a_le_b=False)) == 67 * 67
    assert len(all_pairs(7, "div", only_a_le_b=False)) == 7 * 6  # b = 0 excluded


def test_pair_split_sizes_and_determinism():
    t = modular_task(67, "add", 0.4, True, seed=0)
    assert len(t.x_train) == 911 and len(t.x_test) == 2278 - 911
    assert torch.equal(t.x_train, modular_task(67, "add", 0.4, True, seed=0).x_train)
    assert not torch.equal(t.x_train, modular_task(67, "add", 0.4, True, seed=1).x_train)
    seen = {tuple(r) for r in t.x_train.tolist()}
    assert not seen & {tuple(r) for r in t.x_test.tolist()}  # disjoint


@pytest.mark.parametrize("op,f", [
    ("add", lambda a, b, p: (a + b) % p), ("sub", lambda a, b, p: (a - b) % p),
    ("mul", lambda a, b, p: a * b % p), ("x2+y2", lambda a, b, p: (a * a + b * b) % p),
    ("x2+xy+y2", lambda a, b, p: (a * a + a * b + b * b) % p), ("x3+xy", lambda a, b, p: (a**3 + a * b) % p),
])
def test_ops_elementwise(op, f):
    p = 11
    pairs = all_pairs(p, op, False)
    c = apply_op(op, pairs[:, 0], pairs[:, 1], p)
    for (a, b), v in zip(pairs.tolist(), c.tolist()):
        assert v == f(a, b, p)


def test_division_inverts_multiplication():
    p = 13
    pairs = all_pairs(p, "div", False)
    c = apply_op("div", pairs[:, 0], pairs[:, 1], p)
    assert torch.equal((c * pairs[:, 1]) % p, pairs[:, 0])


def test_empty_split_rejected():
    with pytest.raises(GroklabError, match="train_fraction"):
        modular_task(3, "add", 0.01, True, 0)


def test_parity_labels_and_bias():
    t = parity_task(n_bits=30, k_bits=3, n_train=500, n_test=100, bias_column=True, seed=3)
    assert t.x_train.shape == (500, 31) and t.x_test.shape == (100, 31)
    assert torch.all(t.x_train[:, -1] == 1)
    bits = (t.x_train[:, :30] > 0).long()
    assert torch.equal(t.y_train, bits[:, :3].sum(1) % 2)
    assert set(t.x_train[:, :30].unique().tolist()) == {-1.0, 1.0}
    t2 = parity_task(30, 3, 500, 100, True, 3)
    assert torch.equal(t.x_train, t2.x_train) and torch.equal(t.y_test, t2.y_test)


def test_python_split_is_nandas_gen_train_test():
    """data.split = 'python': Nanda's gen_train_test (random.seed(seed); random.shuffle of the (i, j, p) list;
    the first int(frac * n) pairs train), pair for pair and in order."""
    import random

    p, frac, seed = 13, 0.3, 0
    pairs = [(i, j, p) for i in range(p) for j in range(p)]
    random.seed(seed)
    random.shuffle(pairs)
    div = int(frac * len(pairs))
    d = modular_task(p, "add", frac, False, seed, python_shuffle=True)
    assert d.x_train.tolist() == [[i, j] for i, j, _ in pairs[:div]]
    assert d.x_test.tolist() == [[i, j] for i, j, _ in pairs[div:]]
    assert d.y_train.tolist() == [(i + j) % p for i, j, _ in pairs[:div]]
    assert d.x_train.tolist() != modular_task(p, "add", frac, False, seed).x_train.tolist()  # not torch's split


def test_nanda_preset_trains_on_nandas_split():
    """The preset's config reaches make_task: his 3,830 training pairs of p = 113 at 30%, in his order."""
    import random

    from groklab.config import load_config
    from groklab.data import make_task

    pairs = [(i, j, 113) for i in range(113) for j in range(113)]
    random.seed(0)
    random.shuffle(pairs)
    d = make_task(load_config("nanda-transformer"))
    assert d.x_train.tolist() == [[i, j] for i, j, _ in pairs[:3830]]


def test_warmup_from_zero_needs_a_warmup():
    from groklab.config import load_config

    with pytest.raises(GroklabError, match="optim.warmup_from_zero"):
        load_config("nanda-transformer", overrides=["optim.warmup=0"])


def test_normal_init_is_untruncated_with_nandas_scale():
    from groklab.nn import init_weight

    g = torch.Generator().manual_seed(0)
    w = init_weight((400, 128), 128, "normal", g)
    assert abs(w.std().item() * 128**0.5 - 1) < 0.02  # randn / sqrt(d_model)
    assert w.abs().max().item() * 128**0.5 > 3.0  # not truncated at 2 std
    t = init_weight((400, 128), 128, "pair", torch.Generator().manual_seed(0))
    assert t.abs().max().item() * 128**0.5 <= 2.0 + 1e-6
