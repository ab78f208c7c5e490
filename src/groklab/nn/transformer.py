"""Decoder-only transformer for a ∘ b = c, batched over members (Nanda et al. 2023; Power et al. 2022).

Input (a, b, "=") with vocabulary n_tokens + 1 ("=" is the last token id, added here); learned
positional embedding; n_layers blocks of causal multi-head attention + ReLU MLP, residual stream
d_model wide; optional pre-LayerNorm (and a final one) for Power et al.'s model, none for Nanda's;
untied unembedding read at the last position. No biases in attention, MLP or unembedding (Nanda's MLP
has zero-initialised biases; we leave them out). LayerNorm, when on, has a gain and a bias.

Shapes: M members, N examples, T = 3 positions, D d_model, H heads of d_head = D / H, F d_mlp,
V = n_tokens + 1, C classes. Every matmul is batched over the member axis (bmm via torch.matmul).

Init (init="pair", the default): truncated-normal weights with Nanda's scales — std 1/sqrt(D) for
W_E, W_pos, W_Q/K/V/O, W_in and W_out, 1/sqrt(V) for W_U (his code: randn(...)/sqrt(d_model) and
randn/sqrt(d_vocab)), truncated at ±2 std by the shared initializer; init="normal": the same scales,
not truncated, as his code. LayerNorm gains start at 1,
biases at 0 (not multiplied by init_scale).

The last block only computes the query, attention output and MLP at the last position: the logits
read only that position, so this is the same function with a third of the MLP work.
"""

from __future__ import annotations

import torch

from groklab.nn import init_members

T = 3  # positions: a, b, "="


