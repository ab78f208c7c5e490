"""AdamW and SGD over a member axis: member i's update uses only lr[i], wd[i] and its own state, so it
is exactly the update a lone `torch.optim.AdamW` / `SGD` would make (tested against them).

decay='l2' is decoupled: w ← w·(1 − lr·wd) before the step (torch AdamW / optax adamw).
decay='l1' adds wd·sign(w) to the gradient before the moments (PAIR's l1_regularizer + adam).
"""

from __future__ import annotations

import torch


def _per_member(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(M,) -> (M, 1, ..., 1) broadcastable against a parameter `like` of shape (M, ...)."""
    return v.reshape(-1, *([1] * (like.dim() - 1)))


class BatchedOptimizer:
    def __init__(self, params: dict[str, torch.Tensor], name: str, lr: torch.Tensor, wd: torch.Tensor,
                 decay: str = "l2", betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-8,
                 momentum: float = 0.0):
        self.name, self.decay, self.betas, self.eps, self.momentum = name, decay, betas, eps, momentum
        self.lr = lr.to(torch.float64)  # (M,) float64 so per-member scalars round like Python floats
        self.wd = wd.to(torch.float64)  # (M,)
        self.t = 0
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        for k, p in params.items():
            if name == "adamw":
                self.state[k] = {"m": torch.zeros_like(p), "v": torch.zeros_like(p)}
            elif momentum:
                self.state[k] = {"buf": torch.zeros_like(p)}
            else:
                self.state[k] = {}

    def select(self, idx: torch.Tensor) -> None:
        """Keep only the members `idx` (compaction after early stopping)."""
        self.lr, self.wd = self.lr[idx.cpu()], self.wd[idx.cpu()]
        for st in self.state.values():
            for k in st:
                st[k] = st[k][idx]

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        self.t += 1
        b1, b2 = self.betas
        bc1, bc2_sqrt = 1 - b1**self.t, (1 - b2**self.t) ** 0.5
        for k, p in params.items():
            g, st = grads[k], self.state[k]
            dev, dt = p.device, p.dtype
            lr = _per_member(self.lr, p)
            if self.decay == "l1":
                g = g + _per_member(self.wd, p).to(dev, dt) * torch.sign(p)
            elif bool((self.wd > 0).any()):
                p.mul_(_per_member(1 - self.lr * self.wd, p).to(dev, dt))
            if self.name == "adamw":
                st["m"].lerp_(g, 1 - b1)
                st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (st["v"].sqrt() / bc2_sqrt).add_(self.eps)
                p.sub_((lr / bc1).to(dev, dt) * (st["m"] / denom))
            else:
                if self.momentum:
                    g = st["buf"].mul_(self.momentum).add_(g)
                p.sub_(lr.to(dev, dt) * g)
