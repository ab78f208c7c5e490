"""n-digit addition in seed 002's format: `s` a `+` b `=` c `e`, c the sum zero-padded to n+1 digits.

The generator draws every operand digit from an explicit per-digit distribution (`digit_probs`), so
the same table gives both the samples and the exact entropy floor (`floor_per_target`). Vocabulary
order as in the reference repo: 0-9, s, e, +, =.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from groklab import GroklabError

VOCAB = "0123456789se+="
S, E, PLUS, EQ = 10, 11, 12, 13
STOI = {c: i for i, c in enumerate(VOCAB)}
MAX_DIGITS = 17  # sums must fit int64 exactly


@dataclass(frozen=True)
class Addition:
    """The generator of one addition format.

    n_digits: digits per operand; sampling: 'uniform' (0..10^n-1, zero-padded: every digit uniform)
    or 'leading19' (10^(n-1)..10^n-1, as yulundu/compression); reverse: answer digits written
    least-significant first; answer: 'sum' (the task) or 'random' (c uniform noise, for joint
    compression's unrelated pair); swap: write b before a (same problem, written another way)."""

    n_digits: int = 8
    sampling: str = "uniform"
    reverse: bool = False
    answer: str = "sum"
    swap: bool = False

    @property
    def seq_len(self) -> int:
        """Tokens per example: s, n, +, n, =, n+1, e."""
        return 3 * self.n_digits + 5

    @property
    def n_targets(self) -> int:
        return self.seq_len - 1

    @property
    def answer_slice(self) -> slice:
        """Target positions of the answer digits and `e` (targets are seq[1:])."""
        start = 2 * self.n_digits + 2  # target index of the first answer digit
        return slice(start, self.n_targets)

    def digit_probs(self, k: int) -> np.ndarray:
        """Distribution of operand digit k (0 = most significant). # (10,)"""
        p = np.full(10, 0.1)
        if self.sampling == "leading19" and k == 0:
            p = np.array([0.0] + [1 / 9] * 9)
        return p

    # ------------------------------------------------------------------------------------ sampling
    def sample(self, n: int, g: torch.Generator, chains: bool = False) -> torch.Tensor:
        """n fresh examples as token ids. # (n, seq_len) int64

        chains: plant a carry chain in every example (a curriculum, not the seed's distribution): a run
        of L consecutive digit pairs with a_i + b_i = 9, L uniform in 1..n_digits at a uniform offset."""
        nd = self.n_digits
        probs = torch.tensor(np.stack([self.digit_probs(k) for k in range(nd)]), dtype=torch.float64)
        draw = torch.multinomial(probs.repeat(2, 1), n, replacement=True, generator=g)  # (2nd, n)
        a, b = draw[:nd].T, draw[nd:].T  # (n, nd) digits, most significant first
        if chains:
            length = torch.randint(1, nd + 1, (n, 1), generator=g)  # (n, 1)
            start = (torch.rand(n, 1, generator=g) * (nd - length + 1)).long()  # (n, 1) in 0..nd-L
            i = torch.arange(nd)  # (nd,)
            b = torch.where((i >= start) & (i < start + length), 9 - a, b)
        if self.answer == "sum":
            c = digits(to_int(a) + to_int(b), nd + 1)  # (n, nd+1)
        else:
            c = torch.randint(0, 10, (n, nd + 1), generator=g)
        if self.reverse:
            c = c.flip(1)
        x, y = (b, a) if self.swap else (a, b)
        col = lambda v: torch.full((n, 1), v, dtype=torch.int64)  # noqa: E731
        return torch.cat([col(S), x, col(PLUS), y, col(EQ), c, col(E)], dim=1)

    # ------------------------------------------------------------------------------------ floor
    def floor_per_target(self) -> np.ndarray:
        """Entropy (nats) of each target given its prefix under this generator. # (n_targets,)

        Operand digits are drawn independently, so digit k's conditional entropy is the entropy of
        its own distribution; `+`, `=`, `e` are fixed and the answer is a function of the operands
        (zero entropy) unless answer='random' (ln 10 per digit)."""
        nd = self.n_digits
        h_op = [entropy(self.digit_probs(k)) for k in range(nd)]
        h_ans = [math.log(10) if self.answer == "random" else 0.0] * (nd + 1)
        return np.array([*h_op, 0.0, *h_op, 0.0, *h_ans, 0.0])

    def floor(self) -> float:
        """Mean entropy per target (nats/token): the best possible next-token loss."""
        return float(self.floor_per_target().mean())

    def bits_per_example(self, nats_per_target: float) -> float:
        """A mean loss in nats per target as bits per example (the one nats -> bits/example formula)."""
        return nats_per_target * self.n_targets / math.log(2)

    def floor_bits(self) -> float:
        """The entropy floor in bits per example."""
        return self.bits_per_example(self.floor())

    # ------------------------------------------------------------------------------------ text
    def line_pattern(self) -> re.Pattern:
        nd = self.n_digits
        return re.compile(rf"s[0-9]{{{nd}}}\+[0-9]{{{nd}}}=[0-9]{{{nd + 1}}}e")


def entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def to_int(d: torch.Tensor) -> torch.Tensor:
    """Digits (most significant first) to integers. # (n, k) -> (n,)"""
    w = 10 ** torch.arange(d.shape[1] - 1, -1, -1, dtype=torch.int64)
    return (d * w).sum(1)


def digits(v: torch.Tensor, k: int) -> torch.Tensor:
    """Integers to k digits, most significant first. # (n,) -> (n, k)"""
    w = 10 ** torch.arange(k - 1, -1, -1, dtype=torch.int64)
    return (v[:, None] // w) % 10


def to_text(tokens: torch.Tensor) -> list[str]:
    """Token ids to lines (without newline). # (n, T) -> n strings"""
    lut = np.frombuffer(VOCAB.encode(), dtype=np.uint8)
    arr = lut[tokens.cpu().numpy()]
    return [r.tobytes().decode() for r in arr]


def parse_lines(text: str, fmt: Addition, where: str = "input") -> tuple[torch.Tensor, bool]:
    """Lines of a data file to token ids; returns (tokens (n, T), ends_with_newline).

    Every line must match the format exactly; the first bad line is reported with its number."""
    if not text:
        raise GroklabError(f"{where}: empty file; expected one example per line like "
                           f"{to_text(fmt.sample(1, torch.Generator().manual_seed(0)))[0]!r}")
    trailing = text.endswith("\n")
    lines = (text[:-1] if trailing else text).split("\n")
    pat = fmt.line_pattern()
    bad = next((i for i, ln in enumerate(lines) if not pat.fullmatch(ln)), None)
    if bad is not None:
        ln = lines[bad]
        odd = next((c for c in ln if c not in VOCAB), None)
        why = (f"character {odd!r} is not in the vocabulary {VOCAB!r}" if odd is not None
               else f"expected s<{fmt.n_digits} digits>+<{fmt.n_digits} digits>=<{fmt.n_digits + 1} digits>e")
        raise GroklabError(f"{where}: line {bad + 1} is malformed ({ln[:40]!r}): {why}")
    raw = np.frombuffer("".join(lines).encode(), dtype=np.uint8).reshape(len(lines), fmt.seq_len)
    lut = np.zeros(256, dtype=np.int64)
    for i, c in enumerate(VOCAB):
        lut[ord(c)] = i
    return torch.from_numpy(lut[raw]), trailing


def format_text(tokens: torch.Tensor, trailing: bool = True) -> str:
    return "\n".join(to_text(tokens)) + ("\n" if trailing else "")
