"""Width sweeps on the shared engine: every width of a group trains in ONE batched ensemble, padded to the
group's widest model.

Padding is exact. Member i is built as the real width-H_i network (`build_module("mnist1d_mlp", hidden=H_i)`
right after `torch.manual_seed(seed_i)`, so it starts exactly where a lone width-H_i net starts) and its
weights are copied into the leading corner of zero tensors of the group's widest shape. A padded unit has zero
incoming weights and bias, so its pre-activation is 0, relu(0) = 0 and relu'(0) = 0: it never receives a
gradient, never moves (SGD momentum buffers start at 0, no weight decay) and contributes exactly 0 to every real
unit. The padded net computes the width-H_i function and gradients (to float32 summation order). The CNN's
final Linear(5C → 10) is padded per channel (its input is the flattened (C, 5) feature map).

Groups: widths are split into contiguous groups (sorted); each costs one training of len(group) × seeds
members at the group's widest shape, plus a fixed per-step overhead. `plan_groups` picks the split with the
least modelled cost (`train.groups = 0`) or a given number of groups.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

from groklab.data import TaskData
from groklab.engine.ensemble import ModuleEnsemble
from groklab.engine.trainer import Member, train
from groklab.nn.modules import build_module

KINDS = {"mlp": ("mnist1d_mlp", "hidden"), "cnn": ("mnist1d_cnn", "channels")}
OVERHEAD_FLOPS = 2.0e5  # per-step overhead of one training, in multiply-adds per example (measured, BENCHMARKS)


def build(kind: str, width: int) -> torch.nn.Module:
    name, arg = KINDS[kind]
    return build_module(name, **{arg: int(width)})


def n_params(kind: str, width: int) -> int:
    return sum(p.numel() for p in build(kind, width).parameters())


def flops(kind: str, width: int) -> float:
    """Multiply-adds per example of one forward pass (the cost model of `plan_groups`)."""
    h = width
    if kind == "mlp":
        return 40 * h + h * h + 10 * h
    return 19 * 5 * h + 10 * 3 * h * h + 5 * 3 * h * h + 50 * h


def plan_groups(kind: str, widths: list[int], seeds: int, groups: int = 0) -> list[list[int]]:
    """Contiguous groups of the sorted widths minimizing Σ (overhead + members × flops(widest)); `groups` > 0
    fixes their number (capped at the number of widths)."""
    ws = sorted(set(widths))
    n = len(ws)
    k_max = n if groups <= 0 else min(groups, n)
    inf = float("inf")
    best = np.full((k_max + 1, n + 1), inf)  # best[k, j]: first j widths in k groups
    cut = np.zeros((k_max + 1, n + 1), dtype=int)
    best[0, 0] = 0.0
    for k in range(1, k_max + 1):
        for j in range(1, n + 1):
            for i in range(k - 1, j):
                c = best[k - 1, i] + OVERHEAD_FLOPS + (j - i) * seeds * flops(kind, ws[j - 1])
                if c < best[k, j]:
                    best[k, j], cut[k, j] = c, i
    k = int(np.argmin(best[1:, n])) + 1 if groups <= 0 else k_max
    out, j = [], n
    while k > 0:
        i = cut[k, j]
        out.append(ws[i:j])
        j, k = i, k - 1
    return out[::-1]


class WidthEnsemble(ModuleEnsemble):
    """Members of different widths as one ensemble of the widest shape (module docstring: exact padding)."""

    def __init__(self, kind: str, widths: list[int], batched: bool = True):
        self.kind, self.widths = kind, [int(w) for w in widths]  # one width per member, in member order
        super().__init__(lambda: build(kind, max(self.widths)), batched=batched)

    def init(self, seeds: list[int], scales: torch.Tensor) -> dict[str, torch.Tensor]:
        big = dict(self._base.named_parameters())  # meta tensors: the padded shapes
        out = {k: torch.zeros(len(seeds), *big[k].shape) for k in self.param_names}  # (M, ...)
        for i, (seed, w, s) in enumerate(zip(seeds, self.widths, torch.as_tensor(scales).tolist())):
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(seed))
                real = dict(build(self.kind, w).named_parameters())
            for k, v in real.items():
                v = v.detach() * s
                if self.kind == "cnn" and k == "linear.weight":  # (10, 5C) -> (10, C_max, 5) corner
                    view = out[k][i].view(v.shape[0], -1, 5)
                    view[:, :w] = v.view(v.shape[0], w, 5)
                else:
                    out[k][i][tuple(slice(0, n) for n in v.shape)] = v
        return out


def steps_per_epoch(n_train: int, batch: int) -> int:
    return math.ceil(n_train / batch)


def train_widths(cfg, data: TaskData, widths: list[int], device, eval_steps: int, on_progress=None) -> dict:
    """Train every width × seed of one group as one ensemble for cfg.train.epochs epochs, evaluating every
    `eval_steps` steps. Returns {"members": [(width, seed)], "steps": (L,), "metrics": {name: (M, L)},
    "wall_s", "model_steps"}; errors are 1 − accuracy."""
    t = cfg.train
    seeds = [t.seed + s for s in range(t.seeds)]
    members = [(w, s) for w in widths for s in seeds]
    ens = WidthEnsemble(cfg.model.kind, [w for w, _ in members])
    spe = steps_per_epoch(len(data.y_train), t.batch_size)
    tcfg = dataclasses.replace(t, steps=t.epochs * spe, log_every=eval_steps, snapshots=0, early_stop=False,
                               eval_examples=0)
    o = cfg.optim
    res = train(ens, data, [Member(s, o.lr, o.weight_decay, 1.0) for _, s in members], o, tcfg, device,
                on_progress=on_progress)
    return {"members": members, "steps": res.steps, "epochs": res.steps / spe, "metrics": res.metrics,
            "wall_s": res.wall_s, "model_steps": res.model_steps}


def load_data(cfg, cache_dir) -> TaskData:
    """MNIST-1D (built offline) with data.samples and train_split; data.label_noise of the train labels replaced
    by a uniformly drawn class (seeded by data.seed; the test labels stay clean)."""
    from groklab.data.loaded import load_dataset
    from groklab.data.members import label_noise

    d = cfg.data
    kw = {"num_samples": d.samples, "train_split": d.train_split, "seed": d.seed}
    if d.n_train:
        kw["n_train"] = d.n_train
    base = load_dataset("mnist1d", None, cache_dir, **kw)
    y = base.y_train
    if d.label_noise > 0:
        _, y = label_noise(None, base.y_train, d.seed, base.n_classes, d.label_noise)
    return TaskData(base.x_train, y, base.x_test, base.y_test, base.n_classes)
