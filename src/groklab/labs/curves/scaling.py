"""Scaling-law fits the way Hoffmann et al. (2022) fitted theirs, with bootstrap confidence intervals.

Forms (N = parameters, D = training examples, L = test loss):
    power        L = A / N^α                        (Kaplan et al. 2020: no irreducible term)
    hoffmann_n   L = E + A / N^α
    hoffmann_nd  L = E + A / N^α + B / D^β
Each is fitted in Hoffmann's parametrization, log L̂ = LSE(a − α log N, b − β log D, e) with A = eᵃ, B = eᵇ,
E = eᵉ, by minimizing the Huber loss (δ = scaling.huber, 1e-3) of log L̂ − log L over the observations:
`scipy.optimize.least_squares(residuals, x0, jac, loss="huber", f_scale=δ)`. Initializations: Hoffmann's grid,
coarsened (α, β ∈ {0, 0.5, 1, 2}, e ∈ {−1, 0, 1}, a, b ∈ {0, 5, 10, 20}: 768 points for L(N, D)); the objective is
evaluated at every grid point at once and least_squares runs from the best 12 (one run takes ~0.1 s on this CPU,
so all 768 would take minutes per fit); the lowest objective wins. 95% CIs: percentiles of the parameters refitted
on bootstrap resamples of the observations (runs: one per width × size × seed), each refit started from the full
fit and the resample's best grid point. Held-out check: fit
without the largest N and report |L̂ − L| / L at the largest N (mean observed loss there).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy.optimize import least_squares
from scipy.special import logsumexp

NAMES = {"power": ("A", "alpha"), "hoffmann_n": ("E", "A", "alpha"), "hoffmann_nd": ("E", "A", "alpha", "B", "beta")}
GRID = {"alpha": [0.0, 0.5, 1.0, 2.0], "beta": [0.0, 0.5, 1.0, 2.0], "e": [-1.0, 0.0, 1.0],
        "a": [0.0, 5.0, 10.0, 20.0], "b": [0.0, 5.0, 10.0, 20.0]}
SCREENED = 12  # least_squares runs from the best grid points of the screening
RAW = {"power": ("a", "alpha"), "hoffmann_n": ("e", "a", "alpha"), "hoffmann_nd": ("e", "a", "alpha", "b", "beta")}


def predict_log(form: str, x: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """log L̂ for raw parameters x (RAW[form] order) at N = n, D = d. # (K,); x (P, G) of G starts -> (G, K)"""
    ln, ld = np.log(n), np.log(d)
    x = np.asarray(x, float)
    if x.ndim == 2:
        x, ln, ld = x[..., None], ln[None], ld[None]  # each parameter (G, 1) against (1, K)
    if form == "power":
        a, alpha = x
        return a - alpha * ln
    if form == "hoffmann_n":
        e, a, alpha = x
        return logsumexp(np.stack(np.broadcast_arrays(a - alpha * ln, e + 0 * ln)), axis=0)
    e, a, alpha, b, beta = x
    return logsumexp(np.stack(np.broadcast_arrays(a - alpha * ln, b - beta * ld, e + 0 * ln)), axis=0)


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """Σ of scipy's huber ρ(z²)·δ² over the last axis (the objective least_squares minimizes, ×2)."""
    a = np.abs(r)
    return np.where(a <= delta, r**2, 2 * delta * a - delta**2).sum(-1)


def screen(form: str, n, d, y, delta: float, k: int) -> list[np.ndarray]:
    """The k grid points with the lowest Huber objective (evaluated for the whole grid at once)."""
    g = np.array(grid(form))  # (G, P)
    obj = huber(predict_log(form, g.T, n, d) - y, delta)  # (G,)
    return [g[i] for i in np.argsort(obj)[:k]]


