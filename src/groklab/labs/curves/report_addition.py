"""Report sections of `curves scaling` with scaling.source = addition (scaling_addition.py), from the run folder:
held-out bits per example against parameters with the entropy floor and the fitted E, the validation loss of every
width against steps (where each one stopped), and the per-width table. report_more.scaling_sections adds the fits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pyarrow.parquet as pq

from groklab import plot
from groklab.labs.curves.report import logx
from groklab.report import Panel, style
from groklab.report.data import Raw, table


def words(s: dict) -> str:
    fc = s.get("floor_check")
    e = (f" Fitted E = {fc['E']:.4f} nats per target ({fc['E_bits_per_example']:.2f} bits per example) against the "
         f"floor {fc['floor']:.4f} ({fc['floor_bits_per_example']:.2f}): "
         f"{'at or above' if fc['at_or_above_floor'] else 'below'} it." if fc else "")
    return (f'<div class="gl-words">{len(s["per_width"]) * s["seeds"]} trainings of the addition GPT '
            f"({s['n_digits']}-digit operands, {s['model']}) over widths {s['widths']} × {s['seeds']} seed(s), each on "
            f"fresh examples until its held-out loss plateaued; loss = {s['loss']}. Bigger model, fewer bits at every "
            f"step: {'yes' if s['monotone'] else 'no'} for the held-out loss"
            + (f", {'yes' if s['preq_monotone'] else 'no'} for the prequential code of the first "
               f"{s['preq_examples']:,} stream examples (training as lossless compression)" if "preq_monotone" in s
               else "") + f".{e}</div>")


def _bits(s: dict) -> go.Figure:
    pw = s["per_width"]
    fig = go.Figure()
    fig.add_scatter(x=[p["params"] for p in pw], y=[p["bits_per_example"] for p in pw], mode="lines+markers",
                    name="held-out (best evaluation)", line={"color": plot.TEST},
                    customdata=[[p["width"], p["steps"], "yes" if p["converged"] else "no (cap)"] for p in pw],
                    hovertemplate="width %{customdata[0]} (N = %{x:,}): %{y:.3f} bits per example<br>steps "
                                  "%{customdata[1]:,.0f}, converged %{customdata[2]}<extra></extra>")
    if "preq_bits_per_example" in pw[0]:
        fig.add_scatter(x=[p["params"] for p in pw], y=[p["preq_bits_per_example"] for p in pw], mode="lines+markers",
                        name=f"prequential code, first {s['preq_examples']:,} examples", line={"color": plot.TRAIN,
                        "dash": "dash"}, hovertemplate="N = %{x:,}: %{y:.3f} bits per example while learning"
                        "<extra></extra>")
    fig.add_hline(y=s["floor_bits_per_example"], line={"color": "black", "dash": "dash"},
                  annotation_text=f"entropy floor {s['floor_bits_per_example']:.2f}")
    fc = s.get("floor_check")
    if fc:
        fig.add_hline(y=fc["E_bits_per_example"], line={"color": "#2ca02c", "dash": "dot"},
                      annotation_text=f"fitted E {fc['E_bits_per_example']:.2f}", annotation_position="bottom right")
    logx(style(fig, None, 400), "parameters N (log scale)")
    return fig.update_yaxes(title_text="bits per example")


def _curves(path: Path, s: dict) -> go.Figure:
    m = pq.read_table(path / "metrics.parquet").to_pydict()
    w, seed, step, metric, val = (np.array(m[k]) for k in ("width", "seed", "step", "metric", "value"))
    fig = go.Figure()
    first = seed.min()
    for wv in s["widths"]:
        sel = (w == wv) & (metric == "val_loss") & (seed == first)
        fig.add_scatter(x=np.maximum(step[sel], 1), y=val[sel], mode="lines", name=f"width {wv}",
                        hovertemplate=f"width {wv}: step %{{x:,}}, %{{y:.4f}} nats<extra></extra>")
    fig.add_hline(y=s["floor"], line={"color": "black", "dash": "dash"}, annotation_text="floor")
    logx(style(fig, None, 400), "step (log scale)")
    return fig.update_yaxes(title_text="validation loss (nats per target)")


def sections(path: Path, s: dict) -> list:
    rows = [[p["width"], f"{p['params']:,}", f"{p['lr']:.3g}", f"{p['steps']:,.0f}",
             "yes" if p["converged"] else "no (cap)", p["bits_per_example"], p["gap_bits"], f"{p['exact_match']:.1%}"]
            for p in s["per_width"]]
    return [Raw(words(s)),
            Panel("Bits per example against model size", "Held-out code length of each width (at its plateau, or at "
                  "the step cap) against the exact entropy floor of the generator; the dotted line is E of "
                  "L(N) = E + A/N^α.", _bits(s), "curves-addition"),
            Panel("Training to the plateau", "Validation loss per width (first seed); each line ends where the plateau "
                  "rule stopped it or at the step cap.", _curves(path, s), "curves-addition-steps"),
            Panel("Per width", "Means over seeds; gap = bits per example above the floor.", Raw(table(
                ["width", "parameters", "lr", "steps", "converged", "bits/example", "gap", "exact match"], rows,
                left=1)), wide=True)]
