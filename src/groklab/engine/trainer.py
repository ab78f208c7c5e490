"""Train an ensemble of M members as one batched model.

Per member: its own seed, lr, weight decay and init scale. Every `log_every` steps all metrics are
evaluated per member; weights are snapshotted at log-spaced steps; members whose outcome is settled
(per the `settled` callback) are removed from the batch, so the rest train faster.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from groklab.engine.interventions import GradTransforms
from groklab.engine.optim import BatchedOptimizer

HAND_WRITTEN_LOSS = os.environ.get("GROKLAB_FUSED_LOSS") != "0"  # bench switch: "0" = autograd all the way
METRICS = ("train_loss", "test_loss", "train_acc", "test_acc", "l1_norm", "l2_norm")


@dataclass
class Member:
    """One model of the ensemble."""

    seed: int
    lr: float
    weight_decay: float
    init_scale: float = 1.0


@dataclass
class TrainResult:
    steps: np.ndarray  # (L,) logged steps
    metrics: dict[str, np.ndarray]  # name -> (M, L); NaN after a member stopped
    stopped_at: np.ndarray  # (M,) step at which the member was stopped early, -1 if never
    params: dict[str, torch.Tensor]  # final weights, (M, ...) on CPU
    wall_s: float
    model_steps: int  # sum over members of optimizer steps taken
    extra: dict = field(default_factory=dict)


def snapshot_steps(total: int, n: int) -> list[int]:
    """0 plus n log-spaced steps in [1, total]."""
    if n <= 0:
        return []
    return sorted({0, *np.unique(np.geomspace(1, total, n).round().astype(int)).tolist()})


def stablemax_log_probs(logits: torch.Tensor) -> torch.Tensor:
    """log StableMax: s(x) = x + 1 for x >= 0, 1 / (1 - x) for x < 0, normalized over the last axis."""
    s = torch.where(logits >= 0, logits + 1, 1 / (1 - logits.clamp_max(0)))
    return s.log() - s.sum(-1, keepdim=True).log()


def member_losses(logits: torch.Tensor, y: torch.Tensor, reduction: str = "ce", softmax: str = "softmax",
                  dtype: str = "float32") -> torch.Tensor:
    """Mean cross-entropy per member. logits (M, N, C), y (N,) -> (M,). 'pair' divides by C.
    `softmax='stablemax'` swaps exp for StableMax; `dtype='float64'` computes the loss in float64."""
    m, n, c = logits.shape
    if dtype == "float64":
        logits = logits.double()
    if softmax == "stablemax":
        logp = stablemax_log_probs(logits)  # (M, N, C)
        ce = -logp.gather(-1, y.expand(m, n).unsqueeze(-1)).squeeze(-1).mean(1)
    else:
        ce = F.cross_entropy(logits.reshape(m * n, c), y.repeat(m), reduction="none").view(m, n).mean(1)
    ce = ce.float() if dtype == "float64" else ce
    return ce / c if reduction == "pair" else ce


@torch.no_grad()
def evaluate(model, params, x, y, loss_kw: dict, max_elems: int = 2**25) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, acc) per member, chunked over members to bound memory. -> (M,), (M,)"""
    m = next(iter(params.values())).shape[0]
    chunk = max(1, max_elems // max(1, len(x) * 64))
    losses, accs = [], []
    for s in range(0, m, chunk):
        sub = {k: v[s:s + chunk] for k, v in params.items()}
        logits = model.forward(sub, x)  # (m_chunk, N, C)
        losses.append(member_losses(logits, y, **loss_kw))
        accs.append((logits.argmax(-1) == y).float().mean(1))
    return torch.cat(losses), torch.cat(accs)


def loss_kwargs(train_cfg) -> dict:
    return {"reduction": train_cfg.loss, "softmax": train_cfg.softmax, "dtype": train_cfg.logits_dtype}


def member_grads(model, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, loss_kw: dict,
                 chunk: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-member losses (M,) and gradients. Summing member losses gives each member its own gradient.
    With `chunk` > 0 members go through forward/backward `chunk` at a time (exact: members never interact),
    which keeps the activations of one chunk in cache and bounds memory."""
    m = next(iter(params.values())).shape[0]
    plain = (HAND_WRITTEN_LOSS and loss_kw.get("softmax", "softmax") == "softmax"
             and loss_kw.get("dtype", "float32") == "float32")

    def grads_of(sub: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if plain and hasattr(model, "loss_grads"):  # hand-written softmax cross-entropy backward
            return model.loss_grads(sub, x, y, loss_kw.get("reduction", "ce"))
        sub = {k: v.detach().requires_grad_(True) for k, v in sub.items()}
        ls = member_losses(model.forward(sub, x), y, **loss_kw)  # (M,)
        return ls.detach(), dict(zip(sub, torch.autograd.grad(ls.sum(), list(sub.values()))))

    if chunk <= 0 or chunk >= m:
        return grads_of(params)
    grads = {k: torch.empty_like(v) for k, v in params.items()}
    losses = torch.empty(m, device=x.device)
    for s in range(0, m, chunk):
        ls, gs = grads_of({k: v[s:s + chunk] for k, v in params.items()})  # (chunk,)
        for k, g in gs.items():
            grads[k][s:s + chunk] = g
        losses[s:s + chunk] = ls
    return losses, grads


def train_step(model, params: dict[str, torch.Tensor], opt: BatchedOptimizer, x: torch.Tensor,
               y: torch.Tensor, loss_kw: dict, transforms: GradTransforms | None = None,
               chunk: int = 0) -> torch.Tensor:
    """One optimizer step for every member. Returns the per-member training loss before the step. # (M,)"""
    losses, grads = member_grads(model, params, x, y, loss_kw, chunk)
    if transforms is not None and transforms.active:
        grads = transforms(params, grads)
    opt.step(params, grads)
    return losses


def train(model, data, members: list[Member], optim, train_cfg, device: torch.device,
          settled: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
          on_snapshot: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
          on_progress: Callable[[int, int], None] | None = None,
          on_log: Callable[[int, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None) -> TrainResult:
    """Train all members for `train_cfg.steps` steps (or until every member is settled).

    on_log(step, params) may return extra per-member metrics {name: (M_active,)} to log with the others
    (e.g. progress measures)."""
    t0 = time.perf_counter()
    n_all = len(members)
    scales = torch.tensor([m.init_scale for m in members])
    params = {k: v.to(device).requires_grad_(True)
              for k, v in model.init([m.seed for m in members], scales).items()}
    opt = BatchedOptimizer(params, optim.name, torch.tensor([m.lr for m in members]),
                           torch.tensor([m.weight_decay for m in members]), optim.decay,
                           (optim.beta1, optim.beta2), optim.eps, optim.momentum, optim.warmup)
    transforms = GradTransforms(params, optim)
    loss_kw = loss_kwargs(train_cfg)
    data = data.to(device)
    active = torch.arange(n_all)  # indices (into members) of the members still training
    full = {k: v.detach().cpu().clone() for k, v in params.items()}  # (M_all, ...) frozen copies
    steps_total, log_every = train_cfg.steps, train_cfg.log_every
    snaps = set(snapshot_steps(steps_total, train_cfg.snapshots))
    early = [s for s in (1, 2, 5, 10, 20, 50) if s < log_every]  # log-spaced start for log-axis plots
    log_steps = sorted({0, *early, *range(log_every, steps_total + 1, log_every), steps_total})
    hist = {k: np.full((n_all, len(log_steps)), np.nan) for k in METRICS}
    stopped_at = np.full(n_all, -1)
    bs = train_cfg.batch_size
    g_batch = torch.Generator().manual_seed(1_000_003 + train_cfg.seed)
    n_train = len(data.y_train)
    model_steps = 0

    def sync_full():
        for k, v in params.items():
            full[k][active] = v.detach().cpu()

    def log(step: int, li: int) -> None:
        p = {k: v.detach() for k, v in params.items()}
        tr_loss, tr_acc = evaluate(model, p, data.x_train, data.y_train, loss_kw)
        te_loss, te_acc = evaluate(model, p, data.x_test, data.y_test, loss_kw)
        l1 = sum(v.abs().flatten(1).sum(1) for v in p.values())
        l2 = sum(v.square().flatten(1).sum(1) for v in p.values()).sqrt()
        vals = dict(zip(METRICS, (tr_loss, te_loss, tr_acc, te_acc, l1, l2)))
        if on_log is not None:
            vals.update(on_log(step, p))
        for name, val in vals.items():
            if name not in hist:
                hist[name] = np.full((n_all, len(log_steps)), np.nan)
            hist[name][active.numpy(), li] = torch.as_tensor(val).double().cpu().numpy()

    li = 0
    for step in range(0, steps_total + 1):
        if step > 0:
            if bs and bs < n_train:
                idx = torch.randperm(n_train, generator=g_batch)[:bs].to(device)
                xb, yb = data.x_train[idx], data.y_train[idx]
            else:
                xb, yb = data.x_train, data.y_train
            train_step(model, params, opt, xb, yb, loss_kw, transforms, train_cfg.member_chunk)
            model_steps += len(active)
        if step in snaps and on_snapshot is not None:
            sync_full()
            on_snapshot(step, full)
        if li < len(log_steps) and step == log_steps[li]:
            log(step, li)
            li += 1
            if settled is not None and train_cfg.early_stop and step < steps_total:
                done = settled({k: v[active.numpy(), :li] for k, v in hist.items()})  # (M_active,) bool
                if done.any():
                    sync_full()
                    stopped_at[active[torch.from_numpy(done)].numpy()] = step
                    keep = torch.from_numpy(~done).nonzero().flatten()
                    active = active[keep]
                    keep_dev = keep.to(device)
                    params = {k: v.detach()[keep_dev].requires_grad_(True) for k, v in params.items()}
                    opt.select(keep_dev)
                    transforms.select(keep_dev)
                    if len(active) == 0:
                        break
            if on_progress is not None:
                on_progress(step, len(active))
    sync_full()
    return TrainResult(np.array(log_steps), hist, stopped_at, full, time.perf_counter() - t0, model_steps)
