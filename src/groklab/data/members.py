"""Per-member data for ensembles: each member its own subset of the train set, its own labels and inputs.

Everything is deterministic from seeds. `member_subsets` gives member i the first sizes[i] rows of a
permutation seeded by seeds[i] (nested: a larger n for one seed contains the smaller). A `Condition`
(random labels, label noise, Gaussian inputs, one fixed pixel permutation, merged classes) is a pure function
of (x, y, seed); its random draws are made row by row, so for one seed the first n rows of a member come out
the same whatever the member's size.

How a trainer consumes `MemberData` (x (M, n_max, ...), y (M, n_max), mask (M, n_max), count (M,)):
- full batch: each member's loss is the masked mean, (loss(x, y) * mask).sum(1) / count; padded rows hold
  zeros and label 0 and must not count.
- mini-batch epochs: `order = data.epoch_order(epoch)` (M, n_max) holds, for member m, a permutation of
  range(count[m]) drawn from (seeds[m], epoch) followed by padding; step s uses rows
  order[:, s*B:(s+1)*B] and the mask `position < count`. A member with fewer examples runs out of batches
  first: its later steps of the epoch are fully masked (it idles; a trainer must not divide by 0).
- test: x_test (M, n_test, ...), y_test (M, n_test). Conditions on labels (random, noise) leave the test set
  clean; a pixel permutation permutes the test inputs identically; merged classes map the test labels too;
  Gaussian inputs get fresh Gaussian test inputs. When no member changes its test set, x_test and y_test are
  expanded views of the base test set (no copy), and `.to(device)` keeps them so.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch

from groklab import GroklabError
from groklab.data import TaskData

CONDITIONS = ("semantic", "random_labels", "label_noise", "gaussian_inputs", "permute_pixels", "merge_classes")


def _rng(seed: int, stream: int) -> np.random.Generator:
    if not (isinstance(seed, int | np.integer) and seed >= 0):
        raise GroklabError(f"seeds must be integers >= 0, got {seed!r}")
    return np.random.default_rng([int(seed), stream])


def _derive(seed: int, *keys: int) -> int:
    """A torch seed derived from (seed, keys), independent across keys."""
    return int(np.random.SeedSequence([int(seed), *keys]).generate_state(1)[0])


def member_subsets(n_total: int, sizes: list[int], seeds: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """index (M, n_max) int64 rows of a set of n_total, member i's first sizes[i] valid (rest 0); count (M,)."""
    if not sizes or len(sizes) != len(seeds):
        raise GroklabError(f"need one seed per member size, got {len(sizes)} sizes and {len(seeds)} seeds")
    bad = [n for n in sizes if not 1 <= n <= n_total]
    if bad:
        raise GroklabError(f"member sizes must be in 1..{n_total} (the train set's size), got {bad}")
    index = torch.zeros(len(sizes), max(sizes), dtype=torch.int64)  # (M, n_max)
    for i, (n, seed) in enumerate(zip(sizes, seeds)):
        g = torch.Generator().manual_seed(int(seed))
        index[i, :n] = torch.randperm(n_total, generator=g)[:n]
    return index, torch.tensor(sizes, dtype=torch.int64)


# -------------------------------------------------------------------------------------------- conditions

def _classes(u: np.ndarray, n: int, like: torch.Tensor) -> torch.Tensor:
    """Uniform floats in [0, 1) -> classes 0..n-1, on like's device."""
    return torch.from_numpy(np.minimum((u * n).astype(np.int64), n - 1)).to(like.device)


def random_labels(x, y, seed: int, n_classes: int):
    """Every label replaced by a uniformly drawn class."""
    return x, _classes(_rng(seed, 1).random(len(y)), n_classes, y)  # (N,)


def label_noise(x, y, seed: int, n_classes: int, p: float, exclude_true: bool = False):
    """Each label replaced with probability p by a uniform class, or with exclude_true by a uniformly drawn
    incorrect class (Nakkiran et al.: exactly the replaced labels are wrong)."""
    u = _rng(seed, 2).random((len(y), 2))  # (N, 2): replace?, which class
    flip = torch.from_numpy(u[:, 0] < p).to(y.device)
    if exclude_true:
        new = (y + 1 + _classes(u[:, 1], n_classes - 1, y)) % n_classes
    else:
        new = _classes(u[:, 1], n_classes, y)
    return x, torch.where(flip, new, y)


