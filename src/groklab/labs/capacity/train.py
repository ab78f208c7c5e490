"""One round of the EMC search: k candidate sizes x seeds trained as ONE batched ensemble (engine/trainer.py)
with per-member subsets (data/members.py, nested in n per seed), and the fit / convergence rule that settles
each training (config.py's docstring states the rule)."""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from groklab import GroklabError
from groklab.data import TaskData
from groklab.data.members import MemberData, member_data, merge_classes, random_labels
from groklab.engine.batches import Batch
from groklab.engine.ensemble import ModuleEnsemble
from groklab.engine.trainer import Member, log_steps_for, loss_kwargs, member_grads, train
from groklab.nn.modules import build_module

FIT_ACC = 1.0 - 1e-7  # 100% train accuracy: every one of a training's n < 10^6 samples right
INPUTS = {"real": "semantic", "gaussian": "gaussian_inputs", "permuted": "permute_pixels"}


@functools.lru_cache(maxsize=4)
def _built(name: str, data_dir: str, cache_dir: str | None, kw: tuple) -> TaskData:
    """load_dataset, remembered in-process: a sweep's groups share one build of their data set."""
    from groklab.data.loaded import load_dataset

    return load_dataset(name, Path(data_dir) if data_dir else None, Path(cache_dir) if cache_dir else None,
                        **dict(kw))


def load_base(cfg, cache_dir: Path | None) -> TaskData:
    """The train/test set of the config (classes merged if data.classes); GroklabError on bad input.
    Built sets are cached on disk in data.cache_dir if given, else in `cache_dir` (None: in-process only)."""
    d = cfg.data
    kw = {"seed": d.seed}
    if cfg.data_name == "mnist1d":
        kw["num_samples"] = d.mnist1d_samples
    if d.data_dir and not Path(d.data_dir).is_dir():
        raise GroklabError(f"data.data_dir: no such folder {d.data_dir!r}")
    cache = d.cache_dir or (str(cache_dir) if cache_dir is not None else None)
    base = _built(cfg.data_name, d.data_dir, cache, tuple(sorted(kw.items())))
    if d.n_test and d.n_test < len(base.y_test):
        base = TaskData(base.x_train, base.y_train, base.x_test[:d.n_test], base.y_test[:d.n_test], base.n_classes)
    if d.classes:
        if d.classes > base.n_classes:
            raise GroklabError(f"data.classes: {d.name} has {base.n_classes} classes; allowed: 0 (all) or "
                               f"1..{base.n_classes}")
        _, y = merge_classes(None, base.y_train, d.seed, base.n_classes, d.classes)
        _, y_test = merge_classes(None, base.y_test, d.seed, base.n_classes, d.classes)
        base = TaskData(base.x_train, y, base.x_test, y_test, d.classes)
    n = len(base.y_train)
    if cfg.search.n_max > n:
        raise GroklabError(f"search.n_max: {cfg.search.n_max} is beyond the {n} training samples of {d.name}; "
                           f"allowed: n_min < n_max <= {n}")
    return base


def condition(cfg) -> str:
    """The data/members.py condition of data.inputs (random labels are drawn on top: `member_set`)."""
    return INPUTS[cfg.data.inputs]


def member_set(cfg, base: TaskData, sizes: list[int], seeds: list[int]) -> MemberData:
    """Per-member subsets (nested in n per seed) after data.inputs, then data.labels = random: each member's
    labels redrawn uniformly from its seed, row by row (as data/members.py's random_labels: nested in n)."""
    data = member_data(base, sizes, seeds, condition(cfg))  # x (M, n_max, ...), y (M, n_max), mask (M, n_max)
    if cfg.data.labels == "random":
        for i, (n, seed) in enumerate(zip(sizes, seeds)):
            data.y[i, :n] = random_labels(None, data.y[i, :n], seed, base.n_classes)[1]
    return data


