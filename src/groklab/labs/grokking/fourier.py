"""Fourier analysis of modular-arithmetic weights (PAIR's frequency plot; Nanda et al.'s key
frequencies and Gini of Fourier norms).

For a weight matrix W (p, H) indexed by token i, each column is projected on the constant and on
cos/sin(2πki/p), k = 1..p//2. A neuron's frequency is its largest coefficient's k; its phase is
atan2(sin coef, cos coef); it "counts" when that frequency holds at least `threshold` of the column's
non-constant energy.
"""

from __future__ import annotations

import numpy as np


def fourier_basis(p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cos and sin rows for k = 1..p//2, normalized to unit norm. -> ks (K,), cos (K, p), sin (K, p)."""
    ks = np.arange(1, p // 2 + 1)
    i = np.arange(p)
    cos = np.cos(2 * np.pi * np.outer(ks, i) / p)
    sin = np.sin(2 * np.pi * np.outer(ks, i) / p)
    cos /= np.linalg.norm(cos, axis=1, keepdims=True)
    norms = np.linalg.norm(sin, axis=1, keepdims=True)
    sin = np.divide(sin, norms, out=np.zeros_like(sin), where=norms > 1e-9)  # k = p/2: sin ≡ 0
    return ks, cos, sin


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


def gini(x: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 = all equal, → 1 = one value holds everything)."""
    x = np.sort(np.asarray(x, dtype=np.float64).ravel())
    n, total = len(x), x.sum()
    if n == 0 or total <= 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * total))


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
