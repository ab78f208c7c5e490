"""The entropy floor: per-position conditional entropies from the generator, checked by enumeration."""

import itertools
import math

import numpy as np
import pytest
import torch

from groklab.data.addition import Addition


def test_seed_floors():
    assert Addition().floor() == pytest.approx(16 * math.log(10) / 28, abs=1e-12)  # 1.3158
    assert Addition(sampling="leading19").floor() == pytest.approx((2 * math.log(9) + 14 * math.log(10)) / 28)
    assert round(Addition().floor(), 4) == 1.3158 and round(Addition(sampling="leading19").floor(), 4) == 1.3082


def test_per_position_sums_and_zeros():
    fmt = Addition()
    fp = fmt.floor_per_target()
    assert fp.shape == (28,)
    assert fp.sum() == pytest.approx(16 * math.log(10))
    assert np.all(fp[fmt.answer_slice] == 0) and fp[8] == 0 and fp[17] == 0  # answer, +, =
    lead = Addition(sampling="leading19").floor_per_target()
    assert lead[0] == pytest.approx(math.log(9)) and lead[9] == pytest.approx(math.log(9))
    assert lead.sum() == pytest.approx(2 * math.log(9) + 14 * math.log(10))


def _enumerated_floor(fmt: Addition) -> np.ndarray:
    """H(x_t | x_<t) for every target, from the exact joint distribution of whole sequences."""
    n = fmt.n_digits
    probs = [fmt.digit_probs(k) for k in range(n)]
    seqs: dict[str, float] = {}
    for da in itertools.product(range(10), repeat=n):
        for db in itertools.product(range(10), repeat=n):
            p = np.prod([probs[k][da[k]] * probs[k][db[k]] for k in range(n)])
            if p == 0:
                continue
            a, b = int("".join(map(str, da))), int("".join(map(str, db)))
            c = str(a + b).zfill(n + 1)
            c = c[::-1] if fmt.reverse else c
            s = "s" + "".join(map(str, da)) + "+" + "".join(map(str, db)) + "=" + c + "e"
            seqs[s] = seqs.get(s, 0.0) + p

    def h_prefix(k: int) -> float:
        dist: dict[str, float] = {}
        for s, p in seqs.items():
            dist[s[:k]] = dist.get(s[:k], 0.0) + p
        return -sum(p * math.log(p) for p in dist.values())

    L = fmt.seq_len
    return np.array([h_prefix(t + 2) - h_prefix(t + 1) for t in range(L - 1)])


@pytest.mark.parametrize("sampling", ["uniform", "leading19"])
@pytest.mark.parametrize("reverse", [False, True])
def test_floor_matches_enumeration(sampling, reverse):
    fmt = Addition(n_digits=2, sampling=sampling, reverse=reverse)
    np.testing.assert_allclose(fmt.floor_per_target(), _enumerated_floor(fmt), atol=1e-9)


def test_sampler_follows_digit_probs():
    fmt = Addition(sampling="leading19")
    x = fmt.sample(20_000, torch.Generator().manual_seed(0))
    lead = torch.bincount(x[:, 1], minlength=10).double() / len(x)
    assert lead[0] == 0 and torch.allclose(lead[1:], torch.full((9,), 1 / 9, dtype=torch.float64), atol=0.01)
    other = torch.bincount(x[:, 2], minlength=10).double() / len(x)
    assert torch.allclose(other, torch.full((10,), 0.1, dtype=torch.float64), atol=0.01)
    uni = torch.bincount(Addition().sample(20_000, torch.Generator().manual_seed(1))[:, 1], minlength=10)
    assert uni[0] > 1500  # zero-padded uniform operands do start with 0


def test_random_answer_floor():
    fmt = Addition(n_digits=3, answer="random")
    assert fmt.floor_per_target()[fmt.answer_slice][:-1] == pytest.approx([math.log(10)] * 4)
