"""Plain single-model PyTorch versions of the ensemble models: what a user would write by hand.
They are the independent reference for tests (batched = independent) and the loop baseline of
`groklab bench engine`."""

from __future__ import annotations

import torch
from torch import nn


class PairMLPReference(nn.Module):
    """PAIR's MLP for one model, uncollapsed: every example goes through the E-wide embedding."""

    def __init__(self, params: dict[str, torch.Tensor], tied: bool = True, act=torch.relu):
        super().__init__()
        self.tied, self.act = tied, act
        self.w = nn.ParameterDict({k: nn.Parameter(v.detach().clone()) for k, v in params.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (N, 2) -> logits (N, C)
        w = self.w
        ea, eb = w["embed"][x[:, 0]], w["embed"][x[:, 1]]  # (N, E)
        if "w_hidden" not in w:  # unfactored: embed (p, H)
            h = self.act(ea + eb)
            return h @ (w["embed"].T if self.tied else w["unembed"])
        h = self.act(ea @ w["w_hidden"] + eb @ w["w_hidden"])  # (N, H)
        out = h @ w["w_out"]  # (N, E)
        return out @ (w["embed"].T if self.tied else w["unembed"])


class BitMLPReference(nn.Module):
    def __init__(self, params: dict[str, torch.Tensor], act=torch.relu):
        super().__init__()
        self.act = act
        self.w = nn.ParameterDict({k: nn.Parameter(v.detach().clone()) for k, v in params.items()})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x @ self.w["w1"]) @ self.w["w2"]


def member_params(params: dict[str, torch.Tensor], i: int) -> dict[str, torch.Tensor]:
    """Member i's weights without the member axis."""
    return {k: v[i] for k, v in params.items()}


class TransformerReference(nn.Module):
    """One transformer, written plainly: every position through every block, a loop over heads,
    a causal mask, logits read at the last ("=") position. Parameter names as in nn/transformer.py."""

    def __init__(self, params: dict[str, torch.Tensor], n_heads: int, n_layers: int, layernorm: bool = False):
        super().__init__()
        self.n_heads, self.n_layers, self.layernorm = n_heads, n_layers, layernorm
        self.w = nn.ParameterDict({k.replace(".", "_"): nn.Parameter(v.detach().clone())
                                   for k, v in params.items()})

    def _ln(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if not self.layernorm:
            return x
        return nn.functional.layer_norm(x, x.shape[-1:], self.w[f"{name}_g"], self.w[f"{name}_b"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (N, 2) -> logits (N, C)
        w = self.w
        p = w["embed"].shape[0] - 1
        tokens = torch.cat([x, torch.full_like(x[:, :1], p)], 1)  # (N, 3)
        resid = w["embed"][tokens] + w["pos"]  # (N, 3, D)
        t, d = resid.shape[1], resid.shape[2]
        dh = d // self.n_heads
        causal = torch.tril(torch.ones(t, t, dtype=torch.bool))
        for i in range(self.n_layers):
            h = self._ln(f"{i}_ln1", resid)
            q, k, v = h @ w[f"{i}_w_q"], h @ w[f"{i}_w_k"], h @ w[f"{i}_w_v"]  # (N, 3, D)
            heads = []
            for j in range(self.n_heads):
                sl = slice(j * dh, (j + 1) * dh)
                s = q[..., sl] @ k[..., sl].transpose(1, 2) / dh**0.5  # (N, 3, 3)
                heads.append(s.masked_fill(~causal, float("-inf")).softmax(-1) @ v[..., sl])
            resid = resid + torch.cat(heads, -1) @ w[f"{i}_w_o"]
            resid = resid + torch.relu(self._ln(f"{i}_ln2", resid) @ w[f"{i}_w_in"]) @ w[f"{i}_w_out"]
        return self._ln("ln_f", resid)[:, -1] @ w["unembed"]
