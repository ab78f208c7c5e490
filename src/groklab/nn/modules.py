"""Plain single-member `nn.Module`s for the labs; `groklab.engine.ensemble.ModuleEnsemble` trains M of
them as one batched model. `build_module(kind, **kw)` is the one entry point.

Shapes: N examples, L positions (1-D), H×W pixels (2-D), C classes. Every model maps a batch to logits (N, C).
No BatchNorm anywhere (the ensemble rejects it): norm="group" is GroupNorm with gcd(channels, 8) groups,
norm="layer" is GroupNorm(1, channels), i.e. LayerNorm over (channels, *positions) with per-channel affine.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import nn

from groklab import GroklabError

ACTS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}
NORMS = ("none", "group", "layer")


def _choice(what: str, value, allowed) -> None:
    if value not in allowed:
        raise GroklabError(f"{what}: {value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}")


def _positive(**kw: int) -> None:
    for k, v in kw.items():
        if int(v) < 1:
            raise GroklabError(f"{k}: must be >= 1, got {v}")


def make_act(name: str) -> nn.Module:
    _choice("act", name, tuple(ACTS))
    return ACTS[name]()


def make_norm(kind: str, ch: int) -> nn.Module:
    _choice("norm", kind, NORMS)
    if kind == "group":
        return nn.GroupNorm(math.gcd(ch, 8), ch)
    return nn.GroupNorm(1, ch) if kind == "layer" else nn.Identity()


def _conv(dim: int):
    _choice("dim", dim, (1, 2))
    return nn.Conv1d if dim == 1 else nn.Conv2d


def _with_channels(x: torch.Tensor, dim: int) -> torch.Tensor:
    """(N, L) -> (N, 1, L) for dim 1, (N, H, W) -> (N, 1, H, W) for dim 2; channelled inputs pass."""
    return x.unsqueeze(1) if x.dim() == dim + 1 else x


class MLP(nn.Module):
    """d_in -> [Linear(width) -> act] × depth -> Linear(n_classes). Inputs are flattened after the batch axis."""

    def __init__(self, d_in: int, n_classes: int, width: int, depth: int = 2, act: str = "relu"):
        super().__init__()
        _positive(d_in=d_in, n_classes=n_classes, width=width)
        if depth < 0:
            raise GroklabError(f"depth: must be >= 0, got {depth}")
        layers: list[nn.Module] = [nn.Flatten()]
        d = d_in
        for _ in range(depth):
            layers += [nn.Linear(d, width), make_act(act)]
            d = width
        layers.append(nn.Linear(d, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, d_in) or (N, ...) -> (N, C)
        return self.net(x)


class CNN(nn.Module):
    """`depth` blocks of Conv(k3, stride 2, pad 1) -> norm -> act, all `width` channels, then global average
    pooling and Linear(width -> n_classes). dim=1: inputs (N, L) or (N, in_ch, L) (MNIST-1D: (N, 40));
    dim=2: images (N, in_ch, H, W) or (N, H, W). Convolutions carry a bias only without a norm."""

    def __init__(self, in_ch: int, n_classes: int, width: int, depth: int = 3, act: str = "relu",
                 norm: str = "none", dim: int = 1):
        super().__init__()
        _positive(in_ch=in_ch, n_classes=n_classes, width=width, depth=depth)
        conv, self.dim = _conv(dim), dim
        layers: list[nn.Module] = []
        c = in_ch
        for _ in range(depth):
            layers += [conv(c, width, 3, stride=2, padding=1, bias=norm == "none"), make_norm(norm, width),
                       make_act(act)]
            c = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1) if dim == 1 else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(_with_channels(x, self.dim))  # (N, width, L') or (N, width, H', W')
        return self.head(self.pool(h).flatten(1))  # (N, C)


class BasicBlock(nn.Module):
    """conv3 -> GN -> act -> conv3 -> GN, plus the shortcut (1×1 conv + GN when the shape changes), -> act."""

    def __init__(self, c_in: int, c_out: int, stride: int, act: str, dim: int):
        super().__init__()
        conv = _conv(dim)
        self.conv1 = conv(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.norm1 = make_norm("group", c_out)
        self.act = make_act(act)
        self.conv2 = conv(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.norm2 = make_norm("group", c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(conv(c_in, c_out, 1, stride=stride, bias=False), make_norm("group", c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, c_in, *S) -> (N, c_out, *S/stride)
        h = self.act(self.norm1(self.conv1(x)))
        return self.act(self.norm2(self.conv2(h)) + self.shortcut(x))


class ResNet(nn.Module):
    """Nakkiran et al.'s (2019) width-scaled ResNet18: stage widths k·[1, 2, 4, 8] (k = 64 is the standard
    ResNet18), CIFAR stem conv3×3 (stride 1) -> GN -> act, stages with strides 1, 2, 2, 2, global average
    pooling, Linear(8k -> n_classes). GroupNorm (gcd(C, 8) groups) replaces BatchNorm.
    `blocks` basic blocks per stage: (2, 2, 2, 2) is ResNet18; (1, 1, 1, 1) is the reduced-depth
    "ResNet10" variant for CPU budgets. dim=2 for images (N, in_ch, H, W); dim=1 works on (N, in_ch, L)."""

    def __init__(self, in_ch: int = 3, n_classes: int = 10, k: int = 64, blocks: tuple[int, ...] = (2, 2, 2, 2),
                 act: str = "relu", dim: int = 2):
        super().__init__()
        _positive(in_ch=in_ch, n_classes=n_classes, k=k)
        if len(blocks) != 4 or min(blocks) < 1:
            raise GroklabError(f"blocks: four stage depths >= 1 expected, got {tuple(blocks)}")
        conv, self.dim = _conv(dim), dim
        widths = [k, 2 * k, 4 * k, 8 * k]
        self.stem = nn.Sequential(conv(in_ch, k, 3, stride=1, padding=1, bias=False), make_norm("group", k),
                                  make_act(act))
        stages, c = [], k
        for w, n, stride in zip(widths, blocks, (1, 2, 2, 2)):
            for j in range(n):
                stages.append(BasicBlock(c, w, stride if j == 0 else 1, act, dim))
                c = w
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool1d(1) if dim == 1 else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(c, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stages(self.stem(_with_channels(x, self.dim)))  # (N, 8k, *S/8)
        return self.head(self.pool(h).flatten(1))  # (N, C)


class Attention(nn.Module):
    """Multi-head self-attention written out (no fused kernel, so it runs under the ensemble's vmap):
    qkv = Linear(width -> 3 width), softmax(q k^T / sqrt(d_head)) v per head, Linear(width -> width)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        if width % heads:
            raise GroklabError(f"heads: must divide the width {width}, got {heads}")
        self.heads = heads
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, D) -> (N, T, D)
        n, t, d = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (N, h, T, dh)
        att = (q @ k.transpose(-1, -2) / math.sqrt(d // self.heads)).softmax(-1)  # (N, h, T, T)
        return self.proj((att @ v).transpose(1, 2).reshape(n, t, d))


class ViTBlock(nn.Module):
    """Pre-LayerNorm transformer block: x + attn(LN(x)), then x + MLP(LN(x)) with MLP width -> 2 width -> width."""

    def __init__(self, width: int, heads: int, act: str):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(width), Attention(width, heads)
        self.ln2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), make_act(act), nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, T, D)
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class ViT(nn.Module):
    """A small vision transformer (Dosovitskiy et al. 2021) for CPU budgets. The input is cut into
    non-overlapping patches, zero-padded at the end to a whole number of them: dim=1 segments of `patch`
    positions of a sequence or feature vector (MNIST-1D (N, 40) with patch 4: 10 tokens), dim=2 squares of
    patch x patch pixels (N, in_ch, H, W). Each patch (in_ch * patch^dim values) -> Linear(width), plus a
    learned position embedding; `depth` pre-LayerNorm blocks (`heads` heads, MLP ratio 2, activation `act`);
    final LayerNorm, mean over tokens (global average pooling instead of a class token), Linear(n_classes).
    `size`: the input's length (dim=1) or (H, W) (dim=2), which fixes the number of tokens."""

    def __init__(self, in_ch: int, n_classes: int, size: int | tuple[int, int], width: int = 32, depth: int = 2,
                 heads: int = 2, patch: int = 4, act: str = "relu", dim: int = 1):
        super().__init__()
        _choice("dim", dim, (1, 2))
        dims = (size,) if isinstance(size, int) else tuple(size)
        if len(dims) != dim:
            raise GroklabError(f"size: dim={dim} needs {dim} input size(s), got {size!r}")
        _positive(in_ch=in_ch, n_classes=n_classes, width=width, depth=depth, heads=heads, patch=patch,
                  **{f"size[{i}]": v for i, v in enumerate(dims)})
        self.dim, self.patch = dim, patch
        self.grid = tuple(-(-v // patch) for v in dims)  # patches along each axis
        self.embed = nn.Linear(in_ch * patch**dim, width)
        self.pos = nn.Parameter(torch.randn(1, math.prod(self.grid), width) * 0.02)
        self.blocks = nn.Sequential(*[ViTBlock(width, heads, act) for _ in range(depth)])
        self.ln, self.head = nn.LayerNorm(width), nn.Linear(width, n_classes)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        """(N, L) / (N, C, L) / (N, C, H, W) -> (N, T, C * patch^dim), row-major over the patch grid."""
        x, p = _with_channels(x, self.dim), self.patch
        n, c = x.shape[:2]
        pad = [v * p - s for v, s in zip(self.grid, x.shape[2:])]
        if any(pad):
            x = nn.functional.pad(x, [a for v in reversed(pad) for a in (0, v)])
        if self.dim == 1:
            return x.view(n, c, self.grid[0], p).permute(0, 2, 1, 3).reshape(n, self.grid[0], c * p)
        gh, gw = self.grid
        x = x.view(n, c, gh, p, gw, p).permute(0, 2, 4, 1, 3, 5)  # (N, gh, gw, C, p, p)
        return x.reshape(n, gh * gw, c * p * p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(self.patches(x)) + self.pos  # (N, T, width)
        return self.head(self.ln(self.blocks(h)).mean(1))  # (N, C)


class MNIST1DMLP(nn.Module):
    """MNIST-1D double-descent MLP (Greydanus' notebook): 40 -> H -> H -> 10, ReLU; H² + 52H + 10 parameters."""

    def __init__(self, hidden: int, d_in: int = 40, n_classes: int = 10):
        super().__init__()
        _positive(hidden=hidden, d_in=d_in, n_classes=n_classes)
        self.linear1, self.linear2 = nn.Linear(d_in, hidden), nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 40) -> (N, 10)
        h = self.linear2(self.linear1(x.flatten(1)).relu()).relu()  # (N, H)
        return self.linear3(h)


class MNIST1DCNN(nn.Module):
    """MNIST-1D double-descent CNN (mnist1d's ConvBase): Conv1d(1->C, k5 s2 p1), Conv1d(C->C, k3 s2 p1),
    Conv1d(C->C, k3 s2 p1), ReLU after each, flatten, Linear(5C -> 10). Length 40 -> 19 -> 10 -> 5."""

    def __init__(self, channels: int, length: int = 40, n_classes: int = 10):
        super().__init__()
        _positive(channels=channels, length=length, n_classes=n_classes)
        c = channels
        self.conv1 = nn.Conv1d(1, c, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(c, c, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(c, c, 3, stride=2, padding=1)
        from groklab.nn.batched_conv import out_len as conv_out
        out_len = length
        for k in (5, 3, 3):
            out_len = conv_out(out_len, k, 2, 1)
        if out_len < 1:
            raise GroklabError(f"length: {length} is too short for three stride-2 convolutions")
        self.linear = nn.Linear(c * out_len, n_classes)

    @staticmethod
    def batched_forward(params: dict[str, torch.Tensor], x: torch.Tensor, per_member: bool) -> torch.Tensor:
        """The same network for M stacked members as im2col matmuls (nn/batched_conv.py); ModuleEnsemble's
        fast path. params {name: (M, ...)}, x (N, L) or (M, N, L) -> (M, N, 10)"""
        from groklab.nn.batched_conv import mnist1d_cnn_forward
        return mnist1d_cnn_forward(params, x, per_member)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, 40) or (N, 1, 40) -> (N, 10)
        h = x.reshape(x.shape[0], 1, x.shape[-1])  # (N, 1, L)
        h = self.conv3(self.conv2(self.conv1(h).relu()).relu()).relu()  # (N, C, 5)
        return self.linear(h.flatten(1))


MODULES: dict[str, type[nn.Module]] = {"mlp": MLP, "cnn": CNN, "resnet": ResNet, "vit": ViT,
                                       "mnist1d_mlp": MNIST1DMLP, "mnist1d_cnn": MNIST1DCNN}


def build_module(kind: str, **kw) -> nn.Module:
    """One member of architecture `kind` (see MODULES) built from keyword arguments; GroklabError on an
    unknown kind or argument."""
    _choice("model kind", kind, tuple(MODULES))
    cls = MODULES[kind]
    try:
        inspect.signature(cls).bind(**kw)
    except TypeError as e:
        params = ", ".join(inspect.signature(cls).parameters)
        raise GroklabError(f"model {kind!r}: {e}; arguments: {params}") from None
    return cls(**kw)
