"""Train an ensemble of M members as one batched model.

Per member: its own seed, lr, weight decay and init scale. Every `log_every` steps all metrics are
evaluated per member; weights are snapshotted at log-spaced steps; members whose outcome is settled
(per the `settled` callback) are removed from the batch, so the rest train faster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from groklab.engine.optim import BatchedOptimizer

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


def member_losses(logits: torch.Tensor, y: torch.Tensor, reduction: str) -> torch.Tensor:
    """Mean cross-entropy per member. logits (M, N, C), y (N,) -> (M,). 'pair' divides by C."""
    m, n, c = logits.shape
    ce = F.cross_entropy(logits.reshape(m * n, c), y.repeat(m), reduction="none").view(m, n).mean(1)
    return ce / c if reduction == "pair" else ce


@torch.no_grad()
def evaluate(model, params, x, y, reduction: str, max_elems: int = 2**25) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, acc) per member, chunked over members to bound memory. -> (M,), (M,)"""
    m = next(iter(params.values())).shape[0]
    chunk = max(1, max_elems // max(1, len(x) * 64))
    losses, accs = [], []
    for s in range(0, m, chunk):
        sub = {k: v[s:s + chunk] for k, v in params.items()}
        logits = model.forward(sub, x)  # (m_chunk, N, C)
        losses.append(member_losses(logits, y, reduction))
        accs.append((logits.argmax(-1) == y).float().mean(1))
    return torch.cat(losses), torch.cat(accs)


def train_step(model, params: dict[str, torch.Tensor], opt: BatchedOptimizer, x: torch.Tensor,
               y: torch.Tensor, reduction: str) -> torch.Tensor:
    """One optimizer step for every member. Summing member losses gives each member its own gradient.
    Returns the per-member training loss before the step. # (M,)"""
    losses = member_losses(model.forward(params, x), y, reduction)  # (M,)
    grads = torch.autograd.grad(losses.sum(), list(params.values()))
    opt.step(params, dict(zip(params, grads)))
    return losses.detach()


def train(model, data, members: list[Member], optim, train_cfg, device: torch.device,
          settled: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
          on_snapshot: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
          on_progress: Callable[[int, int], None] | None = None) -> TrainResult:
    """Train all members for `train_cfg.steps` steps (or until every member is settled)."""
    t0 = time.perf_counter()
    n_all = len(members)
    scales = torch.tensor([m.init_scale for m in members])
    params = {k: v.to(device).requires_grad_(True)
              for k, v in model.init([m.seed for m in members], scales).items()}
    opt = BatchedOptimizer(params, optim.name, torch.tensor([m.lr for m in members]),
                           torch.tensor([m.weight_decay for m in members]), optim.decay,
                           (optim.beta1, optim.beta2), optim.eps, optim.momentum)
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
        tr_loss, tr_acc = evaluate(model, p, data.x_train, data.y_train, train_cfg.loss)
        te_loss, te_acc = evaluate(model, p, data.x_test, data.y_test, train_cfg.loss)
        l1 = sum(v.abs().flatten(1).sum(1) for v in p.values())
        l2 = sum(v.square().flatten(1).sum(1) for v in p.values()).sqrt()
        for name, val in zip(METRICS, (tr_loss, te_loss, tr_acc, te_acc, l1, l2)):
            hist[name][active.numpy(), li] = val.double().cpu().numpy()

    li = 0
    for step in range(0, steps_total + 1):
        if step > 0:
            if bs and bs < n_train:
                idx = torch.randperm(n_train, generator=g_batch)[:bs].to(device)
                xb, yb = data.x_train[idx], data.y_train[idx]
            else:
                xb, yb = data.x_train, data.y_train
            train_step(model, params, opt, xb, yb, train_cfg.loss)
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
                    if len(active) == 0:
                        break
            if on_progress is not None:
                on_progress(step, len(active))
    sync_full()
    return TrainResult(np.array(log_steps), hist, stopped_at, full, time.perf_counter() - t0, model_steps)
