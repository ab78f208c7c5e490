"""The capacity lab's figures, drawn from a run folder's tables alone (`groklab runs figures RUN`):
search_path.png (every training's n against its round, fitted / not fitted, each seed's final bracket) and
train_curves.png (train accuracy against epochs, one panel per round, one line per training)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from groklab import plot, store

FIT, NOFIT = "#2ca02c", "#d62728"


def search_path(summary: dict, rows: list[dict], out: Path) -> Path:
    fig, axes = plot.subplots(1, 1, w=5.6, h=3.8)
    ax = axes[0][0]
    seeds = sorted({r["seed"] for r in rows})
    off = {s: (i - (len(seeds) - 1) / 2) * 0.08 for i, s in enumerate(seeds)}  # separate the seeds a little
    for fitted, color, marker, label in ((True, FIT, "o", "fitted (100% train acc.)"),
                                         (False, NOFIT, "x", "not fitted (converged or capped)")):
        pts = [(r["round"] + off[r["seed"]], r["n"]) for r in rows if r["fitted"] == fitted]
        if pts:
            ax.scatter(*zip(*pts), c=color, marker=marker, s=28, label=label, zorder=3)
    last = max((r["round"] for r in rows), default=1)
    top = max(r["n"] for r in rows)
    for i, seed in enumerate(seeds):  # each seed's bracket [lo, hi] after round rd, drawn behind round rd + 1
        for rd in range(1, last + 1):
            done = [r for r in rows if r["seed"] == seed and r["round"] <= rd]
            lo = max((r["n"] for r in done if r["fitted"]), default=None)
            hi = min((r["n"] for r in done if not r["fitted"] and r["n"] > (lo or 0)), default=None)
            ax.fill_between([rd + 0.6, rd + 1.4], lo or 1, hi or top, color=f"C{i}", alpha=0.15, lw=0,
                            label=f"seed {seed}: bracket so far" if rd == 1 else None)
    if summary.get("emc"):
        ax.axhline(summary["emc"], color="0.5", ls="--", lw=1,
                   label=f"EMC {summary['emc']:.0f} ± {summary.get('emc_std') or 0:.0f}")
    ax.set_yscale("log")
    ax.set_xlabel("round")
    ax.set_ylabel("training samples n")
    ax.set_xticks(range(1, last + 2), [*map(str, range(1, last + 1)), "final"])
    ax.legend(loc="best")
    ax.set_title(f"{summary.get('preset', '')}: EMC search, {summary.get('trainings', len(rows))} trainings, "
                 f"{summary.get('params', 0):,} parameters")
    return plot.save(fig, out / "search_path.png")


def train_curves(summary: dict, rows: list[dict], curves: dict[str, np.ndarray], out: Path) -> Path:
    rounds = sorted({r["round"] for r in rows}) or [1]
    ncols = min(4, len(rounds))
    nrows = -(-len(rounds) // ncols)
    fig, axes = plot.subplots(nrows, ncols, w=3.2, h=2.6)
    sel = np.asarray(curves["metric"]) == "train_acc"
    member, epoch, value = (np.asarray(curves[k])[sel] for k in ("member", "epoch", "value"))
    ns = [r["n"] for r in rows]
    lo, hi = np.log(min(ns, default=1)), np.log(max(ns, default=2))
    cmap = plot.plt.get_cmap("viridis")
    for j, rd in enumerate(rounds):
        ax = axes[j // ncols][j % ncols]
        for r in (r for r in rows if r["round"] == rd):
            m = member == r["member"]
            color = cmap((np.log(r["n"]) - lo) / max(hi - lo, 1e-9))
            ax.plot(epoch[m], value[m], color=color, ls="-" if r["fitted"] else "--", lw=1,
                    label=f"n={r['n']}" if r["seed"] == rows[0]["seed"] else None)
        ax.set_xscale("symlog", linthresh=1)
        ax.set_ylim(0, 1.02)
        ax.set_title(f"round {rd}", fontsize=9)
        ax.set_xlabel("epoch")
        if j % ncols == 0:
            ax.set_ylabel("train accuracy")
        ax.legend(fontsize=6, loc="lower right")
    for j in range(len(rounds), nrows * ncols):
        axes[j // ncols][j % ncols].axis("off")
    fig.suptitle(f"{summary.get('preset', '')}: train accuracy per candidate (solid: fitted, dashed: not)")
    return plot.save(fig, out / "train_curves.png")


def draw(summary: dict, rows: list[dict], curves: dict[str, np.ndarray], out: Path) -> list[Path]:
    if not rows:
        return []
    return [search_path(summary, rows, out), train_curves(summary, rows, curves, out)]


def redraw(path: Path) -> list[Path]:
    """Both figures of a finished run from its folder (summary.json, members.parquet, metrics.parquet)."""
    import pyarrow.parquet as pq

    path = Path(path)
    summary = store.read_summary(path)
    t = pq.read_table(path / "members.parquet").to_pydict()
    rows = [dict(zip(t, vals)) for vals in zip(*t.values())]
    curves = store.read_metrics(path).to_pydict()
    return draw(summary, rows, curves, path / "figures")
