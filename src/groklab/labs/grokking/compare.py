"""`groklab compare`: an intervention against a baseline with the same weight decay and seeds.

Both arms are full grok runs (stored as runs); the comparison reports steps to ≥95% test accuracy for each
(median over seeds that got there), their ratio, and the measured change of the effective step size:
the mean parameter displacement per step ‖Δw‖ over the first `probe_steps` steps, intervention / baseline.
"""

from __future__ import annotations

import copy

import torch

from groklab import GroklabError
from groklab.config import set_field, validate
from groklab.data import make_task
from groklab.engine import device as devmod
from groklab.engine.interventions import GradTransforms
from groklab.engine.optim import BatchedOptimizer
from groklab.engine.trainer import loss_kwargs, train_step
from groklab.labs.grokking.config import GrokConfig as Config
from groklab.labs.grokking.run import members_for, run_grok
from groklab.nn import make_model
from groklab.stats import median_or_none

INTERVENTIONS = {
    "grokfast-ema": {"optim.grokfast": "ema", "optim.grokfast_alpha": 0.98, "optim.grokfast_lambda": 2.0},
    "grokfast-ma": {"optim.grokfast": "ma", "optim.grokfast_window": 100, "optim.grokfast_lambda": 5.0},
    "orthograd": {"optim.orthograd": True},
    "stablemax": {"train.softmax": "stablemax"},
    "float64": {"train.logits_dtype": "float64"},
    "l1": {"optim.decay": "l1"},
}


def arm(cfg: Config, name: str, extra: list[tuple[str, object]] = ()) -> Config:
    if name not in INTERVENTIONS:
        raise GroklabError(f"--intervention: {name!r} is not known; choose one of: {', '.join(INTERVENTIONS)}")
    out = copy.deepcopy(cfg)
    for k, v in list(INTERVENTIONS[name].items()) + list(extra):
        set_field(out, k, v)
    out.name = f"{cfg.name}+{name}"
    return validate(out)


def step_size(cfg: Config, probe_steps: int) -> float:
    """Mean over members and steps of ‖w_{t+1} − w_t‖ during the first `probe_steps` steps."""
    dev = devmod.setup(cfg.train.device, cfg.train.threads)
    data = make_task(cfg).to(dev)
    model = make_model(cfg, data)
    members = members_for(cfg)
    params = {k: v.to(dev).requires_grad_(True)
              for k, v in model.init([m.seed for m in members], torch.tensor([m.init_scale for m in members])).items()}
    o = cfg.optim
    opt = BatchedOptimizer.from_config(params, o, torch.tensor([m.lr for m in members]),
                                       torch.tensor([m.weight_decay for m in members]), cfg.train.steps)
    tf, kw, total = GradTransforms(params, o), loss_kwargs(cfg.train), 0.0
    for _ in range(probe_steps):
        before = {k: v.detach().clone() for k, v in params.items()}
        train_step(model, params, opt, data.x_train, data.y_train, kw, tf)
        sq = sum((params[k].detach() - before[k]).square().flatten(1).sum(1) for k in params)  # (M,)
        total += float(sq.sqrt().mean())
    return total / probe_steps


def _arm_result(c: Config, root, probe_steps: int, on_progress) -> dict:
    s = run_grok(c, root, on_progress=on_progress)
    steps = [m["step_generalized"] for m in s["models"]]
    return {"run_dir": s["run_dir"], "wall_s": s["wall_s"], "median_step_generalized": median_or_none(steps),
            "generalized": sum(m["step_generalized"] is not None for m in s["models"]),
            "members": len(s["models"]), "outcome_counts": s["outcome_counts"],
            "step_generalized": {m["seed"]: m["step_generalized"] for m in s["models"]},
            "step_size": step_size(c, probe_steps)}


def paired_speedup(base: dict, treated: dict) -> float | None:
    """Median over seeds that reached 95% test in both arms of baseline step / treated step."""
    return median_or_none(b / t for seed, b in base.items() if b and (t := treated.get(seed)))


def compare(cfg: Config, interventions: list[str], extra: list[tuple[str, object]] = (), root=None,
            probe_steps: int = 200, on_progress=None) -> dict:
    """One baseline run, then one run per intervention with the same seeds, weight decay and steps."""
    treated = {name: arm(cfg, name, extra) for name in interventions}  # validates every name first
    base = copy.deepcopy(cfg)
    for k, v in extra:
        set_field(base, k, v)
    base = validate(base)
    b = _arm_result(base, root, probe_steps, on_progress)
    arms = {}
    for name, c in treated.items():
        t = _arm_result(c, root, probe_steps, on_progress)
        speedup = (b["median_step_generalized"] / t["median_step_generalized"]
                   if b["median_step_generalized"] and t["median_step_generalized"] else None)
        arms[name] = {**t, "settings": INTERVENTIONS[name], "speedup": speedup,
                      "paired_speedup": paired_speedup(b["step_generalized"], t["step_generalized"]),
                      "step_size_ratio": t["step_size"] / b["step_size"] if b["step_size"] else None}
    return {"preset": cfg.name, "weight_decay": cfg.optim.weight_decay, "decay": cfg.optim.decay,
            "steps": cfg.train.steps, "baseline": b, "arms": arms}
