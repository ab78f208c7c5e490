"""Modular arithmetic a ∘ b mod p (Power et al. 2022; PAIR's a+b mod 67)."""

from __future__ import annotations

import itertools
import random

import numpy as np
import torch

from groklab import GroklabError
from groklab.data import TaskData


def apply_op(op: str, a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    """c = a ∘ b mod p for int64 tensors. Division is a · b^(p-2) (b ≠ 0, p prime). Polynomial ops are
    defined on all pairs. s5 (p ignored): a, b index permutations in lexicographic order and
    c = b[a], i.e. c(i) = b(a(i)) (openai/grok's data.py)."""
    if op == "add":
        return (a + b) % p
    if op == "sub":
        return (a - b) % p
    if op == "mul":
        return (a * b) % p
    if op == "div":
        inv = torch.tensor([pow(int(v), p - 2, p) for v in range(p)], dtype=torch.int64)
        return (a * inv[b]) % p
    if op == "x2+y2":
        return (a * a + b * b) % p
    if op == "x2+xy+y2":
        return (a * a + a * b + b * b) % p
    if op == "x3+xy":
        return (a * a * a + a * b) % p
    if op == "x2+xy+y2+x":
        return (a * a + a * b + b * b + a) % p
    if op == "x3+xy2+y":
        return (a * a * a + a * b * b + b) % p
    if op == "s5":  # p ignored: a, b index the 120 permutations of 5 items
        perms = s5_permutations()  # (120, 5)
        return s5_index(perms[b][torch.arange(len(a))[:, None], perms[a]])
    raise GroklabError(f"task.op: unknown operation {op!r}")


S5_ORDER = 120


def s5_permutations() -> torch.Tensor:
    """The permutations of (0..4) in lexicographic order (itertools order, as Power et al.). # (120, 5)"""
    return torch.tensor(list(itertools.permutations(range(5))), dtype=torch.int64)


def s5_index(perms: torch.Tensor) -> torch.Tensor:
    """Lexicographic index of each permutation row. (N, 5) -> (N,)"""
    code = (perms * torch.tensor([5**4, 5**3, 5**2, 5, 1])).sum(1)  # base-5 code, increasing with lex order
    table = (s5_permutations() * torch.tensor([5**4, 5**3, 5**2, 5, 1])).sum(1)  # (120,) sorted
    return torch.searchsorted(table, code)


def n_elements(p: int, op: str) -> int:
    """Vocabulary (= classes) of the task: 120 for s5, else p."""
    return S5_ORDER if op == "s5" else p


def all_pairs(p: int, op: str, only_a_le_b: bool, nonzero_b: bool = False) -> torch.Tensor:
    """Every valid (a, b) pair in row-major order (b = 0 dropped for div, or when nonzero_b). # (n_pairs, 2)"""
    p = n_elements(p, op)
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    keep = torch.ones_like(a, dtype=torch.bool)
    if only_a_le_b:
        keep &= a <= b
    if op == "div" or nonzero_b:
        keep &= b != 0
    return torch.stack([a[keep], b[keep]], dim=1)


def _labelled_pairs(p: int, op: str, train_fraction: float, only_a_le_b: bool, nonzero_b: bool = False):
    """Every valid pair (n_pairs, 2), its labels (n_pairs,) and the train size int(frac · n) (PAIR's), checked."""
    pairs = all_pairs(p, op, only_a_le_b, nonzero_b)  # (n_pairs, 2)
    labels = apply_op(op, pairs[:, 0], pairs[:, 1], p)  # (n_pairs,)
    n_train = int(train_fraction * len(pairs))
    if n_train < 1 or n_train >= len(pairs):
        raise GroklabError(f"data.train_fraction: {train_fraction} leaves an empty train or test set "
                           f"({len(pairs)} pairs)")
    return pairs, labels, n_train


def modular_task(p: int, op: str, train_fraction: float, only_a_le_b: bool, seed: int,
                 nonzero_b: bool = False, python_shuffle: bool = False) -> TaskData:
    """Split all pairs into train/test with a permutation drawn from `seed` (PAIR: int(frac * n)): torch's
    randperm, or with python_shuffle Python's random.seed(seed) + random.shuffle of the row-major pair list
    (Nanda's gen_train_test; shuffling indices permutes exactly as shuffling the pairs)."""
    pairs, labels, n_train = _labelled_pairs(p, op, train_fraction, only_a_le_b, nonzero_b)
    if python_shuffle:
        order = list(range(len(pairs)))
        random.Random(seed).shuffle(order)
        perm = torch.tensor(order, dtype=torch.int64)
    else:
        perm = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed))
    tr, te = perm[:n_train], perm[n_train:]
    n = n_elements(p, op)
    return TaskData(pairs[tr], labels[tr], pairs[te], labels[te], n_classes=n, n_tokens=n)


def modular_member_splits(p: int, op: str, train_fraction: float, only_a_le_b: bool, seeds: list[int]):
    """Every member its own split, as PAIR's seeds: member i's permutation of the pairs is
    numpy's legacy RandomState(seeds[i]).permutation (= np.random.seed(s); np.random.permutation), the first
    int(train_fraction · n) pairs train. Returns a MemberData (x (M, n_train, 2), x_test (M, n_test, 2))."""
    from groklab.data.members import MemberData

    pairs, labels, n_train = _labelled_pairs(p, op, train_fraction, only_a_le_b)
    perms = torch.from_numpy(np.stack([np.random.RandomState(s).permutation(len(pairs)) for s in seeds]))  # (M, n)
    tr, te = perms[:, :n_train], perms[:, n_train:]  # (M, n_train), (M, n_test)
    m = len(seeds)
    return MemberData(x=pairs[tr], y=labels[tr], y_true=labels[tr], mask=torch.ones(m, n_train, dtype=torch.bool),
                      count=torch.full((m,), n_train, dtype=torch.int64), index=tr.clone(), x_test=pairs[te],
                      y_test=labels[te], n_classes=n_elements(p, op), seeds=[int(s) for s in seeds])
