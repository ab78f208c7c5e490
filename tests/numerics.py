"""Float comparisons that hold on any CPU.

float32 sums come out in a different order on different CPUs, thread counts and batch shapes, so two
float32 computations of one quantity agree only to a few ulps *of the largest terms summed*, not of each
element: an element near zero can differ by 1e-7 in absolute terms and 100% in relative terms. Compare
either against a float64 reference, or with an absolute tolerance scaled to the tensor's magnitude."""

from __future__ import annotations

import torch


def assert_close_scaled(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-5, what: str = "") -> None:
    """max |actual - expected| <= rel * max |expected| (elementwise errors measured against the scale of the
    whole tensor, which is what float32 rounding of a sum bounds)."""
    actual, expected = actual.detach().double().cpu(), expected.detach().double().cpu()
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    scale = expected.abs().max().item() if expected.numel() else 0.0
    err = (actual - expected).abs().max().item() if expected.numel() else 0.0
    assert err <= rel * max(scale, 1e-30), f"{what}: max abs error {err:.3g} > {rel:g} × scale {scale:.3g}"
