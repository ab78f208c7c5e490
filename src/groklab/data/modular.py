"""Modular arithmetic a ∘ b mod p (Power et al. 2022; PAIR's a+b mod 67)."""

from __future__ import annotations

import torch

from groklab import GroklabError
from groklab.data import TaskData


def apply_op(op: str, a: torch.Tensor, b: torch.Tensor, p: int) -> torch.Tensor:
    """c = a ∘ b mod p for int64 tensors. Division is a · b^(p-2) (b ≠ 0, p prime)."""
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
    raise GroklabError(f"task.op: unknown operation {op!r}")


def all_pairs(p: int, op: str, only_a_le_b: bool) -> torch.Tensor:
    """Every valid (a, b) pair in row-major order. # (n_pairs, 2)"""
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    keep = torch.ones_like(a, dtype=torch.bool)
    if only_a_le_b:
        keep &= a <= b
    if op == "div":
        keep &= b != 0
    return torch.stack([a[keep], b[keep]], dim=1)


def modular_task(p: int, op: str, train_fraction: float, only_a_le_b: bool, seed: int) -> TaskData:
    """Split all pairs into train/test with a permutation drawn from `seed` (PAIR: int(frac * n))."""
    pairs = all_pairs(p, op, only_a_le_b)  # (n_pairs, 2)
    labels = apply_op(op, pairs[:, 0], pairs[:, 1], p)  # (n_pairs,)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(pairs), generator=g)
    n_train = int(train_fraction * len(pairs))
    if n_train < 1 or n_train >= len(pairs):
        raise GroklabError(f"data.train_fraction: {train_fraction} leaves an empty train or test set "
                           f"({len(pairs)} pairs)")
    tr, te = perm[:n_train], perm[n_train:]
    return TaskData(pairs[tr], labels[tr], pairs[te], labels[te], n_classes=p, n_tokens=p)