def gaussian_inputs(x, y, seed: int, mean=None, std=None, stream: int = 0):
    """Inputs replaced by Gaussian noise of the same shape with per-feature mean and std (of x, or given)."""
    if not x.is_floating_point():
        raise GroklabError("gaussian_inputs needs real-valued inputs, not token ids")
    if mean is None:
        mean, std = x.mean(0), x.std(0, correction=0)  # (*features)
    z = torch.from_numpy(_rng(seed, 3 + stream).standard_normal(tuple(x.shape))).to(x.device, x.dtype)
    return mean.to(x) + std.to(x) * z, y


def permute_pixels(x, y, seed: int):
    """One permutation (from seed alone) of the positions: the last axis of (N, D); for (N, C, ...) the
    positions after the channel axis, channels kept together. Same seed -> same permutation for any x."""
    flat = x.reshape(len(x), -1) if x.ndim == 2 else x.reshape(len(x), x.shape[1], -1)  # (N, D) or (N, C, H*W)
    perm = torch.from_numpy(_rng(seed, 5).permutation(flat.shape[-1])).to(x.device)
    return flat[..., perm].reshape(x.shape), y


def merge_classes(x, y, seed: int, n_classes: int, k: int):
    """A random balanced map of the n_classes classes onto k (each new class gets n_classes/k old ones)."""
    mapping = np.empty(n_classes, dtype=np.int64)
    mapping[_rng(seed, 6).permutation(n_classes)] = np.arange(n_classes) % k
    return x, torch.from_numpy(mapping).to(y.device)[y]


@dataclass(frozen=True)
class Condition:
    """What a member trains on; `Condition.parse("label_noise:p=0.15,exclude_true=1")`."""

    kind: str = "semantic"  # one of CONDITIONS
    p: float = 0.0  # label_noise: probability of replacing a label
    exclude_true: bool = False  # label_noise: draw only incorrect classes
    k: int = 0  # merge_classes: number of classes after merging

    def __post_init__(self):
        if self.kind not in CONDITIONS:
            raise GroklabError(f"unknown condition {self.kind!r}; allowed: {', '.join(CONDITIONS)}")
        if self.kind == "label_noise" and not 0 <= self.p <= 1:
            raise GroklabError(f"label_noise: p must be in [0, 1], got {self.p}")
        if self.kind == "merge_classes" and self.k < 1:
            raise GroklabError(f"merge_classes: k must be >= 1, got {self.k}")

    @classmethod
    def parse(cls, text: str) -> Condition:
        kind, _, rest = text.strip().partition(":")
        kw = {}
        for item in filter(None, (s.strip() for s in rest.split(","))):
            key, eq, val = item.partition("=")
            if not eq or key not in ("p", "exclude_true", "k"):
                raise GroklabError(f"condition {text!r}: expected name:key=value,... with keys p, exclude_true, k")
            try:
                kw[key] = float(val) if key == "p" else int(val) if key == "k" else val.lower() in ("1", "true")
            except ValueError as e:
                raise GroklabError(f"condition {text!r}: bad value for {key}: {val!r}") from e
        return cls(kind.strip(), **kw)

    def n_classes_out(self, n_classes: int) -> int:
        if self.kind == "merge_classes" and self.k > n_classes:
            raise GroklabError(f"merge_classes: k = {self.k} > {n_classes} classes")
        return self.k if self.kind == "merge_classes" else n_classes

    @property
    def changes_test(self) -> bool:
        return self.kind in ("gaussian_inputs", "permute_pixels", "merge_classes")

    def apply(self, x, y, seed: int, n_classes: int, test: bool = False, mean=None, std=None):
        """(x, y) of the train (or, with test=True, the test) split after this condition."""
        if self.kind == "permute_pixels":
            return permute_pixels(x, y, seed)
        if self.kind == "merge_classes":
            return merge_classes(x, y, seed, n_classes, self.k)
        if self.kind == "gaussian_inputs":
            return gaussian_inputs(x, y, seed, mean, std, stream=int(test))
        if test or self.kind == "semantic":
            return x, y
        if self.kind == "random_labels":
            return random_labels(x, y, seed, n_classes)
        return label_noise(x, y, seed, n_classes, self.p, self.exclude_true)


# ------------------------------------------------------------------------------------------ member data

