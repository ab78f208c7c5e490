"""`groklab bench engine`: the batched ensemble against a loop of independent models, and this
machine's fp32 matmul rate, measured in one process with the same threads. Also the engine rows of
`groklab bench suite` (the PAIR MLP and the grokking transformer, hand-written batched models; the MNIST-1D
MLP and CNN through the torch.func ModuleEnsemble)."""

from __future__ import annotations

import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from groklab import GroklabError
from groklab.config import load_config
from groklab.data import make_task
from groklab.engine import device as devmod
from groklab.engine.optim import BatchedOptimizer
from groklab.engine.trainer import loss_kwargs, member_losses, train_step
from groklab.nn import make_model
from groklab.nn.reference import PairMLPReference, TransformerReference, member_params


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def matmul_gflops(dev: torch.device, n: int = 0, reps: int = 0) -> float:
    """fp32 rate of an n x n matmul (default 2048, 10 reps on a CPU; 8192, 20 reps on a GPU): the peak every
    fraction-of-peak is taken against."""
    n = n or (8192 if dev.type == "cuda" else 2048)
    reps = reps or (20 if dev.type == "cuda" else 10)
    a, b = torch.randn(n, n, device=dev), torch.randn(n, n, device=dev)
    for _ in range(3):
        a @ b
    _sync(dev)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(dev)
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def _reference(cfg, model, params: dict[str, torch.Tensor], i: int) -> torch.nn.Module:
    """Member i as the plain single-model nn.Module a user would write (nn/reference.py)."""
    if cfg.model.kind == "transformer":
        return TransformerReference(member_params(params, i), model.h, model.n_layers, model.layernorm)
    if cfg.model.kind == "pair_mlp":
        return PairMLPReference(member_params(params, i), tied=getattr(model, "tied", True))
    raise GroklabError(f"model.kind: {cfg.model.kind!r} has no single-model reference; use pair_mlp or transformer")


def engine_benchmark(models: int, steps: int, loop_models: int, threads: int, device: str,
                     member_chunk: int = 0, preset: str = "pair-mlp", overrides: tuple[str, ...] = (),
                     peak_gflops: float | None = None) -> dict:
    """One optimizer step of `models` members of a grokking preset's hand-written batched model (pair-mlp, or
    nanda-transformer: the 1-layer transformer) against a loop of `loop_models` single nn.Modules with
    torch.optim.AdamW, one after the other. `peak_gflops` (default: measured here) is the matmul rate that
    fraction_of_peak divides by."""
    dev = devmod.setup(device, threads)
    cfg = load_config(preset, overrides=list(overrides))
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
    t_batched = _time_steps(step, steps, dev)

    # The loop baseline: each member alone, as a plain nn.Module with torch.optim.AdamW.
    n_loop = min(loop_models, models)
    t_loop = 0.0
    for i in range(n_loop):
        ref = _reference(cfg, model, params, i).to(dev)
        ropt = torch.optim.AdamW(ref.parameters(), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps,
                                 weight_decay=o.weight_decay)

        def ref_step(ref=ref, ropt=ropt):
            ropt.zero_grad(set_to_none=True)
            with dev:  # tensors a reference makes in forward (the transformer's causal mask) go to `dev`
                member_losses(ref(x)[None], y, cfg.train.loss).sum().backward()
            ropt.step()

        t_loop += _time_steps(ref_step, steps, dev, warmup=1) * steps
    loop_rate = n_loop * steps / t_loop
    batched_rate = models / t_batched
    mm = peak_gflops or matmul_gflops(dev)
    engine = flops_per_step / t_batched / 1e9
    return {
        "preset": preset, "models": models, "member_chunk": member_chunk, "steps": steps,
        "loop_models_timed": n_loop, "device": str(dev),
        "threads": torch.get_num_threads(), "batched_step_ms": t_batched * 1e3,
        "batched_model_steps_per_s": batched_rate, "loop_model_steps_per_s": loop_rate,
        "speedup": batched_rate / loop_rate, "matmul_gflops": mm, "engine_gflops": engine,
        "fraction_of_peak": engine / mm, "flops_per_model_step": flops_per_step / models,
    }


ENSEMBLE_MODELS = ("pair_mlp", "mlp", "cnn")


def _ensemble_setup(model: str, dev: torch.device, batch: int):
    """(factory of one nn.Module, x, y, optimizer settings, hand-written model or None) for `model`.
    mlp / cnn: the MNIST-1D double-descent models (H = 100, C = 25) on one batch of `batch` inputs (N, 40),
    SGD lr 0.01 momentum 0.9 as in that experiment. pair_mlp: the pair-mlp preset (AdamW, full batch),
    as a plain nn.Module (PairMLPReference) and as groklab's hand-written batched model."""
    from groklab.nn.modules import build_module

    if model in ("mlp", "cnn"):
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(batch, 40, generator=g).to(dev), torch.randint(0, 10, (batch,), generator=g).to(dev)
        kw = {"hidden": 100} if model == "mlp" else {"channels": 25}
        opt = {"name": "sgd", "lr": 0.01, "wd": 0.0, "momentum": 0.9, "betas": (0.9, 0.98), "eps": 1e-8, "loss": "ce"}
        return (lambda: build_module(f"mnist1d_{model}", **kw)), x, y, opt, None
    cfg = load_config("pair-mlp")
    data = make_task(cfg).to(dev)
    hand = make_model(cfg, data)
    tied = getattr(hand, "tied", True)

    def make():  # one PAIR MLP drawn from the torch RNG (seeded per member by ModuleEnsemble)
        seed = int(torch.randint(0, 2**31 - 1, ()))
        return PairMLPReference(member_params(hand.init([seed], torch.ones(1)), 0), tied=tied)

    o = cfg.optim
    opt = {"name": "adamw", "lr": o.lr, "wd": o.weight_decay, "momentum": 0.0, "betas": (o.beta1, o.beta2),
           "eps": o.eps, "loss": cfg.train.loss}
    return make, data.x_train, data.y_train, opt, hand