def ensemble(cfg, base: TaskData) -> ModuleEnsemble:
    """The configured architecture as a batched ensemble (one member per training)."""
    m, shape = cfg.model, tuple(base.x_train.shape[1:])  # (40,), (d,), (1, 8, 8), (3, 32, 32)
    if m.kind == "mlp":
        kw = {"d_in": math.prod(shape), "n_classes": base.n_classes, "width": m.width, "depth": m.depth,
              "act": m.act}
    else:
        dim, in_ch = (1, 1) if len(shape) == 1 else (2, shape[0])
        kw = {"in_ch": in_ch, "n_classes": base.n_classes, "act": m.act, "dim": dim}
        if m.kind == "cnn":
            kw.update({"width": m.width, "depth": m.depth, "norm": m.norm})
        elif m.kind == "resnet":
            kw.update({"k": m.width, "blocks": (m.depth,) * 4})
        else:  # vit: the patch grid follows the input's length (1-D) or height and width (2-D)
            kw.update({"width": m.width, "depth": m.depth, "heads": m.heads, "patch": m.patch,
                       "size": shape[0] if dim == 1 else tuple(shape[1:])})
    return ModuleEnsemble(lambda: build_module(m.kind, **kw))


def steps_per_epoch(n: int, batch: int, n_big: int) -> int:
    """Optimizer steps of one epoch of n samples (full batch when batch is 0 or >= the largest n)."""
    return 1 if not batch or batch >= n_big else math.ceil(n / batch)


@dataclass
class RoundResult:
    fitted: np.ndarray  # (M,) bool
    status: list[str]  # fitted | converged | capped
    epochs: np.ndarray  # (M,) epochs trained
    steps: np.ndarray  # (M,) optimizer steps trained
    final: dict[str, np.ndarray]  # train_loss, train_acc, test_loss, test_acc: (M,) at the last check
    grad_norm: np.ndarray  # (M,) last full-batch gradient norm measured (NaN: never)
    curves: dict[str, np.ndarray]  # step, epoch, metric, value, member (index in the round) columns
    wall_s: float
    model_steps: int


class Rule:
    """The settle rule of one round: fitted, converged (plateau AND small gradient) or capped."""

    def __init__(self, cfg, ens: ModuleEnsemble, data: MemberData, spe: np.ndarray, log_steps: list[int],
                 device: torch.device):
        self.s, self.ens, self.spe, self.log_steps = cfg.search, ens, spe, np.array(log_steps)
        self.loss_kw, self.chunk = loss_kwargs(cfg.train), cfg.train.member_chunk
        self.x, self.y, self.mask = data.x.to(device), data.y.to(device), data.mask.to(device)
        m = len(spe)
        self.active = np.arange(m)  # mirrors the trainer's compaction (it drops exactly what we return)
        self.status = ["running"] * m
        self.grad_norm = np.full(m, np.nan)
        self.params: dict[str, torch.Tensor] = {}

    def on_log(self, step: int, params: dict[str, torch.Tensor]) -> dict:
        self.params = params  # the active members' weights at this check, for the gradient norm
        return {}

    def grad_norms(self, rows: np.ndarray) -> np.ndarray:
        """Full-batch gradient norm of active rows `rows` (indices into self.active). # (R,)"""
        idx = torch.as_tensor(rows, device=self.x.device)
        g_idx = torch.as_tensor(self.active[rows], device=self.x.device)
        sub = {k: v[idx] for k, v in self.params.items()}
        batch = Batch(self.x[g_idx], self.y[g_idx], self.mask[g_idx], per_member=True)
        _, grads = member_grads(self.ens, sub, batch, None, self.loss_kw, self.chunk)
        return torch.stack([g.flatten(1).square().sum(1) for g in grads.values()]).sum(0).sqrt().cpu().numpy()

    def __call__(self, hist: dict[str, np.ndarray]) -> np.ndarray:
        li = hist["train_acc"].shape[1]
        step = self.log_steps[li - 1]
        spe = self.spe[self.active]  # (A,)
        epochs = step / spe  # (A,)
        acc, loss = hist["train_acc"][:, -1], hist["train_loss"]  # (A,), (A, li)
        fitted = acc >= FIT_ACC
        capped = ~fitted & (epochs >= self.s.max_epochs)
        plateau = np.zeros(len(spe), bool)
        for r in np.flatnonzero(~fitted & ~capped):
            past = np.flatnonzero(self.log_steps[:li] / spe[r] <= epochs[r] - self.s.window)
            if len(past):
                before, now = loss[r, past[-1]], loss[r, -1]
                plateau[r] = before - now < self.s.plateau * before
        converged = np.zeros(len(spe), bool)
        rows = np.flatnonzero(plateau)
        if len(rows):
            gn = self.grad_norms(rows) if math.isfinite(self.s.grad_tol) else np.zeros(len(rows))
            self.grad_norm[self.active[rows]] = gn
            converged[rows] = gn <= self.s.grad_tol
        done = fitted | capped | converged
        for r in np.flatnonzero(done):
            self.status[self.active[r]] = "fitted" if fitted[r] else "capped" if capped[r] else "converged"
        self.active = self.active[~done]
        return done


