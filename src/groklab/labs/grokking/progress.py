"""Nanda et al. (2023) progress measures, per member, computed during training.

- Key frequencies: the Fourier spectrum of the token embedding W (p, D) — for the transformer the
  embedding of the p operand tokens, for the PAIR MLP the collapsed input weights A = embed·W_hidden.
  Frequency k's energy is ‖cos_k·W‖² + ‖sin_k·W‖² (unit-norm cos/sin(2πki/p) rows); k is *key* when its
  energy is at least `factor` (3) times the mean energy over k = 1..p//2. A random embedding spreads
  energy evenly (no key frequency); a trained one puts most of it on a handful.
- Restricted / excluded loss: the logits over the whole p×p input grid are, for each output class c, a
  function of (a, b). For a+b (a−b) Nanda's directions are cos(w_k(a±b)) and sin(w_k(a±b)), w_k = 2πk/p.
  Restricted logits keep only the per-class grid mean plus the components along the key frequencies'
  directions; excluded logits remove those components. Both losses are evaluated on the train pairs,
  with the run's loss (same reduction, softmax and dtype as train_loss). Defined for add and sub only.
- Gini coefficient of the embedding's p Fourier component norms (constant, cos_k, sin_k each its own
  component, as in Nanda et al.): near 0 for noise, near 1 for a sparse spectrum.
- Total sum of squared weights over every trained parameter.

All take params with a leading member axis and return {name: (M,) tensor}.
"""

from __future__ import annotations

import numpy as np
import torch

from groklab.engine.trainer import member_losses
from groklab.labs.grokking.fourier import fourier_rows, gini  # noqa: F401 (gini: part of this module's API)

KEY_FACTOR = 3.0
RESTRICTED_OPS = {"add": 1, "sub": -1}  # op -> sign of b in the directions cos/sin(w(a ± b))


def embed_spectrum(w: torch.Tensor) -> dict[str, torch.Tensor]:
    """w (M, p, D) -> energy per frequency (M, K) and norms of the p components (M, 1 + 2K)."""
    w = w.detach().double()
    const, cos, sin = fourier_rows(w.shape[1], w.device)
    c = (cos @ w).square().sum(-1)  # (M, K)
    s = (sin @ w).square().sum(-1)  # (M, K)
    c0 = (const @ w).square().sum(-1, keepdim=True)  # (M, 1)
    return {"energy": c + s, "components": torch.cat([c0, c, s], 1).sqrt()}


def key_mask(energy: torch.Tensor, factor: float = KEY_FACTOR) -> torch.Tensor:
    """(M, K) bool: frequency energy >= factor × the mean over frequencies."""
    return energy >= factor * energy.mean(1, keepdim=True)


def key_frequencies(w: torch.Tensor, factor: float = KEY_FACTOR) -> list[list[int]]:
    """Per member, its key frequencies k (1-based), strongest first."""
    energy = embed_spectrum(w)["energy"]
    mask = key_mask(energy, factor)
    out = []
    for e, m in zip(energy, mask):
        ks = torch.nonzero(m).flatten()
        out.append([int(k) + 1 for k in ks[e[ks].argsort(descending=True)]])
    return out


def grid_pairs(p: int, device=None) -> torch.Tensor:
    """All (a, b) in row-major order. # (p*p, 2)"""
    a, b = torch.meshgrid(torch.arange(p, device=device), torch.arange(p, device=device), indexing="ij")
    return torch.stack([a.flatten(), b.flatten()], 1)


