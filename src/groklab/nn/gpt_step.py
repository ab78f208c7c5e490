"""Fast incremental inference of a trained GPT, one position at a time, for the arithmetic coder.

`GPT.step` runs the model as trained, op by op. The coder calls it once per position for thousands of
examples, so everything that can be done once per model is done here, in exact algebra:

- token + position embeddings: one table per position, E_t = tok + pos[t]  (V, C) -> one row gather;
- LayerNorm's scale and shift folded into the linear layer after it (W·(γ⊙x̂ + β) + b = (W·diag γ)·x̂ + Wβ + b),
  so each LayerNorm is a bare normalization;
- rotary embedding and the 1/sqrt(D) attention scale folded into per-position query/key weights (rotation by a
  fixed angle is a linear map), so no rotate ops run;
- attention always runs over the whole (zero-initialised) cache with the future positions masked: full-length
  slices are contiguous, so the batched products read the cache in place instead of copying a slice first.

Results equal `GPT.step` up to float rounding (tests/unit/test_compression_coder.py); encoder and decoder both use
this class with the same calls on the same shapes, so they see bit-identical probabilities.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from groklab.nn.gpt import GPT, rope_tables


def _rotation(cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """The (D, D) matrix R with R·x = rotate(x) at one position (cos, sin: (D,), halves repeated)."""
    D = cos.shape[0]
    h = D // 2
    R = torch.diag(cos.double())
    i = torch.arange(h)
    R[i, i + h] = -sin[i].double()  # out_i = x_i cos - x_{i+h} sin
    R[i + h, i] = sin[i + h].double()  # out_{i+h} = x_{i+h} cos + x_i sin
    return R


class IncrementalGPT:
    """Per-position inference of `model` (eval mode, no dropout). # step: (B,) tokens at t -> (B, vocab) logits"""

    def __init__(self, model: GPT, dtype: torch.dtype = torch.float32):
        s = model.shape
        self.dtype = dtype
        self.shape, self.H, self.D = s, s.heads, s.width // s.heads
        self.eps = [blk.ln1.eps for blk in model.blocks]
        C, D = s.width, self.D
        dev = model.head.weight.device
        T = torch.arange(s.block, device=dev)
        self.mask = torch.zeros(s.block, s.block, device=dev).masked_fill(T[None] > T[:, None], float("-inf"))  # (t, T)
        with torch.no_grad():
            f64 = {k: v.detach().double().cpu() for k, v in model.state_dict().items()}
            self.emb = (f64["tok.weight"][None] + f64["pos.weight"][:, None]).float().to(dev)  # (T, V, C)
            if s.rope:
                cos, sin = rope_tables(s.block, D)
                rot = [torch.block_diag(*[_rotation(cos[t], sin[t])] * s.heads) for t in range(s.block)]  # (C, C)
            else:
                rot = [torch.eye(C, dtype=torch.float64)] * s.block
            self.layers = []
            for i in range(s.layers):
                p = f"blocks.{i}."
                W, b = self._fold(f64, p + "ln1", f64[p + "qkv.weight"], f64[p + "qkv.bias"])  # (3C, C), (3C,)
                Wq, Wk, Wv = W.split(C)
                bq, bk, bv = b.split(C)
                Wt = torch.stack([torch.cat([rot[t] @ Wq / math.sqrt(D), rot[t] @ Wk, Wv]) for t in range(s.block)])
                bt = torch.stack([torch.cat([rot[t] @ bq / math.sqrt(D), rot[t] @ bk, bv]) for t in range(s.block)])
                Wfc, bfc = self._fold(f64, p + "ln2", f64[p + "fc.weight"], f64[p + "fc.bias"])
                self.layers.append(tuple(x.to(dev, dtype) for x in (
                    Wt, bt, f64[p + "proj.weight"], f64[p + "proj.bias"], Wfc, bfc,
                    f64[p + "out.weight"], f64[p + "out.bias"])))
            self.head = tuple(x.to(dev, dtype) for x in self._fold(f64, "ln", f64["head.weight"], None))

    @staticmethod
    def _fold(f64: dict, ln: str, W: torch.Tensor, b: torch.Tensor | None):
        """Fold LayerNorm `ln`'s affine into the linear layer (W, b) after it."""
        g, beta = f64[ln + ".weight"], f64[ln + ".bias"]
        bias = W @ beta + (b if b is not None else 0.0)
        return W * g[None], bias

    def new_cache(self, batch: int) -> list[torch.Tensor]:
        """Key/value cache: one (2, B, H, T, D) zero tensor per block (filled by `step` for positions < t)."""
        s = self.shape
        return [torch.zeros(2, batch, self.H, s.block, self.D, device=self.emb.device) for _ in range(s.layers)]

    @torch.no_grad()
    def step(self, tok: torch.Tensor, t: int, cache: list[torch.Tensor]) -> torch.Tensor:
        """Logits of the token after position t, given tok = the tokens at t. # (B,) -> (B, vocab)"""
        B, H, D, C, dt = tok.shape[0], self.H, self.D, self.shape.width, self.dtype
        x = self.emb[t].index_select(0, tok)  # (B, C) float32: the residual stream stays float32

        def lin(u, W, b):  # matmuls in self.dtype (bfloat16: AMX / tensor cores), float32 out
            return F.linear(u.to(dt), W, b).float()

        for (Wt, bt, Wp, bp, Wfc, bfc, Wo, bo), kv, eps in zip(self.layers, cache, self.eps):
            qkv = lin(F.layer_norm(x, (C,), eps=eps), Wt[t], bt[t])  # (B, 3C): q scaled and rotated, k rotated
            kv[:, :, :, t] = qkv[:, C:].view(B, 2, H, D).transpose(0, 1)  # cache (2, B, H, T, D)
            att = torch.einsum("bhd,bhtd->bht", qkv[:, :C].view(B, H, D), kv[0]) + self.mask[t]  # (B, H, T)
            y = torch.einsum("bht,bhtd->bhd", att.softmax(-1), kv[1]).reshape(B, C)  # (B, C)
            x = x + lin(y, Wp, bp)
            x = x + lin(F.gelu(lin(F.layer_norm(x, (C,), eps=eps), Wfc, bfc)), Wo, bo)
        Wh, bh = self.head
        return lin(F.layer_norm(x, (C,), eps=self.eps[0]), Wh, bh)  # (B, vocab)
