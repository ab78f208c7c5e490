"""Next-token training on a stream of fresh token sequences: one pass, every batch new, for a sequence
model (e.g. nn/gpt.py) run as a `ModuleEnsemble` of one member.

Each step takes the stream's next batch (tokens (B, T)), runs the model in train mode on tokens[:, :-1]
(logits (B, T-1, V)), and takes the per-token cross-entropy nll (B, T-1) against tokens[:, 1:]. The loss
is the mean over the trained targets: every target of the first `n_code` rows, and of the remaining rows
(a curriculum's planted examples) only the targets in `rest_targets`. The **prequential code** of the
step is the eval-mode mean nll of the first n_code rows *before* the update — the same numbers as the
loss's when the model has no dropout, an extra no-grad forward in eval mode when it has — and the code
length adds nats/token × coded tokens over the steps (step 0 is coded by the untrained model: a real first
block a decoder can replay). Then gradients, the optional gradient transforms (Grokfast, ⊥Grad) and the
batched optimizer (lr schedule, clipping, decay mask). `evaluate(logits_of, step)` runs at step 0, every
`log_every` steps and at the end; the loop keeps long rows (step, metric, value, position): its own
"train_loss" per step (the code's nats/token) plus whatever evaluate returns.

Checkpoints (tensors, JSON meta), written through `on_checkpoint` (Run.write_checkpoint):
  params/<name> (1, ...)   opt/... (BatchedOptimizer.state_dict)   grad/... (GradTransforms.state_dict)
  stream/... (the stream's state, e.g. its generator)   rng/cpu (and rng/cuda) the global RNG
  rows/step, rows/metric (index into meta.metrics), rows/value (float64), rows/position
Meta: format, step (updates done), steps, log_every, wall_s, params, metrics, code_nats, code_examples,
opt, transforms. `train_stream(..., resume=(tensors, meta))` continues from it and ends with exactly the
rows and weights of an uninterrupted run on the same machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from groklab import GroklabError
from groklab.engine.checkpoint import _under, _with
from groklab.engine.ensemble import ModuleEnsemble
from groklab.engine.interventions import GradTransforms
from groklab.engine.optim import BatchedOptimizer

FORMAT = "groklab-stream-1"
Row = tuple[int, str, float, int]  # (step, metric, value, position; -1 = not per position)


@dataclass
class StreamBatch:
    tokens: torch.Tensor  # (B, T) int64
    n_code: int  # rows [0, n_code): the coded distribution, trained on every target
    rest_targets: slice | None = None  # rows [n_code, B): trained only on these target positions (None = all)


class TokenStream(Protocol):
    def next(self) -> StreamBatch: ...

    def state(self) -> dict[str, torch.Tensor]: ...

    def load(self, tensors: dict[str, torch.Tensor]) -> None: ...


@dataclass
class StreamResult:
    params: dict[str, torch.Tensor]  # final weights {name: (1, ...)} on CPU
    rows: list[Row]
    code_nats: float  # prequential code length of the coded rows, nats
    code_examples: int  # coded examples (sum of n_code)
    wall_s: float
    resumed_from: int | None  # updates done when resumed, None for a run from scratch


def stream_nll(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Per-target cross-entropy of logits (B, T-1, V) against tokens[:, 1:]. # (B, T-1)"""
    return F.cross_entropy(logits.transpose(1, 2), tokens[:, 1:], reduction="none")


def stream_loss(nll: torch.Tensor, batch: StreamBatch) -> torch.Tensor:
    """Mean nll over the trained targets (module docstring). nll (B, T-1) -> ()"""
    n = batch.n_code
    if n == len(nll) or batch.rest_targets is None:
        return nll.mean()
    return torch.cat([nll[:n].flatten(), nll[n:, batch.rest_targets].flatten()]).mean()


