"""Nanda et al.'s progress measures on planted solutions with known frequencies."""

import math

import numpy as np
import pytest
import torch

from groklab.labs.grokking import progress

P, KEYS = 23, (2, 5, 9)


class Planted:
    """A fake ensemble model: member 0 is the planted Fourier solution, member 1 pure noise."""

    def __init__(self, sign=1, beta=4.0):
        self.p, self.sign, self.beta = P, sign, beta
        g = torch.Generator().manual_seed(0)
        i = torch.arange(P, dtype=torch.float64)
        cols = [f(2 * math.pi * k * i / P) for k in KEYS for f in (torch.cos, torch.sin)]
        self.embed = torch.stack([torch.stack(cols, 1), torch.randn(P, 6, generator=g, dtype=torch.float64)])
        self.noise = torch.randn(P * P, P, generator=g, dtype=torch.float64)

    def input_weights(self, params):
        return self.embed  # (2, p, 6)

    def forward(self, params, x):  # -> (2, N, p)
        c = torch.arange(P, dtype=torch.float64)
        s = (x[:, 0] + self.sign * x[:, 1]).double()
        planted = sum(torch.cos(2 * math.pi * k * (s[:, None] - c[None]) / P) for k in KEYS) * self.beta
        return torch.stack([planted, self.noise[x[:, 0] * P + x[:, 1]]])


def _train(sign=1):
    pairs = progress.grid_pairs(P)
    keep = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(1))[:150]
    x = pairs[keep]
    return x, (x[:, 0] + sign * x[:, 1]) % P


def test_key_frequencies_and_gini_from_embedding():
    m = Planted()
    keys = progress.key_frequencies(m.embed)
    assert sorted(keys[0]) == sorted(KEYS)
    assert keys[1] == []  # noise spreads its energy evenly
    out = progress.measures(m, {"w": torch.zeros(2, 3)}, *_train(), "add", {})
    assert out["n_key_freqs"].tolist() == [3.0, 0.0]
    # 6 equal components out of 23 (const + 11 cos + 11 sin): Gini = (23 - 6) / 23
    assert out["fourier_gini"][0].item() == pytest.approx(17 / 23)
    assert out["fourier_gini"][1].item() < 0.4


@pytest.mark.parametrize("op,sign", [("add", 1), ("sub", -1)])
def test_restricted_keeps_and_excluded_removes_planted_logits(op, sign):
    m = Planted(sign)
    x, y = _train(sign)
    full = m.forward(None, x)[0:1]  # (1, N, p)
    mask = torch.zeros(1, P // 2, dtype=torch.bool)
    mask[0, [k - 1 for k in KEYS]] = True
    grid = m.forward(None, progress.grid_pairs(P))[0:1]
    restricted, excluded = progress.split_logits(grid, x, mask, P, sign)
    torch.testing.assert_close(restricted, full)
    torch.testing.assert_close(excluded, torch.zeros_like(full), atol=1e-9, rtol=0)
    out = progress.measures(m, {"w": torch.zeros(2, 3)}, x, y, op, {})
    ce = torch.nn.functional.cross_entropy(full[0], y).item()
    assert out["restricted_loss"][0].item() == pytest.approx(ce, rel=1e-6)
    assert out["excluded_loss"][0].item() == pytest.approx(math.log(P), rel=1e-6)  # uniform
    assert out["restricted_loss"][1].item() > 0.9 * math.log(P)  # noise: nothing kept, near uniform


def test_excluded_keeps_non_key_structure():
    """Logits with a non-key frequency survive exclusion of the key ones."""
    i = torch.arange(P, dtype=torch.float64)
    pairs = progress.grid_pairs(P)
    s = (pairs[:, 0] + pairs[:, 1]).double()
    grid = (torch.cos(2 * math.pi * 3 * (s[:, None] - i) / P) + torch.cos(2 * math.pi * 7 * (s[:, None] - i) / P))[None]
    mask = torch.zeros(1, P // 2, dtype=torch.bool)
    mask[0, 2] = True  # k = 3 is key
    r, e = progress.split_logits(grid, pairs, mask, P)
    torch.testing.assert_close(e[0], torch.cos(2 * math.pi * 7 * (s[:, None] - i) / P))
    torch.testing.assert_close(r[0], torch.cos(2 * math.pi * 3 * (s[:, None] - i) / P))


def test_gini_and_weight_norm():
    g = progress.gini(torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 5.0]]))
    assert g.tolist() == pytest.approx([0.0, 0.75])
    out = progress.measures(object(), {"a": torch.ones(2, 3), "b": torch.full((2, 2), 2.0)}, None, None, "s5", {})
    assert out["sum_sq_weights"].tolist() == [11.0, 11.0]
    assert set(out) == {"sum_sq_weights"}


def test_hook_only_every_k_steps():
    class Cfg:
        class train:
            progress_every = 100

        class task:
            op = "s5"

    class Data:
        x_train = torch.zeros(1, 2, dtype=torch.long)
        y_train = torch.zeros(1, dtype=torch.long)

    hook = progress.on_log_hook(Cfg, object(), Data, {})
    params = {"w": torch.ones(1, 2)}
    assert hook(50, params) == {} and set(hook(200, params)) == {"sum_sq_weights"} and hook(0, params)


def test_drop_step():
    steps = np.arange(0, 100, 10)
    v = np.array([1, 5, 8, 7, 6, 2, 0.5, 0.1, 0.05, 0.01])
    assert progress.drop_step(steps, v) == 60  # first after the peak (8) below 0.8
    assert progress.drop_step(steps, np.full(10, 3.0)) is None
