"""Power et al.'s operations as task options: each op against a direct definition; S5 composition."""

import itertools

import pytest
import torch

from groklab.data.modular import all_pairs, apply_op, modular_task, s5_permutations

POLY = {
    "x2+y2": lambda a, b: a * a + b * b,
    "x2+xy+y2": lambda a, b: a * a + a * b + b * b,
    "x2+xy+y2+x": lambda a, b: a * a + a * b + b * b + a,
    "x3+xy": lambda a, b: a**3 + a * b,
    "x3+xy2+y": lambda a, b: a**3 + a * b * b + b,
}


@pytest.mark.parametrize("op", sorted(POLY))
def test_polynomial_ops_use_all_pairs_mod_97(op):
    p = 97
    pairs = all_pairs(p, op, only_a_le_b=False)
    assert len(pairs) == p * p
    c = apply_op(op, pairs[:, 0], pairs[:, 1], p)
    want = [POLY[op](a, b) % p for a, b in pairs.tolist()]
    assert c.tolist() == want


def test_division_mod_97_excludes_zero_divisor():
    p = 97
    pairs = all_pairs(p, "div", only_a_le_b=False)
    assert len(pairs) == p * (p - 1) and bool((pairs[:, 1] != 0).all())
    c = apply_op("div", pairs[:, 0], pairs[:, 1], p)
    assert torch.equal(c * pairs[:, 1] % p, pairs[:, 0])


def test_s5_is_composition_of_permutations():
    perms = [tuple(q) for q in itertools.permutations(range(5))]
    assert s5_permutations().tolist() == [list(q) for q in perms]
    pairs = all_pairs(97, "s5", only_a_le_b=False)  # p is ignored
    assert len(pairs) == 120 * 120
    c = apply_op("s5", pairs[:, 0], pairs[:, 1], 97)
    for (a, b), k in zip(pairs.tolist()[::37], c.tolist()[::37]):
        assert perms[k] == tuple(perms[b][perms[a][i]] for i in range(5))  # c = b[a] (openai/grok)
    # a group: identity (index 0) is neutral, every row of the table is a permutation of the 120 elements
    table = c.view(120, 120)
    assert torch.equal(table[0], torch.arange(120)) and torch.equal(table[:, 0], torch.arange(120))
    assert all(len(set(row)) == 120 for row in table.tolist())
    assert not torch.equal(table, table.T)  # S5 is not abelian


def test_s5_task_has_120_tokens_and_a_le_b_works():
    t = modular_task(97, "s5", 0.5, only_a_le_b=True, seed=0)
    assert t.n_tokens == t.n_classes == 120
    n = len(t.x_train) + len(t.x_test)
    assert n == 120 * 121 // 2 and bool((t.x_train[:, 0] <= t.x_train[:, 1]).all())
    assert int(t.y_train.max()) < 120 and int(t.x_train.max()) < 120
