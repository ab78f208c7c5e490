"""Grokfast MA filter, before/after in one run: the window mean re-stacked every step (the filter as of
commit d660965, read from git) against the running window sum. PAIR MLP, 8 members, window 100, 2 threads.

    python benchmarks/bench_grokfast_ma.py      (needs git; prints ms per optimizer step, two rounds)
"""

from __future__ import annotations

import importlib.util
import subprocess
import tempfile
import time

import torch

from groklab.config import load_config
from groklab.data import make_task
from groklab.engine import device as devmod
from groklab.engine import interventions as after
from groklab.engine.optim import BatchedOptimizer
from groklab.engine.trainer import loss_kwargs, train_step
from groklab.nn import make_model


def old_module():
    src = subprocess.run(["git", "show", "d660965:src/groklab/engine/interventions.py"], capture_output=True,
                         text=True, check=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location("interventions_before", f.name)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def ms_per_step(mod, cfg, data, model, members: int = 8, warm: int = 110, steps: int = 200) -> float:
    o = cfg.optim
    params = {k: v.requires_grad_(True) for k, v in model.init(list(range(members)), torch.ones(members)).items()}
    opt = BatchedOptimizer(params, o.name, torch.full((members,), o.lr), torch.full((members,), o.weight_decay),
                           o.decay, (o.beta1, o.beta2), o.eps)
    tf, kw = mod.GradTransforms(params, o), loss_kwargs(cfg.train)
    for _ in range(warm):  # fill the 100-step window
        train_step(model, params, opt, data.x_train, data.y_train, kw, tf)
    t = time.perf_counter()
    for _ in range(steps):
        train_step(model, params, opt, data.x_train, data.y_train, kw, tf)
    return (time.perf_counter() - t) / steps * 1e3


def main() -> None:
    devmod.setup("cpu", 2)
    cfg = load_config("pair-mlp", overrides=["optim.grokfast=ma"])
    data = make_task(cfg)
    model = make_model(cfg, data)
    before = old_module()
    for _ in range(2):
        for name, mod in (("before", before), ("after", after)):
            print(f"{name}: {ms_per_step(mod, cfg, data, model):.2f} ms/step", flush=True)


if __name__ == "__main__":
    main()
