"""The compression lab's part of `groklab report`, drawn from the run folder alone.

A `compress train` run: the held-out loss against the entropy floor over training; one step slider moving
a marker on the per-position loss heatmap, the per-position aleatoric/epistemic bars and the code-length
curves; the compressor comparison as bars when the run holds one (coder.json, written by `groklab tour`).
A `joint` or `sizes` run: its table. A sweep: the gap to the floor per grid cell (heatmap) and per model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from statistics import median

import numpy as np
import plotly.graph_objects as go
import pyarrow.parquet as pq

from groklab import plot, store
from groklab.report import Controls, Panel, style
from groklab.report.data import Raw, cells, fmt, members, sweep_axes, table

FLOOR = "#2ca02c"
BITS = 1 / math.log(2)


def headline(path: Path, summary: dict) -> str:
    if summary.get("lab") == "sweep":
        gaps = [g for g in members(path).get("gap_pct", []) if g is not None]
        return f"{summary.get('n_runs')} models; best gap to the floor {min(gaps):.1f}%" if gaps else "–"
    if "gap_pct" not in summary:
        return summary.get("preset") or "–"
    return f"{summary['gap_pct']:.1f}% above the floor; exact match {summary['exact_match']:.0%}"


def _series(t: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    m = np.array(t["metric"]) == metric
    return np.array(t["step"])[m], np.array(t["value"], dtype=float)[m]


def _other_run(path: Path, summary: dict) -> list:
    """`compress joint` / `compress sizes`: the summary's numbers and the run's table."""
    scalars = [[k, v] for k, v in summary.items() if isinstance(v, (int, float, str)) and k not in ("run_dir",)]
    items = [Panel("Summary", "The numbers the command printed.", Raw(table(["field", "value"], scalars, left=1)))]
    for f in ("joint.parquet", "sizes.parquet"):
        if (path / f).is_file():
            t = pq.read_table(path / f).to_pydict()
            rows = [list(r) for r in zip(*t.values())]
            left = next((i for i, r in enumerate(zip(*rows)) if not isinstance(r[0], str)), len(t)) if rows else 0
            items.append(Panel(f.split(".")[0], "One row per measured pair or model size (bits per example).",
                               Raw(table(list(t), rows, left=left)), wide=True))
    return items


def _words(s: dict) -> str:
    pq_ = s.get("prequential") or {}
    tp = s.get("two_part") or {}
    w = (f"After {s['steps']} steps ({s['examples_seen']:,} examples seen once), the held-out loss is "
         f"{s['val_loss']:.4f} nats per token against the entropy floor of {s['floor']:.4f}: <b>{s['gap_pct']:.1f}% "
         f"above the floor</b>. Exact match (whole answer right): {s['exact_match']:.1%} of {s['val_examples']} "
         f"held-out examples.")
    if pq_:
        w += (f" Coding the training stream as it learned (prequential) cost {pq_['bits_per_example']:.2f} bits per "
              f"example against a floor of {pq_['floor_bits_per_example']:.2f}.")
    if tp:
        w += (f" The final model codes an example in {tp['final_bits_per_example']:.2f} bits; the model itself "
              f"takes {tp['description_bits']['xz_bits']:,} bits (xz of its float32 weights).")
    return f'<div class="gl-words">{w}</div>'


def sections(path: Path) -> list:
    from groklab.config import load_run_config
    from groklab.labs.compression.figures import target_labels

    summary = store.read_summary(path)
    if not (path / "model.safetensors").is_file() or "gap_pct" not in summary:
        return _other_run(path, summary)
    fmt_ = load_run_config(path).fmt()
    t = store.read_metrics(path).to_pydict()
    fp = fmt_.floor_per_target()  # (n_targets,) nats
    labels = target_labels(fmt_)
    m = np.array(t["metric"]) == "pos_loss"
    steps = np.unique(np.array(t["step"])[m])
    grid = np.full((len(steps), fmt_.n_targets), np.nan)
    grid[np.searchsorted(steps, np.array(t["step"])[m]), np.array(t["position"])[m]] = np.array(t["value"])[m]
    items: list = [Raw(_words(summary))]
    c = Controls("steps", [f"step {s} (evaluation {i + 1} of {len(steps)})" for i, s in enumerate(steps)],
                 note="Drag the slider (or press play) to move the marker on the curves and the per-position bars "
                      "to one held-out evaluation.")
    items.append(c)
    # loss vs the floor
    lf = go.Figure()
    s, v = _series(t, "train_loss")
    k = max(1, len(v) // 400)  # the per-step prequential loss, averaged in bins of k steps
    n = len(v) // k * k
    lf.add_scatter(x=s[:n].reshape(-1, k).mean(1), y=v[:n].reshape(-1, k).mean(1),
                   name="training batch (before update)", line={"color": plot.TRAIN, "width": 1})
    s, v = _series(t, "val_loss")
    lf.add_scatter(x=s, y=v, name="held-out", mode="lines+markers", line={"color": plot.TEST})
    lf.add_scatter(x=[steps[0], steps[-1]], y=[summary["floor"]] * 2, mode="lines", name=f"entropy floor "
                   f"{summary['floor']:.4f}", line={"color": FLOOR, "dash": "dash"})
    top = min(3.0, float(np.nanmax(v)) * 1.05)
    lf.add_scatter(x=[steps[-1]] * 2, y=[summary["floor"] * 0.9, top], mode="lines", name="selected step",
                   line={"color": "#555", "width": 2})
    style(lf).update_xaxes(title_text="step")
    lf.update_yaxes(title_text="loss (nats per token)", range=[summary["floor"] * 0.9, top])
    c.vline("loss", list(steps), 3)
    items.append(Panel("Next-token loss vs the entropy floor", "No model can go below the floor (the randomness of "
                       "the operands); the held-out loss approaching it is the model learning addition.", lf, "loss"))
    # per-position heatmap
    gap = np.clip(grid - fp[None], 1e-4, None)
    hm = go.Figure(go.Heatmap(z=np.log10(gap.T), x=steps, y=labels, colorscale="Magma",
                              colorbar={"title": {"text": "log10 nats"}},
                              hovertemplate="step %{x}, %{y}: log10(loss − floor) = %{z:.2f}<extra></extra>"))
    hm.add_scatter(x=[steps[-1]] * 2, y=[labels[0], labels[-1]], mode="lines", showlegend=False,
                   line={"color": "#00e5ff", "width": 2})
    style(hm, None, 420).update_xaxes(title_text="step")
    hm.update_yaxes(title_text="target position (a = first operand, c = answer digits)", autorange="reversed",
                    type="category")
    c.vline("heat", list(steps), 1)
    items.append(Panel("Loss above the floor per position", "Dark is learned. Operand digits reach their floor "
                       "early; the answer digits 'emerge' one by one, the carries last.", hm, "heat"))
    # aleatoric / epistemic per position at the selected step
    epi = np.clip(grid - fp[None], 0, None) * BITS  # (S, n_targets) bits
    dec = go.Figure([go.Bar(x=labels, y=fp * BITS, name="aleatoric (floor)", marker_color=FLOOR),
                     go.Bar(x=labels, y=epi[-1], name="epistemic (gap to the floor)", marker_color=plot.TRAIN)])
    style(dec, None, 420).update_layout(barmode="stack")
    dec.update_yaxes(title_text="bits per token", range=[0, float(np.nanmax(fp * BITS + epi)) * 1.05])
    dec.update_xaxes(title_text="target position")
    c.y("decomp", epi[None].astype(np.float32), 1)
    items.append(Panel("Code length per position: aleatoric + epistemic", "Green is the unlearnable randomness; red is "
                       "what the model has yet to learn at the selected step.", dec, "decomp"))
    tot = go.Figure([go.Scatter(x=steps, y=[fp.sum() * BITS] * len(steps), name="aleatoric", stackgroup="a",
                                line={"color": FLOOR}),
                     go.Scatter(x=steps, y=epi.sum(1), name="epistemic", stackgroup="a", line={"color": plot.TRAIN})])
    tot.add_scatter(x=[steps[-1]] * 2, y=[0, float(fp.sum() * BITS + np.nanmax(epi.sum(1)))], mode="lines",
                    name="selected step", line={"color": "#555", "width": 2})
    style(tot).update_xaxes(title_text="step")
    tot.update_yaxes(title_text="bits per example (held-out)")
    c.vline("total", list(steps), 2)
    items.append(Panel("Code length per example over training", f"Total = aleatoric {fp.sum() * BITS:.2f} bits "
                       "(fixed) + epistemic (shrinks as the model learns).", tot, "total"))
    return items + _compare(path)


def _compare(path: Path) -> list:
    f = path / "coder.json"
    if not f.is_file():
        return [Panel("Model vs classical compressors", "", Raw(
            '<p class="gl-skip">This run holds no compressor comparison, so this panel is skipped. <code>groklab '
            f"compress compare FILE --model {path.name}</code> prints one (it is not stored in the run); "
            "<code>groklab tour</code> stores one as coder.json.</p>"), wide=True)]
    r = json.loads(f.read_text())
    bpe = r["bits_per_example"]
    names = sorted(bpe, key=bpe.get)
    fig = go.Figure(go.Bar(x=names, y=[bpe[k] for k in names], marker_color=[plot.TEST if k == "model" else "#9e9e9e"
                                                                            for k in names],
                           hovertemplate="%{x}: %{y:.2f} bits per example<extra></extra>", showlegend=False))
    fig.add_hline(y=r["floor_bits_per_example"], line={"color": FLOOR, "dash": "dash"}, annotation_position="top right",
                  annotation_text=f"entropy floor {r['floor_bits_per_example']:.2f}")
    style(fig).update_yaxes(title_text="bits per example", rangemode="tozero")
    ok = "byte-exact" if r.get("roundtrip_ok") else "NOT exact"
    return [Panel("Model vs classical compressors", f"{r['n_examples']:,} fresh examples; the model's range code "
                  f"(round trip {ok}) against general-purpose compressors and the floor. Lower is better.", fig,
                  "compare")]


def sweep_sections(path: Path) -> list:
    t = members(path)
    x, y, f = sweep_axes(path, t)
    groups = cells(t, [f, y, x])
    facets = sorted({k[0] for k in groups}, key=lambda v: (v is None, v))
    xs, ys = sorted(set(t[x])), sorted(set(t[y])) if y else [None]
    items: list = [Raw(f"<p>{len(t['member'])} models, each its own GPT. The gap is the held-out loss above the "
                       "entropy floor, in percent of the floor (0% = a perfect model of the generator).</p>")]
    for fv in facets:
        z = np.full((len(ys), len(xs)), np.nan)
        hover = [[""] * len(xs) for _ in ys]
        for (gf, gy, gx), idx in groups.items():
            if gf == fv:
                g = [t["gap_pct"][i] for i in idx if t["gap_pct"][i] is not None]
                if g:
                    z[ys.index(gy), xs.index(gx)] = median(g)
                    hover[ys.index(gy)][xs.index(gx)] = (f"median gap {median(g):.1f}% over {len(g)} seed(s): "
                                                         + ", ".join(f"{v:.1f}%" for v in g))
        fig = go.Figure(go.Heatmap(z=z, x=[fmt(v) for v in xs], y=[fmt(v) for v in ys], colorscale="Viridis_r",
                                   texttemplate="%{z:.1f}%", customdata=hover, colorbar={"title": {"text": "gap %"}},
                                   hovertemplate="%{customdata}<extra></extra>"))
        style(fig, f"{f} = {fv}" if f else None, 260 + 30 * len(ys))
        fig.update_xaxes(title_text=x, type="category")
        fig.update_yaxes(title_text=y or "", type="category")
        items.append(Panel("Gap to the entropy floor per grid cell", "Median over seeds; lower (lighter) is closer "
                           "to the floor.", fig, "gap" if fv == facets[0] else None))
    cols = [c for c in (f, y, x) if c]
    rows = sorted(([t["group"][i], t["seed"][i], *(t[c][i] for c in cols), t["gap_pct"][i], t["val_loss"][i],
                    t["exact_match"][i], t.get("final_bits_per_example", [None] * (i + 1))[i]]
                   for i in range(len(t["member"]))), key=lambda r: (r[-4] is None, r[-4]))
    items.append(Panel("Every model, best first", "gap %: held-out loss above the floor; loss in nats per token.",
                       Raw(table(["group", "seed", *cols, "gap %", "held-out loss", "exact match", "bits / example"],
                                 rows)), wide=True))
    return items
