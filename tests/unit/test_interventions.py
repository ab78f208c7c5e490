"""Grokfast filters and ⊥Grad against their definitions, written out directly."""

from types import SimpleNamespace

import torch

from groklab.engine.interventions import GradTransforms


def _optim(kind: str, orthograd: bool = False, window: int = 4, lam: float = 5.0, alpha: float = 0.9):
    return SimpleNamespace(grokfast=kind, orthograd=orthograd, grokfast_alpha=alpha, grokfast_lambda=lam,
                           grokfast_window=window)


def test_ma_filter_is_gradient_plus_lambda_times_window_mean():
    torch.manual_seed(0)
    params = {"w": torch.randn(3, 5, 2)}
    tf = GradTransforms(params, _optim("ma", window=4))
    seen = []
    for _ in range(23):  # long enough for several re-sums of the running window sum
        g = torch.randn(3, 5, 2)
        seen.append(g)
        out = tf(params, {"w": g})["w"]
        want = g + 5.0 * torch.stack(seen[-4:]).mean(0) if len(seen) >= 4 else g
        torch.testing.assert_close(out, want, rtol=1e-5, atol=1e-6)
    tf.select(torch.tensor([0, 2]))  # compaction keeps the kept members' windows
    g = torch.randn(2, 5, 2)
    want = g + 5.0 * torch.stack([s[[0, 2]] for s in seen[-3:]] + [g]).mean(0)
    torch.testing.assert_close(tf(params, {"w": g})["w"], want, rtol=1e-5, atol=1e-6)


def test_ema_filter_and_orthograd():
    torch.manual_seed(1)
    params = {"a": torch.randn(2, 4), "b": torch.randn(2, 3, 3)}
    tf = GradTransforms(params, _optim("ema", lam=2.0, alpha=0.9))
    h = {k: torch.zeros_like(v) for k, v in params.items()}
    for _ in range(5):
        g = {k: torch.randn_like(v) for k, v in params.items()}
        out = tf(params, g)
        for k in g:
            h[k] = 0.9 * h[k] + 0.1 * g[k]
            torch.testing.assert_close(out[k], g[k] + 2.0 * h[k])
    ortho = GradTransforms(params, _optim("none", orthograd=True))
    g = {k: torch.randn_like(v) for k, v in params.items()}
    out = ortho(params, g)
    dot = sum((out[k] * params[k]).flatten(1).sum(1) for k in params)  # (M,) per-member <g⊥, w>
    torch.testing.assert_close(dot, torch.zeros(2), atol=1e-5, rtol=0)