class Transformer:
    def __init__(self, n_tokens: int, n_classes: int, d_model: int = 128, n_heads: int = 4,
                 d_mlp: int = 512, n_layers: int = 1, layernorm: bool = False, init: str = "pair"):
        if d_model % n_heads:
            raise ValueError("d_model must be divisible by n_heads")
        self.p, self.c, self.v = n_tokens, n_classes, n_tokens + 1
        self.d, self.h, self.dh, self.f, self.n_layers = d_model, n_heads, d_model // n_heads, d_mlp, n_layers
        self.layernorm, self.init_scheme = layernorm, init

    def param_specs(self) -> list[tuple[str, tuple, int, bool]]:
        """(name, shape, std denominator, is_embedding) in creation order; see the module docstring."""
        d, f = self.d, self.f
        specs = [("embed", (self.v, d), d, False), ("pos", (T, d), d, False)]
        for i in range(self.n_layers):
            specs += [(f"{i}.w_q", (d, d), d, False), (f"{i}.w_k", (d, d), d, False),
                      (f"{i}.w_v", (d, d), d, False), (f"{i}.w_o", (d, d), d, False),
                      (f"{i}.w_in", (d, f), d, False), (f"{i}.w_out", (f, d), d, False)]
        return specs + [("unembed", (d, self.c), self.v, False)]

    def ln_names(self) -> list[str]:
        if not self.layernorm:
            return []
        return [f"{i}.{ln}" for i in range(self.n_layers) for ln in ("ln1", "ln2")] + ["ln_f"]

    def init(self, seeds: list[int], scales: torch.Tensor) -> dict[str, torch.Tensor]:
        params = init_members(self.param_specs(), seeds, scales, self.init_scheme)
        m = len(seeds)
        for name in self.ln_names():
            params[f"{name}.g"] = torch.ones(m, self.d)
            params[f"{name}.b"] = torch.zeros(m, self.d)
        return params

    def input_weights(self, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token embeddings of the p operands (no "="). # (M, p, D)"""
        return params["embed"][:, : self.p]

    def _ln(self, params, name: str, x: torch.Tensor) -> torch.Tensor:
        """x (M, N, t, D) -> LayerNorm over D with member-wise gain and bias (identity when off)."""
        if not self.layernorm:
            return x
        g, b = params[f"{name}.g"][:, None, None], params[f"{name}.b"][:, None, None]  # (M, 1, 1, D)
        return torch.nn.functional.layer_norm(x, (self.d,)) * g + b

    def _mm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """(M, N, t, D_in) @ (M, D_in, D_out) -> (M, N, t, D_out), one bmm over the member axis."""
        m, n, t, _ = x.shape
        return torch.matmul(x.reshape(m, n * t, -1), w).view(m, n, t, -1)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """(M, N, t, D) -> (M, N, H, t, d_head)"""
        m, n, t, _ = x.shape
        return x.view(m, n, t, self.h, self.dh).transpose(2, 3)

    def _table_proj(self, params, w: torch.Tensor, tokens: torch.Tensor, last_only: bool) -> torch.Tensor:
        """(embed[tokens] + pos) @ w as (embed @ w)[tokens] + pos @ w: the block-0 input is a table
        lookup, so project the V-row table instead of every example. -> (M, N, t, D_out)"""
        if last_only:  # the last position always holds "=": one row, shared by every example
            row = (params["embed"][:, self.p] + params["pos"][:, -1]).unsqueeze(1) @ w  # (M, 1, D_out)
            return row[:, None].expand(-1, len(tokens), -1, -1)
        return (params["embed"] @ w)[:, tokens] + (params["pos"] @ w)[:, None]  # (M, N, T, D_out)

    def block(self, params, i: int, resid: torch.Tensor, last_only: bool,
              tokens: torch.Tensor | None = None) -> torch.Tensor:
        """One block. resid (M, N, T, D) -> (M, N, T, D), or (M, N, 1, D) when last_only.
        With `tokens` (block 0 without LayerNorm) q, k, v come from projected embedding tables."""
        h = self._ln(params, f"{i}.ln1", resid)  # (M, N, T, D)
        hq = h[:, :, -1:] if last_only else h  # (M, N, t, D), t = 1 or T
        if tokens is not None:
            q = self._heads(self._table_proj(params, params[f"{i}.w_q"], tokens, last_only))  # (M, N, H, t, dh)
            k = self._heads(self._table_proj(params, params[f"{i}.w_k"], tokens, False))  # (M, N, H, T, dh)
            v = self._heads(self._table_proj(params, params[f"{i}.w_v"], tokens, False))  # (M, N, H, T, dh)
        else:
            q = self._heads(self._mm(hq, params[f"{i}.w_q"]))  # (M, N, H, t, dh)
            k = self._heads(self._mm(h, params[f"{i}.w_k"]))  # (M, N, H, T, dh)
            v = self._heads(self._mm(h, params[f"{i}.w_v"]))  # (M, N, H, T, dh)
        scores = q @ k.transpose(-1, -2) / self.dh**0.5  # (M, N, H, t, T)
        if not last_only:  # causal mask: position j attends to positions <= j
            mask = torch.ones(T, T, dtype=torch.bool, device=resid.device).tril()
            scores = scores.masked_fill(~mask, float("-inf"))
        z = scores.softmax(-1) @ v  # (M, N, H, t, dh)
        m, n, _, t, _ = z.shape
        z = z.transpose(2, 3).reshape(m, n, t, self.d)  # (M, N, t, D)
        resid = (resid[:, :, -1:] if last_only else resid) + self._mm(z, params[f"{i}.w_o"])
        hidden = torch.relu(self._mm(self._ln(params, f"{i}.ln2", resid), params[f"{i}.w_in"]))  # (M, N, t, F)
        return resid + self._mm(hidden, params[f"{i}.w_out"])

    def forward(self, params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """x: (N, 2) int64 operands -> logits at the "=" position. # (M, N, C)"""
        eq = torch.full((len(x), 1), self.p, dtype=x.dtype, device=x.device)
        tokens = torch.cat([x, eq], 1)  # (N, T)
        resid = params["embed"][:, tokens] + params["pos"][:, None]  # (M, N, T, D)
        for i in range(self.n_layers):
            table = tokens if i == 0 and not self.layernorm else None
            resid = self.block(params, i, resid, last_only=i == self.n_layers - 1, tokens=table)
        final = self._ln(params, "ln_f", resid)[:, :, 0]  # (M, N, D)
        return final @ params["unembed"]  # (M, N, C)
