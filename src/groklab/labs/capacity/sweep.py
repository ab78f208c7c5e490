"""How the capacity lab sweeps: every grid point (group) is one EMC search over the sweep's seeds (all seeds'
candidates train together, one ensemble per round); a member row is one seed of that search: its EMC and
bracket, the group's EMC spread, the parameter count, the trainings it took and the test accuracy at its
EMC. No field varies inside an ensemble: every grid field changes the data, the model or the search."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np

from groklab import plot, store
from groklab.labs.capacity.run import expected_rounds, merge, run_search
from groklab.labs.capacity.train import ensemble, load_base
from groklab.sweep import GroupResult, LabSweep

SUMMARY_KEYS = ("emc", "emc_std", "params", "trainings", "bracket_lo", "bracket_hi", "state", "test_acc_at_emc",
                "train_wall_s")


def train_group(cfg, pts: list[dict], dev, on_progress) -> GroupResult:
    cfg = copy.deepcopy(cfg)
    seeds = [p["seed"] for p in pts]
    cfg.train.seeds, cfg.train.seed = len(seeds), seeds[0]
    base = load_base(cfg, store.default_root() / ".cache" / "data")
    ens = ensemble(cfg, base)
    total = expected_rounds(cfg)
    result, per_seed, rows, curves, cost = run_search(
        cfg, base, ens, dev, seeds,
        on_progress=lambda r, active: on_progress(int(min(r / total, 1.0) * cfg.train.steps), active))
    emcs = [p["emc"] for p in per_seed if p["emc"] is not None]
    std = float(np.std(emcs)) if emcs else None
    out = [{"emc": p["emc"], "emc_std": std, "params": ens.n_params, "trainings": p["trainings"],
            "bracket_lo": p["bracket"][0], "bracket_hi": p["bracket"][1], "state": p["state"],
            "test_acc_at_emc": p["test_acc_at_emc"], "train_wall_s": round(cost["wall"], 3)} for p in per_seed]
    m = merge(curves)
    index = {s: i for i, s in enumerate(seeds)}
    metrics = {"member": np.array([index[s] for s in m["seed"]], dtype=np.int64), "training": m["member"],
               **{k: m[k] for k in ("round", "n", "step", "epoch", "metric", "value")}}
    return GroupResult(out, metrics, cost["model_steps"], cost["wall"])


def cost(cfg, n_members: int) -> float:
    """Seeds x a parameter-count proxy x the largest candidate x the epoch cap."""
    width, depth = cfg.model.width, cfg.model.depth
    return float(n_members * width * width * depth * cfg.search.n_max * cfg.search.max_epochs)


def figures(spec, t: dict, keys: list[str], column, out: Path) -> list[Path]:
    """EMC (mean ± std over seeds) against the x axis, one line per y value; parameters as a dotted line."""
    x = column(spec.x or keys[0], keys)
    y = column(spec.y, keys) if spec.y else None
    fig, axes = plot.subplots(1, 1, w=5.4, h=3.6)
    ax = axes[0][0]
    xs = list(dict.fromkeys(t[x]))  # grid order (categories or numbers)
    pos = {v: i for i, v in enumerate(xs)}
    labeled = False
    for j, yv in enumerate(list(dict.fromkeys(t[y])) if y else [None]):
        mean, std, above = [], [], []
        for xv in xs:
            sel = [i for i, (a, b) in enumerate(zip(t[x], t[y] if y else t[x])) if a == xv and (y is None or b == yv)]
            e = [t["emc"][i] for i in sel if t["emc"][i] is not None]
            mean.append(np.mean(e) if e else math.nan), std.append(np.std(e) if e else math.nan)
            above.append(any(t["state"][i] == "above_range" for i in sel))
        shift = (j - 0.5 * (len(set(t[y])) - 1 if y else 0)) * 0.08
        px = [pos[v] + shift for v in xs]
        ax.errorbar(px, mean, yerr=std, fmt="o-", capsize=3, color=f"C{j}", label=f"{y} = {yv}" if y else "EMC")
        up = [i for i, a in enumerate(above) if a]
        ax.scatter([px[i] for i in up], [mean[i] for i in up], marker="^", s=90, facecolors="none",
                   edgecolors="k", zorder=4, label=None if labeled or not up else "n_max fitted: a lower bound")
        labeled = labeled or bool(up)
    params = {v: p for v, p in zip(t[x], t["params"])}
    ax.plot(range(len(xs)), [params[v] for v in xs], ":", color="0.4", label="parameters")
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_xlabel(x)
    ax.set_ylabel("samples fitted (EMC)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(f"{spec.name}: effective model complexity (mean ± std over seeds)")
    return [plot.save(fig, out / "sweep_emc.png")]


SWEEP = LabSweep(member_fields=(), summary_keys=SUMMARY_KEYS, train_group=train_group, cost=cost, figures=figures)
