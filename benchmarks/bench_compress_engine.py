"""The compression lab's training loop, before/after in one run: the old hand-written loop (a frozen copy
below: nn.Module GPT, torch.optim.AdamW with param groups, its own lr_at, clip_grad_norm_) against the
engine's stream loop (engine/stream.py: ModuleEnsemble of one, BatchedOptimizer with fused AdamW), same
config, same process, alternating old/new `--rounds` times.

    python benchmarks/bench_compress_engine.py [--preset addition8-cpu] [--steps 150] [--rounds 2] [--threads 2]

Each timed call trains `--steps` steps from scratch with held-out evaluation at step 0 and at the end
(data.val_examples is lowered to --val-examples so the steps dominate); steps/s = steps / wall time of the
call. Prints a Markdown table: one row per round and the total.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np
import torch
import torch.nn.functional as F

from groklab.data.addition import Addition
from groklab.engine import device as devmod
from groklab.labs.compression import config as cconfig
from groklab.labs.compression.train import train_model
from groklab.nn.gpt import GPT

# --------------------------------------------------------------- frozen copy of the old loop ("before")
VAL_SEED = 10**9


@torch.no_grad()
def old_evaluate(model: GPT, tokens: torch.Tensor, fmt: Addition, batch: int, dev) -> dict:
    was = model.training
    model.eval()
    pos_sum = torch.zeros(fmt.n_targets, dtype=torch.float64)
    hits = 0
    for i in range(0, len(tokens), batch):
        x = tokens[i:i + batch].to(dev)  # (b, T)
        logits = model(x[:, :-1])  # (b, T-1, V)
        nll = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")  # (b, T-1)
        pos_sum += nll.double().sum(0).cpu()
        ans = fmt.answer_slice
        hits += int((logits[:, ans].argmax(-1) == x[:, 1:][:, ans]).all(1).sum())
    model.train(was)
    pos = (pos_sum / len(tokens)).numpy()
    return {"loss": float(pos.mean()), "pos_loss": pos, "exact_match": hits / len(tokens)}


def old_lr_at(step: int, cfg) -> float:
    o, n = cfg.optim, cfg.train.steps
    if step < o.warmup:
        return o.lr * (step + 1) / o.warmup
    if step >= n - o.cooldown:
        return o.lr * o.min_lr_frac * (n - step) / o.cooldown
    t = (step - o.warmup) / max(1, n - o.cooldown - o.warmup)
    return o.lr * (o.min_lr_frac + (1 - o.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def old_mixture_sample(fmts: list[Addition], n: int, g: torch.Generator) -> torch.Tensor:
    k = len(fmts)
    return torch.cat([f.sample(n // k + (i < n % k), g) for i, f in enumerate(fmts)])


def old_train_batch(fmts: list[Addition], cfg, stream: torch.Generator) -> tuple[torch.Tensor, int]:
    b = cfg.train.batch_size
    n_boost = int(round(b * cfg.data.carry_boost)) if len(fmts) == 1 else 0
    x = old_mixture_sample(fmts, b - n_boost, stream)
    if n_boost:
        x = torch.cat([x, fmts[0].sample(n_boost, stream, chains=True)])
    return x, b - n_boost


def old_train_model(cfg, dev, fmts: list[Addition] | None = None):
    """labs/compression/train.py's train_model before the engine (grad_clip read as optim.clip; the lr is
    old_lr_at: a cosine to min_lr_frac, as the presets' schedule = "cosine")."""
    fmt = cfg.fmt()
    fmts = fmts or [fmt]
    t, o = cfg.train, cfg.optim
    torch.manual_seed(t.seed)
    model = GPT(cfg.shape()).to(dev)
    opt = torch.optim.AdamW(model.param_groups(o.weight_decay), lr=o.lr, betas=(o.beta1, o.beta2))
    stream = torch.Generator().manual_seed(cfg.data.seed)
    val = old_mixture_sample(fmts, cfg.data.val_examples, torch.Generator().manual_seed(cfg.data.seed + VAL_SEED))
    rows: list[tuple[int, str, float, int]] = []
    floor_pos = np.mean([f.floor_per_target() for f in fmts], axis=0)
    preq_nats, preq_examples = 0.0, 0
    t0 = time.perf_counter()

    def log_eval(step: int) -> None:
        ev = old_evaluate(model, val, fmt, t.eval_batch, dev)
        rows.extend([(step, "val_loss", ev["loss"], -1), (step, "exact_match", ev["exact_match"], -1)])
        rows.extend((step, "pos_loss", float(v), i) for i, v in enumerate(ev["pos_loss"]))
        rows.append((step, "epistemic", float(ev["loss"] - floor_pos.mean()), -1))

    log_eval(0)
    model.train()
    for step in range(t.steps):
        for g in opt.param_groups:
            g["lr"] = old_lr_at(step, cfg)
        x, n_seed = old_train_batch(fmts, cfg, stream)  # (B, T)
        x = x.to(dev)
        logits = model(x[:, :-1])  # (B, T-1, V)
        nll = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")  # (B, T-1)
        loss = nll.mean()
        if n_seed < len(x):
            loss = torch.cat([nll[:n_seed].flatten(), nll[n_seed:, fmt.answer_slice].flatten()]).mean()
        if cfg.model.dropout > 0:
            with torch.no_grad():
                model.eval()
                pre = F.cross_entropy(model(x[:n_seed, :-1]).transpose(1, 2), x[:n_seed, 1:]).detach()
                model.train()
        else:
            pre = nll[:n_seed].detach().mean()
        pre_v = float(pre)
        preq_nats += pre_v * x[:n_seed, 1:].numel()
        preq_examples += n_seed
        rows.append((step, "train_loss", pre_v, -1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if o.clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.clip)
        opt.step()
        done = step + 1
        if done % t.log_every == 0 or done == t.steps:
            log_eval(done)
    return model, rows, preq_nats, preq_examples, time.perf_counter() - t0


# --------------------------------------------------------------- the measurement

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="addition8-cpu")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--val-examples", type=int, default=1000)
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    dev = devmod.setup("cpu", a.threads)
    q = a.steps // 4
    cfg = cconfig.load(a.preset, overrides=[f"train.steps={a.steps}", f"train.log_every={a.steps}",
                                            f"optim.warmup={q}", f"optim.cooldown={q}",
                                            f"data.val_examples={a.val_examples}"])
    assert cfg.optim.schedule == "cosine" or cfg.optim.min_lr_frac == 1.0, "old_lr_at is a cosine"
    old_model, new_model = old_train_model, train_model
    old_model(cconfig.load(a.preset, overrides=["train.steps=3", "optim.warmup=1", "optim.cooldown=1"]), dev)
    new_model(cconfig.load(a.preset, overrides=["train.steps=3", "optim.warmup=1", "optim.cooldown=1"]), dev)
    times: dict[str, list[float]] = {"old": [], "new": []}
    for _ in range(a.rounds):
        for name, fn in (("old", old_model), ("new", new_model)):
            t0 = time.perf_counter()
            fn(cfg, dev)
            times[name].append(time.perf_counter() - t0)
    print(f"{a.preset}: {a.steps} steps x {cfg.train.batch_size}, {cfg.data.val_examples} held-out examples at "
          f"steps 0 and {a.steps}; torch {torch.__version__}, {platform.machine()} ({os.cpu_count()} cores), "
          f"torch threads {torch.get_num_threads()}, load average {load0:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end\n")
    print("| round | old loop steps/s | engine loop steps/s | new / old | threads | load at start |")
    print("|---|---|---|---|---|---|")
    for i, (o, n) in enumerate(zip(times["old"], times["new"])):
        print(f"| {i + 1} | {a.steps / o:.2f} | {a.steps / n:.2f} | {o / n:.3f} | {a.threads} | {load0:.2f} |")
    o, n = sum(times["old"]), sum(times["new"])
    steps = a.steps * a.rounds
    print(f"| all | {steps / o:.2f} | {steps / n:.2f} | {o / n:.3f} | {a.threads} | {load0:.2f} |")


if __name__ == "__main__":
    main()
