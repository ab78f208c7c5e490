"""Two training jobs at once on one machine: before and after the thread budget (engine/device.py).

    python benchmarks/two_jobs.py [--steps 3000] [--passive] [--write]     # needs a QUIET machine (~5 min)
    python benchmarks/two_jobs.py --tiny                                   # seconds: checks the script only

A job is `groklab sweep --preset pair-parity-grid --scale small --set train.steps=STEPS` (job B with
train.seed=100), run as its own process with the default thread count (no --threads, $OMP_NUM_THREADS
removed), so that each job would take every core. Rows:
  A alone, B alone                      the sum is what running them one after the other costs
  both at once, sharing off (before)    GROKLAB_THREAD_SHARING=off: 2 x all cores, threads spin-wait
  both at once, sharing on (after)      each job registers and takes its share of the cores
  B 25% later, sharing on (after)       A starts alone with all cores and gives one back when B starts
  --passive: both at once, sharing off, OMP_WAIT_POLICY=PASSIVE (the wait policy alone, for comparison)
The goal: both at once take no longer than A alone + B alone. Times are wall seconds of each process,
start-up included. --write replaces the two-jobs section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

from common import report


def job(steps: int, seed: int, out: str) -> list[str]:
    return [sys.executable, "-m", "groklab.cli", "sweep", "--preset", "pair-parity-grid", "--scale", "small",
            "--set", f"train.steps={steps}", "--set", f"train.seed={seed}", "--out", out, "--json"]


def run_jobs(cmds: list[list[str]], env: dict, offsets: list[float]) -> list[float]:
    """Start each command at its offset (s), wait for all; wall seconds of each from its own start."""
    t0, procs, starts, ends = time.perf_counter(), [None] * len(cmds), [0.0] * len(cmds), [0.0] * len(cmds)
    order = sorted(range(len(cmds)), key=lambda i: offsets[i])
    pending = list(order)
    while not all(ends):
        now = time.perf_counter() - t0
        while pending and offsets[pending[0]] <= now:
            i = pending.pop(0)
            starts[i] = time.perf_counter()
            procs[i] = subprocess.Popen(cmds[i], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for i, p in enumerate(procs):
            if p is not None and not ends[i] and p.poll() is not None:
                ends[i] = time.perf_counter()
                if p.returncode != 0:
                    raise SystemExit(f"job {i} failed: {p.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    return [e - s for s, e in zip(starts, ends)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000, help="train.steps of each job's small parity grid")
    ap.add_argument("--tiny", action="store_true", help="60 steps: checks that the script runs, numbers mean nothing")
    ap.add_argument("--passive", action="store_true", help="also: sharing off with OMP_WAIT_POLICY=PASSIVE")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    steps = 60 if a.tiny else a.steps
    load0 = os.getloadavg()[0]
    if load0 > 0.5 and not a.tiny:
        print(f"warning: load average {load0:.2f}; the figures are only meaningful on a quiet machine", flush=True)
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "GROKLAB_THREADS")}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base["GROKLAB_JOBS_DIR"] = os.path.join(tmp, "jobs")  # these two jobs only (not other users' jobs)
        on, off = {**base, "GROKLAB_THREAD_SHARING": "on"}, {**base, "GROKLAB_THREAD_SHARING": "off"}
        a_cmd, b_cmd = job(steps, 0, os.path.join(tmp, "a")), job(steps, 100, os.path.join(tmp, "b"))
        (ta,) = run_jobs([a_cmd], on, [0.0])
        (tb,) = run_jobs([b_cmd], on, [0.0])
        seq = ta + tb
        rows.append(("A alone", f"{ta:.1f}", "", f"{ta:.1f}", ""))
        rows.append(("B alone", "", f"{tb:.1f}", f"{tb:.1f}", ""))
        rows.append(("A then B (one after the other)", f"{ta:.1f}", f"{tb:.1f}", f"{seq:.1f}", "1.00"))
        variants = [("both at once, sharing off (before)", off, [0.0, 0.0]),
                    ("both at once, sharing on (after)", on, [0.0, 0.0]),
                    ("B starts 25% into A, sharing on (after)", on, [0.0, 0.25 * ta])]
        if a.passive:
            variants.insert(1, ("both at once, sharing off, OMP_WAIT_POLICY=PASSIVE", {**off, "OMP_WAIT_POLICY":
                                                                                        "PASSIVE"}, [0.0, 0.0]))
        for name, env, offsets in variants:
            print(f"running: {name}", flush=True)
            wa, wb = run_jobs([a_cmd, b_cmd], env, offsets)
            both = max(wa, wb + offsets[1])
            rows.append((name, f"{wa:.1f}", f"{wb:.1f}", f"{both:.1f}", f"{both / seq:.2f}"))
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC on {platform.machine()} ({os.cpu_count()} cores), "
             f"load average {load0:.2f} at start; each job: the small parity grid (`--scale small`) at "
             f"train.steps={steps}, default threads, its own process (wall s, start-up included)."
             + (" TINY: checks the script, the numbers mean nothing." if a.tiny else ""), "",
             "| run | job A s | job B s | both done after s | / (A alone + B alone) |", "|---|---|---|---|---|"]
    lines += [f"| {' | '.join(r)} |" for r in rows]
    report("\n".join(lines), "two-jobs", a.write and not a.tiny)


if __name__ == "__main__":
    main()
