"""Figures of a compression run, drawn from its metrics.parquet (so they can be rebuilt later)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from groklab import plot, store
from groklab.data.addition import Addition

FLOOR = "#2ca02c"


def _series(t: dict, metric: str) -> tuple[np.ndarray, np.ndarray]:
    m = np.array(t["metric"]) == metric
    return np.array(t["step"])[m], np.array(t["value"])[m]


def target_labels(fmt: Addition) -> list[str]:
    """Name of each target position: a1..an, +, b1..bn, =, c1..c(n+1), e."""
    n = fmt.n_digits
    return ([f"a{i + 1}" for i in range(n)] + ["+"] + [f"b{i + 1}" for i in range(n)] + ["="]
            + [f"c{i + 1}" for i in range(n + 1)] + ["e"])


def draw_run(path: Path, fmt: Addition, title: str) -> list[Path]:
    t = store.read_metrics(path).to_pydict()
    out = Path(path) / "figures"
    return [loss_curves(t, fmt, out / "loss.png", title), exact_match(t, out / "exact_match.png", title),
            position_heatmap(t, fmt, out / "position_loss.png", title),
            decomposition(t, fmt, out / "decomposition.png", title)]


def redraw(path: Path) -> list[Path]:
    """The figures of a `compress train` run, rebuilt from its folder alone."""
    from groklab import GroklabError
    from groklab.config import load_run_config

    path = Path(path)
    if not (path / "model.safetensors").is_file():
        raise GroklabError(f"RUN: {path} is not a `compress train` run; its figures are redrawn by rerunning it")
    cfg = load_run_config(path)
    return draw_run(path, cfg.fmt(), cfg.name)


def loss_curves(t: dict, fmt: Addition, path: Path, title: str) -> Path:
    fig, ax = plot.subplots(w=6)
    a = ax[0, 0]
    s, v = _series(t, "train_loss")
    k = max(1, len(v) // 400)  # smooth the per-step prequential loss for display
    a.plot(s[: len(v) // k * k].reshape(-1, k).mean(1), v[: len(v) // k * k].reshape(-1, k).mean(1),
           color=plot.TRAIN, lw=1, label="prequential (fresh batch, before update)")
    s, v = _series(t, "val_loss")
    a.plot(s, v, color=plot.TEST, marker=".", label="held-out")
    a.axhline(fmt.floor(), color=FLOOR, ls="--", label=f"entropy floor {fmt.floor():.4f}")
    a.set_ylim(fmt.floor() - 0.05, min(3.0, max(v) + 0.05))
    a.set_ylabel("loss (nats / token)")
    a.set_xlabel("step")
    a.set_title(f"{title}: next-token loss vs the floor")
    a.legend()
    return plot.save(fig, path)


def exact_match(t: dict, path: Path, title: str) -> Path:
    fig, ax = plot.subplots(w=6)
    s, v = _series(t, "exact_match")
    ax[0, 0].plot(s, v, color=plot.TEST, marker=".")
    ax[0, 0].set_ylim(-0.02, 1.02)
    ax[0, 0].set_xlabel("step")
    ax[0, 0].set_ylabel("exact match (whole answer + e)")
    ax[0, 0].set_title(f"{title}: held-out exact match")
    return plot.save(fig, path)


def _position_grid(t: dict, n_targets: int) -> tuple[np.ndarray, np.ndarray]:
    m = np.array(t["metric"]) == "pos_loss"
    steps = np.array(t["step"])[m]
    pos, val = np.array(t["position"])[m], np.array(t["value"])[m]
    uniq = np.unique(steps)
    grid = np.full((len(uniq), n_targets), np.nan)
    grid[np.searchsorted(uniq, steps), pos] = val
    return uniq, grid  # (L,), (L, n_targets)


def position_heatmap(t: dict, fmt: Addition, path: Path, title: str) -> Path:
    """Epistemic loss (loss minus the floor) per target position over training: which answer digits
    'emerge' when."""
    steps, grid = _position_grid(t, fmt.n_targets)
    gap = np.clip(grid - fmt.floor_per_target()[None], 1e-4, None)
    fig, ax = plot.subplots(w=7, h=4)
    a = ax[0, 0]
    im = a.imshow(np.log10(gap.T), aspect="auto", cmap="magma", origin="upper", interpolation="nearest",
                  extent=(-0.5, len(steps) - 0.5, fmt.n_targets - 0.5, -0.5))
    ticks = np.linspace(0, len(steps) - 1, min(8, len(steps))).astype(int)
    a.set_xticks(ticks, [str(steps[i]) for i in ticks])
    a.set_yticks(range(fmt.n_targets), target_labels(fmt), fontsize=6)
    a.set_xlabel("step")
    a.set_title(f"{title}: log10(loss − floor) per target position")
    a.grid(False)
    fig.colorbar(im, ax=a)
    return plot.save(fig, path)


def decomposition(t: dict, fmt: Addition, path: Path, title: str) -> Path:
    """Total code length = aleatoric (the floor, unlearnable) + epistemic (the gap, learnable): per
    position at the end of training, and summed per example over training."""
    steps, grid = _position_grid(t, fmt.n_targets)
    fp = fmt.floor_per_target()
    bits = 1 / math.log(2)
    fig, ax = plot.subplots(1, 2, w=5.5)
    a = ax[0, 0]
    x = np.arange(fmt.n_targets)
    a.bar(x, fp * bits, color=FLOOR, label="aleatoric (floor)")
    a.bar(x, np.clip(grid[-1] - fp, 0, None) * bits, bottom=fp * bits, color=plot.TRAIN, label="epistemic (gap)")
    a.set_xticks(x, target_labels(fmt), fontsize=6, rotation=90)
    a.set_ylabel("bits")
    a.set_title(f"final model, step {steps[-1]}")
    a.legend()
    b = ax[0, 1]
    ale = np.full(len(steps), fp.sum() * bits)
    epi = np.clip(grid - fp[None], 0, None).sum(1) * bits
    b.fill_between(steps, 0, ale, color=FLOOR, alpha=0.6, label=f"aleatoric {fp.sum() * bits:.2f} bits")
    b.fill_between(steps, ale, ale + epi, color=plot.TRAIN, alpha=0.6, label="epistemic")
    b.set_yscale("symlog", linthresh=1)
    b.set_xlabel("step")
    b.set_ylabel("bits per example (held-out)")
    b.set_title(f"{title}: code length = aleatoric + epistemic")
    b.legend()
    return plot.save(fig, path)
