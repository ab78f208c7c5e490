"""How the capacity lab sweeps: every grid point (group) is one EMC search over the sweep's seeds (all seeds'
candidates train together, one ensemble per round); a member row is one seed of that search: its EMC and
bracket, the group's EMC spread, the parameter count, the trainings it took and the test accuracy at its
EMC. No field varies inside an ensemble: every grid field changes the data, the model or the search."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np

from groklab import plot
from groklab.labs.capacity import studies
from groklab.labs.capacity.run import expected_rounds, merge, run_search
from groklab.labs.capacity.train import ensemble, load_base
from groklab.sweep import GroupResult, LabSweep

SUMMARY_KEYS = ("emc", "emc_std", "params", "trainings", "bracket_lo", "bracket_hi", "state", "test_acc_at_emc",
                "train_wall_s")


def train_group(cfg, pts: list[dict], dev, on_progress) -> GroupResult:
    cfg = copy.deepcopy(cfg)
    seeds = [p["seed"] for p in pts]
    cfg.train.seeds, cfg.train.seed = len(seeds), seeds[0]
    base = load_base(cfg, None)  # data.cache_dir if stated, else built in-process (nothing outside --out)
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
    return [plot.save(fig, out / "sweep_emc.png"), *study_figures(spec, t, keys, column, out)]


def study_figures(spec, t: dict, keys: list[str], column, out: Path) -> list[Path]:
    """The study's own figure (studies.kind) and its table as study.md beside figures/."""
    pts = studies.points(t, keys, column)
    which = studies.kind(keys, spec.grid)
    head, rows = studies.table(pts, keys)
    text = [f"# {spec.name} ({spec.scale} scale): {which} study\n", *(f"- {f}\n" for f in
                                                                       studies.findings(which, pts, keys)), "\n"]
    if which == "gap":
        g = studies.gap(pts, keys)
        text.append(studies.markdown(["configuration", "parameters", "EMC semantic", "EMC random",
                                      "relative EMC gap", "test acc@EMC", "generalization gap"],
                                     [[q[k] for k in ("config", "params", "emc_semantic", "emc_random", "emc_gap",
                                                      "test_acc", "gen_gap")] for q in g["rows"]]) + "\n")
    text.append(studies.markdown(head, rows))
    (out.parent / "study.md").write_text("".join(text))
    draw = {"gap": _gap, "arch": _arch, "lines": _lines, "bars": _bars}[which]
    return [draw(spec, pts, keys, out)]


def _gap(spec, pts, keys, out: Path) -> Path:
    g = studies.gap(pts, keys)
    fig, axes = plot.subplots(1, 1, w=5.6, h=4.0)
    ax = axes[0][0]
    x, y = [q["gen_gap"] for q in g["rows"]], [q["emc_gap"] for q in g["rows"]]
    ax.scatter(x, y, c="C0", zorder=3)
    for q in g["rows"]:
        ax.annotate(q["config"], (q["gen_gap"], q["emc_gap"]), fontsize=6, xytext=(3, 3), textcoords="offset points")
    if len(x) >= 2 and np.std(x) > 0:
        a, b = np.polyfit(x, y, 1)
        xx = np.linspace(min(x), max(x), 10)
        ax.plot(xx, a * xx + b, "--", color="0.4", label="least-squares line")
    ax.set_xlabel("generalization gap at the semantic EMC (1 - test accuracy)")
    ax.set_ylabel("relative EMC gap (semantic - random) / semantic")
    ax.set_title(f"{spec.name}: r = {g['r']:.2f}, 95% CI [{g['ci'][0]:.2f}, {g['ci'][1]:.2f}], "
                 f"{g['n']} configurations", fontsize=9)
    ax.legend(fontsize=7)
    return plot.save(fig, out / "study_gap.png")


