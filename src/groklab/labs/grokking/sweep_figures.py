"""Phase diagrams of a sweep: outcome fractions per cell and median step_generalized per cell."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from groklab import plot

COLORS = {"fail": "#9e9e9e", "memorize": "#d62728", "direct": "#2ca02c", "grok": "#1f77b4"}


def _cells(t: dict, xcol: str, ycol: str, fcol: str | None):
    xs = sorted(set(t[xcol]))
    ys = sorted(set(t[ycol]))
    fs = sorted(set(t[fcol])) if fcol else [None]
    return xs, ys, fs


def _label(ax, xs: list, ys: list, xcol: str, title: str) -> None:
    ax.set_xticks(range(len(xs)), [f"{v:g}" for v in xs], rotation=45)
    ax.set_yticks(range(len(ys)), [f"{v:g}" for v in ys])
    ax.set_xlabel(xcol)
    ax.grid(False)
    ax.set_title(title)


def phase_outcomes(t: dict, xcol: str, ycol: str, fcol: str | None, out: Path, title: str) -> Path:
    """PAIR's picture: per cell, a bar split into the fraction of seeds in each outcome."""
    xs, ys, fs = _cells(t, xcol, ycol, fcol)
    fig, axes = plot.subplots(1, len(fs), w=3.2, h=3.2)
    n = len(t["outcome"])
    for ax, f in zip(axes[0], fs):
        for xi, xv in enumerate(xs):
            for yi, yv in enumerate(ys):
                idx = [i for i in range(n) if t[xcol][i] == xv and t[ycol][i] == yv and (f is None or t[fcol][i] == f)]
                if not idx:
                    continue
                left = xi - 0.45
                for o, c in COLORS.items():
                    frac = sum(t["outcome"][i] == o for i in idx) / len(idx)
                    ax.add_patch(plot.plt.Rectangle((left, yi - 0.4), 0.9 * frac, 0.8, color=c, lw=0))
                    left += 0.9 * frac
        ax.set_xlim(-0.5, len(xs) - 0.5)
        ax.set_ylim(-0.5, len(ys) - 0.5)
        _label(ax, xs, ys, xcol, f"{fcol} = {f}" if fcol else title)
    axes[0][0].set_ylabel(ycol)
    handles = [plot.plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    fig.legend(handles, list(COLORS), loc="upper center", ncol=4, bbox_to_anchor=(0.5, 1.02))
    fig.suptitle(f"{title}: fraction of seeds per outcome", y=1.08)
    return plot.save(fig, out)


def phase_steps(t: dict, xcol: str, ycol: str, fcol: str | None, out: Path, title: str) -> Path:
    """Median step_generalized per cell (among seeds that generalized; blank if none)."""
    xs, ys, fs = _cells(t, xcol, ycol, fcol)
    fig, axes = plot.subplots(1, len(fs), w=3.2, h=3.0, layout="constrained")
    n = len(t["outcome"])
    vals = [v for v in t["step_generalized"] if v is not None]
    vmin, vmax = (max(1, min(vals)), max(vals)) if vals else (1, 10)
    im = None
    for ax, f in zip(axes[0], fs):
        grid = np.full((len(ys), len(xs)), np.nan)
        for xi, xv in enumerate(xs):
            for yi, yv in enumerate(ys):
                v = [t["step_generalized"][i] for i in range(n) if t[xcol][i] == xv and t[ycol][i] == yv
                     and (f is None or t[fcol][i] == f) and t["step_generalized"][i] is not None]
                if v:
                    grid[yi, xi] = np.median(v)
        im = ax.imshow(grid, origin="lower", cmap="viridis", aspect="auto",
                       norm=plot.matplotlib.colors.LogNorm(vmin=vmin, vmax=max(vmax, vmin + 1)))
        _label(ax, xs, ys, xcol, f"{fcol} = {f}" if fcol else title)
    axes[0][0].set_ylabel(ycol)
    fig.colorbar(im, ax=list(axes[0]), label="median step_generalized")
    fig.suptitle(f"{title}: median step to {'≥'}95% test")
    return plot.save(fig, out)


def draw(spec, t: dict, keys: list[str], column, out: Path) -> list[Path]:
    x = spec.x or keys[0]
    y = spec.y or (keys[1] if len(keys) > 1 else None)
    if y is None:  # 1-D sweep: use the seed as the y axis
        y = "seed"
        ycol = "seed"
    else:
        ycol = column(y, keys)
    xcol, fcol = column(x, keys), column(spec.facet, keys) if spec.facet else None
    title = spec.name
    return [phase_outcomes(t, xcol, ycol, fcol, out / "phase_outcomes.png", title),
            phase_steps(t, xcol, ycol, fcol, out / "phase_steps.png", title)]
