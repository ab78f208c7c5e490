"""The capacity studies, computed from a sweep's members table alone (one row per seed of each EMC search):
which study a grid is, its table, and the numbers behind the paper's findings. Drawn by sweep.py (PNG) and
report.py (the page); nothing here trains.

Kinds of study, told from the grid's axes:
- gap: data.labels in {semantic, random} crossed with >= 3 other configurations (emc-gap): per configuration
  the relative EMC gap (EMC_semantic - EMC_random) / EMC_semantic against the generalization gap at the
  semantic EMC (train accuracy 1 there, so 1 - test accuracy), Pearson r with a bootstrap CI over configs.
- arch: model.kind, or model.width with model.depth (emc-arch): EMC against parameters, EMC / parameters
  per architecture, and log-log slopes of EMC against parameters along width and along depth.
- lines: a numeric x axis (emc-classes: data.classes): EMC against x, one line per y value.
- bars: activations, optimizers or input conditions on an axis, or categorical axes otherwise (emc-labels,
  emc-activation, emc-optim): EMC per x value, grouped by y.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

LABEL_AXIS = "data.labels"


def points(t: dict, keys: list[str], column) -> list[dict]:
    """One row per grid point, over its seeds: the axes' values, emc (mean), emc_std (over seeds), seeds,
    params, test_acc (mean test accuracy at the EMC), state (worst of the seeds), trainings, wall_s."""
    cols = [column(k, keys) for k in keys]
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i in range(len(t["emc"])):
        groups[tuple(t[c][i] for c in cols)].append(i)
    out = []
    for vals, idx in groups.items():
        e = [t["emc"][i] for i in idx if t["emc"][i] is not None]
        acc = [t["test_acc_at_emc"][i] for i in idx if t["test_acc_at_emc"][i] is not None]
        states = {t["state"][i] for i in idx}
        out.append({**dict(zip(keys, vals)), "emc": float(np.mean(e)) if e else None,
                    "emc_std": float(np.std(e)) if e else None, "seeds": len(idx), "params": t["params"][idx[0]],
                    "test_acc": float(np.mean(acc)) if acc else None,
                    "state": next((s for s in ("below_range", "above_range", "max_rounds") if s in states), "found"),
                    "trainings": int(sum(t["trainings"][i] for i in idx)),
                    "wall_s": float(max(t["train_wall_s"][i] for i in idx))})
    return out


def kind(keys: list[str], grid: dict[str, list]) -> str:
    """gap | arch | lines | bars (module docstring)."""
    others = [k for k in keys if k != LABEL_AXIS]
    if LABEL_AXIS in keys and {"semantic", "random"} <= set(grid[LABEL_AXIS]) and \
            not set(others) <= {"data.inputs", "data.classes"} and math.prod(len(grid[k]) for k in others) >= 3:
        return "gap"
    if {"model.act", "optim.name", "data.inputs"} & set(keys):  # conditions compared side by side
        return "bars"
    if "model.kind" in keys or {"model.width", "model.depth"} <= set(keys):
        return "arch"
    if len(keys) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in grid[keys[0]]):
        return "lines"
    return "bars"


def label(p: dict, keys: list[str]) -> str:
    """A configuration's name from its axes (the label axis left out), e.g. 'mlp w8 d2 relu'."""
    short = {"model.kind": "", "model.width": "w", "model.depth": "d", "model.act": "", "optim.name": "",
             "data.classes": "K=", "data.inputs": "", "data.name": ""}
    return " ".join(f"{short.get(k, k.split('.')[-1] + '=')}{p[k]}" for k in keys if k != LABEL_AXIS)


