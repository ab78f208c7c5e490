"""The grokking lab's part of `groklab report`, drawn from the run folder alone.

A run: its outcome in words, then one slider over the stored weight snapshots that moves, in step, the
input-weight heatmap (token × neuron, neurons sorted by final Fourier frequency; parity: input bit ×
neuron), the Fourier spectrum (parity: mean |weight| per input bit) and a marker on the accuracy and
loss curves; a member picker for ensembles. A sweep: PAIR's phase diagram (outcome fractions per cell);
clicking a cell draws its seeds' accuracy curves.
"""

from __future__ import annotations

from pathlib import Path
from statistics import median

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from groklab import plot, store
from groklab.report import Controls, Drilldown, Panel, style
from groklab.report.data import Raw, cells, curve, fmt, group_curves, members, pivot, sweep_axes, table, thin

BUDGET = 350_000  # floats of heatmap frames on one page (float32, base64: ~1.9 MB)
MAX_COLS = 128  # neurons shown (the largest by final weight norm) when a model has more
OUTCOME_COLORS = {"fail": "#9e9e9e", "memorize": "#d62728", "direct": "#2ca02c", "grok": "#1f77b4"}
OUTCOME_WORDS = ("<b>fail</b>: never fit the training set; <b>memorize</b>: fit it, test loss never dropped; "
                 "<b>direct</b>: train and test loss fell together; <b>grok</b>: test loss dropped long after "
                 "train loss (PAIR's rules on the logged losses).")


def headline(path: Path, summary: dict) -> str:
    if summary.get("lab") == "sweep":
        oc = summary.get("outcome_counts") or {}
        return f"{summary.get('n_runs')} models: " + ", ".join(f"{k} {v}" for k, v in oc.items())
    ms = summary.get("models", [])
    gen = [m["step_generalized"] for m in ms if m.get("step_generalized") is not None]
    n = sum(m.get("outcome") == "grok" for m in ms)
    return f"{n}/{len(ms)} grokked" + (f"; median step_generalized {median(gen):.0f}" if gen else "")


def _words(m: dict, a) -> str:
    mem, gen, o = m["step_memorized"], m["step_generalized"], m["outcome"]
    s = f"<b>seed {m['seed']}: {o}.</b> "
    s += (f"Train accuracy reached {a.memorized_acc:.0%} at step {mem} (memorized)" if mem is not None
          else f"Train accuracy never reached {a.memorized_acc:.0%} (it ended at {m['train_acc']:.1%})")
    if gen is not None:
        later = f", {gen / max(mem, 1):.0f}× later" if mem is not None and gen > mem else ""
        s += f"; test accuracy reached {a.generalized_acc:.0%} at step {gen} (generalized{later})."
    else:
        s += (f"; test accuracy never reached {a.generalized_acc:.0%}: it ended at {m['test_acc']:.1%} "
              f"(peak {m['peak_test_acc']:.1%} at step {m['step_peak_test_acc']}).")
    kf = m.get("key_frequencies") or []
    if kf:
        s += f" Key Fourier frequencies of the final embedding: {', '.join(map(str, kf))}"
        s += f" (Gini of the spectrum {m['gini']:.2f}: 0 = spread evenly, 1 = one frequency)." if "gini" in m else "."
    if m.get("relevant_weight_share") is not None:
        s += f" Share of first-layer weight on the relevant bits: {m['relevant_weight_share']:.0%}."
    return s


