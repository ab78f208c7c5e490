"""One report page: plotly.js embedded once in <head>, then the lab's items in order. An item is a `Panel`
(title, a one-line caption saying what to see, a plotly figure or an HTML fragment), a `Controls` bar (a
step slider, a play button and a member picker that move several figures in step), a `Drilldown` (click
a point of one figure to fill another), a bare HTML fragment or a bare plotly figure."""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field

import numpy as np

from groklab.report.assets import CSS, JS

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"]}
FONT = {"family": "system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif", "size": 12}


@dataclass
class Panel:
    title: str
    caption: str  # one line: what to look at
    body: object  # a plotly Figure or an HTML fragment
    div_id: str | None = None  # element id of the figure (explorers and tests find it by this)
    wide: bool = False  # span the whole page width instead of half


@dataclass
class Controls:
    """A slider over `labels` (one per frame), a play button (never plays on load) and, with more than one
    member, a picker. Targets say what each frame changes (see `z`, `y`, `vline`, `member_traces`, `html`)."""

    id: str
    labels: list[str]  # one per frame, e.g. "step 1200"
    members: list[str] = field(default_factory=list)  # picker entries ([] or one: no picker)
    targets: list[dict] = field(default_factory=list)
    start: int = -1  # frame shown first (-1: the last)
    note: str = ""  # one line under the bar

    def z(self, div: str, frames: np.ndarray, trace: int = 0, symmetric: bool = False) -> None:
        """frames (members, F, rows, cols) become the z of heatmap `trace` of figure `div`."""
        m, f, r, c = frames.shape
        self.targets.append({"kind": "z", "div": div, "trace": trace, "rows": r, "cols": c, "frames": f,
                             "symmetric": symmetric, "data": b64(frames)})

    def y(self, div: str, frames: np.ndarray, trace: int = 0) -> None:
        """frames (members, F, n) become the y of (bar or line) `trace` of figure `div`."""
        m, f, n = frames.shape
        self.targets.append({"kind": "y", "div": div, "trace": trace, "n": n, "frames": f, "data": b64(frames)})

    def vline(self, div: str, xs: list[float], trace: int) -> None:
        """Line `trace` of `div` (drawn with two points) moves to x = xs[frame]."""
        self.targets.append({"kind": "vline", "div": div, "trace": trace, "x": [float(x) for x in xs]})

    def member_traces(self, div: str, traces: list[int], per_member: list[list[tuple[list, list]]]) -> None:
        """On picking member i, traces get x, y = per_member[i][j] (curves, milestone lines)."""
        self.targets.append({"kind": "member", "div": div, "traces": traces,
                             "xy": [[[_num(x), _num(y)] for x, y in m] for m in per_member]})

    def html(self, div: str, per_member: list[str]) -> None:
        """Element `div` shows per_member[i] (HTML) while member i is picked."""
        self.targets.append({"kind": "html", "div": div, "html": per_member})

    def spec(self) -> dict:
        return {"id": self.id, "labels": self.labels, "targets": self.targets,
                "start": self.start % len(self.labels)}


@dataclass
class Drilldown:
    """Clicking a point of figure `src` whose customdata[0] is a key of `views` redraws figure `dst` with
    views[key] = {"title": str, "data": [trace dicts]}; `layout` is dst's layout."""

    src: str
    dst: str
    views: dict[str, dict]
    layout: dict
    note_id: str | None = None  # element that shows the picked view's title

    def spec(self) -> dict:
        return {"src": self.src, "dst": self.dst, "views": self.views, "layout": self.layout, "note": self.note_id}


def b64(a: np.ndarray) -> str:
    """float32 little-endian bytes, base64 (decoded in the page by GL.f32)."""
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode()


def _num(v) -> list:
    """A JSON-safe list of numbers (NaN -> null), 5 significant digits."""
    return [None if x is None or not np.isfinite(x) else float(f"{x:.5g}") for x in np.asarray(v, float)]


def style(fig, title: str | None = None, height: int = 360):
    """The one look of report figures: readable fonts, legend above the plot (never over the data)."""
    fig.update_layout(template="plotly_white", height=height, font=FONT, margin={"l": 60, "r": 20, "t": 50, "b": 50},
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
                      title={"text": title, "x": 0, "xanchor": "left", "y": 0.98, "yanchor": "top",
                             "font": {"size": 13}} if title else None)
    return fig


def _figure(fig, div_id: str) -> str:
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOTLY_CONFIG)


def _json_script(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def _controls_html(c: Controls) -> str:
    n = len(c.labels)
    start = c.start % n
    pick = ""
    if len(c.members) > 1:
        opts = "".join(f'<option value="{i}">{html.escape(m)}</option>' for i, m in enumerate(c.members))
        pick = f'<label>member <select class="gl-member" aria-label="member">{opts}</select></label>'
    note = f'<div class="gl-note">{html.escape(c.note)}</div>' if c.note else ""
    return (f'<div class="gl-controls" id="{c.id}"><button type="button" class="gl-play">▶ play</button>'
            f'<input type="range" class="gl-slider" min="0" max="{n - 1}" step="1" value="{start}" '
            f'aria-label="snapshot"><span class="gl-label">{html.escape(c.labels[start])}</span>{pick}{note}</div>')


def render(title: str, intro: str, items: list, plotlyjs: str) -> str:
    """The whole page. `intro` is an HTML fragment under the title (what the run is, in words)."""
    from plotly.basedatatypes import BaseFigure

    body, scripts, k = [], [], 0
    if not any(isinstance(it, (BaseFigure, Controls, Drilldown)) or isinstance(getattr(it, "body", None), BaseFigure)
               for it in items):
        plotlyjs = ""  # a page of tables needs no plotting library
    for it in items:
        if isinstance(it, BaseFigure):
            it = Panel("", "", it)
        if isinstance(it, Panel):
            k += 1
            inner = _figure(it.body, it.div_id or f"fig{k}") if isinstance(it.body, BaseFigure) else str(it.body)
            head = f"<h3>{html.escape(it.title)}</h3>" if it.title else ""
            cap = f'<p class="gl-caption">{html.escape(it.caption)}</p>' if it.caption else ""
            body.append(f'<section class="gl-panel{" wide" if it.wide else ""}">{head}{cap}{inner}</section>')
        elif isinstance(it, Controls):
            body.append(_controls_html(it))
            scripts.append(f"GL.controls({_json_script(it.spec())});")
        elif isinstance(it, Drilldown):
            scripts.append(f"GL.drilldown({_json_script(it.spec())});")
        else:
            body.append(f'<div class="gl-html wide">{it}</div>')
    on_load = "\n".join(scripts)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style>"
            f'<script type="text/javascript">{plotlyjs}</script><script>{JS}</script></head>'
            f'<body><header><h1>{html.escape(title)}</h1>{intro}</header><main class="gl-grid">{"".join(body)}</main>'
            f'<footer>Made by <code>groklab report</code> from the run folder alone; it can be rebuilt at any time. '
            f"Works offline{': plotly.js is embedded in this file' if plotlyjs else ''}.</footer>"
            f'<script>window.addEventListener("load", function () {{\n{on_load}\n}});</script></body></html>\n')