def pearson_ci(x: np.ndarray, y: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Pearson r of (x, y) and its 95% percentile bootstrap CI over the pairs (resampled with replacement;
    resamples with no spread in x or y are skipped). NaN when fewer than 3 pairs."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or x.std() == 0 or y.std() == 0:
        return math.nan, math.nan, math.nan
    r = float(np.corrcoef(x, y)[0, 1])
    idx = np.random.default_rng(seed).integers(0, len(x), (n_boot, len(x)))  # (B, n)
    xs, ys = x[idx], y[idx]
    xs, ys = xs - xs.mean(1, keepdims=True), ys - ys.mean(1, keepdims=True)
    den = np.sqrt((xs**2).sum(1) * (ys**2).sum(1))
    ok = den > 0
    rs = (xs * ys).sum(1)[ok] / den[ok]
    return r, float(np.percentile(rs, 2.5)), float(np.percentile(rs, 97.5))


def gap(pts: list[dict], keys: list[str]) -> dict:
    """emc-gap: per configuration (semantic and random searches paired) the EMC gap and the generalization
    gap; Pearson r with its bootstrap CI. rows: config, emc_semantic, emc_random, emc_gap, test_acc, gen_gap."""
    pairs: dict[str, dict] = {}
    for p in pts:
        pairs.setdefault(label(p, keys), {})[p[LABEL_AXIS]] = p
    rows = []
    for name, d in pairs.items():
        s, r = d.get("semantic"), d.get("random")
        if not s or not r or not s["emc"] or r["emc"] is None or s["test_acc"] is None:
            continue
        rows.append({"config": name, "params": s["params"], "emc_semantic": s["emc"], "emc_random": r["emc"],
                     "emc_gap": (s["emc"] - r["emc"]) / s["emc"], "test_acc": s["test_acc"],
                     "gen_gap": 1.0 - s["test_acc"]})
    r, lo, hi = pearson_ci(np.array([q["gen_gap"] for q in rows]), np.array([q["emc_gap"] for q in rows]))
    return {"rows": rows, "r": r, "ci": [lo, hi], "n": len(rows), "left_out": len(pairs) - len(rows)}


def slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log y against log x (None with fewer than 2 distinct x)."""
    ok = [(a, b) for a, b in zip(xs, ys) if a and b]
    if len({a for a, _ in ok}) < 2:
        return None
    lx, ly = np.log([a for a, _ in ok]), np.log([b for _, b in ok])
    return float(np.polyfit(lx, ly, 1)[0])


def arch(pts: list[dict], keys: list[str]) -> dict:
    """emc-arch: EMC / parameters per architecture (median over sizes), and per architecture the mean log-log
    slope of EMC against parameters when the width grows (depth fixed) and when the depth grows (width
    fixed): a larger slope = more samples fitted per parameter added that way."""
    kinds = sorted({p.get("model.kind", "model") for p in pts})
    per = {}
    for k in kinds:
        mine = [p for p in pts if p.get("model.kind", "model") == k and p["emc"]]
        ratio = [p["emc"] / p["params"] for p in mine]
        out = {"emc_per_param": float(np.median(ratio)) if ratio else None, "points": len(mine)}
        for axis, fixed in (("width", "model.depth"), ("depth", "model.width")):
            if f"model.{axis}" not in keys:
                continue
            lines = defaultdict(list)
            for p in mine:
                lines[p.get(fixed)].append(p)
            s = [slope([q["params"] for q in ln], [q["emc"] for q in ln]) for ln in lines.values()]
            s = [v for v in s if v is not None]
            out[f"{axis}_slope"] = float(np.mean(s)) if s else None
        per[k] = out
    return {"per_kind": per}


def table(pts: list[dict], keys: list[str]) -> tuple[list[str], list[list]]:
    """The study's table: one row per grid point (axes, parameters, EMC ± std, EMC / parameters, test
    accuracy at the EMC, search state, trainings)."""
    head = [k.split(".")[-1] for k in keys] + ["parameters", "EMC", "± std", "EMC/param", "test acc@EMC", "state",
                                                "trainings"]
    rows = [[*(p[k] for k in keys), p["params"], p["emc"], p["emc_std"],
             None if not p["emc"] else p["emc"] / p["params"], p["test_acc"], p["state"], p["trainings"]]
            for p in pts]
    return head, rows


def markdown(head: list[str], rows: list[list]) -> str:
    def cell(v):
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]) + "\n"


def findings(study: str, pts: list[dict], keys: list[str]) -> list[str]:
    """One line per number the study measures (for study.md and the report)."""
    if study == "gap":
        g = gap(pts, keys)
        out = (f" ({g['left_out']} more left out: no semantic or no random EMC inside the search range)"
               if g["left_out"] else "")
        return [f"{g['n']} configurations{out}: Pearson r(generalization gap, relative EMC gap) = {g['r']:.2f}, "
                f"95% bootstrap CI [{g['ci'][0]:.2f}, {g['ci'][1]:.2f}] (the paper: negative, < -0.8)"]
    if study == "arch":
        out = []
        for k, v in arch(pts, keys)["per_kind"].items():
            s = ", ".join(f"{a} slope {v[f'{a}_slope']:.2f}" for a in ("width", "depth")
                          if v.get(f"{a}_slope") is not None)
            ratio = "–" if v["emc_per_param"] is None else f"{v['emc_per_param']:.2f}"
            out.append(f"{k}: median EMC/parameters {ratio} over {v['points']} sizes" + (f"; {s}" if s else ""))
        return out
    return []