def train_round(cfg, base: TaskData, ens: ModuleEnsemble, cands: list[tuple[int, int]], device: torch.device,
                on_progress=None) -> RoundResult:
    """Train every (seed, n) of `cands` as one ensemble until each fits, converges or is capped.
    on_progress(fraction of the round's step cap, trainings still running)."""
    seeds, sizes = [s for s, _ in cands], [n for _, n in cands]
    data = member_set(cfg, base, sizes, seeds)  # x (M, n_max, ...), mask (M, n_max)
    batch, n_big = cfg.batch_size(), max(sizes)
    spe = np.array([steps_per_epoch(n, batch, n_big) for n in sizes])  # (M,)
    big = steps_per_epoch(n_big, batch, n_big)
    steps = min(cfg.train.steps, cfg.search.max_epochs * big)
    tcfg = dataclasses.replace(cfg.train, steps=steps, log_every=cfg.search.check_every * big, batch_size=batch,
                               snapshots=0, eval_examples=0)
    log_steps = log_steps_for(steps, tcfg.log_every)
    rule = Rule(cfg, ens, data, spe, log_steps, device)
    opt, o = cfg.engine_optim(), cfg.optim
    members = [Member(s, o.lr_of(), o.weight_decay, 1.0) for s in seeds]  # one init per seed, whatever its n
    progress = None if on_progress is None else (lambda step, active: on_progress(step / steps, active))
    res = train(ens, data, members, opt, tcfg, device, settled=rule, on_progress=progress, on_log=rule.on_log)
    last = np.array([np.flatnonzero(~np.isnan(res.metrics["train_acc"][i]))[-1] for i in range(len(cands))])
    ar = np.arange(len(cands))
    final = {k: res.metrics[k][ar, last] for k in ("train_loss", "train_acc", "test_loss", "test_acc")}
    stop_steps = res.steps[last]
    status = [s if s != "running" else ("fitted" if final["train_acc"][i] >= FIT_ACC else "capped")
              for i, s in enumerate(rule.status)]
    cols: dict[str, list] = {"member": [], "step": [], "epoch": [], "metric": [], "value": []}
    for name in ("train_loss", "train_acc", "test_loss", "test_acc"):
        vals = res.metrics[name]  # (M, L)
        mi, li = np.nonzero(~np.isnan(vals))
        cols["member"].append(mi), cols["step"].append(res.steps[li]), cols["epoch"].append(res.steps[li] / spe[mi])
        cols["metric"].append(np.full(len(mi), name, dtype=object)), cols["value"].append(vals[mi, li])
    return RoundResult(np.array([s == "fitted" for s in status]), status, stop_steps / spe, stop_steps, final,
                       rule.grad_norm, {k: np.concatenate(v) for k, v in cols.items()}, res.wall_s,
                       res.model_steps)