def _frames(cfg, snaps, n_members: int):
    """Heatmap frames (members, S, rows, cols) of the input weights, neurons ordered per member; the
    snapshot indices and a note when the page shows fewer snapshots, members or neurons than stored."""
    from groklab.data import make_task
    from groklab.labs.grokking import fourier
    from groklab.labs.grokking.run import input_weights
    from groklab.nn import make_model

    model = make_model(cfg, make_task(cfg))
    rows, cols = input_weights(model, {k: v[:1] for k, v in snaps[-1][1].items()}).shape[1:]
    keep_c = min(cols, MAX_COLS)
    mk = min(n_members, max(1, BUDGET // (rows * keep_c * min(len(snaps), 24))))  # up to 24 snapshots first
    idx = thin(len(snaps), max(2, BUDGET // (rows * keep_c * mk)))
    w = np.stack([input_weights(model, {k: v[:mk] for k, v in snaps[i][1].items()}).double().numpy()
                  for i in idx], axis=1)  # (mk, S, rows, cols)
    out = np.empty((mk, len(idx), rows, keep_c))
    for j in range(mk):
        last = w[j, -1]
        cols_j = np.argsort(-np.linalg.norm(last, axis=0))[:keep_c]
        if cfg.task.kind == "modular":
            nf = fourier.neuron_frequencies(last[:, cols_j], cfg.analysis.freq_threshold)
            order = cols_j[np.lexsort((nf["phase"], nf["top"]))]
        else:  # parity: the neurons that weigh the relevant bits most first
            order = cols_j[np.argsort(-np.abs(last[: cfg.task.k_bits, cols_j]).sum(0))]
        out[j] = w[j][:, :, order]
    note = []
    if len(idx) < len(snaps):
        note.append(f"{len(idx)} of {len(snaps)} snapshots")
    if mk < n_members:
        note.append(f"members 0–{mk - 1} of {n_members}")
    if keep_c < cols:
        note.append(f"the {keep_c} largest of {cols} neurons")
    return out, idx, ("This page shows " + ", ".join(note) + " (page size)." if note else "")


def _bars(cfg, w: np.ndarray, models: list[dict]) -> tuple[np.ndarray, list, str, list[str]]:
    """(2, members, S, n) bar heights (highlighted, other; NaN where not), x labels, y label, legend names."""
    from groklab.labs.grokking import fourier

    mk, s = w.shape[:2]
    if cfg.task.kind == "modular":
        v = np.array([[fourier.spectrum(w[j, i]) for i in range(s)] for j in range(mk)])
        key = np.array([[k in (models[j]["key_frequencies"] or []) for k in range(1, v.shape[2] + 1)]
                        for j in range(mk)])
        x: list = list(range(1, v.shape[2] + 1))
        ylab, names = "norm of the weights at frequency k", ["key frequency (final)", "other frequency"]
    else:
        v = np.abs(w).mean(3)  # (mk, S, bits): mean |w| over neurons
        key = np.broadcast_to(np.arange(v.shape[2]) < cfg.task.k_bits, (mk, v.shape[2]))
        x = [f"bit {i + 1}" for i in range(cfg.task.n_bits)] + ["bias"] * (v.shape[2] - cfg.task.n_bits)
        ylab, names = "mean |weight| into the hidden layer", [f"relevant bits (first {cfg.task.k_bits})", "other bits"]
    return np.stack([np.where(key[:, None], v, np.nan), np.where(key[:, None], np.nan, v)]), x, ylab, names


def _intro(cfg, summary: dict) -> Raw:
    models = summary["models"]
    task = "sparse parity" if cfg.task.kind == "parity" else f"a {cfg.task.op} b mod {cfg.task.p}"
    rows = [[m["seed"], m["outcome"], m["train_acc"], m["test_acc"], m["step_memorized"], m["step_generalized"],
             ",".join(map(str, m.get("key_frequencies") or [])) or "–"] for m in models]
    counts = ", ".join(f"{k} {v}" for k, v in summary["outcome_counts"].items())
    return Raw(f"<p><b>Task</b>: {task}; model <code>{cfg.model.kind}</code>; {len(models)} seed(s). "
               f"Outcomes: {counts}. {OUTCOME_WORDS}</p>"
               + table(["seed", "outcome", "train acc", "test acc", "step_memorized", "step_generalized",
                        "key frequencies"], rows, left=2))


def _weight_panels(cfg, c: Controls, w: np.ndarray, models: list[dict]) -> list:
    par = cfg.task.kind == "parity"
    bars, x, ylab, names = _bars(cfg, w, models)
    hm = go.Figure(go.Heatmap(z=w[0, -1], y=x if par else None, colorscale="RdBu", zmid=0,
                              colorbar={"title": {"text": "weight"}},
                              hovertemplate=("%{y}" if par else "token %{y}")
                              + "<br>neuron #%{x}<br>weight %{z:.3g}<extra></extra>"))
    unit = "embedding dimension" if cfg.model.kind == "transformer" else "hidden neuron"
    style(hm, None, 420).update_xaxes(title_text=f"{unit} (sorted by " + (
        "weight on the relevant bits)" if par else "its final Fourier frequency, then phase)"))
    hm.update_yaxes(title_text="input bit" if par else "input token i", autorange="reversed")
    c.z("heat", w, symmetric=True)
    sp = go.Figure([go.Bar(x=x, y=bars[j, 0, -1], name=n, marker_color=(plot.TEST, "#9e9e9e")[j])
                    for j, n in enumerate(names)])
    style(sp, None, 420).update_layout(barmode="overlay", bargap=0.15)
    sp.update_yaxes(title_text=ylab, rangemode="tozero")
    sp.update_xaxes(title_text="input bit" if par else "Fourier frequency k (cos/sin 2πki/p)")
    c.y("bars", bars[0], 0)
    c.y("bars", bars[1], 1)
    what = "bit" if par else "token"
    see = (f"Generalizing nets put their weight on the first {cfg.task.k_bits} bits (top rows)." if par else
           "Noise at first; as the net generalizes, neurons of one frequency show periodic bands over the tokens.")
    return [Panel(f"Input weights per {what} and neuron", f"Blue positive, red negative. {see}", hm, "heat"),
            Panel("Weight per input bit" if par else "Fourier spectrum of the input weights",
                  "The relevant bits (blue) gain weight as the net generalizes." if par else "Energy spreads over "
                  "all frequencies at first and concentrates on a few key ones (blue) as the network groks.",
                  sp, "bars")]


def _curve_panels(c: Controls, steps: np.ndarray, h: dict, models: list[dict], snap_steps: list[int], a) -> list:
    mk = len(c.members) or 1
    xs = [max(s, 1) for s in snap_steps]  # step 0 sits on the left edge of the log axis
    xr = [0, float(np.log10(max(steps[-1], 10) * 1.3))]
    acc, loss = go.Figure(), go.Figure()
    for f, kind in ((acc, "acc"), (loss, "loss")):
        for n, col in (("train", plot.TRAIN), ("test", plot.TEST)):
            x, y = curve(steps, h[f"{n}_{kind}"][0])
            f.add_scatter(x=x, y=y, name=n, line={"color": col, "width": 1.6})
    ms = [[[m[k], m[k]] if m[k] is not None else [None, None] for k in ("step_memorized", "step_generalized")]
          for m in models[:mk]]
    for j, (n, col, dash) in enumerate(((f"memorized ({a.memorized_acc:.0%} train)", plot.TRAIN, "dot"),
                                        (f"generalized ({a.generalized_acc:.0%} test)", plot.TEST, "dash"))):
        acc.add_scatter(x=ms[0][j], y=[0, 1], mode="lines", name=n, line={"color": col, "dash": dash})
    losses = np.concatenate([h["train_loss"][:mk], h["test_loss"][:mk]])
    lo = float(np.nanmin(np.where(losses > 0, losses, np.nan), initial=1.0))
    for f, y in ((acc, [0, 1]), (loss, [lo, float(np.nanmax(losses, initial=1.0))])):
        f.add_scatter(x=[xs[-1], xs[-1]], y=y, mode="lines", name="snapshot", line={"color": "#555", "width": 2})
        style(f, None).update_xaxes(type="log", title_text="step (log scale)", range=xr)
    acc.update_yaxes(title_text="accuracy", range=[-0.02, 1.02])
    loss.update_yaxes(title_text="loss (log scale)", type="log", exponentformat="power")
    c.vline("acc", xs, 4)
    c.vline("loss", xs, 2)
    c.member_traces("acc", [0, 1, 2, 3], [[curve(steps, h["train_acc"][j]), curve(steps, h["test_acc"][j]),
                                           (ms[j][0], [0, 1]), (ms[j][1], [0, 1])] for j in range(mk)])
    c.member_traces("loss", [0, 1], [[curve(steps, h[n][j]) for n in ("train_loss", "test_loss")] for j in range(mk)])
    return [Panel("Accuracy", "Train accuracy saturates first (memorized); a grokking net's test accuracy jumps much "
                  "later. The grey line marks the snapshot shown above.", acc, "acc"),
            Panel("Loss", "Test loss stays high while the net memorizes and falls when it generalizes.", loss, "loss")]


def _snapshots(path: Path) -> list:
    """The stored snapshots by step, then the final weights (snapshots/final) if they come later."""
    from safetensors import safe_open

    snaps = store.load_snapshots(path)
    f = path / "snapshots" / "final.safetensors"
    if f.is_file():
        w = store.load_weights(f)  # checks the file first
        with safe_open(str(f), framework="pt") as sf:
            step = int((sf.metadata() or {}).get("step", -1))
        if step >= 0 and (not snaps or step > snaps[-1][0]):
            snaps.append((step, w))
    return snaps


def sections(path: Path) -> list:
    from groklab.config import load_run_config

    cfg, summary = load_run_config(path), store.read_summary(path)
    models = summary["models"]
    steps, h = pivot(store.read_metrics(path).to_pydict(), len(models))
    items: list = [_intro(cfg, summary)]
    snaps = _snapshots(path)
    if snaps:
        w, idx, note = _frames(cfg, snaps, len(models))
        mk, snap_steps = w.shape[0], [snaps[i][0] for i in idx]
    else:
        items.append(Raw('<p class="gl-skip">This run stored no weight snapshots (train.snapshots = 0): no weight '
                         "heatmap or spectrum; the slider only moves the marker on the curves.</p>"))
        mk, snap_steps, note = len(models), [int(s) for s in steps[thin(len(steps), 40)]], ""
    n = len(snap_steps)
    what = "snapshot" if snaps else "logged step"
    c = Controls("snapshots", [f"step {s} ({what} {i + 1} of {n})" for i, s in enumerate(snap_steps)],
                 [f"seed {m['seed']} ({m['outcome']})" for m in models[:mk]],
                 note=f"Drag the slider (or press play) to move every panel to a {'stored weight ' * bool(snaps)}{what}"
                      + ("; pick a member to see its weights and curves." if mk > 1 else ".")
                      + (f" {note}" if note else ""))
    c.html("words", [_words(m, cfg.analysis) for m in models[:mk]])
    items += [c, Raw('<div class="gl-words" id="words"></div>')]
    if snaps:
        items += _weight_panels(cfg, c, w, models)
    return items + _curve_panels(c, steps, h, models, snap_steps, cfg.analysis)


def sweep_sections(path: Path) -> list:
    t = members(path)
    x, y, f = sweep_axes(path, t)
    y = y or "seed"
    facets, xs, ys = sorted(set(t[f])) if f else [None], sorted(set(t[x])), sorted(set(t[y]))
    fig = make_subplots(1, len(facets), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[f"{f} = {v}" for v in facets] if f else None)
    n = len(t["member"])
    k = int(np.clip(200_000 // (4 * max(n, 1)), 25, 150))  # points a curve: drilldown data stays < 2 MB
    groups: dict[int, dict] = {}
    views: dict[str, dict] = {}
    segs: dict[tuple, list] = {(fv, o): [] for fv in facets for o in OUTCOME_COLORS}  # bar pieces: width, row, ...
    for (fv, yv, xv), idx in cells(t, [f, y, x]).items():
        key = f"{fv}|{yv}|{xv}"
        where = ", ".join(f"{col} = {fmt(v)}" for col, v in ((x, xv), (y, yv), (f, fv)) if col)
        counts = {o: sum(t["outcome"][i] == o for i in idx) for o in OUTCOME_COLORS}
        meds = [(s, [t[s][i] for i in idx if t[s][i] is not None]) for s in ("step_memorized", "step_generalized")]
        hover = (f"{where}<br>" + ", ".join(f"{o} {cnt}/{len(idx)}" for o, cnt in counts.items()) + "<br>"
                 + "; ".join(f"median {s}: {fmt(median(v), '.0f') if v else '– (none)'}" for s, v in meds))
        left = xs.index(xv) - 0.45
        for o, cnt in counts.items():
            if cnt:
                segs[fv, o].append((0.9 * cnt / len(idx), ys.index(yv), left, [key, hover]))
                left += 0.9 * cnt / len(idx)
        data = []
        for j, i in enumerate(idx):
            g = t["group"][i]
            if g not in groups:
                groups[g] = group_curves(path, g, ("train_acc", "test_acc"), k)
            cv = groups[g].get(t["member"][i], {})
            for mname, dash in (("test_acc", "solid"), ("train_acc", "dot")):
                if mname in cv:
                    data.append({"type": "scatter", "mode": "lines", "x": cv[mname][0], "y": cv[mname][1],
                                 "name": f"seed {t['seed'][i]} ({t['outcome'][i]})", "legendgroup": str(i),
                                 "showlegend": mname == "test_acc",
                                 "line": {"color": f"hsl({j * 67 % 360},65%,42%)", "dash": dash, "width": 1.5}})
        views[key] = {"title": f"{where}: {len(idx)} seed(s)", "data": data}
    for (fv, o), pieces in segs.items():  # one bar trace per facet and outcome; the legend keys every outcome
        w, r, b, cd = zip(*pieces) if pieces else ([None], [None], [None], [["", ""]])
        fig.add_bar(x=list(w), y=list(r), base=list(b), customdata=list(cd), orientation="h", width=0.8,
                    marker_color=OUTCOME_COLORS[o], name=o, legendgroup=o, showlegend=fv == facets[0],
                    hovertemplate="%{customdata[1]}<extra></extra>", row=1, col=facets.index(fv) + 1)
    style(fig, None, 280 + 28 * len(ys)).update_layout(barmode="overlay", bargap=0, margin={"t": 80},
                                                       legend={"y": 1.12, "traceorder": "normal"})
    fig.update_xaxes(tickvals=list(range(len(xs))), ticktext=[fmt(v) for v in xs], range=[-0.5, len(xs) - 0.5],
                     title_text=x, showgrid=False, zeroline=False)
    fig.update_yaxes(tickvals=list(range(len(ys))), ticktext=[fmt(v) for v in ys], range=[-0.5, len(ys) - 0.5],
                     showgrid=False, zeroline=False)
    fig.update_yaxes(title_text=y, row=1, col=1)
    layout = {"template": "plotly_white", "height": 380, "font": {"size": 12}, "margin": {"l": 60, "r": 20, "t": 50},
              "xaxis": {"type": "log", "title": {"text": "step (log scale)"}},
              "yaxis": {"title": {"text": "accuracy (solid: test, dotted: train)"}, "range": [-0.02, 1.02]}}
    cc = go.Figure(layout={**layout, "xaxis": {"visible": False}, "yaxis": {"visible": False}, "height": 200,
                           "annotations": [{"text": "Click a cell of the phase diagram above to see its seeds' curves "
                                            "here.", "showarrow": False, "font": {"size": 14, "color": "#555"}}]})
    oc = ", ".join(f"{o} {sum(v == o for v in t['outcome'])}" for o in OUTCOME_COLORS)
    return [Raw(f"<p>{n} models in {len(views)} cells. Outcomes: {oc}. {OUTCOME_WORDS}</p>"),
            Panel("Phase diagram: fraction of seeds per outcome",
                  "Each cell is one setting; its bar is split by the share of seeds in each outcome. Hover for counts "
                  "and median steps; click a cell to see its seeds' curves below.", fig, "phase", wide=True),
            Panel("Curves of the clicked cell", "Grokking shows as test accuracy (solid) rising long after train "
                  "accuracy (dotted).", cc, "cellcurves", wide=True),
            Drilldown("phase", "cellcurves", views, layout)]
