"""A small character-level GPT (decoder-only transformer, pre-LayerNorm, learned positions).

Same shape of model as minGPT's gpt-mini family; written for groklab. Attention uses
`scaled_dot_product_attention` with a causal mask, so the output at position t depends only on
tokens 0..t — the arithmetic coder relies on that to decode one position at a time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class GPTShape:
    vocab: int = 14
    block: int = 29  # longest input (tokens)
    layers: int = 6
    heads: int = 6
    width: int = 192
    dropout: float = 0.0
    rope: bool = False  # rotary position embedding on queries and keys (on top of learned positions)


def _cpu_autocast() -> bool:
    """Whether CPU autocast is on (torch >= 2.4 takes a device type; older builds have the CPU-only call)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:
        return torch.is_autocast_cpu_enabled()


def rope_tables(T: int, D: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of the rotary angles pos * 10000^(-2i/D), halves repeated. # each (T, D)"""
    inv = 10000.0 ** (-torch.arange(0, D, 2, dtype=torch.float32, device=device) / D)  # (D/2,)
    ang = torch.arange(T, dtype=torch.float32, device=device)[:, None] * inv[None]  # (T, D/2)
    ang = torch.cat([ang, ang], dim=1)
    return ang.cos(), ang.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding: rotate each (x_i, x_{i+D/2}) pair by its angle. # (..., T, D)"""
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


class Block(nn.Module):
    def __init__(self, s: GPTShape):
        super().__init__()
        self.heads, self.dropout = s.heads, s.dropout
        self.ln1, self.ln2 = nn.LayerNorm(s.width), nn.LayerNorm(s.width)
        self.qkv = nn.Linear(s.width, 3 * s.width)
        self.proj = nn.Linear(s.width, s.width)
        self.fc = nn.Linear(s.width, 4 * s.width)
        self.out = nn.Linear(4 * s.width, s.width)
        self.drop = nn.Dropout(s.dropout)

    def forward(self, x: torch.Tensor, rope=None) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        B, T, C = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(C, dim=2)  # each (B, T, C)
        q, k, v = (t.view(B, T, self.heads, C // self.heads).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        if rope is not None:
            q, k = rotate(q, *rope), rotate(k, *rope)
        p = self.dropout if self.training else 0.0
        if q.device.type == "cpu" and _cpu_autocast():
            # bf16 autocast on CPU: attention stays float32 (the bf16 flash kernel's backward ran ~20x slower
            # than float32's at these shapes: BENCHMARKS.md, compression lab, "bf16 training")
            with torch.autocast("cpu", enabled=False):
                y = F.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True, dropout_p=p)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)  # (B, H, T, D)
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(B, T, C)))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)))))


class GPT(nn.Module):
    def __init__(self, s: GPTShape):
        super().__init__()
        if s.width % s.heads:
            raise ValueError("width must be divisible by heads")
        self.shape = s
        self.tok = nn.Embedding(s.vocab, s.width)
        self.pos = nn.Embedding(s.block, s.width)
        self.drop = nn.Dropout(s.dropout)
        self.blocks = nn.ModuleList(Block(s) for _ in range(s.layers))
        self.ln = nn.LayerNorm(s.width)
        self.head = nn.Linear(s.width, s.vocab, bias=False)
        self.apply(self._init)
        for name, p in self.named_parameters():  # GPT-2 style scaled init of residual projections
            if name.endswith(("proj.weight", "out.weight")):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * s.layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:  # (B, T) int64 -> (B, T, vocab) logits
        T = idx.shape[1]
        x = self.drop(self.tok(idx) + self.pos(torch.arange(T, device=idx.device)))  # (B, T, C)
        rope = self._rope(idx.device)
        rope = (rope[0][:T], rope[1][:T]) if rope else None
        for blk in self.blocks:
            x = blk(x, rope)
        return self.head(self.ln(x))

    def _rope(self, device):
        s = self.shape
        if not s.rope:
            return None
        if getattr(self, "_rope_cache", None) is None or self._rope_cache[0].device != torch.device(device):
            self._rope_cache = rope_tables(s.block, s.width // s.heads, device)
        return self._rope_cache

    @torch.no_grad()
    def step(self, tok: torch.Tensor, t: int, cache: list[torch.Tensor]) -> torch.Tensor:
        """Incremental forward of the token at position t, with a key/value cache (eval mode).

        tok: (B,) token ids at position t; cache: from `new_cache`, filled for positions < t.
        Returns the next-token logits (B, vocab). The arithmetic coder runs exactly this sequence of
        calls on both sides, so encoder and decoder see bit-identical probabilities."""
        s = self.shape
        B, H, D = tok.shape[0], s.heads, s.width // s.heads
        x = self.tok(tok) + self.pos.weight[t]  # (B, C)
        rope = self._rope(tok.device)
        for blk, kv in zip(self.blocks, cache):
            q, k, v = (u.view(B, H, D) for u in blk.qkv(blk.ln1(x)).split(s.width, dim=1))  # each (B, H, D)
            if rope:
                q, k = rotate(q, rope[0][t], rope[1][t]), rotate(k, rope[0][t], rope[1][t])
            kv[0, :, :, t], kv[1, :, :, t] = k, v  # cache (2, B, H, T, D)
            att = torch.einsum("bhd,bhtd->bht", q, kv[0, :, :, : t + 1]) / math.sqrt(D)  # (B, H, t+1)
            y = torch.einsum("bht,bhtd->bhd", att.softmax(-1), kv[1, :, :, : t + 1]).reshape(B, s.width)
            x = x + blk.proj(y)
            x = x + blk.out(F.gelu(blk.fc(blk.ln2(x))))
        return self.head(self.ln(x))  # (B, vocab)

    def new_cache(self, batch: int) -> list[torch.Tensor]:
        """Empty key/value cache for `step`: one (2, B, H, T, D) tensor per block."""
        s = self.shape
        return [torch.zeros(2, batch, s.heads, s.block, s.width // s.heads, device=self.head.weight.device)
                for _ in range(s.layers)]

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def param_groups(self, weight_decay: float) -> list[dict]:
        """Decay matrices only (not biases, LayerNorms, embeddings), as minGPT does."""
        decay = [p for n, p in self.named_parameters() if p.dim() == 2 and not n.startswith(("tok", "pos"))]
        rest = [p for n, p in self.named_parameters() if not (p.dim() == 2 and not n.startswith(("tok", "pos")))]
        return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