def _as_conditions(condition, m: int) -> list[Condition]:
    items = condition if isinstance(condition, list | tuple) else [condition] * m
    if len(items) != m:
        raise GroklabError(f"{len(items)} conditions for {m} members")
    return [c if isinstance(c, Condition) else Condition() if c is None else Condition.parse(c) for c in items]


@dataclass
class MemberData:
    """Per-member training tensors (and test tensors) of an ensemble; see the module docstring for use."""

    x: torch.Tensor  # (M, n_max, *features) inputs after each member's condition; padded rows 0
    y: torch.Tensor  # (M, n_max) int64 labels after the condition; padded rows 0
    y_true: torch.Tensor  # (M, n_max) the base labels before the condition (label noise: y != y_true)
    mask: torch.Tensor  # (M, n_max) bool, True on a member's own rows
    count: torch.Tensor  # (M,) int64 rows per member
    index: torch.Tensor  # (M, n_max) int64 rows of the base train set
    x_test: torch.Tensor  # (M, n_test, *features); an expanded view when every member shares the base test set
    y_test: torch.Tensor  # (M, n_test)
    n_classes: int  # output classes (merge_classes: its largest k)
    seeds: list[int]  # per member: seeds its condition and its epoch orders

    @classmethod
    def build(cls, base: TaskData, index: torch.Tensor, count: torch.Tensor, seeds: list[int],
              condition: Condition | str | list | None = None) -> MemberData:
        """From a base task, member rows (`member_subsets`), one seed per member and a condition (one for
        all members, or a list with one per member)."""
        m, n_max = index.shape
        if len(seeds) != m or len(count) != m:
            raise GroklabError(f"{m} members but {len(seeds)} seeds and {len(count)} counts")
        conds = _as_conditions(condition, m)
        mean = std = None
        if any(c.kind == "gaussian_inputs" for c in conds):
            mean, std = base.x_train.float().mean(0), base.x_train.float().std(0, correction=0)  # (*features)
        xs, ys, x_tests, y_tests = [], [], [], []
        for i, c in enumerate(conds):
            rows = index[i, :int(count[i])]
            x, y = c.apply(base.x_train[rows], base.y_train[rows], seeds[i], base.n_classes, mean=mean, std=std)
            pad = n_max - len(rows)
            xs.append(torch.cat([x, x.new_zeros((pad, *x.shape[1:]))]))
            ys.append(torch.cat([y, y.new_zeros(pad)]))
            xt, yt = c.apply(base.x_test, base.y_test, seeds[i], base.n_classes, test=True, mean=mean, std=std)
            x_tests.append(xt)
            y_tests.append(yt)
        if any(c.changes_test for c in conds):
            x_test, y_test = torch.stack(x_tests), torch.stack(y_tests)  # (M, n_test, ...), (M, n_test)
        else:
            x_test = base.x_test.unsqueeze(0).expand(m, *base.x_test.shape)
            y_test = base.y_test.unsqueeze(0).expand(m, *base.y_test.shape)
        mask = torch.arange(n_max).unsqueeze(0) < count.unsqueeze(1)  # (M, n_max)
        y_true = torch.where(mask, base.y_train[index], 0)
        return cls(torch.stack(xs), torch.stack(ys), y_true, mask, count.clone(), index.clone(), x_test, y_test,
                   max(c.n_classes_out(base.n_classes) for c in conds), [int(s) for s in seeds])

    def to(self, device) -> MemberData:
        def move(t):
            if isinstance(t, torch.Tensor) and t.ndim and t.stride(0) == 0:  # shared view: move one copy
                return t[0].to(device).unsqueeze(0).expand(t.shape)
            return t.to(device) if isinstance(t, torch.Tensor) else t
        return MemberData(**{f.name: move(getattr(self, f.name)) for f in fields(self)})

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """(M, n_max) int64: per member a permutation of range(count[m]) from (seeds[m], epoch), then 0s."""
        order = torch.zeros(self.index.shape, dtype=torch.int64)
        for i, (seed, n) in enumerate(zip(self.seeds, self.count.tolist())):
            order[i, :n] = torch.randperm(n, generator=torch.Generator().manual_seed(_derive(seed, 7, epoch)))
        return order.to(self.index.device)


def member_data(base: TaskData, sizes: list[int], seeds: list[int], condition=None) -> MemberData:
    """Subsets and conditions from one seed per member (subset and condition draws use separate streams)."""
    index, count = member_subsets(len(base.y_train), sizes, seeds)
    return MemberData.build(base, index, count, seeds, condition)