def jacobian(form: str, x: np.ndarray, n: np.ndarray, d: np.ndarray) -> np.ndarray:
    """∂ log L̂ / ∂ raw parameters: the softmax weights of the LSE terms times each term's derivative. # (K, P)"""
    ln, ld = np.log(n), np.log(d)
    if form == "power":
        return np.stack([np.ones_like(ln), -ln], 1)
    if form == "hoffmann_n":
        e, a, alpha = x
        t = np.stack([a - alpha * ln, np.full_like(ln, e)])  # (2, K)
        w = np.exp(t - logsumexp(t, axis=0))  # (2, K)
        return np.stack([w[1], w[0], -w[0] * ln], 1)
    e, a, alpha, b, beta = x
    t = np.stack([a - alpha * ln, b - beta * ld, np.full_like(ln, e)])  # (3, K)
    w = np.exp(t - logsumexp(t, axis=0))
    return np.stack([w[2], w[0], -w[0] * ln, w[1], -w[1] * ld], 1)


def natural(form: str, x: np.ndarray) -> dict[str, float]:
    """Raw (log-scale) parameters -> {E, A, alpha, B, beta} as reported."""
    raw = dict(zip(RAW[form], map(float, x)))
    out = {"E": np.exp(raw.get("e", -np.inf)), "A": np.exp(raw["a"]), "alpha": raw["alpha"]}
    if form == "hoffmann_nd":
        out.update(B=np.exp(raw["b"]), beta=raw["beta"])
    return {k: float(out[k]) for k in NAMES[form]}


def grid(form: str) -> list[np.ndarray]:
    return [np.array(p) for p in itertools.product(*(GRID[k] for k in RAW[form]))]


def fit(form: str, n: np.ndarray, d: np.ndarray, loss: np.ndarray, delta: float,
        starts: list[np.ndarray] | None = None, k: int = SCREENED) -> tuple[np.ndarray, float]:
    """Best raw parameters and Huber objective of least_squares from `starts` plus the k best grid points."""
    y = np.log(loss)
    starts = [*(starts or []), *screen(form, n, d, y, delta, k)]

    def res(x):
        return predict_log(form, x, n, d) - y

    best, best_cost = None, np.inf
    for x0 in starts:
        r = least_squares(res, x0, jac=lambda x: jacobian(form, x, n, d), loss="huber", f_scale=delta,
                          method="trf", max_nfev=300)
        if np.isfinite(r.cost) and r.cost < best_cost:
            best, best_cost = r.x, float(r.cost)
    return best, best_cost


def fit_form(form: str, n: np.ndarray, d: np.ndarray, loss: np.ndarray, delta: float, boots: int, holdout: bool,
             seed: int = 0) -> dict:
    """Point fit, bootstrap 95% CIs, held-out relative error at the largest N, residuals of the point fit."""
    x, _ = fit(form, n, d, loss, delta)
    rng = np.random.default_rng([seed, 21])
    samples = []
    for _ in range(boots):
        idx = rng.integers(0, len(loss), len(loss))
        xb, _ = fit(form, n[idx], d[idx], loss[idx], delta, [x], k=1)
        if xb is not None:
            samples.append(natural(form, xb))
    ci = {k: [float(np.percentile([s[k] for s in samples], 2.5)), float(np.percentile([s[k] for s in samples], 97.5))]
          if samples else [None, None] for k in NAMES[form]}
    held = None
    if holdout:
        top = n.max()
        keep = n < top
        xh, _ = fit(form, n[keep], d[keep], loss[keep], delta)
        at = ~keep & (d == d.max())
        pred = float(np.exp(predict_log(form, xh, n[at][:1], d[at][:1]))[0])
        obs = float(loss[at].mean())
        held = {"n": float(top), "d": float(d.max()), "predicted": pred, "observed": obs,
                "rel_error": abs(pred - obs) / obs, "params": natural(form, xh)}
    resid = predict_log(form, x, n, d) - np.log(loss)
    return {"params": natural(form, x), "ci95": ci, "heldout_rel_error": None if held is None else held["rel_error"],
            "heldout": held, "residuals": resid.tolist(), "bootstrap": len(samples)}
