"""Train an ensemble of M members as one batched model.

Per member: its own seed, lr, weight decay and init scale. Every `log_every` steps all metrics are
evaluated per member; weights are snapshotted at log-spaced steps; members whose outcome is settled
(per the `settled` callback) are removed from the batch, so the rest train faster. The complete state can
be handed out every k steps and training resumed from it, bit for bit (engine/checkpoint.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from groklab.engine import checkpoint
from groklab.engine.batches import Batch, Batcher
from groklab.engine.evaluation import (
    EvalSets,
    evaluate,
    example_losses,
    loss_kwargs,
    member_losses,
    stablemax_log_probs,
)
from groklab.engine.interventions import GradTransforms
from groklab.engine.optim import BatchedOptimizer

HAND_WRITTEN_LOSS = os.environ.get("GROKLAB_FUSED_LOSS") != "0"  # bench switch: "0" = autograd all the way
__all__ = ["METRICS", "Member", "TrainResult", "evaluate", "example_losses", "loss_kwargs", "member_grads",
           "member_losses", "snapshot_steps", "stablemax_log_probs", "train", "train_step"]  # + re-exports
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


def log_steps_for(total: int, log_every: int) -> list[int]:
    early = [s for s in (1, 2, 5, 10, 20, 50) if s < log_every]  # log-spaced start for log-axis plots
    return sorted({0, *early, *range(log_every, total + 1, log_every), total})


def member_grads(model, params: dict[str, torch.Tensor], x: torch.Tensor | Batch, y: torch.Tensor | None,
                 loss_kw: dict, chunk: int = 0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-member losses (M,) and gradients. Summing member losses gives each member its own gradient.
    x, y: shared inputs (N, ...), labels (N,); or x a `Batch` (per-member rows, masks; y unused).
    With `chunk` > 0 members go through forward/backward `chunk` at a time (exact: members never interact),
    which keeps the activations of one chunk in cache and bounds memory."""
    batch = x if isinstance(x, Batch) else Batch(x, y)
    m = next(iter(params.values())).shape[0]
    plain = (HAND_WRITTEN_LOSS and loss_kw.get("softmax", "softmax") == "softmax"
             and loss_kw.get("dtype", "float32") == "float32"
             and (batch.plain or (batch.whole_rows and getattr(model, "per_member_loss_grads", False))))

    def grads_of(sub: dict[str, torch.Tensor], b: Batch,
                 out: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if plain and hasattr(model, "loss_grads"):  # hand-written softmax cross-entropy backward
            if out is not None and getattr(model, "loss_grads_out", False):  # writes some gradients into `out`
                return model.loss_grads(sub, b.x, b.y, loss_kw.get("reduction", "ce"), out=out)
            return model.loss_grads(sub, b.x, b.y, loss_kw.get("reduction", "ce"))
        sub = {k: v.detach().requires_grad_(True) for k, v in sub.items()}
        ls = member_losses(b.logits(model, sub), b.y, mask=b.mask, **loss_kw)  # (M,)
        return ls.detach(), dict(zip(sub, torch.autograd.grad(ls.sum(), list(sub.values()))))

    if chunk <= 0 or chunk >= m:
        return grads_of(params, batch)
    grads = {k: torch.empty_like(v) for k, v in params.items()}
    losses = torch.empty(m, device=batch.x.device)
    for s in range(0, m, chunk):
        out = {k: g[s:s + chunk] for k, g in grads.items()}  # contiguous slices the model may write into
        ls, gs = grads_of({k: v[s:s + chunk] for k, v in params.items()}, batch.members(s, s + chunk), out)
        for k, g in gs.items():
            if g is not out[k]:
                out[k].copy_(g)
        losses[s:s + chunk] = ls
    return losses, grads


def train_step(model, params: dict[str, torch.Tensor], opt: BatchedOptimizer, x: torch.Tensor | Batch,
               y: torch.Tensor | None, loss_kw: dict, transforms: GradTransforms | None = None,
               chunk: int = 0) -> torch.Tensor:
    """One optimizer step for every member. Returns the per-member training loss before the step. # (M,)"""
    losses, grads = member_grads(model, params, x, y, loss_kw, chunk)
    if transforms is not None and transforms.active:
        grads = transforms(params, grads)
    opt.step(params, grads)
    return losses


def is_member_data(data) -> bool:
    return hasattr(data, "mask") and hasattr(data, "count") and hasattr(data, "x")


def train(model, data, members: list[Member], optim, train_cfg, device: torch.device,
          settled: Callable[[dict[str, np.ndarray]], np.ndarray] | None = None,
          on_snapshot: Callable[[int, dict[str, torch.Tensor]], None] | None = None,
          on_progress: Callable[[int, int], None] | None = None,
          on_log: Callable[[int, dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None, *,
          checkpoint_every: int = 0,
          on_checkpoint: Callable[[dict[str, torch.Tensor], dict], None] | None = None,
          resume: tuple[dict[str, torch.Tensor], dict] | None = None, checkpoint_min_s: float = 0.0,
          decay_mask: dict[str, bool] | None = None, eval_max_elems: int = 2**25) -> TrainResult:
    """Train all members for `train_cfg.steps` steps (or until every member is settled).

    data: shared (TaskData: x_train (N, ...), y_train (N,), x_test, y_test) or per member (MemberData, or
      anything with x (M, n_max, ...), y (M, n_max), mask (M, n_max) bool, count (M,), x_test (M, n_test, ...),
      y_test (M, n_test) and optionally seeds (M,) for the batch orders; member i of `members` is row i).
      Full batch with per-member data = each member's masked mean loss over its own rows; train metrics are
      over each member's own rows, test metrics over its test rows (shared when x_test is an expanded view).
    train_cfg.batch_size: 0 or >= n: full batch; else mini-batches per train_cfg.batching (getattr, default
      "draws": a fresh draw every step, as always; "epochs": each member passes over its own examples once
      per epoch, reshuffled from its own seed, the last partial batch masked — engine/batches.py).
      Per-member batches need a model whose forward takes `per_member` (ModuleEnsemble); the hand-written
      models get them through a loop-free gather of the logits (more forward work).
    train_cfg.eval_examples (getattr, default 0 = all): evaluate on a fixed seeded subset of this many
      train and test examples; evaluation is chunked over members and examples (about eval_max_elems / 64
      (member, example) pairs at a time).
    optim: the optimizer section; schedule, min_lr_frac, cooldown, clip (or grad_clip) are read with
      defaults (BatchedOptimizer.from_config); decay_mask {param name: False} exempts parameters from decay.
    on_log(step, params) may return extra per-member metrics {name: (M_active,)} to log with the others
      (e.g. progress measures).
    checkpoint_every k > 0: after every k-th step on_checkpoint(tensors, meta) receives the complete state
      (engine/checkpoint.py), skipped while less than checkpoint_min_s seconds have passed since the last one;
      train(..., resume=(tensors, meta)) with the same arguments continues from it and ends with exactly the
      metrics and weights of an uninterrupted run on the same machine."""
    n_all = len(members)
    per_member = is_member_data(data)
    seeds = [m.seed for m in members]  # the batch orders' seeds: MemberData's own where it has them
    if per_member and getattr(data, "seeds", None) is not None:
        seeds = [int(s) for s in data.seeds]
    if per_member and len(data.count) != n_all:
        raise ValueError(f"per-member data has {len(data.count)} members, the ensemble {n_all}")
    data = data.to(device)
    loss_kw = loss_kwargs(train_cfg)
    steps_total, log_every = train_cfg.steps, train_cfg.log_every
    log_steps = log_steps_for(steps_total, log_every)
    snaps = set(snapshot_steps(steps_total, train_cfg.snapshots))
    x_tr, y_tr = (data.x, data.y) if per_member else (data.x_train, data.y_train)
    batcher = Batcher(model, x_tr, y_tr, train_cfg.batch_size, getattr(train_cfg, "batching", "draws"), seeds,
                      1_000_003 + train_cfg.seed, data.count if per_member else None,
                      data.mask if per_member else None)
    ev = EvalSets(data, per_member, getattr(train_cfg, "eval_examples", 0), seeds, device)

    if resume is None:
        scales = torch.tensor([m.init_scale for m in members])
        params = {k: v.to(device).requires_grad_(True)
                  for k, v in model.init([m.seed for m in members], scales).items()}
    else:
        params = checkpoint.params_of(resume, device)
    opt = BatchedOptimizer.from_config(params, optim, torch.tensor([m.lr for m in members]),
                                       torch.tensor([m.weight_decay for m in members]), steps_total, decay_mask)
    transforms = GradTransforms(params, optim)
    active = torch.arange(n_all)  # indices (into members) of the members still training
    full = {k: v.detach().cpu().clone() for k, v in params.items()}  # (M_all, ...) frozen copies
    hist = {k: np.full((n_all, len(log_steps)), np.nan) for k in METRICS}
    stopped_at = np.full(n_all, -1)
    model_steps, li, start, wall0 = 0, 0, 0, 0.0
    if resume is not None:
        st = checkpoint.restore(resume, seeds, log_steps, device, opt, transforms, batcher)
        active, full, hist, stopped_at = st["active"], st["full"], st["hist"], st["stopped_at"]
        model_steps, li, start, wall0 = st["model_steps"], st["li"], st["step"] + 1, st["wall_s"]
    t0 = time.perf_counter() - wall0
    last_checkpoint = -float("inf")

    def sync_full():
        for k, v in params.items():
            full[k][active] = v.detach().cpu()

    def log(step: int, li: int) -> None:
        p = {k: v.detach() for k, v in params.items()}
        dev_rows = active.to(device)
        tr_loss, tr_acc = ev.train(model, p, dev_rows, loss_kw, eval_max_elems)
        te_loss, te_acc = ev.test(model, p, dev_rows, loss_kw, eval_max_elems)
        l1 = sum(v.abs().flatten(1).sum(1) for v in p.values())
        l2 = sum(v.square().flatten(1).sum(1) for v in p.values()).sqrt()
        vals = dict(zip(METRICS, (tr_loss, te_loss, tr_acc, te_acc, l1, l2)))
        if on_log is not None:
            vals.update(on_log(step, p))
        for name, val in vals.items():
            if name not in hist:
                hist[name] = np.full((n_all, len(log_steps)), np.nan)
            hist[name][active.numpy(), li] = torch.as_tensor(val).double().cpu().numpy()

    for step in range(start, steps_total + 1):
        if step > 0:
            train_step(model, params, opt, batcher.next(), None, loss_kw, transforms, train_cfg.member_chunk)
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
                    batcher.select(keep)
                    if len(active) == 0:
                        break
            if on_progress is not None:
                on_progress(step, len(active))
        if (checkpoint_every > 0 and on_checkpoint is not None and step > 0 and step % checkpoint_every == 0
                and time.perf_counter() - last_checkpoint >= checkpoint_min_s):
            last_checkpoint = time.perf_counter()
            sync_full()
            on_checkpoint(*checkpoint.capture(
                step=step, li=li, model_steps=model_steps, wall_s=time.perf_counter() - t0, seeds=seeds,
                log_steps=log_steps, params=params, full=full, active=active, stopped_at=stopped_at, hist=hist,
                opt=opt, transforms=transforms, batcher=batcher, device=device))
    sync_full()
    extra = {"resumed_from": start - 1} if resume is not None else {}
    return TrainResult(np.array(log_steps), hist, stopped_at, full, time.perf_counter() - t0, model_steps, extra)
