"""Double descent in closed form and in seconds: random-features regression, the Gaussian model of Belkin,
Hsu & Xu (2020) and the classical polynomial U-curve. Everything is float64 linear algebra (no training).

Random features: inputs z ~ N(0, I_d), target f(z) = sin(z·u) + cos(z·v)/2 + noise·ε with u, v ~ N(0, I_d/d)
fixed by the seed. Features φ(z) = relu(Wz)/√p (ReLU) or √(2/p)·cos(Wz + b) (Fourier), W ~ N(0, I_d/d),
b ~ U(0, 2π); one draw of p_max features per trial, the first p used (nested). Fits from one SVD Φ = U S Vᵀ:
min-norm least squares ŵ = V S⁺ Uᵀ y (the pseudo-inverse; singular values below 1e-10·s_max dropped) and
ridge ŵ = V diag(s/(s² + nλ)) Uᵀ y (min ‖Φw − y‖²/n + λ‖w‖²). Errors are mean squared errors.

Gaussian model: x ~ N(0, I_D), y = x·β + σε with β_j = 1/√D (‖β‖ = 1); the learner regresses y on the first p
coordinates with the pseudo-inverse. Its risk E(y − x·ŵ)² = ‖β − ŵ‖² + σ² is exact per draw (x Gaussian), and
its expectation over training sets is (BHX 2020, Theorem 1; REFERENCES.md):
    p ≤ n−2:  (‖β_rest‖² + σ²)(1 + p/(n−p−1));   n−1 ≤ p ≤ n+1: ∞;
    p ≥ n+2:  ‖β_p‖²(1 − n/p) + (‖β_rest‖² + σ²)(1 + n/(p−n−1)).
"""

from __future__ import annotations

import numpy as np

REL_TOL = 1e-10  # singular values below REL_TOL * s_max count as zero (pinv)


def feature_counts(n: int, p_min: float, p_max: float, points: int) -> np.ndarray:
    """Log-spaced integer feature counts in [p_min·n, p_max·n], always including p = n. # (P,)"""
    ps = np.unique(np.round(np.geomspace(max(1.0, p_min * n), p_max * n, points)).astype(int))
    return np.unique(np.append(ps, n))


