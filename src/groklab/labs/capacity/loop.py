"""Trainings one at a time, for optimizers that cannot run batched across members.

Shampoo (`optim.name = shampoo`, the `pytorch-optimizer` package's `Shampoo`, not written here) keeps, for
every parameter tensor of every member, one preconditioner matrix per tensor dimension and takes their
matrix roots each step; those have the parameter's own shape (a leading member axis would add a dimension
and change the update), so a round's trainings run ONE AFTER ANOTHER, each a lone `nn.Module` built exactly
as the ensemble's member (`ens.build(seed)`: same initialization), on the same subset, labels and inputs
(`member_set` for that one training), the same batch order (the engine's `Batcher`, whose epochs are per
member), the same evaluation (`EvalSets`) and the same settle rule (`train.Rule`).

One difference from the batched path: each training keeps its own clock. Its epoch is steps_per_epoch(n)
of its own n, its checks come every `search.check_every` of its epochs and its lr schedule runs over its
own step cap (max_epochs epochs); the batched path counts a round's checks and schedule in epochs of the
round's largest candidate. With full batch (one step per epoch for every n) the two coincide.
A training whose loss turns non-finite (or whose preconditioner roots fail) stops as `diverged`: not fitted.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from groklab.engine.batches import Batcher
from groklab.engine.evaluation import EvalSets, loss_kwargs, member_losses
from groklab.engine.schedule import lr_factor
from groklab.engine.trainer import log_steps_for

LOOPED = ("shampoo",)  # optimizers trained one member at a time
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")
EVAL_MAX = 2**25  # (member, example) elements per evaluation chunk, as the trainer's default


def make_optimizer(cfg, params: list[torch.Tensor]) -> torch.optim.Optimizer:
    """Shampoo over one lone module's parameters: lr (optim.lr_of()), shampoo_momentum, weight decay
    (decoupled) and precondition_every from [optim]."""
    from pytorch_optimizer import Shampoo

    o = cfg.optim
    return Shampoo(params, lr=o.lr_of(), momentum=o.shampoo_momentum, weight_decay=o.weight_decay,
                   weight_decouple=True, preconditioning_compute_steps=o.precondition_every)


def train_alone(cfg, base, ens, seed: int, n: int, device: torch.device) -> dict:
    """One training of n samples for `seed` until it fits, converges or is capped (train.Rule).
    Returns its status, epochs, steps, final metrics, gradient norm, curves and model steps."""
    from groklab.labs.capacity.train import FIT_ACC, Rule, member_set, steps_per_epoch

    data = member_set(cfg, base, [n], [seed]).to(device)  # x (1, n, ...), y (1, n), mask (1, n)
    batch = cfg.batch_size()
    spe = steps_per_epoch(n, batch, n)
    steps = min(cfg.train.steps, cfg.search.max_epochs * spe)
    log_steps = log_steps_for(steps, cfg.search.check_every * spe)
    rule = Rule(cfg, ens, data, np.array([spe]), log_steps, device)
    module = ens.build(seed).to(device)  # exactly the ensemble's member `seed` before training
    opt = make_optimizer(cfg, list(module.parameters()))
    names = ens.param_names
    batcher = Batcher(ens, data.x, data.y, batch, "epochs", [seed], 1_000_003 + cfg.train.seed, data.count,
                      data.mask)
    ev = EvalSets(data, True, 0, [seed], device)
    loss_kw, rows = loss_kwargs(cfg.train), torch.zeros(1, dtype=torch.long, device=device)
    hist = {k: np.full((1, len(log_steps)), np.nan) for k in METRICS}
    o, li, model_steps, status = cfg.optim, 0, 0, "running"
    for step in range(steps + 1):
        if step > 0:
            f = lr_factor(step, o.warmup, steps, o.schedule, o.min_lr_frac, o.cooldown,
                          getattr(o, "warmup_from_zero", False))
            for g in opt.param_groups:
                g["lr"] = o.lr_of() * f
            b = batcher.next()  # x (1, B, ...), y (1, B), mask (1, B) or None
            logits = module(b.x[0]).unsqueeze(0)  # (1, B, C)
            loss = member_losses(logits, b.y, mask=b.mask, **loss_kw).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            try:
                if not torch.isfinite(loss):
                    raise torch.linalg.LinAlgError("non-finite loss")
                opt.step()  # Shampoo's matrix roots fail (LinAlgError) once the statistics hold inf/NaN
            except torch.linalg.LinAlgError:
                status = "diverged"  # counted unfitted; its metrics are those of the last check
                break
            model_steps += 1
        if step != log_steps[li]:
            continue
        p = {k: v.detach().unsqueeze(0) for k, v in zip(names, module.parameters())}  # (1, ...)
        with torch.no_grad():
            tr = ev.train(ens, p, rows, loss_kw, EVAL_MAX)
            te = ev.test(ens, p, rows, loss_kw, EVAL_MAX)
        for k, v in zip(METRICS, (tr[0], tr[1], te[0], te[1])):
            hist[k][0, li] = float(torch.as_tensor(v).reshape(-1)[0])
        li += 1
        rule.on_log(step, p)
        if rule({k: v[:, :li] for k, v in hist.items()})[0] or step == steps:
            status = rule.status[0] if rule.status[0] != "running" else (
                "fitted" if hist["train_acc"][0, li - 1] >= FIT_ACC else "capped")
            break
    done = np.array(log_steps[:li])  # the checks made (step 0 always)
    return {"status": status, "steps": int(done[-1]), "epochs": done[-1] / spe, "grad_norm": rule.grad_norm[0],
            "final": {k: hist[k][0, li - 1] for k in METRICS}, "model_steps": model_steps,
            "curves": {"step": np.tile(done, len(METRICS)), "epoch": np.tile(done / spe, len(METRICS)),
                       "metric": np.repeat(np.array(METRICS, dtype=object), li),
                       "value": np.concatenate([hist[k][0, :li] for k in METRICS])}}


def train_round_looped(cfg, base, ens, cands: list[tuple[int, int]], device: torch.device, on_progress=None):
    """A round's trainings one after another (see the module docstring); the batched path's RoundResult."""
    from groklab.labs.capacity.train import RoundResult

    t0 = time.perf_counter()
    outs = []
    for i, (seed, n) in enumerate(cands):
        if on_progress is not None:
            on_progress(i / len(cands), len(cands) - i)
        outs.append(train_alone(cfg, base, ens, seed, n, device))
    curves = {k: np.concatenate([o["curves"][k] for o in outs]) for k in ("step", "epoch", "metric", "value")}
    curves["member"] = np.concatenate([np.full(len(o["curves"]["step"]), i) for i, o in enumerate(outs)])
    status = [o["status"] for o in outs]
    return RoundResult(np.array([s == "fitted" for s in status]), status,
                       np.array([o["epochs"] for o in outs], dtype=float), np.array([o["steps"] for o in outs]),
                       {k: np.array([o["final"][k] for o in outs]) for k in METRICS},
                       np.array([o["grad_norm"] for o in outs], dtype=float), curves, time.perf_counter() - t0,
                       sum(o["model_steps"] for o in outs))


def is_looped(cfg) -> bool:
    return cfg.optim.name in LOOPED


def batching_note(cfg) -> str:
    """What the result JSON says about how the round's trainings ran."""
    if is_looped(cfg):
        return (f"{cfg.optim.name}: trainings run one at a time (per-parameter preconditioner matrices cannot be "
                "batched across members); each on its own epoch clock")
    return "batched: every round's trainings are members of one ensemble"