def _time_steps(step, steps: int, dev: torch.device, warmup: int = 2) -> float:
    """Seconds per call of `step` over `steps` timed calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    _sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(dev)
    return (time.perf_counter() - t) / steps


def ensemble_benchmark(model: str, members: int, steps: int, threads: int, device: str = "cpu",
                       loop_members: int = 0, batch: int = 100, member_chunk: int = 0,
                       peak_gflops: float | None = None) -> dict:
    """One optimizer step for `members` models of kind `model` (pair_mlp | mlp | cnn), three ways, same work:
    the torch.func vmap ensemble (ModuleEnsemble + BatchedOptimizer via train_step), a Python loop over
    single nn.Modules each with its own torch.optim optimizer, and (pair_mlp) groklab's hand-written batched
    model. The loop times `loop_members` of them (0 = all) and reports its per-model rate. `member_chunk` > 0
    runs the batched forward/backward that many members at a time (as train.member_chunk does). The ensemble's
    GFLOP/s is members x one plain module's forward/backward FLOPs (torch.utils.flop_counter) over the ensemble's
    step time; fraction_of_peak divides it by `peak_gflops` (default: measured here)."""
    from groklab.engine.ensemble import ModuleEnsemble

    if model not in ENSEMBLE_MODELS:
        raise GroklabError(f"model: {model!r} is not allowed; choose one of: {', '.join(ENSEMBLE_MODELS)}")
    dev = devmod.setup(device, threads)
    make, x, y, o, hand = _ensemble_setup(model, dev, batch)
    lr, wd = torch.full((members,), o["lr"]), torch.full((members,), o["wd"])
    loss_kw = {"reduction": o["loss"]}

    def batched(m) -> float:
        init = m.init(list(range(members)), torch.ones(members))  # {name: (M, ...)}
        params = {k: v.to(dev).requires_grad_(True) for k, v in init.items()}
        opt = BatchedOptimizer(params, o["name"], lr, wd, "l2", o["betas"], o["eps"], o["momentum"])
        return _time_steps(lambda: train_step(m, params, opt, x, y, loss_kw, chunk=member_chunk), steps, dev)

    ens = ModuleEnsemble(make)
    t_ens = batched(ens)
    t_vmap = batched(ModuleEnsemble(make, batched=False)) if ens._batched is not None else None  # the before
    t_hand = batched(hand) if hand is not None else None

    n_loop = min(loop_members or members, members)
    loop = [ens.build(i).to(dev) for i in range(n_loop)]
    opts = [torch.optim.AdamW(mod.parameters(), lr=o["lr"], betas=o["betas"], eps=o["eps"], weight_decay=o["wd"])
            if o["name"] == "adamw" else torch.optim.SGD(mod.parameters(), lr=o["lr"], momentum=o["momentum"])
            for mod in loop]

    def loop_step():
        for mod, opt in zip(loop, opts):
            opt.zero_grad(set_to_none=True)
            member_losses(mod(x)[None], y, o["loss"]).sum().backward()
            opt.step()

    t_loop = _time_steps(loop_step, steps, dev, warmup=1)
    # FLOPs of one model's step, counted on the plain module (the counter overcounts vmap's grouped-conv
    # backward by a factor of the member count), times the members: the same work the ensemble does
    with FlopCounterMode(display=False) as fc:
        member_losses(loop[0](x)[None], y, o["loss"]).sum().backward()
    flops = fc.get_total_flops() * members
    ens_rate, loop_rate = members / t_ens, n_loop / t_loop
    gflops, mm = flops / t_ens / 1e9, peak_gflops or matmul_gflops(dev)
    res = {"model": model, "members": members, "member_chunk": member_chunk, "steps": steps, "batch": len(y),
           "device": str(dev), "threads": torch.get_num_threads(), "params_per_member": ens.n_params,
           "optimizer": o["name"], "ensemble_step_ms": t_ens * 1e3, "ensemble_model_steps_per_s": ens_rate,
           "loop_members_timed": n_loop, "loop_model_steps_per_s": loop_rate, "speedup": ens_rate / loop_rate,
           "flops_per_model_step": flops / members, "ensemble_gflops": gflops, "matmul_gflops": mm,
           "fraction_of_peak": gflops / mm}
    if t_vmap is not None:
        res.update({"vmap_step_ms": t_vmap * 1e3, "fast_path_vs_vmap": t_vmap / t_ens})
    if t_hand is not None:
        res.update({"handwritten_step_ms": t_hand * 1e3, "handwritten_model_steps_per_s": members / t_hand,
                    "handwritten_vs_ensemble": t_ens / t_hand})
    return res
