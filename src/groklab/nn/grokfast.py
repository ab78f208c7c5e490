"""The transformer of Grokfast's modular-arithmetic experiment (Lee et al. 2024; ironjr/grokfast main.py, which
takes it from danielmamay/grokking), as a plain nn.Module that the engine trains as a ModuleEnsemble.

Input: operand pairs x (N, 2) = (a, b); the model writes the sequence (a, op, b, =) with op = p + 1 and "=" = p,
vocabulary p + 2, and reads the logits over all p + 2 tokens at the last position (their loss is the
cross-entropy of logits[-1] against the answer, so the two extra tokens stay in the softmax).

Block, exactly as theirs, including its quirk: x ← LN₁(x); x ← x + Attn(x); x ← x + MLP(LN₂(x)). The residual
stream after the first LayerNorm is the *normalized* x (not pre-LN's x + Attn(LN(x))). Attention is torch's
nn.MultiheadAttention (in_proj with bias, out_proj with bias, causal mask) written out with F.linear so vmap can
batch it; MLP Linear(d, 4d) → GELU → Linear(4d, d) with biases; final LayerNorm; head Linear(d, p + 2) without
bias. Token and position embeddings are nn.Embedding (N(0, 1) init), position table of 5 rows as theirs (4 used).
Modules are created in their order, so `torch.manual_seed(s); GrokfastDecoder(p)` draws the same initial weights
as their `torch.manual_seed(s); Decoder(...)`, and their state_dict loads into it (same names; tested).

Shapes: N examples, T = 4 positions, D = dim, H heads of D/H, V = p + 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from groklab.engine.ensemble import ModuleEnsemble

T = 4  # a, op, b, =


class Block(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 4), nn.GELU(), nn.Linear(dim * 4, dim))

    def attention(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, D) -> (N, T, D), causal
        n, t, d = x.shape
        a, h = self.attn, self.attn.num_heads
        q, k, v = F.linear(x, a.in_proj_weight, a.in_proj_bias).chunk(3, -1)  # each (N, T, D)
        q, k, v = (z.view(n, t, h, d // h).transpose(1, 2) for z in (q, k, v))  # (N, H, T, dh)
        scores = q @ k.transpose(-1, -2) / (d // h) ** 0.5  # (N, H, T, T)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        z = scores.masked_fill(~causal, float("-inf")).softmax(-1) @ v  # (N, H, T, dh)
        return F.linear(z.transpose(1, 2).reshape(n, t, d), a.out_proj.weight, a.out_proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, D)
        x = self.ln_1(x)  # their block: the residual continues from the normalized x
        x = x + self.attention(x)
        return x + self.mlp(self.ln_2(x))


class GrokfastDecoder(nn.Module):
    def __init__(self, p: int, dim: int = 128, layers: int = 2, heads: int = 4):
        super().__init__()
        self.p = p
        self.token_embeddings = nn.Embedding(p + 2, dim)
        self.position_embeddings = nn.Embedding(5, dim)
        self.layers = nn.ModuleList([Block(dim, heads) for _ in range(layers)])
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, p + 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (N, 2) operands -> logits (N, p + 2)
        n = x.shape[0]
        eq, op = torch.full((n, 1), self.p, dtype=x.dtype, device=x.device), torch.full_like(x[:, :1], self.p + 1)
        tokens = torch.cat([x[:, :1], op, x[:, 1:], eq], 1)  # (N, T)
        h = self.token_embeddings(tokens) + self.position_embeddings.weight[:T]  # (N, T, D)
        for layer in self.layers:
            h = layer(h)
        return self.head(self.ln_f(h[:, -1]))  # (N, V)


class DecoderEnsemble(ModuleEnsemble):
    """M GrokfastDecoders as one batched model with the grokking lab's model protocol (init, forward, p,
    input_weights for the Fourier analysis)."""

    def __init__(self, p: int, dim: int, layers: int, heads: int):
        self.p = p
        super().__init__(lambda: GrokfastDecoder(p, dim, layers, heads))

    def input_weights(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token embeddings of the p operands. # (M, p, D)"""
        return params["token_embeddings.weight"][:, : self.p]
