"""PAIR's one-hidden-layer modular-arithmetic MLP and a plain MLP for bit vectors, both batched over
members. Shapes: M members, N examples, p tokens, E embed width, H hidden, C classes."""

from __future__ import annotations

import torch

from groklab.nn import activation, init_members


class PairMLP:
    """hidden = act(emb[a] @ W_h + emb[b] @ W_h); logits = (hidden @ W_out) @ embᵀ (tied).

    With embed_size E > 0 the embedding is factored (PAIR: E = 500): embed (p, E), w_hidden (E, H),
    w_out (H, E) and, untied, unembed (E, p). With E = 0: embed (p, H) feeds the hidden layer directly
    and the output is embedᵀ (tied) or unembed (H, p). No biases anywhere.

    Forward collapses the factored products first — A = embed @ w_hidden (p, H) and U = w_out @ embedᵀ
    (H, p) — which is the same function with far fewer FLOPs than pushing every example through E.
    """

    def __init__(self, n_tokens: int, n_classes: int, hidden: int, embed_size: int = 0,
                 tied: bool = True, act: str = "relu", init: str = "pair", fixed_embed: str = "none"):
        if tied and n_classes != n_tokens:
            raise ValueError("tied output needs n_classes == n_tokens")
        self.p, self.c, self.h, self.e, self.tied = n_tokens, n_classes, hidden, embed_size, tied
        self.act_name, self.act, self.init_scheme = act, activation(act), init
        # PAIR's 5-neuron construction: embedding fixed to (cos, sin)(2πi/p), not trained. # (p, 2)
        self.fixed = None
        if fixed_embed == "fourier":
            ang = 2 * torch.pi * torch.arange(n_tokens, dtype=torch.float64) / n_tokens
            self.fixed = torch.stack([ang.cos(), ang.sin()], 1).float()

    def _embed(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """The (M, p, E) embedding: trained, or the fixed one broadcast over members."""
        if self.fixed is None:
            return params["embed"]
        m = next(iter(params.values())).shape[0]
        return self.fixed.to(next(iter(params.values())).device).expand(m, -1, -1)

    def param_specs(self) -> list[tuple[str, tuple, int, bool]]:
        p, h, e, c = self.p, self.h, self.e, self.c
        if e:
            specs = [("embed", (p, e), p, True), ("w_hidden", (e, h), e, False), ("w_out", (h, e), h, False)]
            if not self.tied:
                specs.append(("unembed", (e, c), e, True))
            if self.fixed is not None:
                specs = specs[1:]
        else:
            specs = [("embed", (p, h), p, True)]
            if not self.tied:
                specs.append(("unembed", (h, c), h, False))
        return specs

    def init(self, seeds: list[int], scales: torch.Tensor) -> dict[str, torch.Tensor]:
        return init_members(self.param_specs(), seeds, scales, self.init_scheme)

    def input_weights(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Collapsed per-token input weights A. # (M, p, H)"""
        if self.e:
            return self._embed(params) @ params["w_hidden"]
        return params["embed"]

    def output_weights(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Collapsed hidden-to-logit weights U. # (M, H, C)"""
        if self.e:
            out = self._embed(params) if self.tied else params["unembed"].transpose(1, 2)  # (M, C, E)
            return params["w_out"] @ out.transpose(1, 2)
        return params["embed"].transpose(1, 2) if self.tied else params["unembed"]

    def hidden(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """x: (N, 2) int64 operands -> post-activation hidden. # (M, N, H)"""
        a = self.input_weights(params)  # (M, p, H)
        return self.act(a[:, x[:, 0]] + a[:, x[:, 1]])

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return self.hidden(params, x) @ self.output_weights(params)  # (M, N, C)


class BitMLP:
    """logits = act(x @ W1) @ W2 for x in {-1, +1}^d (a bias, if any, is a constant input column)."""

    def __init__(self, d_in: int, n_classes: int, hidden: int, act: str = "relu", init: str = "pair"):
        self.d, self.c, self.h = d_in, n_classes, hidden
        self.act_name, self.act, self.init_scheme = act, activation(act), init

    def param_specs(self) -> list[tuple[str, tuple, int, bool]]:
        return [("w1", (self.d, self.h), self.d, False), ("w2", (self.h, self.c), self.h, False)]

    def init(self, seeds: list[int], scales: torch.Tensor) -> dict[str, torch.Tensor]:
        return init_members(self.param_specs(), seeds, scales, self.init_scheme)

    def hidden(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return self.act(torch.matmul(x, params["w1"]))  # (N, d) @ (M, d, H) -> (M, N, H)

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return self.hidden(params, x) @ params["w2"]  # (M, N, C)
