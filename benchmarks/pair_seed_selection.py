"""PAIR's 450 modular-addition seeds against a groklab `pair-mlp` run, split by whether each seed generalizes.

    python benchmarks/pair_seed_selection.py RUN_DIR PAIR_ALLMETRICS_CSV [--threshold 1e-2] [--json]

RUN_DIR: a finished `groklab grok --preset pair-mlp` run with many seeds (its metrics.parquet).
PAIR_ALLMETRICS_CSV: `source/grokking/mod-bot/seeds/data__allmetrics_mlp_modular_addition_sweep.csv` from
PAIR-code/ai-explorables (columns modelIndex, step in thousands, train_loss, eval_loss).
Prints the step to test loss < threshold (groklab's rounded up to PAIR's 1,000-step log grid) and the early test
loss, for groklab's seeds that get there, those that do not, and PAIR's, with two-sample KS p-values
(docs/grokking.md, "What the gap is").
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy import stats

QUANTILES = (10, 25, 50, 75, 90)
EARLY_STEPS = (1000, 2000, 3000, 6000, 10000)


def groklab_curves(run_dir: Path) -> dict[int, dict[int, float]]:
    """{member: {step: test loss}} of a grokking run."""
    d = pq.read_table(Path(run_dir) / "metrics.parquet", columns=["member", "step", "metric", "value"]).to_pydict()
    out: dict[int, dict[int, float]] = defaultdict(dict)
    for m, s, k, v in zip(d["member"], d["step"], d["metric"], d["value"]):
        if k == "test_loss":
            out[int(m)][int(s)] = float(v)
    return dict(out)


def pair_curves(path: Path) -> dict[int, dict[int, float]]:
    """{model: {step: eval loss}} of PAIR's file (its step column counts thousands)."""
    out: dict[int, dict[int, float]] = defaultdict(dict)
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            out[int(r["modelIndex"])][int(r["step"]) * 1000] = float(r["eval_loss"])
    return dict(out)


def first_below(curve: dict[int, float], threshold: float, grid: int = 1) -> int | None:
    """First logged step after 0 with loss < threshold, rounded up to a multiple of `grid` (a coarser log sees it
    then, if the loss stays below: groklab's pair-mlp stops a member once it crosses, so later points may be
    missing). Step 0 is skipped: PAIR's initial loss (CE/67 = 0.064) is below thresholds above ~0.06."""
    hit = [s for s, v in curve.items() if v < threshold and s > 0]
    return None if not hit else int(np.ceil(min(hit) / grid) * grid)


def compare(ours: dict[int, dict[int, float]], theirs: dict[int, dict[int, float]], threshold: float = 1e-2) -> dict:
    """Step-to-threshold and early-loss distributions: ours split by reaching the threshold, against theirs."""
    step = {m: first_below(c, threshold, 1000) for m, c in ours.items()}
    reach = [m for m in ours if step[m] is not None]
    never = [m for m in ours if step[m] is None]
    pair_step = [s for s in (first_below(c, threshold) for c in theirs.values()) if s is not None]
    ours_step = [step[m] for m in reach]
    out = {"threshold": threshold, "members": len(ours), "reach": len(reach), "pair_models": len(theirs),
           "pair_reach": len(pair_step),
           "reach_share_ci95": list(stats.binomtest(len(reach), len(ours)).proportion_ci()),
           "step_quantiles": {"ours_reach": np.percentile(ours_step, QUANTILES).tolist() if ours_step else None,
                              "pair": np.percentile(pair_step, QUANTILES).tolist() if pair_step else None},
           "step_ks_p": float(stats.ks_2samp(ours_step, pair_step).pvalue) if ours_step and pair_step else None,
           "early": []}
    for s in EARLY_STEPS:
        p = [c[s] for c in theirs.values() if s in c]
        parts = {name: [ours[m][s] for m in ms if s in ours[m]] for name, ms in
                 (("all", list(ours)), ("reach", reach), ("never", never))}
        if not p or not parts["all"]:
            continue
        row = {"step": s, "pair_median": float(np.median(p))}
        for name, v in parts.items():
            row[f"{name}_median"] = float(np.median(v)) if v else None
            row[f"{name}_ks_p"] = float(stats.ks_2samp(v, p).pvalue) if v else None
        out["early"].append(row)
    return out


def _fail(msg: str) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("pair_csv", type=Path)
    ap.add_argument("--threshold", type=float, default=1e-2)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    try:
        ours, theirs = groklab_curves(a.run_dir), pair_curves(a.pair_csv)
    except (OSError, KeyError, ValueError, pa.ArrowException) as e:  # missing or malformed input: one line, exit 2
        first = str(e).splitlines()[0] if str(e) else ""
        _fail(f"cannot read the inputs ({type(e).__name__}: {first})")
    if not ours or not theirs:
        _fail(f"no test-loss curves in {a.run_dir if not ours else a.pair_csv}")
    r = compare(ours, theirs, a.threshold)
    if a.json:
        print(json.dumps(r))
        return
    lo, hi = r["reach_share_ci95"]
    print(f"groklab: {r['reach']} of {r['members']} seeds reach test loss < {a.threshold:g} "
          f"(95% CI {lo:.0%}-{hi:.0%}); PAIR: {r['pair_reach']} of {r['pair_models']}")
    q = r["step_quantiles"]
    fmt = lambda v: "-" if v is None else " / ".join(f"{x / 1000:.0f}k" for x in v)  # noqa: E731
    num = lambda v, f=".2g": "-" if v is None else format(v, f)  # noqa: E731
    print(f"step, quantiles {QUANTILES}: groklab (those that get there) {fmt(q['ours_reach'])}; "
          f"PAIR {fmt(q['pair'])}; KS p = {num(r['step_ks_p'], '.3g')}")
    print("step   median test loss: all / reach / never / PAIR   KS p vs PAIR: all / reach")
    for e in r["early"]:
        med = " / ".join(num(e[k], ".2f") for k in ("all_median", "reach_median", "never_median", "pair_median"))
        print(f"{e['step']:>6} {med:>34}   {num(e['all_ks_p'])} / {num(e['reach_ks_p'])}")


if __name__ == "__main__":
    main()
