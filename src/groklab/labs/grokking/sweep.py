"""How the grokking lab sweeps: lr, weight decay, init scale and seed vary per member; a member's row is
its PAIR outcome and milestones."""

from __future__ import annotations

import torch

from groklab.data import make_task
from groklab.engine.trainer import Member, train
from groklab.labs.grokking import sweep_figures
from groklab.labs.grokking.outcomes import OUTCOMES, member_summary, settled_fn
from groklab.labs.grokking.run import long_metrics
from groklab.nn import make_model
from groklab.sweep import GroupResult, LabSweep

SUMMARY_KEYS = ("outcome", "step_memorized", "step_generalized", "train_acc", "test_acc", "train_loss",
                "test_loss", "last_step", "peak_test_acc", "step_peak_test_acc")


def train_group(cfg, pts: list[dict], dev, on_progress) -> GroupResult:
    data = make_task(cfg)
    model = make_model(cfg, data)
    o = cfg.optim
    members = [Member(p["seed"], p.get("optim.lr", o.lr), p.get("optim.weight_decay", o.weight_decay),
                      p.get("model.init_scale", cfg.model.init_scale)) for p in pts]
    res = train(model, data, members, cfg.optim, cfg.train, dev,
                settled=settled_fn(cfg), on_progress=on_progress)
    rows = []
    for i in range(len(pts)):
        s = member_summary(res.steps, res.metrics, i, cfg.analysis)
        rows.append({k: s[k] for k in SUMMARY_KEYS})
    return GroupResult(rows, long_metrics(res, members), res.model_steps, res.wall_s)


def cost(cfg, n_members: int) -> float:
    """Rough training cost of a group: members x steps x parameters x examples per step."""
    data = make_task(cfg)
    params = make_model(cfg, data).init([0], torch.ones(1))
    n_params = sum(v[0].numel() for v in params.values())
    n_train = len(data.y_train)
    per_step = min(cfg.train.batch_size, n_train) if cfg.train.batch_size else n_train
    return float(n_members * cfg.train.steps * n_params * per_step)


SWEEP = LabSweep(member_fields=("optim.lr", "optim.weight_decay", "model.init_scale"), summary_keys=SUMMARY_KEYS,
                 train_group=train_group, cost=cost, figures=sweep_figures.draw, outcomes=OUTCOMES)
