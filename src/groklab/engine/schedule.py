"""Learning-rate schedule and per-member gradient clipping for the batched optimizer.

Schedule (the compression lab's `lr_at`, for any lab): linear warm-up over `warmup` steps, then either
"constant" (the peak lr) or "cosine" from the peak down to `lr * min_lr_frac` at the start of the cool-down,
then (if `cooldown` > 0) a linear fall to 0 over the last `cooldown` of `total` steps, starting from the
value the schedule had reached (lr · min_lr_frac for cosine, lr for constant).
"""

from __future__ import annotations

import math

import torch

SCHEDULES = ("constant", "cosine")


def check_schedule(schedule: str, total: int, warmup: int, cooldown: int, min_lr_frac: float) -> None:
    """A ValueError for a schedule that cannot run (bugs or unvalidated configs, not user input paths)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"lr schedule: one of {SCHEDULES}, got {schedule!r}")
    if (schedule == "cosine" or cooldown) and total <= 0:
        raise ValueError("lr schedule: 'cosine' or a cool-down needs the total number of steps")
    if cooldown < 0 or warmup < 0 or not 0.0 <= min_lr_frac <= 1.0:
        raise ValueError(f"lr schedule: warmup {warmup}, cooldown {cooldown} >= 0 and min_lr_frac "
                         f"{min_lr_frac} in [0, 1]")


def lr_factor(t: int, warmup: int = 0, total: int = 0, schedule: str = "constant", min_lr_frac: float = 0.0,
              cooldown: int = 0, from_zero: bool = False) -> float:
    """Multiplier of the peak lr for the t-th update (t = 1, 2, ...; the compression lab's `step` is t − 1).

    With schedule="constant" and no cool-down this is min(1, t / warmup), the engine's warm-up as before;
    from_zero: min(1, (t − 1) / warmup), torch's LambdaLR(lambda s: min(s / warmup, 1)) stepped after each update."""
    step = t - 1
    if warmup and step < warmup:
        return (t - 1 if from_zero else t) / warmup
    end = min_lr_frac if schedule == "cosine" else 1.0
    if cooldown and step >= total - cooldown:
        return max(0.0, end * (total - step) / cooldown)
    if schedule == "constant":
        return 1.0
    u = (step - warmup) / max(1, total - cooldown - warmup)
    return min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, u)))


def member_grad_norms(grads: dict[str, torch.Tensor]) -> torch.Tensor:
    """Each member's global gradient norm over all its tensors, as torch.nn.utils.clip_grad_norm_
    computes it (norm of the per-tensor norms). # (M,)"""
    per_tensor = [torch.linalg.vector_norm(g.flatten(1), 2, dim=1) for g in grads.values()]  # [(M,)]
    return torch.linalg.vector_norm(torch.stack(per_tensor), 2, dim=0)  # (M,)


def clip_grads(grads: dict[str, torch.Tensor], max_norm: float) -> dict[str, torch.Tensor]:
    """Scale each member's gradients by min(1, max_norm / (norm + 1e-6)) — clip_grad_norm_ per member."""
    coef = (max_norm / (member_grad_norms(grads) + 1e-6)).clamp_max(1.0)  # (M,)
    return {k: g * coef.view(-1, *([1] * (g.dim() - 1))).to(g.dtype) for k, g in grads.items()}
