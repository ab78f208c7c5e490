"""Sparse parity (Barak et al. 2022; PAIR): n random bits, label = parity of the first k."""

from __future__ import annotations

import torch

from groklab.data import TaskData


def parity_task(n_bits: int, k_bits: int, n_train: int, n_test: int, bias_column: bool,
                seed: int) -> TaskData:
    """A fixed train set of `n_train` sequences and a fresh test set, bits encoded as ±1.

    Test sequences are drawn independently of the train set (they may repeat a train sequence only
    when n_bits is tiny). With `bias_column` a constant 1 is appended as the last input column.
    """
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(0, 2, (n_train + n_test, n_bits), generator=g)  # (n, n_bits) in {0, 1}
    y = bits[:, :k_bits].sum(dim=1) % 2  # (n,)
    x = bits.float() * 2 - 1  # (n, n_bits) in {-1, +1}
    if bias_column:
        x = torch.cat([x, torch.ones(len(x), 1)], dim=1)  # (n, n_bits + 1)
    return TaskData(x[:n_train], y[:n_train], x[n_train:], y[n_train:], n_classes=2)
