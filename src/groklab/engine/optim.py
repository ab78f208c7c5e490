"""AdamW and SGD over a member axis: member i's update uses only lr[i], wd[i] and its own state, so it
is exactly the update a lone `torch.optim.AdamW` / `SGD` would make (tested against them).

decay='l2' is decoupled: w ← w·(1 − lr·wd) before the step (torch AdamW / optax adamw).
decay='l1' adds wd·sign(w) to the gradient before the moments (PAIR's l1_regularizer + adam).
decay='l1_decoupled' shrinks w ← w − lr·wd·sign(w) before the step (decoupled, like AdamW's L2).

Adam(W) runs torch's fused kernel (`torch._fused_adamw_`, one pass over memory instead of ~10) on
groups of members that share (lr, wd), passing each member's slice as a view; where the kernel is
missing (old torch) it falls back to the same math written with tensor ops.
"""

from __future__ import annotations

import os

import torch


def _per_member(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(M,) -> (M, 1, ..., 1) broadcastable against a parameter `like` of shape (M, ...)."""
    return v.reshape(-1, *([1] * (like.dim() - 1)))


class BatchedOptimizer:
    def __init__(self, params: dict[str, torch.Tensor], name: str, lr: torch.Tensor, wd: torch.Tensor,
                 decay: str = "l2", betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-8,
                 momentum: float = 0.0, warmup: int = 0):
        self.name, self.decay, self.betas, self.eps, self.momentum = name, decay, betas, eps, momentum
        self.warmup = warmup
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

    _fused_ok = hasattr(torch, "_fused_adamw_") and os.environ.get("GROKLAB_FUSED_ADAM") != "0"  # bench switch

    def _groups(self) -> list[tuple[float, float, list[int]]]:
        """Members sharing (lr, wd): [(lr, wd, member indices)]."""
        groups: dict[tuple[float, float], list[int]] = {}
        for i, key in enumerate(zip((self.lr * self._lr_factor()).tolist(), self.wd.tolist())):
            groups.setdefault(key, []).append(i)
        return [(lr, wd, idx) for (lr, wd), idx in groups.items()]

    def _step_fused(self, params, grads) -> None:
        l1 = self.decay in ("l1", "l1_decoupled")
        kernel = torch._fused_adam_ if l1 else torch._fused_adamw_
        groups = self._groups()
        for lr, wd, idx in groups:
            ps, gs, ms, vs = [], [], [], []
            for k, p in params.items():
                st, g = self.state[k], grads[k].contiguous()  # the kernel assumes param-like strides
                if len(groups) == 1:
                    ps.append(p), gs.append(g), ms.append(st["m"]), vs.append(st["v"])
                else:
                    for i in idx:
                        ps.append(p[i]), gs.append(g[i]), ms.append(st["m"][i]), vs.append(st["v"][i])
            if self.decay == "l1" and wd:
                gs = [g + wd * torch.sign(p) for g, p in zip(gs, ps)]
            elif self.decay == "l1_decoupled" and wd:
                torch._foreach_sub_(ps, torch._foreach_mul(torch._foreach_sign(ps), lr * wd))
            step = torch.full((), float(self.t), device=ps[0].device)
            kernel(ps, gs, ms, vs, [], [step] * len(ps), lr=lr, beta1=self.betas[0], beta2=self.betas[1],
                   weight_decay=0.0 if l1 else wd, eps=self.eps, amsgrad=False, maximize=False)

    def _lr_factor(self) -> float:
        """Linear warm-up: lr · min(1, t / warmup)."""
        return min(1.0, self.t / self.warmup) if self.warmup else 1.0

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        self.t += 1
        if self.name == "adamw" and self._fused_ok:
            try:
                return self._step_fused(params, grads)
            except (RuntimeError, NotImplementedError):  # kernel absent for this device/dtype
                BatchedOptimizer._fused_ok = False
        b1, b2 = self.betas
        bc1, bc2_sqrt = 1 - b1**self.t, (1 - b2**self.t) ** 0.5
        for k, p in params.items():
            g, st = grads[k], self.state[k]
            dev, dt = p.device, p.dtype
            lr = _per_member(self.lr * self._lr_factor(), p)
            if self.decay == "l1":
                g = g + _per_member(self.wd, p).to(dev, dt) * torch.sign(p)
            elif self.decay == "l1_decoupled":
                p.sub_((lr * _per_member(self.wd, p)).to(dev, dt) * torch.sign(p))
            elif bool((self.wd > 0).any()):
                p.mul_((1 - lr * _per_member(self.wd, p)).to(dev, dt))
            if self.name == "adamw":
                st["m"].lerp_(g, 1 - b1)
                st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (st["v"].sqrt() / bc2_sqrt).add_(self.eps)
                p.sub_((lr / bc1).to(dev, dt) * (st["m"] / denom))
            else:
                if self.momentum:
                    g = st["buf"].mul_(self.momentum).add_(g)
                p.sub_(lr.to(dev, dt) * g)
