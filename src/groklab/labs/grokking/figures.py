"""Grokking figures: curves with milestones, weight heatmaps over training, Fourier spectrum,
distribution of step_generalized. All read from the run folder, so they can be rebuilt later."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from groklab import plot
from groklab.labs.grokking import fourier


def curves(steps, hist, summaries, out: Path, title: str) -> Path:
    """Train/test accuracy and loss vs step (log axis) per member, milestones marked."""
    fig, axes = plot.subplots(1, 2, w=5.2)
    ax_acc, ax_loss = axes[0]
    m = hist["train_acc"].shape[0]
    alpha = 1.0 if m == 1 else max(0.15, 1.5 / m)
    for i in range(m):
        lab = (lambda s: s) if i == 0 else (lambda s: None)
        ax_acc.plot(steps, hist["train_acc"][i], color=plot.TRAIN, alpha=alpha, lw=1, label=lab("train"))
        ax_acc.plot(steps, hist["test_acc"][i], color=plot.TEST, alpha=alpha, lw=1, label=lab("test"))
        ax_loss.plot(steps, hist["train_loss"][i], color=plot.TRAIN, alpha=alpha, lw=1, label=lab("train"))
        ax_loss.plot(steps, hist["test_loss"][i], color=plot.TEST, alpha=alpha, lw=1, label=lab("test"))
    for i, s in enumerate(summaries):
        first = i == 0
        if s["step_memorized"] is not None:
            ax_acc.axvline(s["step_memorized"], color=plot.TRAIN, ls=":", alpha=alpha,
                           label="memorized" if first else None)
        if s["step_generalized"] is not None:
            ax_acc.axvline(s["step_generalized"], color=plot.TEST, ls="--", alpha=alpha,
                           label="generalized" if first else None)
    for ax in (ax_acc, ax_loss):
        plot.symlog_steps(ax)
        ax.legend(loc="best")
    ax_acc.set_ylabel("accuracy")
    ax_acc.set_ylim(-0.02, 1.02)
    ax_loss.set_yscale("log")
    ax_loss.set_ylabel("loss")
    ax_acc.set_title(f"{title}: accuracy")
    ax_loss.set_title(f"{title}: loss")
    return plot.save(fig, out)


def _sorted_neurons(w_final: np.ndarray, threshold: float) -> np.ndarray:
    nf = fourier.neuron_frequencies(w_final, threshold)
    return np.lexsort((nf["phase"], nf["top"]))


def pick_snapshots(steps: list[int], summary: dict | None, n: int = 6) -> list[int]:
    """Indices of snapshots to show: start, memorized, on the way, just before and after generalizing,
    final — or evenly spread when the member never generalized."""
    last = len(steps) - 1
    mem, gen = (summary or {}).get("step_memorized"), (summary or {}).get("step_generalized")
    if mem is None or gen is None:
        return sorted(set(np.linspace(0, last, min(n, len(steps))).round().astype(int).tolist()))

    def at(step):  # last snapshot at or before `step`
        return max([i for i, s in enumerate(steps) if s <= step] or [0])
    mid = int(np.sqrt(max(mem, 1) * max(gen, 1)))
    return sorted({0, at(mem), at(mid), at(gen * 0.8), at(gen), last})


def weight_heatmaps(snaps: list[tuple[int, np.ndarray]], out: Path, threshold: float, title: str,
                    summary: dict | None = None) -> Path:
    """Collapsed input weights (token × neuron) at several snapshot steps, neurons sorted by their
    final dominant frequency then phase: noise at first, periodic bands after generalizing (PAIR)."""
    pick = [snaps[i] for i in pick_snapshots([s for s, _ in snaps], summary)]
    order = _sorted_neurons(snaps[-1][1], threshold)
    fig, axes = plot.subplots(1, len(pick), w=2.4, h=3.4)
    for ax, (step, w) in zip(axes[0], pick):
        w = w[:, order]
        v = np.abs(w).max() or 1.0
        ax.imshow(w, aspect="auto", cmap="RdBu", vmin=-v, vmax=v, interpolation="nearest")
        ax.set_title(f"step {step}")
        ax.set_xlabel("neuron (by freq)")
        ax.grid(False)
    axes[0][0].set_ylabel("token")
    fig.suptitle(f"{title}: input weights emb[i]·W (member 0)")
    return plot.save(fig, out)


def spectrum_figure(w: np.ndarray, out: Path, title: str, key: list[int]) -> Path:
    """Norm of the collapsed input weights on each Fourier frequency, key frequencies highlighted."""
    spec = fourier.spectrum(w)
    ks = np.arange(1, len(spec) + 1)
    fig, axes = plot.subplots(1, 1, w=6.5, h=3)
    ax = axes[0][0]
    colors = [plot.TEST if k in key else "#999999" for k in ks]
    ax.bar(ks, spec, color=colors)
    ax.set_xlabel("frequency k (cos/sin 2πki/p)")
    ax.set_ylabel("norm")
    ax.set_title(f"{title}: Fourier spectrum of the embedding (Gini {fourier.gini(spec):.2f}); "
                 f"key {key}")
    return plot.save(fig, out)


def parity_weights(snaps: list[tuple[int, np.ndarray]], k_bits: int, out: Path, title: str,
                   n_bits: int | None = None) -> Path:
    """Mean |weight| per input bit over training: generalizing nets concentrate on the first k bits."""
    steps = [s for s, _ in snaps]
    mass = np.stack([np.abs(w).mean(1) for _, w in snaps])  # (S, d_in)
    fig, axes = plot.subplots(1, 2, w=5.0)
    ax, ax2 = axes[0]
    n_bits = n_bits or mass.shape[1]
    for j in range(mass.shape[1]):
        if j >= n_bits:  # the constant bias column
            ax.plot(steps, mass[:, j], color="black", ls="--", lw=1, label="bias column")
            continue
        rel = j < k_bits
        ax.plot(steps, mass[:, j], color=plot.TRAIN if rel else "#999999", lw=1.5 if rel else 0.7,
                label=("relevant bits" if j == 0 else None) if rel else ("other bits" if j == k_bits else None))
    plot.symlog_steps(ax)
    ax.set_ylabel("mean |w| into hidden layer")
    ax.legend()
    ax.set_title(f"{title}: weight mass per input bit")
    im = ax2.imshow(np.abs(snaps[-1][1]).T, aspect="auto", cmap="viridis", interpolation="nearest")
    ax2.set_xlabel("input bit")
    ax2.set_ylabel("hidden neuron")
    ax2.set_title(f"|W1| at step {steps[-1]}")
    ax2.grid(False)
    fig.colorbar(im, ax=ax2)
    return plot.save(fig, out)


def step_distribution(summaries: list[dict], out: Path, title: str) -> Path:
    """Histogram of step_generalized (and step_memorized) across members."""
    gen = [s["step_generalized"] for s in summaries if s["step_generalized"] is not None]
    mem = [s["step_memorized"] for s in summaries if s["step_memorized"] is not None]
    fig, axes = plot.subplots(1, 1, w=6, h=3.2)
    ax = axes[0][0]
    allv = [v for v in gen + mem if v > 0] or [1]
    bins = np.geomspace(max(1, min(allv)), max(allv) * 1.01 + 1, 25)
    if mem:
        ax.hist(np.maximum(mem, 1), bins=bins, color=plot.TRAIN, alpha=0.6, label="step_memorized")
    if gen:
        ax.hist(np.maximum(gen, 1), bins=bins, color=plot.TEST, alpha=0.6, label="step_generalized")
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("members")
    n_never = len(summaries) - len(gen)
    ax.set_title(f"{title}: {len(gen)}/{len(summaries)} generalized ({n_never} never)")
    if mem or gen:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no member memorized or generalized yet", transform=ax.transAxes, ha="center")
    return plot.save(fig, out)


def progress_figure(steps, hist, summaries, out: Path, title: str) -> Path:
    """Nanda et al.'s progress measures for member 0: train/test, restricted and excluded loss; Gini of
    the embedding's Fourier norms; total squared weight. Vertical lines: train acc saturates
    (step_memorized), restricted loss drops, test loss drops (progress.drop_step)."""
    fig, axes = plot.subplots(1, 3, w=4.6)
    ax_l, ax_g, ax_w = axes[0]

    def line(ax, name, **kw):
        if name in hist:
            v = hist[name][0]
            ok = ~np.isnan(v)
            ax.plot(np.asarray(steps)[ok], v[ok], lw=1.2, **kw)
    line(ax_l, "train_loss", color=plot.TRAIN, label="train")
    line(ax_l, "test_loss", color=plot.TEST, label="test")
    line(ax_l, "restricted_loss", color="#2ca02c", label="restricted (train)")
    line(ax_l, "excluded_loss", color="#9467bd", label="excluded (train)")
    line(ax_g, "fourier_gini", color="#333333", label="Gini of Fourier norms")
    line(ax_w, "sum_sq_weights", color="#8c564b", label="Σ w²")
    s = summaries[0]
    marks = [(s.get("step_memorized"), ":", plot.TRAIN, "train acc saturates"),
             (s.get("step_restricted_drop"), "-.", "#2ca02c", "restricted loss drops"),
             (s.get("step_test_loss_drop"), "--", plot.TEST, "test loss drops")]
    for ax in (ax_l, ax_g, ax_w):
        for step, ls, color, label in marks:
            if step is not None:
                ax.axvline(step, ls=ls, color=color, lw=1, label=f"{label} ({step})" if ax is ax_l else None)
        plot.symlog_steps(ax)
        ax.legend(loc="best")
    ax_l.set_yscale("log")
    ax_l.set_ylabel("loss")
    ax_g.set_ylabel("Gini")
    ax_w.set_ylabel("sum of squared weights")
    ax_l.set_title(f"{title}: losses (member 0)")
    ax_g.set_title("embedding Fourier sparsity")
    ax_w.set_title("total squared weight")
    return plot.save(fig, out)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy()


def weight_animation(snaps: list[tuple[int, np.ndarray]], out: Path, threshold: float, title: str,
                     fps: int = 4) -> Path:
    """GIF of the input-weight heatmap across all snapshots (neurons sorted by final frequency)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    order = _sorted_neurons(snaps[-1][1], threshold)
    fig, axes = plot.subplots(1, 1, w=4.0, h=4.2)
    ax = axes[0][0]
    ax.grid(False)
    w0 = snaps[0][1][:, order]
    v = max(np.abs(w).max() for _, w in snaps) or 1.0
    im = ax.imshow(w0, aspect="auto", cmap="RdBu", vmin=-v, vmax=v, interpolation="nearest")
    ax.set_xlabel("neuron (sorted by final frequency)")
    ax.set_ylabel("input (token or bit)")

    def frame(i):
        step, w = snaps[i]
        im.set_data(w[:, order])
        ax.set_title(f"{title}: step {step}")
        return (im,)

    anim = FuncAnimation(fig, frame, frames=len(snaps), blit=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.gif")
    anim.save(tmp, writer=PillowWriter(fps=fps))
    plot.plt.close(fig)
    tmp.replace(out)
    return out
