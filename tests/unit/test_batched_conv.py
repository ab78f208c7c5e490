"""nn/batched_conv.py: the member-batched im2col convolution equals torch's conv1d (float64, forward and every
gradient) over kernel, stride, padding and lengths, and ModuleEnsemble's fast path for the MNIST-1D CNN equals
its vmap path (float32, scaled tolerance), shared and per-member inputs, padded widths included."""

import pytest
import torch
import torch.nn.functional as F

from groklab.engine.ensemble import ModuleEnsemble
from groklab.labs.curves.networks import WidthEnsemble
from groklab.nn.batched_conv import conv1d, out_len
from groklab.nn.modules import build_module


@pytest.mark.parametrize("length,k,stride,pad", [(40, 5, 2, 1), (19, 3, 2, 1), (10, 3, 2, 1), (7, 3, 1, 0),
                                                 (9, 4, 3, 2), (5, 5, 1, 2),
                                                 (3, 2, 2, 3)])
def test_conv1d_equals_torch_forward_and_gradients(length, k, stride, pad):
    g = torch.Generator().manual_seed(length * 10 + k)
    m, n, c, o = 3, 4, 2, 5
    h = torch.randn(m, n, c, length, generator=g, dtype=torch.float64).transpose(2, 3)  # (M, N, L, C), strided
    h.requires_grad_(True)
    w = torch.randn(m, o, c, k, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(m, o, generator=g, dtype=torch.float64, requires_grad=True)
    out = conv1d(h, w, b, stride, pad)  # (M, N, Lo, O)
    ref = torch.stack([F.conv1d(h[i].transpose(1, 2), w[i], b[i], stride=stride, padding=pad).transpose(1, 2)
                       for i in range(m)])
    assert out.shape == (m, n, out_len(length, k, stride, pad), o)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    up = torch.randn(out.shape, generator=g, dtype=torch.float64)
    mine = torch.autograd.grad((out * up).sum(), (h, w, b))
    theirs = torch.autograd.grad((ref * up).sum(), (h, w, b))
    for a, t in zip(mine, theirs):
        torch.testing.assert_close(a, t, rtol=1e-12, atol=1e-12)


def test_double_backward_raises_instead_of_dropping_terms():
    h = torch.randn(1, 2, 7, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, 4, dtype=torch.float64, requires_grad=True)
    (gw,) = torch.autograd.grad(conv1d(h, w, b, 2, 1).square().sum(), (w,), create_graph=True)
    with pytest.raises(RuntimeError):
        torch.autograd.grad(gw.sum(), (h,))


def test_fast_path_only_for_the_class_own_method():
    from groklab.nn.modules import MNIST1DCNN

    class Changed(MNIST1DCNN):  # a subclass with its own forward must not run the parent's batched maths
        def forward(self, x):
            return super().forward(x) * 2

    assert ModuleEnsemble(lambda: Changed(4))._batched is None
    assert ModuleEnsemble(lambda: MNIST1DCNN(4))._batched is not None


def _close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.detach().abs().max()))


@pytest.mark.parametrize("per_member", [False, True])
def test_mnist1d_cnn_fast_path_equals_vmap(per_member):
    fast = ModuleEnsemble(lambda: build_module("mnist1d_cnn", channels=6))
    slow = ModuleEnsemble(lambda: build_module("mnist1d_cnn", channels=6), batched=False)
    assert fast._batched is not None and slow._batched is None
    p = {k: v.requires_grad_(True) for k, v in fast.init([0, 1, 2], torch.ones(3)).items()}
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, 40, generator=g) if per_member else torch.randn(8, 40, generator=g)
    a, b = fast(p, x, per_member=per_member), slow(p, x, per_member=per_member)
    assert a.shape == (3, 8, 10)
    _close(a, b)
    for ga, gb in zip(torch.autograd.grad(a.square().sum(), list(p.values())),
                      torch.autograd.grad(b.square().sum(), list(p.values()))):
        _close(ga, gb)


def test_padded_width_ensemble_computes_each_real_width():
    ens = WidthEnsemble("cnn", [2, 5, 9])  # padded to 9 channels, fast path
    p = ens.init([0, 1, 2], torch.ones(3))
    x = torch.randn(4, 40, generator=torch.Generator().manual_seed(1))
    out = ens(p, x)  # (3, 4, 10)
    for i, (w, seed) in enumerate(zip([2, 5, 9], [0, 1, 2])):
        torch.manual_seed(seed)
        lone = build_module("mnist1d_cnn", channels=w)
        with torch.no_grad():
            _close(out[i], lone(x))
