"""The batched transformer: member i equals a lone plain transformer with member i's weights, in the
forward pass and over AdamW steps (Nanda's 1-layer model and a 2-layer LayerNorm model)."""

import pytest
import torch

from groklab.data.modular import modular_task
from groklab.engine.optim import BatchedOptimizer
from groklab.engine.trainer import member_losses, train_step
from groklab.nn.reference import TransformerReference, member_params
from groklab.nn.transformer import Transformer

LRS = [1e-3, 3e-3, 1e-2]
WDS = [0.0, 0.5, 1.0]
CASES = [(1, False), (2, True), (2, False)]  # (n_layers, layernorm): Nanda et al., Power et al., both paths


def _model(n_layers, layernorm):
    return Transformer(11, 11, d_model=16, n_heads=4, d_mlp=24, n_layers=n_layers, layernorm=layernorm)


def _ref(params, i, n_layers, layernorm):
    return TransformerReference(member_params(params, i), n_heads=4, n_layers=n_layers, layernorm=layernorm)


def test_members_get_their_lone_init():
    model = _model(1, False)
    both = model.init([3, 7], torch.ones(2))
    alone = model.init([7], torch.ones(1))
    for k in both:
        assert torch.equal(both[k][1], alone[k][0])
    assert not torch.equal(both["embed"][0], both["embed"][1])
    assert both["embed"].shape == (2, 12, 16) and both["unembed"].shape == (2, 16, 11)


@pytest.mark.parametrize("n_layers,layernorm", CASES)
def test_forward_matches_reference(n_layers, layernorm):
    data = modular_task(11, "add", 0.5, False, seed=0)
    model = _model(n_layers, layernorm)
    params = {k: v.double() for k, v in model.init([0, 1, 2], torch.tensor([1.0, 2.0, 0.5])).items()}
    if layernorm:  # make the LayerNorm parameters non-trivial
        params = {k: v + 0.1 * torch.randn(v.shape, dtype=v.dtype) if k.endswith((".g", ".b")) else v
                  for k, v in params.items()}
    logits = model.forward(params, data.x_test)  # (3, N, C)
    assert logits.shape == (3, len(data.x_test), 11)
    for i in range(3):
        ref = _ref(params, i, n_layers, layernorm)
        torch.testing.assert_close(logits[i], ref(data.x_test), rtol=1e-10, atol=1e-10)  # float64


@pytest.mark.parametrize("n_layers,layernorm", CASES)
def test_adamw_steps_match_reference(n_layers, layernorm):
    data = modular_task(11, "add", 0.5, False, seed=1)
    model = _model(n_layers, layernorm)
    params = {k: v.double().requires_grad_(True) for k, v in model.init([0, 1, 2], torch.ones(3)).items()}
    init = {k: v.detach().clone() for k, v in params.items()}
    opt = BatchedOptimizer(params, "adamw", torch.tensor(LRS), torch.tensor(WDS), "l2", (0.9, 0.98), 1e-8)
    for _ in range(8):
        train_step(model, params, opt, data.x_train, data.y_train, {})
    for i in range(3):
        ref = _ref(init, i, n_layers, layernorm)
        ropt = torch.optim.AdamW(ref.parameters(), lr=LRS[i], betas=(0.9, 0.98), eps=1e-8, weight_decay=WDS[i])
        for _ in range(8):
            ropt.zero_grad()
            member_losses(ref(data.x_train)[None], data.y_train, "ce").sum().backward()
            ropt.step()
        for k in params:
            torch.testing.assert_close(params[k][i].detach(), ref.w[k.replace(".", "_")].detach(),
                                       rtol=1e-5, atol=1e-5)  # Adam turns ~0 gradients into ±lr steps
