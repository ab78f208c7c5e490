"""Denormal floats kept (torch's default) vs flushed to zero (groklab's default since 2026-12-02, engine/device.py).

    python benchmarks/bench_denormals.py [--rounds 2] [--threads 1] [--steps 3000] [--write]   # quiet machine
    python benchmarks/bench_denormals.py --checkpoint RUN      # also: one train step at a grok run's checkpoint
    python benchmarks/bench_denormals.py --tiny                # seconds: checks the script only

Rows, alternating keep / flush `--rounds` times, each its own process with GROKLAB_DENORMALS set:
  the small parity grid (`groklab sweep --preset pair-parity-grid --scale small --set train.steps=STEPS`):
      wall seconds (start-up included), the sweep's member-steps/s, and whether every member's row of
      members.parquet (outcome, milestones, final losses) is equal to the first keep run's;
  --checkpoint RUN: ms per train step of that grok run's model at its checkpoint weights (late training is
      where softmax tails fall below 1.2e-38), on the run's first `batch_size` training examples.
--write replaces the denormals section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from common import report

STEP_CODE = """
import json, sys, time, torch
from safetensors import safe_open
from groklab.config import load_run_config
from groklab.data import make_task
from groklab.engine import device as devmod
from groklab.engine.optim import BatchedOptimizer
from groklab.engine.trainer import loss_kwargs, train_step
from groklab.nn import make_model
run, threads, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cfg = load_run_config(run)
devmod.setup("cpu", threads)
data = make_task(cfg)
model = make_model(cfg, data)
f = safe_open(f"{run}/checkpoint/latest.safetensors", "pt")
params = {k[5:]: f.get_tensor(k).requires_grad_(True) for k in f.keys() if k.startswith("full/")}  # (M, ...)
m = next(iter(params.values())).shape[0]
o = cfg.optim
opt = BatchedOptimizer.from_config(params, o, torch.full((m,), o.lr), torch.full((m,), o.weight_decay),
                                   cfg.train.steps)
b = cfg.train.batch_size or len(data.x_train)
x, y, kw = data.x_train[:b], data.y_train[:b], loss_kwargs(cfg.train)
train_step(model, params, opt, x, y, kw)
t = time.perf_counter()
for _ in range(n):
    train_step(model, params, opt, x, y, kw)
print(json.dumps({"ms": (time.perf_counter() - t) / n * 1000, "members": m, "batch": b, "step": json.loads(
    f.metadata()["meta"])["step"]}))
"""


def grid(mode: str, steps: int, threads: int, out: str) -> tuple[float, dict, list]:
    env = {**os.environ, "GROKLAB_DENORMALS": mode}
    cmd = [sys.executable, "-m", "groklab.cli", "sweep", "--preset", "pair-parity-grid", "--scale", "small",
           "--set", f"train.steps={steps}", "--threads", str(threads), "--out", out, "--json"]
    t = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    s = json.loads(proc.stdout)
    rows = pq.read_table(Path(s["run_dir"]) / "members.parquet").to_pylist()
    nan_safe = [{k: None if isinstance(v, float) and v != v else v for k, v in r.items()} for r in rows]
    return wall, s, sorted(nan_safe, key=lambda r: (r["group"], r["member"]))


def step_ms(mode: str, run: str, threads: int, n: int) -> dict:
    env = {**os.environ, "GROKLAB_DENORMALS": mode, "GROKLAB_THREAD_SHARING": "off"}
    proc = subprocess.run([sys.executable, "-c", STEP_CODE, run, str(threads), str(n)], env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3000, help="train.steps of the small parity grid")
    ap.add_argument("--checkpoint", help="a grok run folder with checkpoint/latest.safetensors")
    ap.add_argument("--tiny", action="store_true", help="60 steps, one round: checks the script, numbers mean nothing")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    steps, rounds = (60, 1) if a.tiny else (a.steps, a.rounds)
    load0 = os.getloadavg()[0]
    if load0 > 0.5 and not a.tiny:
        print(f"warning: load average {load0:.2f}; the figures are only meaningful on a quiet machine", flush=True)
    rows, ref = [], None
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            for mode in ("keep", "flush"):
                print(f"round {r + 1}: small parity grid, denormals {mode}", flush=True)
                wall, s, members = grid(mode, steps, a.threads, os.path.join(tmp, f"{mode}{r}"))
                ref = ref if ref is not None else members
                c = s["outcome_counts"]
                rows.append((f"small parity grid, {mode} (round {r + 1})", f"{wall:.1f} s",
                             f"{s['member_steps_per_s']:,.0f} member-steps/s",
                             "/".join(str(c[k]) for k in ("fail", "memorize", "direct", "grok")),
                             "yes" if members == ref else "**no**"))
    if a.checkpoint:
        for r in range(rounds):
            for mode in ("keep", "flush"):
                print(f"round {r + 1}: train step at {a.checkpoint}, denormals {mode}", flush=True)
                d = step_ms(mode, a.checkpoint, a.threads, 3 if a.tiny else 12)
                rows.append((f"train step at {Path(a.checkpoint).name} step {d['step']:,}, {mode} (round {r + 1})",
                             f"{d['ms']:.1f} ms", f"{d['members']} member(s), batch {d['batch']}", "", ""))
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC on {platform.machine()} ({os.cpu_count()} cores), "
             f"torch threads {a.threads}, load average {load0:.2f} at start; small parity grid at "
             f"train.steps={steps}, each run its own process." + (" TINY: checks the script only." if a.tiny else ""),
             "", "| run | time | rate | fail/memorize/direct/grok | members table equal to the first keep run |",
             "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    report("\n".join(lines), "denormals", a.write and not a.tiny)


if __name__ == "__main__":
    main()
