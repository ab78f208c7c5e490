"""How the compression lab sweeps: every grid point is its own GPT (the stream trainer runs one member), so
no field varies inside an ensemble; the seeds of a point train one after another. A member's row is its
held-out loss against the floor, exact match and code lengths."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from groklab import plot
from groklab.labs.compression.train import LN2, long_rows, train_model
from groklab.stats import median_or_none
from groklab.sweep import GroupResult, LabSweep

SUMMARY_KEYS = ("val_loss", "floor", "gap_pct", "exact_match", "prequential_bits_per_example",
                "final_bits_per_example", "n_params", "train_wall_s")


def train_group(cfg, pts: list[dict], dev, on_progress) -> GroupResult:
    fmt = cfg.fmt()
    rows, tables, wall, steps = [], [], 0.0, cfg.train.steps
    for i, p in enumerate(pts):
        c = copy.deepcopy(cfg)
        c.train.seed = p["seed"]

        def progress(done, _active, i=i):  # one bar over the group's members, trained one after another
            on_progress((i * steps + done) // len(pts), len(pts) - i)

        model, metric_rows, preq_nats, preq_examples, w = train_model(c, dev, progress)
        last = {m: v for (s, m, v, pos) in metric_rows if pos < 0 and m in ("val_loss", "exact_match")}
        rows.append({"val_loss": last["val_loss"], "floor": fmt.floor(),
                     "gap_pct": 100 * (last["val_loss"] / fmt.floor() - 1), "exact_match": last["exact_match"],
                     "prequential_bits_per_example": preq_nats / LN2 / preq_examples,
                     "final_bits_per_example": fmt.bits_per_example(last["val_loss"]),
                     "n_params": model.n_params(), "train_wall_s": round(w, 3)})
        t = long_rows(metric_rows)
        tables.append({"member": np.full(len(t["step"]), i, dtype=np.int64), **t})
        wall += w
    metrics = {k: np.concatenate([t[k] for t in tables]) for k in tables[0]}
    return GroupResult(rows, metrics, len(pts) * steps, wall)


def cost(cfg, n_members: int) -> float:
    """Members x steps x parameters x examples per step."""
    from groklab.labs.compression.train import ensemble

    ens, _ = ensemble(cfg)
    return float(n_members * cfg.train.steps * ens.n_params * cfg.train.batch_size)


def figures(spec, t: dict, keys: list[str], column, out: Path) -> list[Path]:
    """Gap to the entropy floor (median over seeds) against the x axis, one line per y value."""
    x = column(spec.x or keys[0], keys)
    y = column(spec.y, keys) if spec.y else None
    fig, axes = plot.subplots(1, 1, w=5.0, h=3.4)
    ax = axes[0][0]
    for yv in sorted(set(t[y])) if y else [None]:
        xs = sorted({xv for xv, yy in zip(t[x], t[y] if y else t[x]) if y is None or yy == yv})
        med = [median_or_none(g for xv2, g, yy in zip(t[x], t["gap_pct"], t[y] if y else t[x])
                              if xv2 == xv and (y is None or yy == yv)) for xv in xs]
        ax.plot(xs, med, "o-", label=f"{y} = {yv}" if y else None)
    ax.set_xlabel(x)
    ax.set_ylabel("held-out loss above the floor (%)")
    ax.set_yscale("log")
    if y:
        ax.legend()
    ax.set_title(f"{spec.name}: gap to the entropy floor")
    return [plot.save(fig, out / "sweep_gap.png")]


SWEEP = LabSweep(member_fields=(), summary_keys=SUMMARY_KEYS, train_group=train_group, cost=cost,
                 figures=figures)
