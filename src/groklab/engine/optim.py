"""AdamW and SGD over a member axis: member i's update uses only lr[i], wd[i] and its own state, so it
is exactly the update a lone `torch.optim.AdamW` / `SGD` would make (tested against them).

decay='l2' is decoupled: w ← w·(1 − lr·wd) before the step (torch AdamW / optax adamw).
decay='l2_coupled' adds wd·w to the gradient before the moments (torch.optim.Adam's weight_decay; Grokfast).
decay='l1' adds wd·sign(w) to the gradient before the moments (PAIR's l1_regularizer + adam).
decay='l1_decoupled' shrinks w ← w − lr·wd·sign(w) before the step (decoupled, like AdamW's L2).
`decay_mask` {name: False} exempts parameters from any decay (a GPT's biases, LayerNorms, embeddings).

The lr follows `engine.schedule.lr_factor` (warm-up, constant or cosine, cool-down). With `clip` > 0 each
member's gradients are scaled to global norm <= clip first (clip_grad_norm_ per member, after any
gradient transforms, before L1's sign term).

Adam(W) runs torch's fused kernel (`torch._fused_adamw_`, one pass over memory instead of ~10) on
groups of members that share (lr, wd), passing each member's slice as a view; where the kernel is
missing (old torch) or switched off (GROKLAB_FUSED_ADAM=0) the same math runs written with tensor ops.
"""

from __future__ import annotations

import os

import torch

from groklab.engine.schedule import check_schedule, clip_grads, lr_factor


