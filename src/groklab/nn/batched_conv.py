"""Strided 1-D convolutions batched over ensemble members as matmuls (im2col + bmm), for CPUs.

Under `torch.func.vmap` a member-batched `conv1d` becomes one grouped convolution (groups = M), which is slow on
CPU, forward and above all backward. Here each member's convolution is one matrix product of its unfolded input
(im2col, channel-last) with its weight, batched over members by `torch.bmm`, and a hand-written backward scatters
the input gradient back with k strided adds (autograd's own backward of the unfolding would zero-fill and sum k
full-size copies).

Shapes: M members, N examples, L input positions, Lo output positions, C input channels, O output channels, k
kernel taps. Channel-last activations h (M, N, L, C); a conv weight in torch's layout (M, O, C, k) is used as
w2 (M, k·C, O), tap-major (`tap_major`). Output position i reads input positions s·i + j − pad, j < k (zero outside).

First derivatives only (`once_differentiable`: a double backward raises). Measured on CPU only, so ModuleEnsemble
takes this path on CPU; CUDA keeps torch.func vmap (cuDNN's grouped convolutions).

`mnist1d_cnn_forward` is the whole MNIST-1D CNN (nn/modules.MNIST1DCNN) on stacked parameters; ModuleEnsemble uses
it through MNIST1DCNN.batched_forward. Same function as the module, to float32 summation order (tested).
"""

from __future__ import annotations

import torch


def out_len(length: int, k: int, stride: int, pad: int) -> int:
    return (length + 2 * pad - k) // stride + 1


def _taps(length: int, lo: int, k: int, stride: int, pad: int):
    """For each tap j: (output slice, input slice) of the positions where s·i + j − pad lies in [0, L)."""
    out = []
    for j in range(k):
        i0 = max(0, -(-(pad - j) // stride))  # first i with s·i + j − pad ≥ 0
        i1 = min(lo, (length - 1 - j + pad) // stride + 1)  # one past the last i with s·i + j − pad ≤ L − 1
        if i1 > i0:
            s0 = stride * i0 + j - pad
            out.append((j, slice(i0, i1), slice(s0, s0 + stride * (i1 - i0 - 1) + 1, stride)))
    return out


class _Conv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, w2, b, k: int, stride: int, pad: int):  # h (M, N, L, C), w2 (M, k·C, O), b (M, O)
        m, n, length, c = h.shape
        lo = out_len(length, k, stride, pad)
        taps = _taps(length, lo, k, stride, pad)
        cols = h.new_zeros(m, n, lo, k, c)  # (M, N, Lo, k, C) im2col, zero where the kernel hangs over the edge
        for j, oi, si in taps:
            cols[:, :, oi, j] = h[:, :, si]
        cols = cols.view(m, n * lo, k * c)
        out = torch.baddbmm(b.unsqueeze(1), cols, w2)  # (M, N·Lo, O)
        ctx.save_for_backward(cols, w2)
        ctx.geom = (m, n, length, c, lo, k, taps)
        return out.view(m, n, lo, -1)

    @staticmethod
    @torch.autograd.function.once_differentiable  # no double backward: it raises instead of dropping terms
    def backward(ctx, g):  # g (M, N, Lo, O)
        cols, w2 = ctx.saved_tensors
        m, n, length, c, lo, k, taps = ctx.geom
        g2 = g.reshape(m, n * lo, -1)  # (M, N·Lo, O)
        gw = torch.bmm(cols.transpose(1, 2), g2) if ctx.needs_input_grad[1] else None  # (M, k·C, O)
        gb = g2.sum(1) if ctx.needs_input_grad[2] else None  # (M, O)
        gh = None
        if ctx.needs_input_grad[0]:
            gcols = torch.bmm(g2, w2.transpose(1, 2)).view(m, n, lo, k, c)  # (M, N, Lo, k, C)
            gh = g.new_zeros(m, n, length, c)
            for j, oi, si in taps:
                gh[:, :, si] += gcols[:, :, oi, j]
        return gh, gw, gb, None, None, None


def tap_major(w: torch.Tensor) -> torch.Tensor:
    """Conv weights (M, O, C, k) -> (M, k·C, O), the layout of the im2col columns."""
    m, o, c, k = w.shape
    return w.permute(0, 3, 2, 1).reshape(m, k * c, o)


def conv1d(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: int, pad: int) -> torch.Tensor:
    """Member-batched conv1d, channel-last. h (M, N, L, C), w (M, O, C, k), b (M, O) -> (M, N, Lo, O)."""
    return _Conv.apply(h, tap_major(w), b, w.shape[-1], stride, pad)


def mnist1d_cnn_forward(p: dict[str, torch.Tensor], x: torch.Tensor, per_member: bool) -> torch.Tensor:
    """nn/modules.MNIST1DCNN on stacked parameters {name: (M, ...)}; x (N, L) shared or (M, N, L) -> (M, N, 10)."""
    w1 = p["conv1.weight"]  # (M, C, 1, 5)
    m = w1.shape[0]
    h = x if per_member else x.unsqueeze(0).expand(m, *x.shape)  # (M, N, L)
    h = h.reshape(m, h.shape[1], -1, 1)  # (M, N, L, 1)
    h = conv1d(h, w1, p["conv1.bias"], 2, 1).relu()  # (M, N, 19, C)
    h = conv1d(h, p["conv2.weight"], p["conv2.bias"], 2, 1).relu()  # (M, N, 10, C)
    h = conv1d(h, p["conv3.weight"], p["conv3.bias"], 2, 1).relu()  # (M, N, 5, C)
    wl = p["linear.weight"]  # (M, 10, C·5), the module flattens (C, 5) channel-major
    c, lo = h.shape[-1], h.shape[-2]
    wl = wl.reshape(m, wl.shape[1], c, lo).transpose(2, 3).reshape(m, wl.shape[1], lo * c)  # (M, 10, 5·C) by position
    return torch.baddbmm(p["linear.bias"].unsqueeze(1), h.reshape(m, h.shape[1], lo * c), wl.transpose(1, 2))
