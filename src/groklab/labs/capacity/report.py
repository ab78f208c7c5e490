"""The capacity lab's part of `groklab report`, drawn from the run folder alone.

An EMC search (`capacity emc`): the result in words; the search path (every training's n per round, fitted
or not, each seed's bracket after each round); train accuracy against epochs of every training; the table
of trainings. A capacity sweep (a study): the study's figure (studies.kind: EMC vs parameters with y = x,
bars per condition, lines against a numeric axis, or the gap-correlation scatter with Pearson r), the
numbers behind it, and one row per grid point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pyarrow.parquet as pq

from groklab import store
from groklab.labs.capacity import studies
from groklab.report import Panel, style
from groklab.report.data import Raw, curve, fmt, members, sweep_spec, table

FIT, NOFIT = "#2ca02c", "#d62728"


def _n(v) -> str:
    return "–" if v is None else f"{v:,.0f}"


def headline(path: Path, summary: dict) -> str:
    if summary.get("lab") == "sweep":
        return f"{summary.get('n_runs')} EMC searches ({summary.get('preset')})"
    if summary.get("emc") is None:
        return "EMC below the search range"
    std = f" ± {summary['emc_std']:,.0f}" if summary.get("emc_std") else ""
    return f"EMC {summary['emc']:,.0f}{std} samples, {summary['params']:,} parameters"


def _words(s: dict) -> str:
    d, m = s["data"], s["model"]
    lo, hi = s["bracket"]
    std = f" ± {s['emc_std']:,.0f}" if s.get("emc_std") else ""
    return (f'<div class="gl-words">A {m["kind"]} (width {m["width"]}, depth {m["depth"]}, {m["act"]}; '
            f"<b>{s['params']:,} parameters</b>) on {d['name']} ({d['labels']} labels, {d['inputs']} inputs, "
            f"{d['classes']} classes), trained with {s['optim']}, fits at most <b>{_n(s['emc'])}{std} samples</b> "
            f"to 100% train accuracy (EMC, mean over {len(s['per_seed'])} seed(s); bracket [{_n(lo)}, {_n(hi)}], "
            f"tolerance {s['tol']:g}): {s['emc'] / s['params']:.2f} samples per parameter. "
            f"{s['trainings']} trainings in {s['rounds']} rounds, {s['wall_s']:.0f} s. {s.get('batching', '')}."
            f"<br>Rule: {s['rule']}.</div>") if s.get("emc") else (
            f'<div class="gl-words">No training fitted even n = {lo or hi}: EMC is below the search range '
            f"({s['params']:,} parameters).</div>")


def _search_path(s: dict, rows: list[dict]) -> go.Figure:
    fig = go.Figure()
    seeds = sorted({r["seed"] for r in rows})
    off = {sd: (i - (len(seeds) - 1) / 2) * 0.08 for i, sd in enumerate(seeds)}
    last = max(r["round"] for r in rows)
    for sd in seeds:  # the bracket after each round, as a band behind the next round
        xs, los, his = [], [], []
        for rd in range(1, last + 1):
            done = [r for r in rows if r["seed"] == sd and r["round"] <= rd]
            lo = max((r["n"] for r in done if r["fitted"]), default=None)
            hi = min((r["n"] for r in done if not r["fitted"] and r["n"] > (lo or 0)), default=None)
            xs += [rd + 0.6 + off[sd], rd + 1.4 + off[sd]]  # a step per round
            los += [lo or 1] * 2
            his += [hi or max(r["n"] for r in rows)] * 2
        fig.add_scatter(x=xs + xs[::-1], y=his + los[::-1], fill="toself", mode="none", opacity=0.2,
                        name=f"seed {sd}: bracket after the round before", hoverinfo="skip")
    for fitted, color, symbol, name in ((True, FIT, "circle", "fitted (100% train accuracy)"),
                                        (False, NOFIT, "x", "not fitted (converged or capped)")):
        sel = [r for r in rows if bool(r["fitted"]) == fitted]
        fig.add_scatter(x=[r["round"] + off[r["seed"]] for r in sel], y=[r["n"] for r in sel], mode="markers",
                        marker={"color": color, "symbol": symbol, "size": 9}, name=name,
                        customdata=[[r["seed"], r["status"], r["epochs"], r["train_acc"], r["test_acc"]] for r in sel],
                        hovertemplate="n = %{y}, seed %{customdata[0]}: %{customdata[1]} after %{customdata[2]:.0f} "
                                      "epochs, train acc %{customdata[3]:.4f}, test acc %{customdata[4]:.3f}"
                                      "<extra></extra>")
    if s.get("emc"):
        fig.add_hline(y=s["emc"], line={"color": "#777", "dash": "dash"}, annotation_text=f"EMC {s['emc']:,.0f}")
    style(fig, None, 380).update_xaxes(title_text="round", tickvals=list(range(1, last + 2)),
                                       ticktext=[*map(str, range(1, last + 1)), "final"])
    ns = [r["n"] for r in rows]
    fig.update_yaxes(title_text="training samples n", type="log",
                     range=[np.log10(min(ns) / 1.5), np.log10(max(ns) * 1.5)])
    return fig


def _curves(path: Path, rows: list[dict]) -> go.Figure:
    t = pq.read_table(path / "metrics.parquet", filters=[("metric", "=", "train_acc")]).to_pydict()
    member, epoch, value = (np.asarray(t[k], dtype=float) for k in ("member", "epoch", "value"))
    fig = go.Figure()
    ns = [r["n"] for r in rows]
    lo, hi = np.log(min(ns)), np.log(max(ns))
    for r in sorted(rows, key=lambda r: r["n"]):
        m = member == r["member"]
        x, y = curve(epoch[m], value[m], 150)
        shade = int(40 + 180 * (np.log(r["n"]) - lo) / max(hi - lo, 1e-9))
        fig.add_scatter(x=x, y=y, mode="lines", name=f"n={r['n']:,} (round {r['round']}, seed {r['seed']})",
                        line={"color": f"rgb({shade}, {80 + shade // 3}, {255 - shade})", "width": 1.2,
                              "dash": "solid" if r["fitted"] else "dash"}, showlegend=len(rows) <= 24)
    style(fig, None, 380).update_xaxes(title_text="epoch", type="log")
    fig.update_yaxes(title_text="train accuracy", range=[0, 1.02])
    return fig


def sections(path: Path) -> list:
    s = store.read_summary(path)
    t = pq.read_table(path / "members.parquet").to_pydict()
    rows = [dict(zip(t, vals)) for vals in zip(*t.values())]
    items: list = [Raw(_words(s))]
    if not rows:
        return items
    items.append(Panel("EMC search path", "Each round trains k sizes per seed as one ensemble; the band is the "
                       "bracket [largest fitted, smallest unfitted above it] the round started from.",
                       _search_path(s, rows), "search"))
    items.append(Panel("Train accuracy of every training", "Solid: reached 100% (fitted); dashed: converged or "
                       "capped below it. Darker = more samples.", _curves(path, rows), "curves"))
    per = [[p["seed"], p["emc"], Raw(f"[{_n(p['bracket'][0])}, {_n(p['bracket'][1])}]"), p["state"], p["trainings"],
            p["rounds"], p["inversions"], p.get("test_acc_at_emc")] for p in s["per_seed"]]
    items.append(Panel("Per seed", "EMC = the largest n fitted; inversions = smaller sizes that did not fit.",
                       Raw(table(["seed", "EMC", "bracket", "state", "trainings", "rounds", "inversions",
                                  "test acc@EMC"], per))))
    tr = [[r["round"], r["seed"], r["n"], r["status"], r["epochs"], r["train_acc"], r["train_loss"], r["test_acc"],
           r["grad_norm"]] for r in sorted(rows, key=lambda r: (r["round"], r["seed"], r["n"]))]
    items.append(Panel("Every training", "status: fitted, converged (plateau and small gradient) or capped.",
                       Raw(table(["round", "seed", "n", "status", "epochs", "train acc", "train loss", "test acc",
                                  "grad norm"], tr)), wide=True))
    return items


def _study_figure(which: str, spec: dict, pts: list[dict], keys: list[str]) -> go.Figure:
    fig = go.Figure()
    if which == "gap":
        g = studies.gap(pts, keys)
        fig.add_scatter(x=[q["gen_gap"] for q in g["rows"]], y=[q["emc_gap"] for q in g["rows"]], mode="markers+text",
                        text=[q["config"] for q in g["rows"]], textposition="top center", textfont={"size": 9},
                        name=f"r = {g['r']:.2f}, 95% CI [{g['ci'][0]:.2f}, {g['ci'][1]:.2f}]")
        style(fig, None, 420).update_xaxes(title_text="generalization gap at the semantic EMC (1 − test accuracy)")
        fig.update_yaxes(title_text="relative EMC gap (semantic − random) / semantic")
        fig.update_layout(showlegend=True)
        return fig
    if which == "arch":
        for k in sorted({p.get("model.kind", "model") for p in pts}):
            mine = [p for p in pts if p.get("model.kind", "model") == k and p["emc"]]
            fig.add_scatter(x=[p["params"] for p in mine], y=[p["emc"] for p in mine], mode="markers", name=k,
                            text=[studies.label(p, keys) for p in mine], marker={"size": 10},
                            hovertemplate="%{text}: %{x:,} parameters, EMC %{y:,.0f}<extra></extra>")
        vals = [p["params"] for p in pts] + [p["emc"] for p in pts if p["emc"]]
        lim = [min(vals) * 0.7, max(vals) * 1.4]
        fig.add_scatter(x=lim, y=lim, mode="lines", name="EMC = parameters", line={"dash": "dash", "color": "#888"})
        style(fig, None, 420).update_xaxes(title_text="parameters", type="log")
        fig.update_yaxes(title_text="samples fitted (EMC)", type="log")
        return fig
    x = spec.get("x") or keys[0]
    hue = next((k for k in ([spec.get("y")] if spec.get("y") else []) + keys if k and k != x), None)
    for hv in dict.fromkeys(p.get(hue) for p in pts):
        sel = sorted((p for p in pts if p.get(hue) == hv), key=lambda p: (str(type(p[x])), p[x]))
        kw = {"error_y": {"type": "data", "array": [p["emc_std"] or 0 for p in sel]}, "name": f"{hue} = {hv}"
              if hue else "EMC", "x": [fmt(p[x]) for p in sel], "y": [p["emc"] for p in sel]}
        fig.add_trace(go.Scatter(mode="lines+markers", **kw) if which == "lines" else go.Bar(**kw))
    style(fig, None, 380).update_xaxes(title_text=x, type="category")
    fig.update_yaxes(title_text="samples fitted (EMC)")
    return fig


def sweep_sections(path: Path) -> list:
    from groklab.sweep.run import column

    t = members(path)
    spec = sweep_spec(path)
    keys = list(spec["grid"])
    pts = studies.points(t, keys, column)
    which = studies.kind(keys, spec["grid"])
    found = "".join(f"<li>{f}</li>" for f in studies.findings(which, pts, keys))
    items: list = [Raw(f'<div class="gl-words">{len(t["emc"])} EMC searches (grid points × seeds) of the '
                       f"<b>{spec['name']}</b> study ({spec.get('scale', 'full')} scale). {spec.get('description', '')}"
                       + (f"<ul>{found}</ul>" if found else "") + "</div>")]
    captions = {"gap": "One point per configuration; the paper finds a strong negative correlation.",
                "arch": "Points below the dashed line fit fewer samples than they have parameters.",
                "lines": "Mean ± std over seeds.", "bars": "Mean ± std over seeds."}
    items.append(Panel(f"{spec['name']}: effective model complexity", captions[which],
                       _study_figure(which, spec, pts, keys), "study", wide=True))
    if which == "gap":
        g = studies.gap(pts, keys)
        items.append(Panel("EMC gap and generalization gap per configuration", "Relative EMC gap = (semantic − "
                           "random) / semantic; generalization gap = 1 − test accuracy at the semantic EMC.",
                           Raw(table(["configuration", "parameters", "EMC semantic", "EMC random", "EMC gap",
                                      "test acc@EMC", "gen. gap"],
                                     [[q[k] for k in ("config", "params", "emc_semantic", "emc_random", "emc_gap",
                                                      "test_acc", "gen_gap")] for q in g["rows"]], left=1)),
                           wide=True))
    head, rows = studies.table(pts, keys)
    items.append(Panel("Every grid point", "EMC mean ± std over seeds; state: found (bracket within tolerance), "
                       "above_range / below_range, max_rounds.", Raw(table(head, rows, left=len(keys))), wide=True))
    return items
