"""Seed 002's text format: generation, round trip, parsing errors."""

import pytest
import torch

from groklab import GroklabError
from groklab.data.addition import VOCAB, Addition, format_text, parse_lines, to_text


def test_format_and_sums():
    fmt = Addition()
    x = fmt.sample(500, torch.Generator().manual_seed(0))
    assert x.shape == (500, 29) and fmt.seq_len == 29 and fmt.n_targets == 28
    assert VOCAB == "0123456789se+="
    for line in to_text(x):
        assert fmt.line_pattern().fullmatch(line)
        a, b, c = int(line[1:9]), int(line[10:18]), int(line[19:28])
        assert a + b == c and len(line[19:28]) == 9


def test_planted_carry_chains():
    """The carry_boost curriculum: every example still adds up and holds a run of 9-sums; chain lengths
    cover 1..n_digits, so long carries (rare under the seed's distribution) are common."""
    x = Addition().sample(2000, torch.Generator().manual_seed(1), chains=True)
    longest = []
    for line in to_text(x):
        a, b = line[1:9], line[10:18]
        assert int(a) + int(b) == int(line[19:28])
        runs = "".join("9" if int(p) + int(q) == 9 else "." for p, q in zip(a, b))
        longest.append(max(len(r) for r in runs.split(".")))
    assert min(longest) >= 1 and max(longest) == 8
    assert sum(n >= 5 for n in longest) > 500  # uniform sampling: about 4 in 100,000


def test_reverse_and_swap():
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    plain = to_text(Addition().sample(50, g()))
    rev = to_text(Addition(reverse=True).sample(50, g()))
    swp = to_text(Addition(swap=True).sample(50, g()))
    for p, r, s in zip(plain, rev, swp):
        assert r[:19] == p[:19] and r[19:28] == p[19:28][::-1]
        assert s[1:9] == p[10:18] and s[10:18] == p[1:9] and s[19:] == p[19:]


def test_text_round_trip():
    fmt = Addition(n_digits=5)
    x = fmt.sample(100, torch.Generator().manual_seed(1))
    for trailing in (True, False):
        y, tr = parse_lines(format_text(x, trailing), fmt)
        assert tr == trailing and torch.equal(x, y)


def test_same_seed_same_data():
    a = Addition().sample(64, torch.Generator().manual_seed(7))
    b = Addition().sample(64, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("text,needle", [
    ("s12345678+11111111=023456789e\ns1234x678+11111111=023456789e\n", "line 2 is malformed"),
    ("s1234x678+11111111=023456789e\n", "'x' is not in the vocabulary"),
    ("s12345678+11111111=23456789e\n", "expected s<8 digits>"),
    ("s12345678+11111111=023456789e\r\n", "line 1"),
    ("s12345678+11111111=023456789e\n\n", "line 2"),
    ("", "empty file"),
])
def test_malformed_lines(text, needle):
    with pytest.raises(GroklabError, match=None) as e:
        parse_lines(text, Addition(), "in.txt")
    assert needle in str(e.value) and str(e.value).startswith("in.txt:")


def test_lr_schedule_warmup_cosine_cooldown():
    from groklab.engine.schedule import lr_factor
    from groklab.labs.compression import config as cconfig
    cfg = cconfig.load(overrides=["train.steps=100", "optim.lr=1.0", "optim.warmup=10", "optim.min_lr_frac=0.1",
                                  "optim.cooldown=20", "optim.schedule=cosine"])
    o = cfg.optim
    lrs = [o.lr * lr_factor(s + 1, o.warmup, 100, o.schedule, o.min_lr_frac, o.cooldown) for s in range(100)]
    assert lrs[0] == 0.1 and lrs[9] == 1.0  # warm-up
    assert abs(lrs[10] - 1.0) < 1e-12 and abs(lrs[79] - 0.1) < 1e-3  # cosine over steps 10..80
    assert lrs[80] == 0.1 and abs(lrs[99] - 0.1 / 20) < 1e-12  # linear to 0 over the last 20
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # never rises after the warm-up
