"""The curves lab's figures, drawn from a run folder's tables alone (`groklab runs figures RUN`).

double_descent.png  features: the classical U-curve (polynomial degree) | random-features double descent
                    (min-norm and ridge; p = n marked) | the Gaussian model, Monte Carlo beside the closed form.
                    network: train and test error against parameters, the interpolation threshold and the peak.
epochs.png          test and train error against epochs (log axis).
baselines.png       test accuracy per model (mean ± std over seeds) beside MNIST-1D's published numbers.
scaling.png         loss against parameters (and data) on log axes, the fits with 95% bands, held-out points;
                    residuals.png the fits' residuals in log-loss.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from groklab import plot, store

COLORS = {"relu": "#1f77b4", "fourier": "#9467bd"}


def _table(path: Path, name: str) -> dict:
    return pq.read_table(path / name).to_pydict()


def ucurve_panel(ax, uc: dict) -> None:
    ax.plot(uc["degree"], uc["train_mse"], "o-", ms=3, color=plot.TRAIN, label="train")
    ax.plot(uc["degree"], uc["test_mse"], "o-", ms=3, color=plot.TEST, label="test")
    best = int(np.argmin(uc["test_mse"]))
    ax.axvline(uc["degree"][best], color="0.5", ls=":", lw=1, label=f"best degree {uc['degree'][best]}")
    ax.set_yscale("log")
    ax.set_xlabel("polynomial degree (parameters − 1)")
    ax.set_ylabel("mean squared error (median over draws)")
    ax.set_title("classical picture: the U-curve")
    ax.legend()


def features_panel(ax, t: dict, n: int) -> None:
    kind, method, p = (np.array(t[k]) for k in ("kind", "method", "p"))
    test, train = np.array(t["test_mse"]), np.array(t["train_mse"])
    for k in dict.fromkeys(t["kind"]):
        for m, ls in (("minnorm", "-"), ("ridge", "--")):
            sel = (kind == k) & (method == m)
            ax.plot(p[sel] / n, test[sel], ls, marker="o" if m == "minnorm" else None, ms=3, color=COLORS.get(k),
                    label=f"{k} features, {'min-norm' if m == 'minnorm' else 'ridge'} (test)")
        sel = (kind == k) & (method == "minnorm")
        ax.plot(p[sel] / n, train[sel], ":", color=COLORS.get(k), lw=1, label=f"{k}, min-norm (train: 0 from p = n)")
    ax.axvline(1.0, color="0.3", ls="--", lw=1, label="p = n (interpolation threshold)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(bottom=0.3 * float(test.min()))
    ax.set_xlabel("features per training example p / n")
    ax.set_ylabel("mean squared error")
    ax.set_title(f"modern picture: double descent (n = {n})")
    ax.legend(fontsize=6)


def gaussian_panel(ax, g: dict, s: dict) -> None:
    p, mc, se, th = (np.array(g[k], dtype=float) for k in ("p", "mc_risk", "mc_se", "theory"))
    ax.errorbar(p, mc, yerr=2 * se, fmt="o", ms=3, capsize=2, color=plot.TEST, label="Monte Carlo (± 2 SE)")
    ok = np.isfinite(th)
    lo, hi = ok & (p < s["n"]), ok & (p > s["n"])
    ax.plot(p[lo], th[lo], "-", color="k", lw=1, label="closed form (BHX 2020)")
    ax.plot(p[hi], th[hi], "-", color="k", lw=1)
    ax.axvline(s["n"], color="0.3", ls="--", lw=1, label=f"p = n = {s['n']}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(top=max(10 * np.nanmax(th[ok]), 10))
    ax.set_xlabel(f"features used p (of D = {s['d']})")
    ax.set_ylabel("test risk E(y − x·ŵ)²")
    ax.set_title(f"Gaussian model: max |MC − theory| = {s['max_abs_z']:.1f} SE")
    ax.legend()


def features_figure(path: Path, s: dict) -> Path:
    fig, axes = plot.subplots(1, 3, w=4.6, h=3.8)
    ucurve_panel(axes[0][0], _table(path, "ucurve.parquet"))
    features_panel(axes[0][1], _table(path, "features.parquet"), s["n"])
    gaussian_panel(axes[0][2], _table(path, "gaussian.parquet"), s["gaussian"])
    fig.suptitle(f"{s['preset']}: under- vs over-parameterized risk curves")
    return plot.save(fig, path / "figures" / "double_descent.png")


def network_figure(path: Path, s: dict) -> Path:
    fig, axes = plot.subplots(1, 1, w=6.4, h=4.0)
    ax = axes[0][0]
    pts = s["points"]
    params = [p["params"] for p in pts]
    ax.plot(params, [p["train_error"] for p in pts], "o-", ms=3, color=plot.TRAIN, label="train error")
    te = np.array([p["test_error"] for p in pts])
    sd = np.array([p.get("test_error_std", 0.0) for p in pts])
    ax.plot(params, te, "o-", ms=3, color=plot.TEST, label="test error")
    if sd.any():
        ax.fill_between(params, te - sd, te + sd, color=plot.TEST, alpha=0.2, lw=0, label="± std over seeds")
    thr = s.get("interpolation_threshold")
    if thr is not None:
        tp = next(p["params"] for p in pts if p["x"] == thr)
        ax.axvline(tp, color="0.3", ls="--", lw=1, label=f"interpolation threshold ({s['x_name']} {thr})")
    if s["peak"]["x"] is not None:
        pp = next(p["params"] for p in pts if p["x"] == s["peak"]["x"])
        ax.scatter([pp], [s["peak"]["test_error"]], s=90, facecolors="none", edgecolors="k", zorder=4,
                   label=f"peak ({s['x_name']} {s['peak']['x']}: {s['peak']['test_error']:.1%})")
    if s.get("label_noise"):
        ax.axhline(s["label_noise"] * 0.9, color="0.6", ls=":", lw=1, label="label noise × 9/10 (wrong labels)")
    ax.set_xscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("error (1 − accuracy)")
    ax.set_ylim(0, max(0.05, float(np.nanmax(te)) * 1.1, max(p["train_error"] for p in pts) * 1.1))
    ax.set_title(f"{s['preset']}: {s['model']} on MNIST-1D, {s['n_train']:,} train, {s['label_noise']:.0%} label "
                 f"noise, {s['epochs']} epochs")
    ax.legend(fontsize=7)
    return plot.save(fig, path / "figures" / "double_descent.png")


def redraw_summary(path: Path, s: dict) -> list[Path]:
    path = Path(path)
    cmd = s.get("command")
    if cmd == "double-descent":
        return [features_figure(path, s) if s["kind"] == "features" else network_figure(path, s)]
    if cmd == "epochs":
        from groklab.labs.curves.figures_more import epochs_figure
        return [epochs_figure(path, s)]
    if cmd == "baselines":
        from groklab.labs.curves.figures_more import baselines_figure
        return [baselines_figure(path, s)]
    if cmd == "scaling":
        from groklab.labs.curves.figures_more import scaling_figures
        return scaling_figures(path, s)
    return []


def redraw(path: Path) -> list[Path]:
    """Every figure of a finished run from its folder (summary.json and the tables)."""
    return redraw_summary(Path(path), store.read_summary(Path(path)))