def _per_member(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(M,) -> (M, 1, ..., 1) broadcastable against a parameter `like` of shape (M, ...)."""
    return v.reshape(-1, *([1] * (like.dim() - 1)))


def decay_mask_of(module: torch.nn.Module, groups: list[dict]) -> dict[str, bool]:
    """{parameter name: decayed?} from torch-style param groups of `module`, e.g. GPT.param_groups(wd):
    a parameter is decayed if its group's weight_decay is > 0."""
    decayed = {id(p) for g in groups if g.get("weight_decay", 0.0) > 0 for p in g["params"]}
    return {k: id(p) in decayed for k, p in module.named_parameters()}


class BatchedOptimizer:
    def __init__(self, params: dict[str, torch.Tensor], name: str, lr: torch.Tensor, wd: torch.Tensor,
                 decay: str = "l2", betas: tuple[float, float] = (0.9, 0.98), eps: float = 1e-8,
                 momentum: float = 0.0, warmup: int = 0, *, schedule: str = "constant", total_steps: int = 0,
                 min_lr_frac: float = 0.0, cooldown: int = 0, clip: float = 0.0,
                 decay_mask: dict[str, bool] | None = None, warmup_from_zero: bool = False):
        self.name, self.decay, self.betas, self.eps, self.momentum = name, decay, betas, eps, momentum
        check_schedule(schedule, total_steps, warmup, cooldown, min_lr_frac)
        self.warmup, self.schedule, self.total_steps = warmup, schedule, total_steps
        self.warmup_from_zero = warmup_from_zero
        self.min_lr_frac, self.cooldown, self.clip = min_lr_frac, cooldown, clip
        self.decay_mask = {k: bool((decay_mask or {}).get(k, True)) for k in params}
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

    @classmethod
    def from_config(cls, params: dict[str, torch.Tensor], optim, lr: torch.Tensor, wd: torch.Tensor,
                    total_steps: int, decay_mask: dict[str, bool] | None = None) -> BatchedOptimizer:
        """From an optim config section; schedule fields absent from it take the config's defaults
        (schedule constant, min_lr_frac 1, cooldown 0, clip 0 — `grad_clip` is read where `clip` is absent)."""
        clip = getattr(optim, "clip", getattr(optim, "grad_clip", 0.0))
        return cls(params, optim.name, lr, wd, optim.decay, (optim.beta1, optim.beta2), optim.eps,
                   getattr(optim, "momentum", 0.0), getattr(optim, "warmup", 0),
                   schedule=getattr(optim, "schedule", "constant"), total_steps=total_steps,
                   min_lr_frac=getattr(optim, "min_lr_frac", 1.0), cooldown=getattr(optim, "cooldown", 0),
                   clip=clip, decay_mask=decay_mask, warmup_from_zero=getattr(optim, "warmup_from_zero", False))

    def select(self, idx: torch.Tensor) -> None:
        """Keep only the members `idx` (compaction after early stopping)."""
        self.lr, self.wd = self.lr[idx.cpu()], self.wd[idx.cpu()]
        for st in self.state.values():
            for k in st:
                st[k] = st[k][idx]

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON-able meta) of everything `step` depends on: lr/wd of the active members, the
        moments or momentum buffers ("m/<param>", "v/<param>", "buf/<param>") and the step count."""
        tensors = {"lr": self.lr.clone(), "wd": self.wd.clone()}
        tensors.update({f"{s}/{k}": v.detach().clone() for k, st in self.state.items() for s, v in st.items()})
        return tensors, {"t": self.t}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        self.t = int(meta["t"])
        self.lr, self.wd = tensors["lr"].to(torch.float64), tensors["wd"].to(torch.float64)
        for key, v in tensors.items():
            if "/" in key:
                s, k = key.split("/", 1)
                old = self.state[k].get(s, v)  # created in __init__ on the parameters' device
                self.state[k][s] = v.to(old.device, old.dtype).clone()

    _fused_ok = hasattr(torch, "_fused_adamw_") and os.environ.get("GROKLAB_FUSED_ADAM") != "0"  # bench switch

    def _lr_factor(self) -> float:
        return lr_factor(self.t, self.warmup, self.total_steps, self.schedule, self.min_lr_frac, self.cooldown,
                         self.warmup_from_zero)

    def _groups(self) -> list[tuple[float, float, list[int]]]:
        """Members sharing (lr, wd): [(lr, wd, member indices)]."""
        groups: dict[tuple[float, float], list[int]] = {}
        for i, key in enumerate(zip((self.lr * self._lr_factor()).tolist(), self.wd.tolist())):
            groups.setdefault(key, []).append(i)
        return [(lr, wd, idx) for (lr, wd), idx in groups.items()]

    def _step_fused(self, params, grads) -> None:
        l1 = self.decay in ("l1", "l1_decoupled")
        kernel = torch._fused_adam_ if l1 or self.decay == "l2_coupled" else torch._fused_adamw_  # Adam: coupled
        groups = self._groups()
        for lr, wd, idx in groups:
            for decayed in (True, False):  # parameters with and without weight decay: one call each
                names = [k for k in params if self.decay_mask[k] == decayed]
                if not names:
                    continue
                ps, gs, ms, vs = [], [], [], []
                for k in names:
                    p, st, g = params[k], self.state[k], grads[k].contiguous()  # kernel assumes param strides
                    if len(groups) == 1:
                        ps.append(p), gs.append(g), ms.append(st["m"]), vs.append(st["v"])
                    else:
                        for i in idx:
                            ps.append(p[i]), gs.append(g[i]), ms.append(st["m"][i]), vs.append(st["v"][i])
                wd_k = wd if decayed else 0.0
                if self.decay == "l1" and wd_k:
                    gs = [g + wd_k * torch.sign(p) for g, p in zip(gs, ps)]
                elif self.decay == "l1_decoupled" and wd_k:
                    torch._foreach_sub_(ps, torch._foreach_mul(torch._foreach_sign(ps), lr * wd_k))
                step = torch.full((), float(self.t), device=ps[0].device)
                kernel(ps, gs, ms, vs, [], [step] * len(ps), lr=lr, beta1=self.betas[0], beta2=self.betas[1],
                       weight_decay=0.0 if l1 else wd_k, eps=self.eps, amsgrad=False, maximize=False)

    @torch.no_grad()
    def step(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> None:
        self.t += 1
        if self.clip > 0:
            grads = clip_grads(grads, self.clip)
        if self.name == "adamw" and self._fused_ok:
            try:
                return self._step_fused(params, grads)
            except (RuntimeError, NotImplementedError):  # kernel absent for this device/dtype
                BatchedOptimizer._fused_ok = False
        b1, b2 = self.betas
        bc1, bc2_sqrt = 1 - b1**self.t, (1 - b2**self.t) ** 0.5
        lr_all = self.lr * self._lr_factor()  # (M,) float64
        for k, p in params.items():
            g, st = grads[k], self.state[k]
            dev, dt = p.device, p.dtype
            lr = _per_member(lr_all, p)
            wd = _per_member(self.wd, p) if self.decay_mask[k] else None
            if wd is None:
                pass
            elif self.decay == "l1":
                g = g + wd.to(dev, dt) * torch.sign(p)
            elif self.decay == "l1_decoupled":
                p.sub_((lr * wd).to(dev, dt) * torch.sign(p))
            elif self.decay == "l2_coupled":
                g = g + wd.to(dev, dt) * p
            elif bool((self.wd > 0).any()):
                p.mul_((1 - lr * wd).to(dev, dt))
            if self.name == "adamw":
                st["m"].lerp_(g, 1 - b1)
                st["v"].mul_(b2).addcmul_(g, g, value=1 - b2)
                denom = (st["v"].sqrt() / bc2_sqrt).add_(self.eps)
                p.sub_((lr / bc1).to(dev, dt) * (st["m"] / denom))
            else:
                if self.momentum:
                    g = st["buf"].mul_(self.momentum).add_(g)
                p.sub_(lr.to(dev, dt) * g)
