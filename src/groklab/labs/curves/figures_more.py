"""Figures of `curves epochs`, `baselines` and `scaling`, from a run folder's summary and tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from groklab import plot
from groklab.labs.curves import scaling


def epochs_figure(path: Path, s: dict) -> Path:
    fig, axes = plot.subplots(1, 1, w=6.4, h=3.8)
    ax = axes[0][0]
    ep = np.maximum(np.array(s["epochs"]), 1e-3)
    ax.plot(ep, s["train_error"], "-", color=plot.TRAIN, label="train error")
    ax.plot(ep, s["test_error"], "-", color=plot.TEST, label="test error")
    fm, bump = s["first_min"], s["bump"]
    ax.scatter([fm["epoch"]], [fm["test_error"]], marker="v", color="k", zorder=4,
               label=f"first minimum {fm['test_error']:.1%} (epoch {fm['epoch']:.3g})")
    ax.scatter([bump["epoch"]], [bump["test_error"]], marker="^", color="k", zorder=4,
               label=f"bump {bump['test_error']:.1%} (epoch {bump['epoch']:.3g})")
    if s.get("interpolated_epoch") is not None:
        ax.axvline(s["interpolated_epoch"], color="0.4", ls="--", lw=1, label="train error reaches 0")
    ax.set_xscale("log")
    ax.set_xlabel("epoch (log)")
    ax.set_ylabel("error (1 − accuracy)")
    verdict = f"second descent from epoch {s['descent_epoch']:.3g}" if s["second_descent"] else "no second descent"
    ax.set_title(f"{s['preset']}: {s['model']} {s['width']} ({s['params']:,} params), {s['label_noise']:.0%} noise: "
                 f"{verdict}")
    ax.legend(fontsize=7)
    return plot.save(fig, path / "figures" / "epochs.png")


def baselines_figure(path: Path, s: dict) -> Path:
    fig, axes = plot.subplots(1, 1, w=5.6, h=3.6)
    ax = axes[0][0]
    ms = s["models"]
    x = np.arange(len(ms))
    ax.bar(x - 0.2, [m["mean"] for m in ms], 0.4, yerr=[m["std"] for m in ms], capsize=3, color=plot.TEST,
           label=f"groklab (mean ± std, {s['seeds']} seeds)")
    pub = [m["published"] if m["published"] is not None else np.nan for m in ms]
    ax.bar(x + 0.2, pub, 0.4, color="0.6", label="published (mnist1d README)")
    for i, m in enumerate(ms):
        ax.text(i - 0.2, m["mean"] + 0.02, f"{m['mean']:.0%}", ha="center", fontsize=7)
    ax.set_xticks(x, [m["model"] for m in ms])
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{s['preset']}: MNIST-1D baselines ({s['n_train']:,} train / {s['n_test']:,} test)")
    ax.legend(fontsize=7, loc="upper left")
    return plot.save(fig, path / "figures" / "baselines.png")


def scaling_figures(path: Path, s: dict) -> list[Path]:
    pts = pq.read_table(path / "points.parquet").to_pydict()
    fits = json.loads((path / "fits.json").read_text())
    n, d, loss = (np.array(pts[k], float) for k in ("params", "n_train", "test_loss"))
    sizes = sorted(set(d))
    cmap = plot.plt.get_cmap("viridis")
    fig, axes = plot.subplots(1, 2, w=5.2, h=3.8)
    ax, ax2 = axes[0][0], axes[0][1]
    grid_n = np.geomspace(n.min(), n.max() * 1.5, 60)
    for j, dv in enumerate(sizes):
        c = cmap(j / max(1, len(sizes) - 1))
        sel = d == dv
        ax.scatter(n[sel], loss[sel], s=12, color=c, label=f"D = {dv:,.0f}")
        if "hoffmann_nd" in fits:
            x = _raw(fits["hoffmann_nd"])
            ax.plot(grid_n, np.exp(scaling.predict_log("hoffmann_nd", x, grid_n, np.full_like(grid_n, dv))), "-",
                    color=c, lw=1)
    top = d == d.max()
    for form, ls in (("power", ":"), ("hoffmann_n", "--")):
        if form in fits:
            x = _raw(fits[form])
            ax2.plot(grid_n, np.exp(scaling.predict_log(form, x, grid_n, grid_n)), ls, color="k", lw=1,
                     label=f"{form}: α = {fits[form]['params']['alpha']:.2f} [{fits[form]['ci95']['alpha'][0]:.2f}, "
                     f"{fits[form]['ci95']['alpha'][1]:.2f}]")
            h = fits[form].get("heldout")
            if h:
                ax2.scatter([h["n"]], [h["predicted"]], marker="x", s=50, color="C3",
                            label=f"{form} fitted without largest N: {h['rel_error']:.1%} off")
    ax2.scatter(n[top], loss[top], s=12, color=cmap(1.0), label=f"observed (D = {d.max():,.0f})")
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xlabel("parameters N")
        a.set_ylabel("test loss (nats)")
        a.legend(fontsize=6)
    ax.set_title("L(N, D) = E + A/N^α + B/D^β" if "hoffmann_nd" in fits else "loss by width and data")
    ax2.set_title("fits at the largest D, held-out check")
    fig.suptitle(f"{s['preset']}: scaling of the test loss")
    out = [plot.save(fig, path / "figures" / "scaling.png")]
    fig, axes = plot.subplots(1, len(fits), w=3.6, h=3.0)
    for i, (form, f) in enumerate(fits.items()):
        a = axes[0][i]
        rows = np.array(f["rows"], int)
        a.scatter(n[rows], f["residuals"], s=10, c=np.log(d[rows]), cmap="viridis")
        a.axhline(0, color="k", lw=1)
        a.set_xscale("log")
        a.set_xlabel("parameters N")
        a.set_ylabel("log L̂ − log L")
        a.set_title(form)
    fig.suptitle(f"{s['preset']}: residuals (colour: log D)")
    out.append(plot.save(fig, path / "figures" / "residuals.png"))
    if s.get("source") == "addition":
        out.append(addition_figure(path, s))
    return out


def addition_figure(path: Path, s: dict) -> Path:
    """scaling-addition: held-out bits per example against parameters with the entropy floor and the fitted E;
    the validation loss of every width against steps (where each one stopped)."""
    pw = s["per_width"]
    m = pq.read_table(path / "metrics.parquet").to_pydict()
    fig, axes = plot.subplots(1, 2, w=5.2, h=3.8)
    ax, ax2 = axes[0][0], axes[0][1]
    n = [p["params"] for p in pw]
    ax.plot(n, [p["bits_per_example"] for p in pw], "o-", color=plot.TEST, label="held-out (best evaluation)")
    if "preq_bits_per_example" in pw[0]:
        ax.plot(n, [p["preq_bits_per_example"] for p in pw], "s--", color=plot.TRAIN,
                label=f"prequential code, first {s['preq_examples']:,} examples")
    ax.axhline(s["floor_bits_per_example"], color="k", ls="--", lw=1,
               label=f"entropy floor {s['floor_bits_per_example']:.2f}")
    fc = s.get("floor_check")
    if fc:
        ax.axhline(fc["E_bits_per_example"], color="C2", ls=":", lw=1.2,
                   label=f"fitted E {fc['E_bits_per_example']:.2f}")
    for p in pw:
        if not p["converged"]:
            ax.annotate("cap", (p["params"], p["bits_per_example"]), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("bits per example")
    ax.set_title(f"{s['n_digits']}-digit addition: code length vs size")
    ax.legend(fontsize=6)
    w, step, metric, val = (np.array(m[k]) for k in ("width", "step", "metric", "value"))
    cmap = plot.plt.get_cmap("viridis")
    for j, wv in enumerate(s["widths"]):
        sel = (w == wv) & (metric == "val_loss") & (np.array(m["seed"]) == min(m["seed"]))
        ax2.plot(np.maximum(step[sel], 1), val[sel], "-", lw=1, color=cmap(j / max(1, len(s["widths"]) - 1)),
                 label=f"width {wv}")
    ax2.axhline(s["floor"], color="k", ls="--", lw=1, label="floor")
    ax2.set_xscale("log")
    ax2.set_xlabel("step")
    ax2.set_ylabel("validation loss (nats per target)")
    ax2.set_title("training to the plateau (first seed)")
    ax2.legend(fontsize=6)
    fig.suptitle(f"{s['preset']}: bigger model, higher compression?")
    return plot.save(fig, path / "figures" / "addition.png")


def _raw(f: dict) -> np.ndarray:
    """Natural parameters back to the raw (log-scale) vector of scaling.RAW."""
    p = f["params"]
    vals = {"e": np.log(p["E"]) if "E" in p else None, "a": np.log(p["A"]), "alpha": p["alpha"],
            "b": np.log(p["B"]) if "B" in p else None, "beta": p.get("beta")}
    form = "hoffmann_nd" if "B" in p else "hoffmann_n" if "E" in p else "power"
    return np.array([vals[k] for k in scaling.RAW[form]], float)
