"""Gradient-side interventions, applied per member between backward and the optimizer step.

- Grokfast (Lee et al. 2024). EMA: h ← αh + (1−α)g, g ← g + λh. MA: g ← g + λ·mean(last w gradients).
  For a slowly varying gradient the EMA filter multiplies it by (1 + λ): λ = 2 roughly triples the
  effective step of plain SGD; under Adam the normalization absorbs most of that, and what remains is the
  amplification of the slow (generalizing) gradient direction relative to the fast, noisy one.
- ⊥Grad (Prieto et al. 2025): g ← g − (⟨g, w⟩ / ⟨w, w⟩) w per member, over all of that member's weights,
  so no step can just scale the weights up (the naive-loss-minimization direction).
"""

from __future__ import annotations

import torch


class GradTransforms:
    """Stateful gradient filters over the member axis; `select` keeps members after early stopping."""

    def __init__(self, params: dict[str, torch.Tensor], optim):
        self.kind, self.orthograd = optim.grokfast, optim.orthograd
        self.alpha, self.lam, self.window = optim.grokfast_alpha, optim.grokfast_lambda, optim.grokfast_window
        self.ema = {k: torch.zeros_like(v) for k, v in params.items()} if self.kind == "ema" else {}
        self.hist: dict[str, list[torch.Tensor]] = {k: [] for k in params} if self.kind == "ma" else {}
        self.sum: dict[str, torch.Tensor] = {}  # running sum of self.hist[k], re-summed every window steps
        self.t = 0

    @property
    def active(self) -> bool:
        return self.kind != "none" or self.orthograd

    def select(self, idx: torch.Tensor) -> None:
        self.ema = {k: v[idx] for k, v in self.ema.items()}
        self.hist = {k: [g[idx] for g in gs] for k, gs in self.hist.items()}
        self.sum = {k: v[idx] for k, v in self.sum.items()}

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """(tensors, JSON-able meta) of the filter state: EMA buffers "ema/<param>", the MA window stacked
        oldest first "hist/<param>" (w, M, ...) with its running sum "sum/<param>", and the step count."""
        tensors = {f"ema/{k}": v.clone() for k, v in self.ema.items()}
        tensors.update({f"hist/{k}": torch.stack(h) for k, h in self.hist.items() if h})
        tensors.update({f"sum/{k}": v.clone() for k, v in self.sum.items()})
        return tensors, {"t": self.t}

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict, device=None) -> None:
        self.t = int(meta["t"])
        for key, v in tensors.items():
            kind, k = key.split("/", 1)
            v = v.to(device) if device is not None else v
            if kind == "ema":
                self.ema[k] = v.clone()
            elif kind == "hist":
                self.hist[k] = [g.clone() for g in v.unbind(0)]
            elif kind == "sum":
                self.sum[k] = v.clone()

    @torch.no_grad()
    def __call__(self, params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self.orthograd:
            grads = orthogonalize(params, grads)
        if self.kind == "ema":
            out = {}
            for k, g in grads.items():
                self.ema[k].mul_(self.alpha).add_(g, alpha=1 - self.alpha)
                out[k] = g + self.lam * self.ema[k]
            grads = out
        elif self.kind == "ma":
            out, self.t = {}, self.t + 1
            for k, g in grads.items():
                h = self.hist[k]
                h.append(g.clone())
                self.sum[k] = self.sum[k].add_(g) if k in self.sum else g.clone()
                if len(h) > self.window:
                    self.sum[k].sub_(h.pop(0))
                if self.t % self.window == 0:  # re-sum now and then so add/sub rounding never accumulates
                    self.sum[k] = torch.stack(h).sum(0)
                # the MA filter (Lee et al.) starts filtering once the window is full
                out[k] = g + (self.lam / self.window) * self.sum[k] if len(h) == self.window else g
            grads = out
        return grads


def orthogonalize(params: dict[str, torch.Tensor], grads: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove each member's gradient component along its own weight vector (all tensors together)."""
    dot = sum((grads[k] * p).flatten(1).sum(1) for k, p in params.items())  # (M,)
    norm2 = sum(p.square().flatten(1).sum(1) for p in params.values())  # (M,)
    coef = dot / norm2.clamp_min(1e-30)
    return {k: g - coef.view(-1, *([1] * (g.dim() - 1))) * params[k] for k, g in grads.items()}
