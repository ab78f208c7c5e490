"""The capacity lab's EMC search (#12): what the batched k-ary search costs, side by side in one run.

    OMP_NUM_THREADS=1 python benchmarks/bench_emc.py [--max-epochs 1000] [--seeds 2] [--scan-seeds 1]
                                                     [--threads 1] [--write]

The emc-demo config (MLP 40-16-16-10 on MNIST-1D, full-batch Adam, cosine, k = 3, tol 0.05, n 50 - 4,000),
with `--max-epochs` as the epoch cap (emc-demo's is 2,000). Measured in one run:

1. **batched vs one by one, round by round**: every round of the search is trained as `groklab capacity emc`
   trains it — all seeds' candidates as ONE ensemble (`train.train_round(cands)`) — and right after, the same
   trainings alone, one after another (an ensemble of one member through the same engine: same
   initialization, subset, settle rule). The batched decisions drive the search; the table counts how many
   one-by-one decisions agree (all agree = the same search, bracket for bracket) and gives the ratio of the
   wall times, the round's padding (a batched member computes on the round's largest n, masked) and how many
   trainings ran to the epoch cap.
2. **linear scan** at the same tolerance: n = n_min, n_min(1 + tol), n_min(1 + tol)^2, ... (rounded, every size
   once), trained one at a time from the bottom up until the first size that does not fit; its EMC is the
   last fitted size, within tol like the search's. Run for the first `--scan-seeds` seeds (actual trainings,
   not an estimate). A scan that checked every grid size up to n_max (to honour the "largest fitted n"
   definition when fitting is not monotone) would cost len(grid) trainings per seed (counted, not run).
Sample-epochs (sum of n x epochs trained) say where the time goes: an unfitted training runs to the cap.

--write puts the table into BENCHMARKS.md between the emc-bench markers.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from common import report

from groklab.labs.capacity.config import load
from groklab.labs.capacity.run import prepare
from groklab.labs.capacity.search import search
from groklab.labs.capacity.train import train_round


def scan_grid(n_min: int, n_max: int, tol: float) -> list[int]:
    """Sizes n_min (1 + tol)^i, rounded, each once, up to n_max."""
    steps = math.ceil(math.log(n_max / n_min) / math.log1p(tol))
    return sorted({min(n_max, round(n_min * (1 + tol) ** i)) for i in range(steps + 1)})


def side_by_side(cfg, base, ens, dev, log: list[dict]):
    """fits() for `search`: each round trained batched (one ensemble, as the lab does) and then the same
    trainings alone, one after another; the batched decisions drive the search, both are logged."""
    def fits(cands: list[tuple[int, int]]) -> list[bool]:
        t0 = time.perf_counter()
        rb = train_round(cfg, base, ens, cands, dev)
        t1 = time.perf_counter()
        alone = [train_round(cfg, base, ens, [c], dev) for c in cands]
        t2 = time.perf_counter()
        sizes = [n for _, n in cands]
        log.append({"sizes": sizes, "batched_s": t1 - t0, "alone_s": t2 - t1,
                    "agree": sum(bool(a.fitted[0]) == bool(f) for a, f in zip(alone, rb.fitted)),
                    "pad": len(sizes) * max(sizes) / sum(sizes), "capped": rb.status.count("capped"),
                    "sample_epochs": float(sum(n * e for n, e in zip(sizes, rb.epochs))),
                    "capped_sample_epochs": float(sum(n * e for n, e, s in zip(sizes, rb.epochs, rb.status)
                                                      if s == "capped"))})
        return list(rb.fitted)
    return fits


def linear_scan(cfg, base, ens, dev, seed: int) -> tuple[int | None, int | None, int, float, float]:
    """(EMC = last fitted size before the first unfitted one, that unfitted size, trainings, wall s, sample-epochs
    = sum of n x epochs trained) of the bottom-up scan."""
    s = cfg.search
    t0, last, tried, se = time.perf_counter(), None, 0, 0.0
    for n in scan_grid(s.n_min, s.n_max, s.tol):
        tried += 1
        r = train_round(cfg, base, ens, [(seed, n)], dev)
        se += n * float(r.epochs[0])
        if not r.fitted[0]:
            return last, n, tried, time.perf_counter() - t0, se
        last = n
    return last, None, tried, time.perf_counter() - t0, se


def fmt(per_seed: list[dict]) -> str:
    return "; ".join(f"seed {p['seed']}: {p['emc']} [{p['bracket'][0]:,}, {p['bracket'][1]:,}]"
                     if p["bracket"][1] else f"seed {p['seed']}: {p['emc']} ({p['state']})" for p in per_seed)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-epochs", type=int, default=1000, help="epoch cap of every training (emc-demo: 2000)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds of the search (emc-demo: 2)")
    ap.add_argument("--scan-seeds", type=int, default=1, help="seeds the linear scan is run for (0 = skip)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    cfg = load("emc-demo", None, [f"search.max_epochs={a.max_epochs}", f"train.seeds={a.seeds}",
                                  f"train.threads={a.threads}"])
    s = cfg.search
    log: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        dev, base, ens = prepare(cfg, Path(tmp))
        threads = torch.get_num_threads()
        seeds = [cfg.train.seed + i for i in range(a.seeds)]
        res = search(side_by_side(cfg, base, ens, dev, log), seeds, s.n_min, s.n_max, s.k, s.tol, s.max_rounds)
        scans = [linear_scan(cfg, base, ens, dev, seed) for seed in seeds[: a.scan_seeds]]
    load1 = os.getloadavg()[0]
    k = len(seeds)
    wall_b, wall_1 = sum(r["batched_s"] for r in log), sum(r["alone_s"] for r in log)
    agree = sum(r["agree"] for r in log)
    se = sum(r["sample_epochs"] for r in log)
    se_cap = sum(r["capped_sample_epochs"] for r in log)
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC on {platform.machine()} ({os.cpu_count()} cores), "
             f"torch {torch.__version__}, {threads} thread(s), load average {load0:.2f} at start, {load1:.2f} at "
             f"the end. emc-demo: MLP 40-16-16-10 ({ens.n_params:,} parameters), MNIST-1D, full-batch Adam 1e-2 "
             f"cosine, {s.max_epochs:,}-epoch cap, k = {s.k}, tol {s.tol:g}, n {s.n_min}-{s.n_max:,}, "
             f"{k} seed(s): EMC {fmt(res.per_seed())}.", "",
             "| round | sizes (all seeds) | capped | padding (M x largest n / sum n) | batched s | one by one s | "
             "one by one / batched | same fit decisions |", "|---|---|---|---|---|---|---|---|"]
    for i, r in enumerate(log, 1):
        lines.append(f"| {i} | {', '.join(f'{n:,}' for n in r['sizes'])} | {r['capped']} | {r['pad']:.2f} | "
                     f"{r['batched_s']:.1f} | {r['alone_s']:.1f} | {r['alone_s'] / r['batched_s']:.2f}x | "
                     f"{r['agree']}/{len(r['sizes'])} |")
    lines.append(f"| all | {res.trainings} trainings | {sum(r['capped'] for r in log)} | | {wall_b:.1f} | "
                 f"{wall_1:.1f} | **{wall_1 / wall_b:.2f}x** | {agree}/{res.trainings} |")
    lines += ["", "| method, per EMC point (one seed) | trainings | wall s | sample-epochs (sum n x epochs) | "
              "EMC [bracket] |", "|---|---|---|---|---|",
              f"| k-ary search, batched (mean over {k} seeds) | {res.trainings / k:.1f} | {wall_b / k:.1f} | "
              f"{se / k / 1e6:.2f} M ({se_cap / se:.0%} in capped trainings) | {fmt(res.per_seed())} |",
              f"| k-ary search, one by one (mean over {k} seeds) | {res.trainings / k:.1f} | {wall_1 / k:.1f} | "
              f"same | same |"]
    for seed, (emc, hi, tried, wall, sse) in zip(seeds, scans):
        lines.append(f"| linear scan, sizes n_min (1 + {s.tol:g})^i bottom up to the first unfitted, one by one "
                     f"(seed {seed}) | {tried} | {wall:.1f} | {sse / 1e6:.2f} M | seed {seed}: {emc} [{emc:,}, "
                     f"{hi:,}] |" if hi else f"| linear scan (seed {seed}) | {tried} | {wall:.1f} | {sse / 1e6:.2f} M"
                     f" | >= {emc} |")
    lines.append(f"| linear scan of every size of that grid (the largest fitted n, as the definition asks) | "
                 f"{len(scan_grid(s.n_min, s.n_max, s.tol))} | not run | | |")
    report("\n".join(lines), "emc-bench", a.write)


if __name__ == "__main__":
    main()