def _arch(spec, pts, keys, out: Path) -> Path:
    fig, axes = plot.subplots(1, 1, w=5.6, h=4.2)
    ax = axes[0][0]
    kinds = sorted({p.get("model.kind", "model") for p in pts})
    for j, k in enumerate(kinds):
        mine = sorted((p for p in pts if p.get("model.kind", "model") == k and p["emc"]),
                      key=lambda p: (p.get("model.depth", 0), p["params"]))
        ax.scatter([p["params"] for p in mine], [p["emc"] for p in mine], color=f"C{j}", label=k, zorder=3,
                   marker="os^D"[j % 4])
        for fixed, ls in (("model.depth", "-"), ("model.width", ":")):  # width scaling solid, depth dotted
            if fixed not in keys:
                continue
            for v in sorted({p[fixed] for p in mine}):
                ln = sorted((p for p in mine if p[fixed] == v), key=lambda p: p["params"])
                ax.plot([p["params"] for p in ln], [p["emc"] for p in ln], ls, color=f"C{j}", lw=1)
    allp = [p["params"] for p in pts] + [p["emc"] for p in pts if p["emc"]]
    lim = [min(allp) * 0.7, max(allp) * 1.4]
    ax.plot(lim, lim, "--", color="0.5", lw=1, label="EMC = parameters")
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):  # decade labels only: minor ones overlap on a short log axis
        axis.set_minor_formatter(plot.plt.NullFormatter())
    ax.set_xlabel("parameters")
    ax.set_ylabel("samples fitted to 100% (EMC)")
    ax.set_title(f"{spec.name}: EMC vs parameters (solid: wider, dotted: deeper)", fontsize=9)
    ax.legend(fontsize=7)
    return plot.save(fig, out / "study_arch.png")


def _lines(spec, pts, keys, out: Path) -> Path:
    fig, axes = plot.subplots(1, 1, w=5.4, h=3.6)
    ax = axes[0][0]
    x, hue = keys[0], next((k for k in keys[1:]), None)
    for j, hv in enumerate(sorted({p.get(hue) for p in pts}, key=str)):
        ln = sorted((p for p in pts if p.get(hue) == hv and p["emc"]), key=lambda p: p[x])
        ax.errorbar([p[x] for p in ln], [p["emc"] for p in ln], yerr=[p["emc_std"] or 0 for p in ln], fmt="o-",
                    capsize=3, color=f"C{j}", label=f"{hue.split('.')[-1]} = {hv}" if hue else "EMC")
    ax.set_xlabel(x)
    ax.set_ylabel("samples fitted to 100% (EMC)")
    ax.set_title(f"{spec.name}: EMC against {x.split('.')[-1]}", fontsize=9)
    ax.legend(fontsize=7)
    return plot.save(fig, out / "study_lines.png")


def _bars(spec, pts, keys, out: Path) -> Path:
    fig, axes = plot.subplots(1, 1, w=5.6, h=3.6)
    ax = axes[0][0]
    x = spec.x or keys[0]
    hue = spec.y if spec.y and spec.y != x else next((k for k in keys if k != x), None)
    xs = list(dict.fromkeys(p[x] for p in pts))
    hues = list(dict.fromkeys(p.get(hue) for p in pts))
    w = 0.8 / len(hues)
    for j, hv in enumerate(hues):
        sel = {p[x]: p for p in pts if p.get(hue) == hv}
        e = [sel[v]["emc"] or 0 if v in sel else 0 for v in xs]
        s = [sel[v]["emc_std"] or 0 if v in sel else 0 for v in xs]
        ax.bar(np.arange(len(xs)) + (j - (len(hues) - 1) / 2) * w, e, w, yerr=s, capsize=3, color=f"C{j}",
               label=f"{hue.split('.')[-1]} = {hv}" if hue else None)
    ax.set_xticks(range(len(xs)), [str(v) for v in xs])
    ax.set_xlabel(x)
    ax.set_ylabel("samples fitted to 100% (EMC)")
    ax.set_title(f"{spec.name}: EMC per condition (mean ± std over seeds)", fontsize=9)
    if hue:
        ax.legend(fontsize=7)
    return plot.save(fig, out / "study_bars.png")


SWEEP = LabSweep(member_fields=(), summary_keys=SUMMARY_KEYS, train_group=train_group, cost=cost, figures=figures)