def _rows_tensors(rows: list[Row], names: list[str]) -> dict[str, torch.Tensor]:
    index = {m: i for i, m in enumerate(names)}
    step, metric, value, pos = zip(*rows) if rows else ((), (), (), ())
    return {"step": torch.tensor(step, dtype=torch.int64), "metric": torch.tensor([index[m] for m in metric],
            dtype=torch.int64), "value": torch.tensor(value, dtype=torch.float64),
            "position": torch.tensor(pos, dtype=torch.int64)}


def _rows_of(t: dict[str, torch.Tensor], names: list[str]) -> list[Row]:
    return [(s, names[m], v, p) for s, m, v, p in zip(t["step"].tolist(), t["metric"].tolist(),
                                                      t["value"].tolist(), t["position"].tolist())]


def train_stream(ens: ModuleEnsemble, stream: TokenStream, optim, train_cfg, device: torch.device,
                 evaluate: Callable[[Callable[[torch.Tensor], torch.Tensor], int], list[tuple[str, float, int]]],
                 *, decay_mask: dict[str, bool] | None = None, on_progress: Callable[[int], None] | None = None,
                 checkpoint_every: int = 0, checkpoint_min_s: float = 0.0,
                 on_checkpoint: Callable[[dict[str, torch.Tensor], dict], None] | None = None,
                 resume: tuple[dict[str, torch.Tensor], dict] | None = None,
                 should_stop: Callable[[int], bool] | None = None) -> StreamResult:
    """Train one member for train_cfg.steps updates on `stream` (module docstring).

    train_cfg: steps, log_every, seed (the member's init seed; the global RNG — dropout — starts from it),
      optional precision ("fp32" default; "bf16": the training forward and backward under bfloat16 autocast —
      matmuls in bfloat16, weights, optimizer and evaluation in float32; the prequential code is read off a
      bfloat16 forward too).
    optim: the shared [optim] section (lr, weight_decay, schedule, clip, ...; BatchedOptimizer.from_config).
    evaluate(logits_of, step) -> [(metric, value, position)]: logits_of(x (b, T-1)) -> (b, T-1, V) in eval
      mode, no grad. on_progress(updates done). checkpoint_every k > 0: after every k-th update (skipped
      while less than checkpoint_min_s seconds passed since the last one) on_checkpoint(tensors, meta).
    should_stop(updates done) -> True ends training after that update (e.g. a plateau rule read off evaluate)."""
    steps, log_every = train_cfg.steps, train_cfg.log_every
    if resume is not None and resume[1].get("format") != FORMAT:
        raise GroklabError(f"resume: not a stream checkpoint (format {resume[1].get('format')!r}, want {FORMAT!r})")
    torch.manual_seed(train_cfg.seed)
    if resume is None:
        params = ens.init([train_cfg.seed], torch.ones(1))
    else:  # in the original order (a safetensors file sorts its keys): it orders the clipping norm's sum
        params = {k: resume[0][f"params/{k}"] for k in resume[1]["params"]}
    params = {k: v.to(device, copy=True).requires_grad_(True) for k, v in params.items()}  # {name: (1, ...)}
    if next(iter(params.values())).shape[0] != 1:
        raise ValueError("train_stream trains one member (params of shape (1, ...))")
    f64 = torch.float64  # lr and wd as Python floats would round
    opt = BatchedOptimizer.from_config(params, optim, torch.tensor([optim.lr], dtype=f64),
                                       torch.tensor([optim.weight_decay], dtype=f64), steps, decay_mask)
    transforms = GradTransforms(params, optim)
    dropout = ens.randomness == "different"  # the code needs its own eval-mode forward
    bf16 = getattr(train_cfg, "precision", "fp32") == "bf16"

    def amp():  # the training forward's precision context (a no-op for fp32)
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    rows: list[Row] = []
    code_nats, code_examples, start, wall0 = 0.0, 0, 0, 0.0
    if resume is not None:
        tensors, meta = resume
        if (meta["steps"], meta["log_every"]) != (steps, log_every):
            raise GroklabError("resume: the checkpoint was written with other train.steps / train.log_every")
        opt.load_state_dict(_under("opt/", tensors), meta["opt"])
        transforms.load_state_dict(_under("grad/", tensors), meta["transforms"], device)
        stream.load(_under("stream/", tensors))
        torch.set_rng_state(tensors["rng/cpu"].clone())
        if device.type == "cuda" and "rng/cuda" in tensors:
            torch.cuda.set_rng_state(tensors["rng/cuda"].clone(), device)
        rows = _rows_of(_under("rows/", tensors), meta["metrics"])
        code_nats, code_examples = float(meta["code_nats"]), int(meta["code_examples"])
        start, wall0 = int(meta["step"]), float(meta["wall_s"])
    t0 = time.perf_counter() - wall0
    last_checkpoint = -math.inf

    def logits_of(x: torch.Tensor) -> torch.Tensor:  # (b, T-1) -> (b, T-1, V), eval mode
        with torch.no_grad():
            return ens(params, x)[0]

    def log(step: int) -> None:
        rows.extend((step, m, float(v), int(p)) for m, v, p in evaluate(logits_of, step))

    def capture(done: int) -> tuple[dict[str, torch.Tensor], dict]:
        names = list(dict.fromkeys(m for _, m, _, _ in rows))
        ot, om = opt.state_dict()
        gt, gm = transforms.state_dict()
        tensors = {**_with("params/", {k: v.detach() for k, v in params.items()}), **_with("opt/", ot),
                   **_with("grad/", gt), **_with("stream/", stream.state()),
                   **_with("rows/", _rows_tensors(rows, names)), "rng/cpu": torch.get_rng_state()}
        if device.type == "cuda":
            tensors["rng/cuda"] = torch.cuda.get_rng_state(device)
        meta = {"format": FORMAT, "step": done, "steps": steps, "log_every": log_every,
                "wall_s": time.perf_counter() - t0, "params": list(params), "metrics": names,
                "code_nats": code_nats, "code_examples": code_examples, "opt": om, "transforms": gm}
        return {k: v.detach().to("cpu", copy=True) for k, v in tensors.items()}, meta

    if start == 0:
        log(0)
    if on_progress is not None:
        on_progress(start)
    for step in range(start, steps):
        batch = stream.next()
        x = batch.tokens.to(device)  # (B, T) fresh examples, each seen once
        n = batch.n_code
        with amp():
            logits = ens(params, x[:, :-1])[0]  # (B, T-1, V), train mode
        nll = stream_nll(logits.float(), x)  # (B, T-1)
        loss = stream_loss(nll, batch)
        if dropout:
            with torch.no_grad(), amp():
                pre = F.cross_entropy(ens(params, x[:n, :-1])[0].float().transpose(1, 2), x[:n, 1:])
        else:
            pre = nll[:n].detach().mean()
        pre_v = float(pre)
        if not math.isfinite(pre_v):
            raise GroklabError(f"optim.lr: training diverged (loss {pre_v}) at step {step}; lower the lr")
        code_nats += pre_v * x[:n, 1:].numel()  # mean nats/token x tokens
        code_examples += n
        rows.append((step, "train_loss", pre_v, -1))
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
        if transforms.active:
            grads = transforms(params, grads)
        opt.step(params, grads)
        done = step + 1
        if done % log_every == 0 or done == steps:
            log(done)
        if on_progress is not None:
            on_progress(done)
        if should_stop is not None and should_stop(done):
            break
        if (checkpoint_every > 0 and on_checkpoint is not None and done % checkpoint_every == 0 and done < steps
                and time.perf_counter() - last_checkpoint >= checkpoint_min_s):
            last_checkpoint = time.perf_counter()
            on_checkpoint(*capture(done))
    final = {k: v.detach().to("cpu", copy=True) for k, v in params.items()}
    return StreamResult(final, rows, code_nats, code_examples, time.perf_counter() - t0,
                        start if resume is not None else None)
