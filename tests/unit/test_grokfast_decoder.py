"""nn/grokfast.py against Grokfast's own model: their Decoder written out here as in ironjr/grokfast main.py
(nn.MultiheadAttention on (T, N, D) inputs) — same initial weights from the same seed, same names, same logits,
and the lab trains it as an ensemble whose members equal lone models."""

import torch
import torch.nn.functional as F
from torch import nn

from groklab.data.modular import all_pairs, modular_task
from groklab.nn.grokfast import DecoderEnsemble, GrokfastDecoder


class TheirBlock(nn.Module):
    def __init__(self, dim, num_heads):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, num_heads)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * 4), nn.GELU(), nn.Linear(dim * 4, dim))

    def forward(self, x):
        attn_mask = torch.triu(torch.full((len(x), len(x)), -float("Inf")), diagonal=1)
        x = self.ln_1(x)
        a, _ = self.attn(x, x, x, attn_mask=attn_mask, need_weights=False)
        x = x + a
        return x + self.mlp(self.ln_2(x))


class TheirDecoder(nn.Module):
    def __init__(self, dim=128, num_layers=2, num_heads=4, num_tokens=97, seq_len=5):
        super().__init__()
        self.token_embeddings = nn.Embedding(num_tokens, dim)
        self.position_embeddings = nn.Embedding(seq_len, dim)
        self.layers = nn.ModuleList([TheirBlock(dim, num_heads) for _ in range(num_layers)])
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_tokens, bias=False)

    def forward(self, x):  # x (T, N)
        h = self.token_embeddings(x)
        positions = torch.arange(x.shape[0]).unsqueeze(-1)
        h = h + self.position_embeddings(positions).expand_as(h)
        for layer in self.layers:
            h = layer(h)
        return self.head(self.ln_f(h))


def test_same_init_names_and_logits_as_grokfast():
    p = 11
    torch.manual_seed(3)
    theirs = TheirDecoder(dim=16, num_layers=2, num_heads=4, num_tokens=p + 2)
    torch.manual_seed(3)
    ours = GrokfastDecoder(p, dim=16, layers=2, heads=4)
    a, b = theirs.state_dict(), ours.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    x = all_pairs(p, "mul", False, nonzero_b=True)  # (N, 2): 0 <= a < p, 0 < b < p
    assert len(x) == p * (p - 1) and bool((x[:, 1] > 0).all())
    seq = torch.stack([x[:, 0], torch.full_like(x[:, 0], p + 1), x[:, 1], torch.full_like(x[:, 0], p)])  # (T, N)
    with torch.no_grad():
        ref = theirs(seq)[-1]  # (N, p + 2): their logits[-1]
        out = ours(x)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_ensemble_member_trains_like_a_lone_decoder():
    p = 7
    data = modular_task(p, "mul", 0.5, False, seed=0, nonzero_b=True)
    assert len(data.x_train) == p * (p - 1) // 2
    ens = DecoderEnsemble(p, 8, 1, 2)
    params = {k: v.requires_grad_(True) for k, v in ens.init([0, 1], torch.ones(2)).items()}
    logits = ens(params, data.x_train)  # (2, N, p + 2)
    assert logits.shape == (2, len(data.x_train), p + 2)
    assert ens.input_weights(params).shape == (2, p, 8)
    lone = ens.build(1)
    with torch.no_grad():
        torch.testing.assert_close(logits[1], lone(data.x_train), rtol=1e-5, atol=1e-5)
    loss = F.cross_entropy(logits[1], data.y_train)
    loss.backward()
    F.cross_entropy(lone(data.x_train), data.y_train).backward()
    for k, v in lone.named_parameters():
        torch.testing.assert_close(params[k].grad[1], v.grad, rtol=1e-4, atol=1e-6)
