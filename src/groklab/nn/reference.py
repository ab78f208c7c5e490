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
