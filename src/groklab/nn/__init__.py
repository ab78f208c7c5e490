"""Ensemble models: every parameter has a leading member axis M; forward maps shared inputs to
per-member logits (M, N, C). Models are functional: `init(seeds, scales) -> params`,
`forward(params, x) -> logits`, so the engine can select, snapshot and optimize members freely."""

from __future__ import annotations

import torch


def make_model(cfg, data):
    """The grokking model named by `cfg.model.kind` (settings in its sub-table), sized for `data`."""
    from groklab.nn.mlp import BitMLP, PairMLP
    kind, m = cfg.model.kind, cfg.model.arch
    if kind == "pair_mlp":
        return PairMLP(n_tokens=data.n_tokens, n_classes=data.n_classes, hidden=m.hidden,
                       embed_size=m.embed_size, tied=m.tied, act=m.act, init=m.init, fixed_embed=m.fixed_embed)
    if kind == "transformer":  # x (N, 2) operand pairs; the model appends the "=" token itself
        from groklab.nn.transformer import Transformer
        return Transformer(n_tokens=data.n_tokens, n_classes=data.n_classes, d_model=m.d_model,
                           n_heads=m.n_heads, d_mlp=m.d_mlp, n_layers=m.n_layers, layernorm=m.layernorm,
                           init=m.init)
    if kind == "decoder":  # Grokfast's transformer; x (N, 2) operand pairs, it writes (a, op, b, =) itself
        from groklab.nn.grokfast import DecoderEnsemble
        return DecoderEnsemble(data.n_tokens, m.dim, m.layers, m.heads)
    return BitMLP(d_in=data.x_train.shape[1], n_classes=data.n_classes, hidden=m.hidden, act=m.act,
                  init=m.init, bits=m.bits)


def activation(name: str):
    return {"relu": torch.relu, "gelu": torch.nn.functional.gelu, "tanh": torch.tanh,
            "quadratic": torch.square}[name]


def trunc_normal(shape, std: float, g: torch.Generator) -> torch.Tensor:
    """Normal(0, std) truncated at ±2 std (haiku's TruncatedNormal)."""
    t = torch.empty(shape)
    return torch.nn.init.trunc_normal_(t, std=std, a=-2 * std, b=2 * std, generator=g)


def init_weight(shape, fan_in: int, scheme: str, g: torch.Generator, embed: bool = False) -> torch.Tensor:
    """One member's weight. 'pair': haiku defaults as in PAIR's notebook — embeddings
    VarianceScaling(2, fan_in, truncated normal), linear layers TruncatedNormal(1/sqrt(fan_in)).
    'torch': nn.Embedding N(0, 1) and nn.Linear's U(±1/sqrt(fan_in)). 'normal': N(0, 1/fan_in), not truncated
    (Nanda's randn(...) / sqrt(fan_in))."""
    if scheme == "normal":
        return torch.randn(shape, generator=g) * fan_in**-0.5
    if scheme == "pair":
        std = (2.0 / fan_in) ** 0.5 / 0.87962566103423978 if embed else fan_in**-0.5
        return trunc_normal(shape, std, g)
    if embed:
        return torch.randn(shape, generator=g)
    bound = fan_in**-0.5
    return torch.rand(shape, generator=g) * 2 * bound - bound


def init_members(specs: list[tuple[str, tuple, int, bool]], seeds: list[int], scales: torch.Tensor,
                 scheme: str) -> dict[str, torch.Tensor]:
    """Stack per-member inits. specs: (name, shape, fan_in, is_embedding) in creation order.
    Member i draws its weights from a generator seeded with seeds[i], exactly as a lone model would."""
    out: dict[str, list[torch.Tensor]] = {name: [] for name, *_ in specs}
    for seed, scale in zip(seeds, scales.tolist()):
        g = torch.Generator().manual_seed(int(seed))
        for name, shape, fan_in, embed in specs:
            out[name].append(init_weight(shape, fan_in, scheme, g, embed) * scale)
    return {k: torch.stack(v) for k, v in out.items()}
