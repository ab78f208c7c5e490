"""Engine benchmark, before/after in one run: each configuration runs `groklab bench engine` in its own
process (allocator tuning must start with the process) on the same machine, one after the other.

    python benchmarks/bench_engine.py [--models 256] [--steps 20] [--write]

--write replaces the engine section of BENCHMARKS.md with the table printed here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from common import report

CONFIGS = [  # (label, environment switches)
    ("before: default allocator, unfused AdamW", {"GROKLAB_ALLOCATOR": "default", "GROKLAB_FUSED_ADAM": "0"}),
    ("tuned allocator, unfused AdamW", {"GROKLAB_FUSED_ADAM": "0"}),
    ("tuned allocator, fused AdamW", {}),
    ("+ 32-member chunks", {"chunk": "32", "GROKLAB_FUSED_LOSS": "0"}),
    ("after: + hand-written backward (one softmax pass, fused weight products)", {"chunk": "32"}),
]


def bench(models: int, steps: int, loop_models: int, env: dict) -> dict:
    env = dict(env)
    chunk = env.pop("chunk", "0")
    cmd = [sys.executable, "-m", "groklab.cli", "bench", "engine", "--models", str(models), "--steps", str(steps),
           "--loop-models", str(loop_models), "--member-chunk", chunk, "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, **env})
    return json.loads(out.stdout)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--loop-models", type=int, default=8)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    rows, load0 = [], os.getloadavg()[0]
    for label, env in CONFIGS:
        rows.append((label, a.models, bench(a.models, a.steps, a.loop_models, env)))
    for m in (1, 16, 64):
        rows.append((f"after, {m} members", m, bench(m, a.steps, min(a.loop_models, m), {"chunk": "32"})))
    r0 = rows[0][2]
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC on {platform.machine()} "
        f"({os.cpu_count()} cores; `{platform.processor() or platform.platform()}`), torch threads "
        f"{r0['threads']}, device {r0['device']}, load average {load0:.2f} at start. "
        f"{a.steps} timed steps per configuration; the loop times {a.loop_models} members one by one "
        "(plain nn.Module + torch.optim.AdamW) and reports its per-model rate.",
        "",
        "| configuration | members | batched step ms | batched model-steps/s | loop model-steps/s | speedup "
        "| engine GFLOP/s | matmul GFLOP/s | fraction of peak | vs before |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = rows[0][2]["batched_model_steps_per_s"]
    for label, m, r in rows:
        vs = f"{r['batched_model_steps_per_s'] / base:.2f}x" if m == a.models else "-"
        lines.append(f"| {label} | {m} | {r['batched_step_ms']:.1f} | {r['batched_model_steps_per_s']:.0f} | "
                     f"{r['loop_model_steps_per_s']:.0f} | {r['speedup']:.1f}x | {r['engine_gflops']:.1f} | "
                     f"{r['matmul_gflops']:.0f} | {r['fraction_of_peak']:.2f} | {vs} |")
    report("\n".join(lines), "engine-bench", a.write)


if __name__ == "__main__":
    main()
