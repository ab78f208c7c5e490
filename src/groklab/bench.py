"""`groklab bench engine`: the batched ensemble against a loop of independent models, and this
machine's fp32 matmul rate, measured in one process with the same threads."""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from groklab.config import load_config
from groklab.data import make_task
from groklab.engine import device as devmod
from groklab.engine.optim import BatchedOptimizer
from groklab.engine.trainer import loss_kwargs, member_losses, train_step
from groklab.nn import make_model
from groklab.nn.reference import PairMLPReference, member_params


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def matmul_gflops(dev: torch.device, n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    for _ in range(3):
        a @ b
    _sync(dev)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(dev)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def engine_benchmark(models: int, steps: int, loop_models: int, threads: int, device: str,
                     member_chunk: int = 0) -> dict:
    dev = devmod.setup(device, threads)
    cfg = load_config("pair-mlp")
    data = make_task(cfg).to(dev)
    model = make_model(cfg, data)
    o = cfg.optim
    seeds = list(range(models))
    params = {k: v.to(dev).requires_grad_(True) for k, v in model.init(seeds, torch.ones(models)).items()}
    opt = BatchedOptimizer(params, o.name, torch.full((models,), o.lr), torch.full((models,), o.weight_decay),
                           o.decay, (o.beta1, o.beta2), o.eps)
    x, y = data.x_train, data.y_train

    def step():
        train_step(model, params, opt, x, y, loss_kwargs(cfg.train), chunk=member_chunk)

    with FlopCounterMode(display=False) as fc:
        step()
    flops_per_step = fc.get_total_flops()
    for _ in range(2):
        step()
    _sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(dev)
    t_batched = (time.perf_counter() - t) / steps

    # The loop baseline: each member alone, as a plain nn.Module with torch.optim.AdamW.
    n_loop = min(loop_models, models)
    t_loop = 0.0
    for i in range(n_loop):
        ref = PairMLPReference(member_params(params, i)).to(dev)
        ropt = torch.optim.AdamW(ref.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps,
                                 weight_decay=o.weight_decay)

        def ref_step(ref=ref, ropt=ropt):
            ropt.zero_grad(set_to_none=True)
            member_losses(ref(x)[None], y, cfg.train.loss).sum().backward()
            ropt.step()

        ref_step()
        _sync(dev)
        t = time.perf_counter()
        for _ in range(steps):
            ref_step()
        _sync(dev)
        t_loop += time.perf_counter() - t
    loop_rate = n_loop * steps / t_loop
    batched_rate = models / t_batched
    mm = matmul_gflops(dev)
    engine = flops_per_step / t_batched / 1e9
    return {
        "models": models, "member_chunk": member_chunk, "steps": steps, "loop_models_timed": n_loop, "device": str(dev),
        "threads": torch.get_num_threads(), "batched_step_ms": t_batched * 1e3,
        "batched_model_steps_per_s": batched_rate, "loop_model_steps_per_s": loop_rate,
        "speedup": batched_rate / loop_rate, "matmul_gflops": mm, "engine_gflops": engine,
        "fraction_of_peak": engine / mm, "flops_per_model_step": flops_per_step / models,
    }
