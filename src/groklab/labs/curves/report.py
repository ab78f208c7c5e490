"""The curves lab's part of `groklab report`: the run's figures as plotly charts from its tables, and its numbers."""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go

from groklab import store
from groklab.report import Panel, style
from groklab.report.data import Raw, table


def headline(path: Path, summary: dict) -> str:
    if summary.get("command") == "double-descent":
        pk = summary["peak"]
        return f"peak {pk['test_error']:.3g} at {pk['x']} (threshold {summary['interpolation_threshold']})"
    if summary.get("command") == "baselines":
        return ", ".join(f"{m['model']} {m['mean']:.0%}" for m in summary["models"])
    return summary.get("preset") or "–"


def _curve(s: dict) -> go.Figure:
    fig = go.Figure()
    pts = s["points"]
    x = [p["params"] for p in pts]
    fig.add_scatter(x=x, y=[p["train_error"] for p in pts], mode="lines+markers", name="train")
    fig.add_scatter(x=x, y=[p["test_error"] for p in pts], mode="lines+markers", name="test")
    log_y = s["kind"] == "features"
    fig.update_layout(xaxis={"type": "log", "title": "parameters"},
                      yaxis={"type": "log" if log_y else "linear", "title": "error"})
    return style(fig)


def sections(path: Path) -> list:
    s = store.read_summary(path)
    items = []
    if s.get("command") == "double-descent":
        items.append(Panel("Test error against model size", f"Interpolation threshold {s['x_name']} = "
                           f"{s['interpolation_threshold']}; the test error peaks there and falls again.", _curve(s),
                           div_id="curves-dd", wide=True))
    scalars = [[k, v] for k, v in s.items() if isinstance(v, (int, float, str)) and k != "run_dir"]
    items.append(Panel("Summary", "The numbers the command printed.", Raw(table(["field", "value"], scalars, left=1))))
    return items