def _target(z: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.sin(z @ u) + 0.5 * np.cos(z @ v)  # (N,)


def _features(kind: str, z: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z (N, d), w (P, d), b (P,) -> Φ (N, P) unnormalized (the 1/√p factor is applied per p)."""
    pre = z @ w.T  # (N, P)
    return np.maximum(pre, 0.0) if kind == "relu" else np.sqrt(2.0) * np.cos(pre + b)


def _fits(phi: np.ndarray, y: np.ndarray, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """(min-norm ŵ, ridge ŵ) from one SVD of phi (n, p). # (p,), (p,)"""
    u, s, vt = np.linalg.svd(phi, full_matrices=False)  # (n, r), (r,), (r, p)
    uy = u.T @ y  # (r,)
    keep = s > REL_TOL * s[0]
    inv = np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)
    n = len(y)
    return vt.T @ (inv * uy), vt.T @ (s / (s**2 + n * lam) * uy)


def random_features(cfg) -> list[dict]:
    """Train/test MSE of min-norm and ridge fits for every kind and p, averaged over trials.
    Rows: kind, method (minnorm | ridge), p, train_mse, test_mse, test_se (standard error over trials)."""
    f = cfg.features
    ps = feature_counts(f.n, f.p_min, f.p_max, f.points)
    rng = np.random.default_rng([f.seed, 11])
    u, v = rng.normal(0, f.d**-0.5, (2, f.d))  # the teacher, fixed for every trial
    errs = {(k, m): np.zeros((f.trials, len(ps), 2)) for k in f.kinds for m in ("minnorm", "ridge")}
    for t in range(f.trials):
        r = np.random.default_rng([f.seed, 12, t])
        z, zt = r.normal(size=(f.n, f.d)), r.normal(size=(f.n_test, f.d))  # (n, d), (n_test, d)
        y = _target(z, u, v) + f.noise * r.normal(size=f.n)
        yt = _target(zt, u, v) + f.noise * r.normal(size=f.n_test)
        for kind in f.kinds:
            w = r.normal(0, f.d**-0.5, (ps[-1], f.d))  # (p_max, d)
            b = r.uniform(0, 2 * np.pi, ps[-1])
            full, full_t = _features(kind, z, w, b), _features(kind, zt, w, b)  # (n, p_max), (n_test, p_max)
            for j, p in enumerate(ps):
                phi, phi_t = full[:, :p] / np.sqrt(p), full_t[:, :p] / np.sqrt(p)
                for m, wh in zip(("minnorm", "ridge"), _fits(phi, y, f.ridge)):
                    errs[(kind, m)][t, j] = np.mean((phi @ wh - y) ** 2), np.mean((phi_t @ wh - yt) ** 2)
    rows = []
    for (kind, m), e in errs.items():
        for j, p in enumerate(ps):
            rows.append({"kind": kind, "method": m, "p": int(p), "train_mse": float(e[:, j, 0].mean()),
                         "test_mse": float(e[:, j, 1].mean()),
                         "test_se": float(e[:, j, 1].std(ddof=1) / np.sqrt(f.trials))})
    return rows


def bhx_risk(p: int, n: int, d: int, sigma: float) -> float:
    """Expected risk of min-norm regression on the first p of d Gaussian features, β_j = 1/√d (module doc)."""
    b_p, b_rest = p / d, (d - p) / d
    if p <= n - 2:
        return (b_rest + sigma**2) * (1 + p / (n - p - 1))
    if p <= n + 1:
        return float("inf")
    return b_p * (1 - n / p) + (b_rest + sigma**2) * (1 + n / (p - n - 1))


def gaussian_model(cfg) -> list[dict]:
    """Monte-Carlo risk (mean, standard error) of the Gaussian model beside its closed form, per p.
    Rows: p, mc_risk, mc_se, theory (inf at n−1..n+1)."""
    f = cfg.features
    n, d, sigma = f.gauss_n, f.gauss_d, f.gauss_noise
    ps = np.unique(np.append(np.round(np.geomspace(1, d, 40)).astype(int), [n - 4, n - 2, n, n + 2, n + 4]))
    ps = ps[(ps >= 1) & (ps <= d)]
    beta = np.full(d, d**-0.5)
    risk = np.zeros((f.gauss_trials, len(ps)))
    rng = np.random.default_rng([f.seed, 13])
    for t in range(f.gauss_trials):
        x = rng.normal(size=(n, d))  # (n, d)
        y = x @ beta + sigma * rng.normal(size=n)
        for j, p in enumerate(ps):
            w = np.linalg.pinv(x[:, :p], rcond=REL_TOL) @ y  # (p,)
            risk[t, j] = np.sum((beta[:p] - w) ** 2) + np.sum(beta[p:] ** 2) + sigma**2
    return [{"p": int(p), "mc_risk": float(risk[:, j].mean()),
             "mc_se": float(risk[:, j].std(ddof=1) / np.sqrt(f.gauss_trials)),
             "theory": bhx_risk(int(p), n, d, sigma)} for j, p in enumerate(ps)]


def ucurve(cfg) -> list[dict]:
    """Least-squares polynomial fits of degree 0..max_degree (Legendre basis) to n noisy points of sin(πx),
    x ~ U(-1, 1). Rows: degree, params, train_mse, test_mse (mean over trials; test noise included)."""
    from numpy.polynomial import legendre

    u, f = cfg.ucurve, cfg.features
    rng = np.random.default_rng([f.seed, 14])
    xt = rng.uniform(-1, 1, u.n_test)
    yt_clean = np.sin(np.pi * xt)
    degrees = np.arange(u.max_degree + 1)
    e = np.zeros((u.trials, len(degrees), 2))
    for t in range(u.trials):
        x = rng.uniform(-1, 1, u.n)
        y = np.sin(np.pi * x) + u.noise * rng.normal(size=u.n)
        for j, deg in enumerate(degrees):
            a = legendre.legvander(x, deg)  # (n, deg+1)
            w = np.linalg.lstsq(a, y, rcond=None)[0]
            e[t, j] = np.mean((a @ w - y) ** 2), np.mean((legendre.legvander(xt, deg) @ w - yt_clean) ** 2)
    e[:, :, 1] += u.noise**2  # expected squared error on a fresh noisy point
    return [{"degree": int(k), "params": int(k) + 1, "train_mse": float(np.median(e[:, j, 0])),
             "test_mse": float(np.median(e[:, j, 1]))} for j, k in enumerate(degrees)]
