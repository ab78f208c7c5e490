"""Sweep throughput (member-steps/s) of PAIR's sparse-parity grid, small and full scale, in one run.

    python benchmarks/bench_sweep.py [--steps 200] [--threads 2] [--skip-small] [--write]

small: the whole `--scale small` sweep, end to end (early stopping on, as users run it).
full:  every one of the full grid's 25 groups (45 members each) for `--steps` steps with early stopping
       off, timed group by group, before (autograd backward) and after (the parity MLP's hand-written,
       example-chunked backward) side by side; the estimate for the whole grid is 20k steps x the summed
       step times, an upper bound (early stopping only removes work).
--write replaces the sweep section of BENCHMARKS.md with the table printed here.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import torch
from common import report

from groklab.config import load_preset_raw
from groklab.data import make_task
from groklab.engine import device as devmod
from groklab.engine import trainer
from groklab.engine.trainer import Member, train
from groklab.nn import make_model
from groklab.sweep.grid import groups, parse_spec
from groklab.sweep.run import run_sweep


def time_group(cfg, pts, steps: int, dev) -> tuple[float, int]:
    """Seconds per step of one group trained as one ensemble, early stopping off. Returns (s/step, members)."""
    cfg.train.steps, cfg.train.early_stop, cfg.train.snapshots = steps, False, 0
    data = make_task(cfg)
    model = make_model(cfg, data)
    members = [Member(p["seed"], cfg.optim.lr, p["optim.weight_decay"], cfg.model.init_scale) for p in pts]
    res = train(model, data, members, cfg.optim, cfg.train, dev)
    return res.wall_s / steps, len(members)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200, help="timed steps per full-grid group")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-small", action="store_true")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    load0 = os.getloadavg()[0]
    dev = devmod.setup("cpu", a.threads)
    raw = load_preset_raw("pair-parity-grid", "sweep")
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC on {platform.machine()} ({os.cpu_count()} cores), "
             f"torch threads {torch.get_num_threads()}, device cpu, load average {load0:.2f} at start.", ""]
    if not a.skip_small:
        spec = parse_spec(raw, "pair-parity-grid", "small")
        with tempfile.TemporaryDirectory() as tmp:
            s = run_sweep(spec, tmp, threads=a.threads)
        lines += [f"**small** (`groklab sweep --preset pair-parity-grid --scale small`, early stopping on): "
                  f"{s['n_runs']} runs in {s['groups']} groups, wall {s['wall_s']:.0f} s, "
                  f"{s['model_steps']:,} member-steps, **{s['member_steps_per_s']:,.0f} member-steps/s**; "
                  f"outcomes {s['outcome_counts']}.", ""]
    spec = parse_spec(raw, "pair-parity-grid", "full")
    full_steps = groups(spec)[0][0].train.steps
    lines += [f"**full** grid, each group timed for {a.steps} steps with early stopping off; before = autograd "
              "backward, after = hand-written chunked backward (`BitMLP.loss_grads`):", "",
              "| hidden | n_train | members | before ms/step | after ms/step | ratio | member-steps/s after |",
              "|---|---|---|---|---|---|---|"]
    total = {False: 0.0, True: 0.0}
    total_ms = 0
    for cfg, pts in groups(spec):
        sec = {}
        for hand in (False, True):
            trainer.HAND_WRITTEN_LOSS = hand
            sec[hand], m = time_group(cfg, pts, a.steps, dev)
            total[hand] += sec[hand] * full_steps
        total_ms += m * full_steps
        lines.append(f"| {cfg.model.mlp.hidden} | {cfg.data.n_train} | {m} | {1e3 * sec[False]:.1f} | "
                     f"{1e3 * sec[True]:.1f} | {sec[False] / sec[True]:.2f}x | {m / sec[True]:,.0f} |")
        print(lines[-1], flush=True)
    lines += ["", f"Full grid without early stopping: {total_ms:,} member-steps; before {total_ms / total[False]:,.0f} "
              f"member-steps/s = {total[False] / 60:.0f} min, after {total_ms / total[True]:,.0f} member-steps/s = "
              f"**{total[True] / 60:.0f} min** ({total[False] / total[True]:.2f}x; upper bounds: early stopping "
              "removes settled members)."]
    report("\n".join(lines), "sweep-bench", a.write)


if __name__ == "__main__":
    main()
