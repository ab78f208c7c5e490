"""The trainer's complete state as (tensors, JSON-able meta), and back.

Tensors (all on CPU, copies):
  params/<name>   (M_active, ...) the weights being trained      full/<name>  (M, ...) every member's latest
  opt/lr, opt/wd  (M_active,) float64; opt/m/<name>, opt/v/<name> (Adam) or opt/buf/<name> (SGD momentum)
  grad/ema/<name>, grad/hist/<name> (w, M_active, ...), grad/sum/<name>   Grokfast filter state
  batch/gen (shared draws) | batch/gens (M_active, bytes) | batch/epoch, batch/pos (M_active,)
  metrics/<metric> (M, L) float64, NaN where not logged       rng/cpu (and rng/cuda) global RNG states
Meta: format, step (last completed), li (next log index), model_steps, wall_s, seeds, log_steps, params
(names in order), metrics (names in order), active (member indices), stopped_at, opt, transforms, batches.

The store writes the pair (`Run.write_checkpoint`); `train(..., resume=pair)` continues from it.
"""

from __future__ import annotations

import numpy as np
import torch

from groklab import GroklabError

FORMAT = "groklab-trainer-1"


def _with(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in tensors.items()}


def _under(prefix: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def capture(*, step: int, li: int, model_steps: int, wall_s: float, seeds: list[int], log_steps: list[int],
            params, full, active: torch.Tensor, stopped_at: np.ndarray, hist: dict[str, np.ndarray], opt,
            transforms, batcher, device: torch.device) -> tuple[dict[str, torch.Tensor], dict]:
    """The state after `step` (module docstring)."""
    tensors = {**_with("params/", {k: v.detach().to("cpu", copy=True) for k, v in params.items()}),
               **_with("full/", {k: v.clone() for k, v in full.items()}),
               **_with("metrics/", {k: torch.from_numpy(v.copy()) for k, v in hist.items()})}
    ot, om = opt.state_dict()
    gt, gm = transforms.state_dict()
    bt, bm = batcher.state()
    tensors.update({**_with("opt/", ot), **_with("grad/", gt), **_with("batch/", bt)})
    tensors["rng/cpu"] = torch.get_rng_state()
    if device.type == "cuda":
        tensors["rng/cuda"] = torch.cuda.get_rng_state(device)
    tensors = {k: v.detach().cpu() for k, v in tensors.items()}
    meta = {"format": FORMAT, "step": int(step), "li": int(li), "model_steps": int(model_steps),
            "wall_s": float(wall_s), "seeds": [int(s) for s in seeds], "log_steps": [int(s) for s in log_steps],
            "params": list(params), "metrics": list(hist), "active": active.tolist(),
            "stopped_at": [int(s) for s in stopped_at], "opt": om, "transforms": gm, "batches": bm}
    return tensors, meta


def _check(meta: dict, seeds: list[int], log_steps: list[int]) -> None:
    if meta.get("format") != FORMAT:
        raise GroklabError(f"resume: not a trainer checkpoint (format {meta.get('format')!r}, want {FORMAT!r})")
    if [int(s) for s in meta["seeds"]] != [int(s) for s in seeds]:
        raise GroklabError(f"resume: the checkpoint's members have seeds {meta['seeds']}, this run {seeds}")
    if [int(s) for s in meta["log_steps"]] != [int(s) for s in log_steps]:
        raise GroklabError("resume: the checkpoint was written with other train.steps / train.log_every")


def params_of(resume: tuple[dict[str, torch.Tensor], dict], device: torch.device) -> dict[str, torch.Tensor]:
    """The trained (active) members' weights, in their original order, on `device`."""
    tensors, meta = resume
    return {k: tensors[f"params/{k}"].to(device, copy=True).requires_grad_(True) for k in meta["params"]}


def restore(resume: tuple[dict[str, torch.Tensor], dict], seeds: list[int], log_steps: list[int],
            device: torch.device, opt, transforms, batcher) -> dict:
    """Load the optimizer, gradient filters and batch orders in place; return the loop's own state."""
    tensors, meta = resume
    _check(meta, seeds, log_steps)
    active = torch.tensor(meta["active"], dtype=torch.int64)
    opt.load_state_dict(_under("opt/", tensors), meta["opt"])
    transforms.load_state_dict(_under("grad/", tensors), meta["transforms"], device)
    batcher.select(active)
    batcher.load(_under("batch/", tensors), meta["batches"])
    torch.set_rng_state(tensors["rng/cpu"].clone())
    if device.type == "cuda" and "rng/cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng/cuda"].clone(), device)
    return {"active": active, "full": {k: tensors[f"full/{k}"].clone() for k in meta["params"]},
            "hist": {k: tensors[f"metrics/{k}"].numpy().copy() for k in meta["metrics"]},
            "stopped_at": np.array(meta["stopped_at"], dtype=np.int64), "model_steps": int(meta["model_steps"]),
            "li": int(meta["li"]), "step": int(meta["step"]), "wall_s": float(meta["wall_s"])}
