"""The curves lab's part of `groklab report`, drawn from the run folder alone (summary.json and its tables).

double-descent, features: the result in words; test and train MSE of random-features regression against p
  (min-norm and ridge, each feature map; p = n and the peak marked, hover gives p/n and the standard error);
  the Belkin-Hsu-Xu Gaussian model's Monte Carlo beside its closed form; the classical polynomial U-curve;
  the numbers per curve.
double-descent, network: test and train error against width (parameters on hover; the interpolation threshold,
  the peak and the label-noise level marked; per-seed points and ± std when there are seeds); test error over
  training per width; one row per width.
epochs, baselines, scaling: report_more.py.
Markers (threshold, peak, minima, held-out points) are traces with a `meta` tag, so they show in the legend,
can be hidden, and tests find them in the plot data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pyarrow.parquet as pq

from groklab import plot, store
from groklab.report import Panel, style
from groklab.report.data import Raw, fmt, table

COLORS = {"relu": "#1f77b4", "fourier": "#9467bd"}
MARK = "#333333"


def headline(path: Path, summary: dict) -> str:
    cmd = summary.get("command")
    if cmd == "double-descent":
        pk, thr = summary["peak"], summary["interpolation_threshold"]
        x = summary["x_name"].split()[0]
        where = f"interpolation threshold {x} = {thr}" if thr is not None else "no size interpolates"
        if pk["x"] is None:
            return f"no peak: the test error only falls ({where})"
        return f"test error peaks at {pk['test_error']:.3g} at {x} = {pk['x']} ({where})"
    if cmd == "epochs":
        return (f"second descent from epoch {summary['descent_epoch']:.3g}" if summary["second_descent"]
                else "no second descent") + f" (first minimum {summary['first_min']['test_error']:.1%})"
    if cmd == "baselines":
        return ", ".join(f"{m['model']} {m['mean']:.0%}" for m in summary["models"])
    if cmd == "scaling":
        f = summary["fits"]
        k = "hoffmann_nd" if "hoffmann_nd" in f else next(iter(f))
        held = f[k]["heldout_rel_error"]
        return f"{k}: α = {f[k]['params']['alpha']:.2f}" + (f", held-out error {held:.1%}" if held is not None else "")
    return summary.get("preset") or "–"


def vline(fig: go.Figure, x: float, y: tuple[float, float], name: str, meta: str, dash: str = "dash",
          color: str = MARK) -> None:
    """A vertical line drawn as a two-point trace (in the legend, hideable, found by tests by `meta`)."""
    fig.add_scatter(x=[x, x], y=list(y), mode="lines", name=name, meta=meta, line={"color": color, "dash": dash,
                                                                                   "width": 1.4},
                    hovertemplate=f"{name}<extra></extra>")


def ring(fig: go.Figure, x: float, y: float, name: str, meta: str, symbol: str = "circle-open",
         color: str = MARK) -> None:
    """A marked point (the peak, a minimum, a held-out prediction)."""
    fig.add_scatter(x=[x], y=[y], mode="markers", name=name, meta=meta, hovertemplate=f"{name}<extra></extra>",
                    marker={"symbol": symbol, "size": 13, "color": color, "line": {"width": 2.5, "color": color}})


def logx(fig: go.Figure, title: str) -> go.Figure:
    """A log x axis labelled at 1, 2, 5 × powers of ten (not every digit)."""
    return fig.update_xaxes(type="log", title_text=title, dtick="D2")


def logy(fig: go.Figure, title: str, rng: list[float] | None = None) -> go.Figure:
    """A log y axis: labels at powers of ten when it spans more than two decades, else at 1, 2, 5 × them."""
    span = rng[1] - rng[0] if rng else 3
    return fig.update_yaxes(type="log", title_text=title, range=rng, dtick=1 if span > 2 else "D2",
                            exponentformat="power")


def _tab(path: Path, name: str) -> dict:
    return pq.read_table(path / name).to_pydict()


def log_range(values, lo_pad: float = 1.6, hi_pad: float = 1.6) -> list[float]:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x) and x > 0], float)
    return [float(np.log10(v.min() / lo_pad)), float(np.log10(v.max() * hi_pad))]


def _features_words(s: dict) -> str:
    pk, thr, n, g, u = s["peak"], s["interpolation_threshold"], s["n"], s["gaussian"], s["ucurve"]
    kind = next(iter(s["series"])).split("_")[0]
    last = s["points"][-1]
    best_under = min(p["test_error"] for p in s["points"] if p["x"] <= (thr or np.inf))
    return (f'<div class="gl-words">Random-features regression on <b>n = {n} training examples</b>: the min-norm fit '
            f"({kind} features) interpolates (train MSE 0) from <b>p = {thr}</b> features on, and its test MSE "
            f"<b>peaks at {fmt(pk['test_error'], '.3g')} at p = {pk['x']}</b>, then falls again to "
            f"{last['test_error']:.3g} at p = {last['x']} (best below the threshold: {best_under:.3g}). The ridge fit "
            f"(small λ) has no such peak: its largest test MSE is {s['ridge_peak']['test_error']:.3g}. "
            f"Gaussian model (n = {g['n']}, D = {g['d']}, σ = {g['sigma']}, {g['trials']} trials per p): the Monte "
            f"Carlo risk is within {g['max_abs_z']:.1f} standard errors of the closed form at all {g['points']} p "
            f"away from p = n. Classical U-curve ({u['n']} points): best polynomial degree {u['best_degree']} "
            f"(test MSE {u['best_test_mse']:.3g}); the highest degree reaches {u['last_test_mse']:.3g}.</div>")


def _features_figure(t: dict, s: dict) -> go.Figure:
    kind, method, p = (np.array(t[k]) for k in ("kind", "method", "p"))
    test, train, se = (np.array(t[k], float) for k in ("test_mse", "train_mse", "test_se"))
    n = s["n"]
    fig = go.Figure()
    for k in dict.fromkeys(t["kind"]):
        c = COLORS.get(k)
        for m, dash, label in (("minnorm", "solid", "min-norm"), ("ridge", "dash", "ridge")):
            sel = (kind == k) & (method == m)
            fig.add_scatter(x=p[sel].tolist(), y=test[sel].tolist(), name=f"{k}, {label}: test",
                            mode="lines+markers" if m == "minnorm" else "lines", marker={"size": 6},
                            line={"color": c, "dash": dash, "width": 2},
                            error_y={"type": "data", "array": se[sel], "thickness": 1},
                            customdata=np.stack([p[sel] / n, se[sel]], 1),
                            hovertemplate=f"{k} features, {label}<br>p = %{{x}} features = parameters "
                                          "(p/n = %{customdata[0]:.2f})<br>test MSE %{y:.4g} ± %{customdata[1]:.2g} "
                                          "(SE)<extra></extra>")
        sel = (kind == k) & (method == "minnorm")
        fig.add_scatter(x=p[sel], y=train[sel], mode="lines", name=f"{k}, min-norm: train",
                        line={"color": c, "dash": "dot", "width": 1.2},
                        hovertemplate=f"{k}, min-norm<br>p = %{{x}}<br>train MSE %{{y:.3g}}<extra></extra>")
    yr = log_range(test, 2.0, 2.0)
    vline(fig, n, tuple(10 ** np.array(yr)), f"interpolation threshold p = n = {n}", "threshold")
    pk = s["peak"]
    if pk["x"] is not None:
        main = next(iter(s["series"])).split("_")[0]
        ring(fig, pk["x"], pk["test_error"], f"peak ({main}, min-norm): test MSE {pk['test_error']:.3g} at p = "
             f"{pk['x']}", "peak")
    logx(style(fig, None, 460), "random features p (= parameters; log scale)")
    logy(fig, "mean squared error (log scale)", yr)
    fig.update_layout(legend={"orientation": "v", "x": 1.02, "y": 1, "xanchor": "left", "yanchor": "top"},
                      margin={"r": 260})
    return fig


def _gaussian_figure(g: dict, s: dict) -> go.Figure:
    p, mc, se, th = (np.array(g[k], float) for k in ("p", "mc_risk", "mc_se", "theory"))
    n = s["gaussian"]["n"]
    fig = go.Figure()
    fig.add_scatter(x=p, y=mc, mode="markers", name="Monte Carlo (± 2 SE)", marker={"color": plot.TEST, "size": 6},
                    error_y={"type": "data", "array": 2 * se, "arrayminus": np.minimum(2 * se, 0.9 * mc),
                             "thickness": 1},
                    customdata=np.stack([se, (mc - th) / se], 1),
                    hovertemplate="p = %{x}<br>Monte Carlo risk %{y:.4g} ± %{customdata[0]:.2g}<br>"
                                  "(MC − closed form) / SE = %{customdata[1]:.2f}<extra></extra>")
    ok = np.isfinite(th)
    for part, show in ((ok & (p < n), True), (ok & (p > n), False)):
        fig.add_scatter(x=p[part], y=th[part], mode="lines", name="closed form (BHX 2020, Thm 1)", showlegend=show,
                        legendgroup="theory", line={"color": "black", "width": 1.5},
                        hovertemplate="p = %{x}<br>closed form %{y:.4g}<extra></extra>")
    yr = log_range(np.r_[mc, th[ok]], 1.5, 1.5)
    yr[1] = min(yr[1], float(np.log10(max(np.nanmax(th[ok]), 1.0) * 10)))
    vline(fig, n, tuple(10 ** np.array(yr)), f"p = n = {n} (risk → ∞)", "threshold-gauss")
    logx(style(fig, None, 400), f"features used p (of D = {s['gaussian']['d']}; log scale)")
    logy(fig, "test risk E(y − x·ŵ)² (log scale)", yr)
    return fig


def _ucurve_figure(u: dict) -> go.Figure:
    fig = go.Figure()
    for name, col in (("train", plot.TRAIN), ("test", plot.TEST)):
        fig.add_scatter(x=u["degree"], y=u[f"{name}_mse"], mode="lines+markers", name=name, line={"color": col},
                        customdata=u["params"], hovertemplate=f"degree %{{x}} (%{{customdata}} parameters)<br>{name} "
                                                              "MSE %{y:.4g}<extra></extra>")
    best = int(np.argmin(u["test_mse"]))
    ring(fig, u["degree"][best], u["test_mse"][best], f"sweet spot: degree {u['degree'][best]}", "sweet-spot")
    style(fig, None, 400).update_xaxes(title_text="polynomial degree (parameters = degree + 1)")
    logy(fig, "mean squared error, median over draws (log)", log_range(np.r_[u["train_mse"], u["test_mse"]], 1.5, 1.5))
    return fig


def _features_sections(path: Path, s: dict) -> list:
    t = _tab(path, "features.parquet")
    rows = [[k.replace("_minnorm", ", min-norm").replace("_ridge", ", ridge"), v["peak_p"], v["peak_test_mse"],
             v["best_test_mse"], v["last_test_mse"]] for k, v in s["series"].items()]
    return [Raw(_features_words(s)),
            Panel("Random features: test error against the number of features",
                  f"The min-norm test MSE (solid) spikes where p reaches n = {s['n']} and falls again past it; ridge "
                  "(dashed) smooths the spike away. Dotted: train MSE, which drops to 0 (off the axis) from p = n on.",
                  _features_figure(t, s), "curves-dd", wide=True),
            Panel("Gaussian model: simulation beside the closed form",
                  f"Dots: Monte Carlo over {s['gaussian']['trials']} training sets; line: the exact expectation; both "
                  "blow up at p = n and descend again.", _gaussian_figure(_tab(path, "gaussian.parquet"), s),
                  "curves-gauss"),
            Panel("The classical picture: a U-curve", "Below the interpolation threshold the test error is U-shaped "
                  "in model size: too simple underfits, too flexible fits the noise.",
                  _ucurve_figure(_tab(path, "ucurve.parquet")), "curves-ucurve"),
            Panel("Per curve", "Each curve's highest and lowest test MSE and where it ends (ridge is highest at "
                  "the smallest p).", Raw(table(["curve", "highest at p", "highest test MSE", "lowest test MSE",
                                                 "test MSE at largest p"], rows, left=1)), wide=True)]


def _network_figure(path: Path, s: dict) -> go.Figure:
    pts, xn = s["points"], s["x_name"]
    x = [p["x"] for p in pts]
    te, tr = (np.array([p[k] for p in pts]) for k in ("test_error", "train_error"))
    sd = np.array([p.get("test_error_std", 0.0) for p in pts])
    cd = [[p["params"]] for p in pts]
    fig = go.Figure()
    if s.get("seeds", 1) > 1:
        fig.add_scatter(x=x + x[::-1], y=list(te + sd) + list((te - sd)[::-1]), fill="toself", mode="none",
                        fillcolor="rgba(31,119,180,0.18)", name="test ± std over seeds", hoverinfo="skip")
        raw = _tab(path, "points.parquet")
        fig.add_scatter(x=raw["width"], y=raw["test_error"], mode="markers", name="test, each seed",
                        marker={"color": plot.TEST, "size": 4, "opacity": 0.5}, customdata=raw["seed"],
                        hovertemplate=f"{xn} %{{x}}, seed %{{customdata}}: test error %{{y:.1%}}<extra></extra>")
    for name, y, col in (("train error", tr, plot.TRAIN), ("test error", te, plot.TEST)):
        fig.add_scatter(x=x, y=y, mode="lines+markers", name=name, line={"color": col, "width": 2}, customdata=cd,
                        hovertemplate=f"{xn} %{{x}} (%{{customdata[0]:,}} parameters)<br>{name} %{{y:.2%}}"
                                      "<extra></extra>")
    top = max(0.05, float(np.nanmax(np.r_[te + sd, tr])) * 1.08)
    thr = s.get("interpolation_threshold")
    if thr is not None:
        prm = next(p["params"] for p in pts if p["x"] == thr)
        vline(fig, thr, (0, top), f"interpolation threshold: {xn} {thr} ({prm:,} params), train error 0",
              "threshold")
    pk = s["peak"]
    if pk["x"] is not None:
        ring(fig, pk["x"], pk["test_error"], f"peak: test error {pk['test_error']:.1%} at {xn} {pk['x']}", "peak")
    if s.get("label_noise"):
        fig.add_scatter(x=[min(x), max(x)], y=[0.9 * s["label_noise"]] * 2, mode="lines", meta="noise",
                        name=f"wrong train labels ({0.9 * s['label_noise']:.1%})",
                        line={"color": "#999", "dash": "dot", "width": 1}, hoverinfo="skip")
    style(fig, None, 440).update_xaxes(type="log", title_text=f"{xn} of the {s['model'].upper()} (log scale; "
                                       "parameters on hover)", tickvals=x, ticktext=[str(v) for v in x])
    fig.update_yaxes(title_text="error = 1 − accuracy", tickformat=".0%", range=[0, top])
    return fig


def _network_training(path: Path, s: dict) -> go.Figure:
    t = pq.read_table(path / "metrics.parquet", filters=[("metric", "=", "test_acc")]).to_pydict()
    w, ep, v = (np.asarray(t[k], float) for k in ("width", "epoch", "value"))
    widths = sorted(set(w.tolist()))
    fig = go.Figure()
    for i, wv in enumerate(widths):
        sel = w == wv
        e = np.unique(ep[sel & (ep > 0)])  # epoch 0 has no place on a log axis
        y = [float(np.mean(v[sel & (ep == x)])) for x in e]
        c = i / max(1, len(widths) - 1)  # 0: smallest (blue) .. 1: largest (orange)
        fig.add_scatter(x=e, y=1 - np.array(y), mode="lines", name=f"{s['x_name']} {wv:g}",
                        line={"color": f"rgb({int(30 + 200 * c)}, {int(60 + 60 * c)}, {int(220 - 180 * c)})",
                              "width": 1.5},
                        hovertemplate=f"{s['x_name']} {wv:g}, epoch %{{x}}: test error %{{y:.1%}}<extra></extra>")
    logx(style(fig, None, 400), "epoch (log scale)")
    fig.update_yaxes(title_text="test error (mean over seeds)", tickformat=".0%")
    fig.update_layout(legend={"orientation": "v", "x": 1.02, "y": 1, "xanchor": "left", "yanchor": "top"},
                      margin={"r": 110})
    return fig


def _network_sections(path: Path, s: dict) -> list:
    pk, thr, xn = s["peak"], s["interpolation_threshold"], s["x_name"]
    last = s["points"][-1]
    where = (f"reach 0 train error from <b>{xn} {thr}</b> on (the interpolation threshold)" if thr is not None
             else "never reach 0 train error (no interpolation threshold in this sweep)")
    peak = (f"The test error peaks at <b>{pk['test_error']:.1%} at {xn} {pk['x']}</b> and ends at "
            f"{last['test_error']:.1%} at {xn} {last['x']}." if pk["x"] is not None else
            "The test error has no peak: it only falls with size.")
    words = (f'<div class="gl-words">{s["model"].upper()}s of {len(s["points"])} sizes on MNIST-1D '
             f"({s['n_train']:,} training examples, {s['label_noise']:.0%} label noise, {s['epochs']} epochs, "
             f"{s['seeds']} seed(s)) {where}. {peak}</div>")
    seeds = s.get("seeds", 1) > 1
    rows = [[p["x"], p["params"], f"{p['train_error']:.1%}", f"{p['test_error']:.1%}",
             *([f"{p.get('test_error_std', 0):.1%}"] if seeds else [])] for p in s["points"]]
    return [Raw(words),
            Panel("Test and train error against model size",
                  "Train error (red) falls to 0 at the dashed interpolation threshold; with label noise the test error "
                  "(blue) peaks near it (ringed) and falls again as the model grows." if thr is not None else
                  "No size reached 0 train error here (no interpolation threshold): train longer or wider to reach it; "
                  "the ring marks the highest test error after the best one.",
                  _network_figure(path, s), "curves-dd", wide=True),
            Panel("Test error over training, per size", "Blue: smallest, orange: largest. Models near the "
                  "threshold overfit the noisy labels late in training (their test error rises again).",
                  _network_training(path, s), "curves-train"),
            Panel("Per size", "Final train and test error, mean (± std) over seeds.",
                  Raw(table([xn, "parameters", "train error", "test error", *(["± std"] if seeds else [])], rows)))]


def sections(path: Path) -> list:
    s = store.read_summary(path)
    cmd = s.get("command")
    if cmd == "double-descent":
        items = _features_sections(path, s) if s["kind"] == "features" else _network_sections(path, s)
    else:
        from groklab.labs.curves import report_more

        fn = {"epochs": report_more.epochs_sections, "baselines": report_more.baselines_sections,
              "scaling": report_more.scaling_sections}.get(cmd)
        items = fn(path, s) if fn else []
    scalars = [[k, v] for k, v in s.items() if isinstance(v, (int, float, str)) and k not in ("run_dir", "run_id")]
    items.append(Panel("Summary", "The scalar numbers of summary.json.", Raw(table(["field", "value"], scalars,
                                                                                   left=1))))
    return items
