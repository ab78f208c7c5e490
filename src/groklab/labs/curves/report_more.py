"""Report sections of `curves epochs`, `baselines` and `scaling` (see report.py), from the run folder alone.

epochs     test and train error against epochs (log axis) with the first minimum, the bump, the second descent
           and the epoch train error reaches 0 marked; the test loss; each seed's curve when there are several.
baselines  test accuracy per model, mean ± std over seeds with each seed's point, beside the published numbers;
           test accuracy over training per model; the table.
scaling    the loss of every run against N (coloured by D) with L(N, D); each form at the largest D with its
           held-out check (the fit without the largest N, extrapolated, and its error there); loss against D;
           residuals; the 95% bootstrap CIs of every parameter as a table (fits.json keeps intervals, not bootstrap
           samples, so no band is drawn).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pyarrow.parquet as pq
from plotly.colors import sample_colorscale

from groklab import plot
from groklab.labs.curves import scaling
from groklab.labs.curves.figures_more import _raw
from groklab.labs.curves.report import log_range, logx, ring, vline
from groklab.report import Panel, style
from groklab.report.data import Raw, table

LEGEND_RIGHT = {"orientation": "v", "x": 1.02, "y": 1, "xanchor": "left", "yanchor": "top"}
FORM_TEXT = {"power": "L = A/N<sup>α</sup>", "hoffmann_n": "L = E + A/N<sup>α</sup>",
             "hoffmann_nd": "L = E + A/N<sup>α</sup> + B/D<sup>β</sup>"}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
FORM_STYLE = {"power": ("#ff7f0e", "dot"), "hoffmann_n": ("#2ca02c", "dash"), "hoffmann_nd": ("#444444", "solid")}


def _shades(n: int) -> list[str]:
    return sample_colorscale("Viridis", [0.85 * i / max(1, n - 1) for i in range(n)])


def _epochs_figure(path: Path, s: dict) -> go.Figure:
    ep = np.array(s["epochs"], float)
    ok = ep > 0  # epoch 0 has no place on a log axis
    fig = go.Figure()
    if s.get("seeds", 1) > 1:
        t = pq.read_table(path / "metrics.parquet", filters=[("metric", "=", "test_acc")]).to_pydict()
        seed, e, v = (np.asarray(t[k], float) for k in ("seed", "epoch", "value"))
        for j, sd in enumerate(sorted(set(seed.tolist()))):
            sel = (seed == sd) & (e > 0)
            fig.add_scatter(x=e[sel], y=1 - v[sel], mode="lines", name="test, each seed", legendgroup="seeds",
                            showlegend=j == 0, line={"color": plot.TEST, "width": 0.8}, opacity=0.35,
                            hovertemplate=f"seed {sd:g}, epoch %{{x:.3g}}: test error %{{y:.1%}}<extra></extra>")
    for name, key, col in (("train error", "train_error", plot.TRAIN), ("test error", "test_error", plot.TEST)):
        fig.add_scatter(x=ep[ok], y=np.array(s[key])[ok], mode="lines", name=name, line={"color": col, "width": 2},
                        hovertemplate=f"epoch %{{x:.3g}}: {name} %{{y:.2%}}<extra></extra>")
    top = min(1.0, max(max(s["test_error"]), max(s["train_error"])) * 1.08)
    fm, bump = s["first_min"], s["bump"]
    ring(fig, max(fm["epoch"], ep[ok][0]), fm["test_error"],
         f"first minimum: {fm['test_error']:.1%} at epoch {fm['epoch']:.3g}", "first-min", "triangle-down-open")
    ring(fig, max(bump["epoch"], ep[ok][0]), bump["test_error"],
         f"bump: {bump['test_error']:.1%} at epoch {bump['epoch']:.3g} (+{bump['rise']:.1%})", "bump",
         "triangle-up-open")
    if s["second_descent"]:
        vline(fig, s["descent_epoch"], (0, top), f"second descent: below half the bump from epoch "
              f"{s['descent_epoch']:.3g}", "second-descent", "dashdot", plot.TEST)
    if s.get("interpolated_epoch") is not None:
        vline(fig, max(s["interpolated_epoch"], ep[ok][0]), (0, top),
              f"train error reaches 0 (epoch {s['interpolated_epoch']:.3g})", "interpolated", "dash", plot.TRAIN)
    logx(style(fig, None, 440), "epoch (log scale)")
    fig.update_yaxes(title_text="error = 1 − accuracy (mean over seeds)", tickformat=".0%", range=[0, top])
    return fig.update_layout(legend=LEGEND_RIGHT, margin={"r": 330})


def _loss_figure(s: dict) -> go.Figure:
    ep = np.array(s["epochs"], float)
    ok = ep > 0
    fig = go.Figure()
    fig.add_scatter(x=ep[ok], y=np.array(s["test_loss"])[ok], mode="lines", name="test loss",
                    line={"color": plot.TEST, "width": 2}, hovertemplate="epoch %{x:.3g}: test loss %{y:.4g} nats"
                                                                         "<extra></extra>")
    logx(style(fig, None, 360), "epoch (log scale)")
    return fig.update_yaxes(title_text="test cross-entropy (nats)")


def epochs_sections(path: Path, s: dict) -> list:
    fm, bump = s["first_min"], s["bump"]
    verdict = (f"falls back by at least half of that rise from <b>epoch {s['descent_epoch']:.3g}</b>: a second descent"
               if s["second_descent"] else "does not fall back by half of it: <b>no second descent</b>")
    interp = (f"Train error reaches 0 at epoch {s['interpolated_epoch']:.3g}." if s.get("interpolated_epoch")
              is not None else "Train error never reaches 0.")
    words = (f'<div class="gl-words">One {s["model"].upper()} of width {s["width"]} ({s["params"]:,} parameters) on '
             f"{s['n_train']:,} MNIST-1D examples with {s['label_noise']:.0%} label noise, {s['seeds']} seed(s). "
             f"The test error first bottoms out at <b>{fm['test_error']:.1%} (epoch {fm['epoch']:.3g})</b>, "
             f"rises by {bump['rise']:.1%} to {bump['test_error']:.1%} (epoch {bump['epoch']:.3g}) and {verdict}. "
             f"{interp}</div>")
    return [Raw(words),
            Panel("Test and train error over training", "Log time axis: the test error falls, rises while the net "
                  "fits the noisy labels (first minimum ▽ to bump △), and in a second descent falls again.",
                  _epochs_figure(path, s), "curves-epochs", wide=True),
            Panel("Test loss over training", "The cross-entropy often shows the overfitting bump more sharply "
                  "than the error.", _loss_figure(s), "curves-loss")]


def _baselines_figure(path: Path, s: dict) -> go.Figure:
    ms = s["models"]
    x = np.arange(len(ms), dtype=float)
    fig = go.Figure()
    fig.add_bar(x=x - 0.2, y=[m["mean"] for m in ms], width=0.38, name=f"groklab: mean ± std over {s['seeds']} "
                "seed(s)", marker_color=plot.TEST, error_y={"type": "data", "array": [m["std"] for m in ms]},
                customdata=[[m["model"], m["params"], m["std"], m["train_acc"]] for m in ms],
                text=[f"{m['mean']:.0%}" for m in ms], textposition="inside", insidetextanchor="start",
                hovertemplate="%{customdata[0]} (%{customdata[1]:,} parameters)<br>test accuracy %{y:.1%} ± "
                              "%{customdata[2]:.1%}<br>train accuracy %{customdata[3]:.1%}<extra></extra>")
    t = pq.read_table(path / "models.parquet").to_pydict()
    idx = {m["model"]: i for i, m in enumerate(ms)}
    fig.add_scatter(x=[idx[m] - 0.2 for m in t["model"]], y=t["test_acc"], mode="markers", name="each seed",
                    marker={"color": "black", "size": 5, "symbol": "circle-open"}, customdata=t["seed"],
                    hovertemplate="seed %{customdata}: %{y:.1%}<extra></extra>")
    fig.add_bar(x=x + 0.2, y=[m["published"] for m in ms], width=0.38, name="published (mnist1d README)",
                marker_color="#aaaaaa", text=[f"{m['published']:.0%}" if m["published"] is not None else "–"
                                              for m in ms], textposition="inside", insidetextanchor="start",
                hovertemplate="published: %{y:.0%}<extra></extra>")
    style(fig, None, 400).update_xaxes(tickvals=x, ticktext=[f"{m['model']}<br>{m['params']:,} params" for m in ms],
                                       title_text="model")
    return fig.update_yaxes(title_text="test accuracy", tickformat=".0%", range=[0, 1.05])


def _baselines_training(path: Path) -> go.Figure:
    t = pq.read_table(path / "metrics.parquet", filters=[("metric", "=", "test_acc")]).to_pydict()
    model, step, v = np.asarray(t["model"], object), np.asarray(t["step"], float), np.asarray(t["value"], float)
    fig = go.Figure()
    for i, m in enumerate(dict.fromkeys(t["model"])):
        sel = model == m
        st = np.unique(step[sel])
        fig.add_scatter(x=st, y=[float(v[sel & (step == k)].mean()) for k in st], mode="lines+markers", name=m,
                        line={"color": PALETTE[i % len(PALETTE)], "width": 2},
                        hovertemplate=f"{m}, step %{{x:,}}: test accuracy %{{y:.1%}}<extra></extra>")
    style(fig, None, 400).update_xaxes(title_text="Adam step (batch 100)")
    return fig.update_yaxes(title_text="test accuracy (mean over seeds)", tickformat=".0%")


def baselines_sections(path: Path, s: dict) -> list:
    ms = s["models"]
    rows = [[m["model"], m["params"], f"{m['mean']:.1%}", f"{m['std']:.1%}",
             "–" if m["published"] is None else f"{m['published']:.0%}",
             "–" if m["published"] is None else f"{100 * (m['mean'] - m['published']):+.1f} pp",
             f"{m['train_acc']:.1%}", m["wall_s"]] for m in ms]
    return [Raw(f'<div class="gl-words">MNIST-1D baselines: {len(ms)} models × {s["seeds"]} seed(s), {s["steps"]:,} '
                f"Adam steps each, {s['n_train']:,} training / {s['n_test']:,} test examples. Published: "
                f"{s['published_source']}.</div>"),
            Panel("Test accuracy per model beside the published numbers", "Blue bars: this run (mean ± std, open "
                  f"circles: each seed; {s['steps']:,} steps); grey: the MNIST-1D README (8,000 steps).",
                  _baselines_figure(path, s), "curves-baselines"),
            Panel("Test accuracy over training", "Mean over seeds at each evaluation.", _baselines_training(path),
                  "curves-baselines-train"),
            Panel("Per model", "Δ = this run − published, in percentage points (pp).", Raw(table(
                ["model", "parameters", "test acc", "± std", "published", "Δ", "train acc", "wall s"], rows,
                left=1)), wide=True)]


def _hover_pts(p: dict, rows) -> dict:
    best, unit = ("best_epoch", "epoch") if "best_epoch" in p else ("best_step", "step")  # addition: steps
    return {"customdata": [[p["width"][i], p["n_train"][i], p["seed"][i], p[best][i]] for i in rows],
            "hovertemplate": "width %{customdata[0]} (N = %{x:,} parameters), D = %{customdata[1]:,} examples, "
                             f"seed %{{customdata[2]}}<br>test loss %{{y:.4g}} nats (best {unit} "
                             "%{customdata[3]:.0f})<extra></extra>"}


def _by_n(p: dict, fits: dict) -> go.Figure:
    n, d, loss = (np.array(p[k], float) for k in ("params", "n_train", "test_loss"))
    sizes = sorted(set(d.tolist()))
    grid = np.geomspace(n.min(), n.max() * 1.5, 80)
    fig = go.Figure()
    for dv, c in zip(sizes, _shades(len(sizes))):
        rows = np.flatnonzero(d == dv)
        fig.add_scatter(x=n[rows], y=loss[rows], mode="markers", name=f"D = {dv:,.0f}", legendgroup=f"d{dv}",
                        marker={"color": c, "size": 7}, **_hover_pts(p, rows))
        if "hoffmann_nd" in fits:
            y = np.exp(scaling.predict_log("hoffmann_nd", _raw(fits["hoffmann_nd"]), grid, np.full_like(grid, dv)))
            fig.add_scatter(x=grid, y=y, mode="lines", name=f"L(N, D = {dv:,.0f}) fit", legendgroup=f"d{dv}",
                            showlegend=False, line={"color": c, "width": 1.5},
                            hovertemplate=f"fit at D = {dv:,.0f}: N = %{{x:,.0f}}, L̂ = %{{y:.4g}}<extra></extra>")
    logx(style(fig, None, 420), "parameters N (log scale)")
    fig.update_yaxes(type="log", title_text="test loss (nats, log scale)", range=log_range(loss, 1.15, 1.15))
    return fig.update_layout(legend=LEGEND_RIGHT, margin={"r": 120})


def _at_max_d(p: dict, fits: dict) -> go.Figure:
    n, d, loss = (np.array(p[k], float) for k in ("params", "n_train", "test_loss"))
    top = np.flatnonzero(d == d.max())
    grid = np.geomspace(n.min(), n.max() * 1.5, 80)
    gd = np.full_like(grid, d.max())
    fig = go.Figure()
    fig.add_scatter(x=n[top], y=loss[top], mode="markers", name=f"observed (D = {d.max():,.0f})",
                    marker={"color": plot.TEST, "size": 7}, **_hover_pts(p, top))
    ys = list(loss[top])
    for form, f in fits.items():
        col, dash = FORM_STYLE.get(form, ("#000", "solid"))
        a, ci = f["params"]["alpha"], f["ci95"]["alpha"]
        ci_txt = f" (95% CI {ci[0]:.2f}–{ci[1]:.2f})" if ci[0] is not None else ""
        fig.add_scatter(x=grid, y=np.exp(scaling.predict_log(form, _raw(f), grid, gd)), mode="lines",
                        name=f"{FORM_TEXT.get(form, form)}: α = {a:.2f}{ci_txt}", legendgroup=form,
                        line={"color": col, "dash": dash, "width": 2},
                        hovertemplate=f"{form}: N = %{{x:,.0f}}, L̂ = %{{y:.4g}}<extra></extra>")
        h = f.get("heldout")
        if h:
            xs = grid[grid < h["n"] * 1.01]
            yh = np.exp(scaling.predict_log(form, _raw({"params": h["params"]}), xs, np.full_like(xs, h["d"])))
            fig.add_scatter(x=xs, y=yh, mode="lines", name=f"{form} fitted without N = {h['n']:,.0f}",
                            legendgroup=form, showlegend=False, line={"color": col, "dash": "dot", "width": 1},
                            hoverinfo="skip")
            fig.add_scatter(x=[h["n"]], y=[h["predicted"]], mode="markers", meta="heldout", legendgroup=form,
                            name=f"{form} held-out prediction: {h['rel_error']:.1%} off",
                            marker={"symbol": "x", "size": 12, "color": col},
                            hovertemplate=f"{form} fitted without the largest N predicts {h['predicted']:.4g} at N = "
                                          f"{h['n']:,.0f}; observed {h['observed']:.4g}: {h['rel_error']:.1%} off"
                                          "<extra></extra>")
            ys += [h["predicted"], h["observed"]]
    h = next((f["heldout"] for f in fits.values() if f.get("heldout")), None)
    if h:
        ring(fig, h["n"], h["observed"], f"held-out point: N = {h['n']:,.0f}, mean loss {h['observed']:.4g}",
             "heldout-observed")
    logx(style(fig, None, 440), "parameters N (log scale)")
    fig.update_yaxes(type="log", title_text="test loss (nats, log scale)", range=log_range(ys, 1.15, 1.15))
    return fig.update_layout(legend=LEGEND_RIGHT, margin={"r": 360})


def _by_d(p: dict, fits: dict) -> go.Figure:
    n, d, loss = (np.array(p[k], float) for k in ("params", "n_train", "test_loss"))
    widths = sorted(set(p["width"]))
    grid = np.geomspace(d.min() / 1.2, d.max() * 1.5, 60)
    w = np.array(p["width"])
    fig = go.Figure()
    for wv, c in zip(widths, _shades(len(widths))):
        rows = np.flatnonzero(w == wv)
        nv = n[rows][0]
        fig.add_scatter(x=d[rows], y=loss[rows], mode="markers", name=f"width {wv} (N = {nv:,.0f})",
                        legendgroup=f"w{wv}", marker={"color": c, "size": 7},
                        **{**_hover_pts(p, rows), "hovertemplate": "width %{customdata[0]}, D = %{x:,} examples, seed "
                           "%{customdata[2]}<br>test loss %{y:.4g} nats<extra></extra>"})
        y = np.exp(scaling.predict_log("hoffmann_nd", _raw(fits["hoffmann_nd"]), np.full_like(grid, nv), grid))
        fig.add_scatter(x=grid, y=y, mode="lines", legendgroup=f"w{wv}", showlegend=False,
                        line={"color": c, "width": 1.5}, hoverinfo="skip")
    logx(style(fig, None, 420), "training examples D (log scale)")
    fig.update_yaxes(type="log", title_text="test loss (nats, log scale)", range=log_range(loss, 1.15, 1.15))
    return fig.update_layout(legend=LEGEND_RIGHT, margin={"r": 160})


def _residuals(p: dict, fits: dict) -> go.Figure:
    n = np.array(p["params"], float)
    fig = go.Figure()
    for form, f in fits.items():
        rows = np.array(f["rows"], int)
        col, _ = FORM_STYLE.get(form, ("#000", "solid"))
        fig.add_scatter(x=n[rows] * (1 + 0.04 * list(fits).index(form)), y=f["residuals"], mode="markers", name=form,
                        marker={"color": col, "size": 6},
                        customdata=[[p["width"][i], p["n_train"][i], p["seed"][i]] for i in rows],
                        hovertemplate=f"{form}: width %{{customdata[0]}}, D = %{{customdata[1]:,}}, seed "
                                      "%{customdata[2]}<br>log L̂ − log L = %{y:.3f}<extra></extra>")
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    logx(style(fig, None, 360), "parameters N (log scale; forms offset slightly)")
    return fig.update_yaxes(title_text="residual log L̂ − log L")


def scaling_sections(path: Path, s: dict) -> list:
    p = pq.read_table(path / "points.parquet").to_pydict()
    fits = json.loads((path / "fits.json").read_text())
    ci_rows = [[form, k, v, *f["ci95"][k], f["bootstrap"]] for form, f in fits.items() for k, v in f["params"].items()]
    held = [[form, f"{h['n']:,.0f}", f"{h['d']:,.0f}", h["predicted"], h["observed"], f"{h['rel_error']:.1%}"]
            for form, f in fits.items() if (h := f.get("heldout"))]
    words = ", ".join(f"{form} α = {f['params']['alpha']:.2f}" for form, f in fits.items())
    items: list = [
        Raw(f'<div class="gl-words">{len(p["params"])} trainings: {s["model"].upper()} widths {s["widths"]} × '
            f"training-set sizes D {s['n_trains']} × {s['seeds']} seed(s); loss = {s['loss']}. Fitted (Huber on "
            f"log-loss, Hoffmann et al. 2022): {words}.</div>"),
        Panel("Test loss against parameters, every run", "One colour per training-set size D; lines: the L(N, D) "
              "fit. More data lowers the whole curve; bigger models help until data runs out.", _by_n(p, fits),
              "curves-scaling")]
    if s.get("source") == "addition":
        from groklab.labs.curves import report_addition
        items = [*report_addition.sections(path, s), items[1]]
    if "hoffmann_nd" in fits and len(s["n_trains"]) > 1:
        items.append(Panel("Test loss against training examples", "One colour per width; lines: the same L(N, D) "
                           "fit. Small models stop gaining from more data.", _by_d(p, fits), "curves-scaling-d"))
    items.append(Panel("Fits at the largest D and the held-out check", "Each form fitted on all N (lines) and without "
                       "the largest N (dotted, extrapolated): × is its prediction there, the ring the observed loss.",
                       _at_max_d(p, fits), "curves-heldout", wide=True))
    items.append(Panel("Residuals of each fit", "Log-loss residuals; a pattern against N means the form misses "
                       "curvature.", _residuals(p, fits), "curves-residuals"))
    items.append(Panel("Parameters with 95% bootstrap intervals", "Percentiles of refits on resampled runs; a wide "
                       "interval means the data do not pin the parameter down.",
                       Raw(table(["form", "parameter", "fit", "2.5%", "97.5%", "resamples"], ci_rows, left=2))))
    if held:
        items.append(Panel("Held-out prediction", "Each form refitted without the largest N, predicting it.",
                           Raw(table(["form", "N held out", "D", "predicted loss", "observed loss", "error"], held,
                                     left=1))))
    return items
