"""Fourier analysis of modular-arithmetic weights (PAIR's frequency plot; Nanda et al.'s key
frequencies and Gini of Fourier norms).

For a weight matrix W (p, H) indexed by token i, each column is projected on the constant and on
cos/sin(2πki/p), k = 1..p//2. A neuron's frequency is its largest coefficient's k; its phase is
atan2(sin coef, cos coef); it "counts" when that frequency holds at least `threshold` of the column's
non-constant energy.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def fourier_rows(p: int, device=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The one Fourier basis of groklab. Unit-norm rows over i = 0..p-1, float64: const (p,), cos (K, p),
    sin (K, p) for k = 1..p//2 (for even p the k = p/2 sine row is zero)."""
    i = torch.arange(p, dtype=torch.float64, device=device)
    ks = torch.arange(1, p // 2 + 1, dtype=torch.float64, device=device)
    ang = 2 * math.pi * ks[:, None] * i[None] / p  # (K, p)
    cos, sin = ang.cos(), ang.sin()
    cos = cos / cos.norm(dim=1, keepdim=True)
    sn = sin.norm(dim=1, keepdim=True)
    sin = torch.where(sn > 1e-9, sin / sn.clamp_min(1e-9), torch.zeros_like(sin))
    return torch.full((p,), p**-0.5, dtype=torch.float64, device=device), cos, sin


def fourier_basis(p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fourier_rows as numpy: ks (K,), cos (K, p), sin (K, p)."""
    _, cos, sin = fourier_rows(p)
    return np.arange(1, p // 2 + 1), cos.numpy(), sin.numpy()


def coefficients(w: np.ndarray) -> dict[str, np.ndarray]:
    """w (p, H) -> constant (H,), cos (K, H), sin (K, H), magnitude (K, H) in the unit Fourier basis."""
    w = np.asarray(w, dtype=np.float64)
    p = w.shape[0]
    ks, cos, sin = fourier_basis(p)
    c, s = cos @ w, sin @ w
    return {"k": ks, "const": w.mean(0) * np.sqrt(p), "cos": c, "sin": s, "mag": np.sqrt(c**2 + s**2)}


def neuron_frequencies(w: np.ndarray, threshold: float = 0.5) -> dict[str, np.ndarray]:
    """Per neuron: frequency k (0 if it doesn't count), phase, and the share of energy at k."""
    co = coefficients(w)
    energy = (co["mag"] ** 2).sum(0)  # (H,)
    top = co["mag"].argmax(0)  # (H,)
    h = np.arange(w.shape[1])
    share = co["mag"][top, h] ** 2 / np.maximum(energy, 1e-30)
    freq = np.where(share >= threshold, co["k"][top], 0)
    phase = np.arctan2(co["sin"][top, h], co["cos"][top, h])
    return {"freq": freq.astype(int), "phase": phase, "share": share, "top": co["k"][top].astype(int)}


def gini(x: torch.Tensor | np.ndarray) -> torch.Tensor | float:
    """Gini coefficient of non-negative values (0 = all equal, → 1 = one value holds everything): of each
    row of a (M, n) tensor -> (M,), or of a numpy array's values -> float."""
    if isinstance(x, np.ndarray):
        return float(gini(torch.from_numpy(np.asarray(x, dtype=np.float64).reshape(1, -1)))[0])
    x = x.double().sort(dim=1).values
    n = x.shape[1]
    rank = 2 * torch.arange(1, n + 1, dtype=x.dtype, device=x.device) - n - 1  # (n,)
    return (x @ rank) / (n * x.sum(1)).clamp_min(1e-300)


def spectrum(w: np.ndarray) -> np.ndarray:
    """Norm of w's projection on each frequency k (summed over neurons). (K,)"""
    return np.sqrt((coefficients(w)["mag"] ** 2).sum(1))


def analyze(w: np.ndarray, threshold: float = 0.5) -> dict:
    """Key frequencies (those some counting neuron uses, sorted by how many), the per-neuron table,
    and the Gini coefficient of the Fourier spectrum."""
    nf = neuron_frequencies(w, threshold)
    used = nf["freq"][nf["freq"] > 0]
    ks, counts = np.unique(used, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    return {"key_frequencies": [int(k) for k in ks[order]], "neurons": nf,
            "spectrum": spectrum(w), "gini": gini(spectrum(w))}
