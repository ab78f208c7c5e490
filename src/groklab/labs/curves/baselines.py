"""MNIST-1D's baseline models (greydanus/mnist1d, notebooks/models.py) as plain modules for the engine's
ModuleEnsemble, and the table published with MNIST-1D (its README, "MNIST-1D" row: test accuracy).

logistic  LinearBase: Linear(40 → 10)
mlp       MLPBase(hidden 256): h = relu(W1 x); h = h + relu(W2 h); W3 h   (a residual second layer)
cnn       ConvBase(channels 25) = groklab.nn.modules.MNIST1DCNN(25): Conv1d k5 s2, k3 s2, k3 s2, Linear(125 → 10)
gru       GRUBase(hidden 6, bidirectional): a GRU over the 40 positions (one scalar per step), both directions,
          every step's hidden state flattened (2·6·40 = 480) into Linear(480 → 10). Written out with Linear layers
          (torch's GRU equations, zero initial state) so torch.func.vmap can batch the seeds; initialized like
          torch.nn.GRU (U(±1/√hidden) for every weight and bias).
"""

from __future__ import annotations

import torch
from torch import nn

from groklab.nn.modules import MNIST1DCNN

PUBLISHED = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}  # mnist1d README, MNIST-1D row
PUBLISHED_SOURCE = "greydanus/mnist1d README (MNIST-1D row: logistic 32%, MLP 68%, CNN 94%, GRU 91%, human 96%)"


class Logistic(nn.Module):
    def __init__(self, d_in: int = 40, n_classes: int = 10):
        super().__init__()
        self.linear = nn.Linear(d_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 40) -> (N, 10)
        return self.linear(x)


class ResMLP(nn.Module):
    def __init__(self, d_in: int = 40, n_classes: int = 10, hidden: int = 256):
        super().__init__()
        self.linear1, self.linear2 = nn.Linear(d_in, hidden), nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 40) -> (N, 10)
        h = self.linear1(x).relu()  # (N, H)
        return self.linear3(h + self.linear2(h).relu())


class BiGRU(nn.Module):
    def __init__(self, length: int = 40, n_classes: int = 10, hidden: int = 6):
        super().__init__()
        self.hidden = hidden
        bound = hidden**-0.5
        self.w_in = nn.Parameter(torch.empty(2, 3 * hidden).uniform_(-bound, bound))  # (dir, 3H): input is 1-D
        self.b_in = nn.Parameter(torch.empty(2, 3 * hidden).uniform_(-bound, bound))
        self.w_h = nn.Parameter(torch.empty(2, 3 * hidden, hidden).uniform_(-bound, bound))  # (dir, 3H, H)
        self.b_h = nn.Parameter(torch.empty(2, 3 * hidden).uniform_(-bound, bound))
        self.linear = nn.Linear(2 * hidden * length, n_classes)

    def _run(self, x: torch.Tensor, d: int) -> torch.Tensor:
        """One direction over x (N, L): hidden states (N, L, H) in input order (torch.nn.GRU's equations)."""
        n, length = x.shape
        h = x.new_zeros(n, self.hidden)
        gi_all = x.unsqueeze(-1) * self.w_in[d] + self.b_in[d]  # (N, L, 3H)
        out = [None] * length
        steps = range(length) if d == 0 else range(length - 1, -1, -1)
        for t in steps:
            gi, gh = gi_all[:, t], h @ self.w_h[d].T + self.b_h[d]  # (N, 3H) each
            r = torch.sigmoid(gi[:, :self.hidden] + gh[:, :self.hidden])
            z = torch.sigmoid(gi[:, self.hidden:2 * self.hidden] + gh[:, self.hidden:2 * self.hidden])
            c = torch.tanh(gi[:, 2 * self.hidden:] + r * gh[:, 2 * self.hidden:])
            h = (1 - z) * c + z * h
            out[t] = h
        return torch.stack(out, 1)  # (N, L, H)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 40) -> (N, 10)
        x = x.flatten(1)
        h = torch.cat([self._run(x, 0), self._run(x, 1)], dim=-1)  # (N, L, 2H), torch's [forward, backward]
        return self.linear(h.flatten(1))


def build_baseline(name: str) -> nn.Module:
    return {"logistic": Logistic, "mlp": ResMLP, "cnn": lambda: MNIST1DCNN(25), "gru": BiGRU}[name]()