def split_logits(grid_logits: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, p: int, sign: int = 1
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Restricted and excluded logits at the pairs x.

    grid_logits (M, p*p, C) over grid_pairs(p); x (N, 2); mask (M, K) key frequencies.
    Directions cos/sin(w_k s) with s = (a + sign·b) mod p depend on the grid only through s, so the
    projection of class c's logit surface on them is a projection of S[s, c] = Σ_{a+sign·b≡s} L[a, b, c].
    -> restricted (M, N, C), excluded (M, N, C)."""
    m, _, c = grid_logits.shape
    g = grid_logits.double()
    pairs = grid_pairs(p, g.device)
    s_grid = (pairs[:, 0] + sign * pairs[:, 1]) % p  # (p*p,)
    sums = torch.zeros(m, p, c, dtype=g.dtype, device=g.device).index_add_(1, s_grid, g)  # (M, p, C)
    _, cos, sin = fourier_rows(p, g.device)  # unit rows over s; over the grid each s occurs p times
    # unit grid direction u(a, b) = row[s]/sqrt(p); coefficient <L_c, u> = Σ_s S[s, c] row[s] / sqrt(p)
    coef_c = torch.einsum("ks,msc->mkc", cos, sums) / p**0.5  # (M, K, C)
    coef_s = torch.einsum("ks,msc->mkc", sin, sums) / p**0.5
    keep = mask.double()[..., None]  # (M, K, 1)
    s_x = (x[:, 0] + sign * x[:, 1]) % p  # (N,)
    key = (torch.einsum("mkc,kn->mnc", coef_c * keep, cos[:, s_x])
           + torch.einsum("mkc,kn->mnc", coef_s * keep, sin[:, s_x])) / p**0.5  # (M, N, C)
    mean = g.mean(1, keepdim=True)  # (M, 1, C) the per-class constant component
    at_x = g[:, x[:, 0] * p + x[:, 1]]  # (M, N, C)
    return mean + key, at_x - key


@torch.no_grad()
def measures(model, params: dict[str, torch.Tensor], x_train: torch.Tensor, y_train: torch.Tensor,
             op: str, loss_kw: dict, factor: float = KEY_FACTOR, max_elems: int = 2**26) -> dict[str, torch.Tensor]:
    """Progress measures per member. -> {name: (M,)}"""
    out = {"sum_sq_weights": sum(v.detach().double().square().flatten(1).sum(1) for v in params.values())}
    if op == "s5" or not hasattr(model, "input_weights"):
        return out
    spec = embed_spectrum(model.input_weights(params))
    mask = key_mask(spec["energy"], factor)  # (M, K)
    out["n_key_freqs"] = mask.sum(1).double()
    out["fourier_gini"] = gini(spec["components"])
    if op in RESTRICTED_OPS:
        p = model.p
        grid = grid_pairs(p, x_train.device)
        m = mask.shape[0]
        chunk = max(1, max_elems // (len(grid) * 64))
        r_loss, e_loss = [], []
        for s in range(0, m, chunk):
            sub = {k: v[s:s + chunk] for k, v in params.items()}
            r, e = split_logits(model.forward(sub, grid), x_train, mask[s:s + chunk], p, RESTRICTED_OPS[op])
            r_loss.append(member_losses(r, y_train, **loss_kw).double())  # logits are float64 here
            e_loss.append(member_losses(e, y_train, **loss_kw).double())
        out["restricted_loss"], out["excluded_loss"] = torch.cat(r_loss), torch.cat(e_loss)
    return out


def on_log_hook(cfg, model, data, loss_kw: dict):
    """The trainer's on_log callback: measures every `train.progress_every` steps, {} otherwise."""
    every = cfg.train.progress_every

    def hook(step: int, params: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if every <= 0 or step % every:
            return {}
        dev = next(iter(params.values())).device
        return measures(model, params, data.x_train.to(dev), data.y_train.to(dev), cfg.task.op, loss_kw)
    return hook


def drop_step(steps, values, frac: float = 0.1) -> int | None:
    """First logged step after a curve's peak where it is below `frac` × the peak (NaN skipped)."""
    v = np.asarray(values, dtype=float)
    ok = np.nonzero(~np.isnan(v))[0]
    if len(ok) == 0:
        return None
    peak = ok[np.argmax(v[ok])]
    after = [i for i in ok if i > peak and v[i] < frac * v[peak]]
    return int(np.asarray(steps)[after[0]]) if after else None


def milestones(steps, hist: dict, i: int) -> dict:
    """Member i's progress milestones: where restricted loss and test loss drop (drop_step)."""
    out = {"step_test_loss_drop": drop_step(steps, hist["test_loss"][i])}
    if "restricted_loss" in hist:
        out["step_restricted_drop"] = drop_step(steps, hist["restricted_loss"][i])
    return out
