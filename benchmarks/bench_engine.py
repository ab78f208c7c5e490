"""Engine benchmark, before/after in one run: each configuration runs `groklab bench engine` in its own
process (allocator tuning must start with the process) on the same machine, one after the other.

    python benchmarks/bench_engine.py [--models 256] [--steps 20] [--write]
    python benchmarks/bench_engine.py --model pair_mlp|mlp|cnn [--members 64,256] [--threads 1] [--steps 5]
        [--member-chunk 16]

--write replaces the engine section of BENCHMARKS.md with the table printed here. With --model it times
`groklab.bench.ensemble_benchmark` instead: the torch.func vmap ensemble of any nn.Module (ModuleEnsemble)
against a Python loop over single nn.Modules with torch.optim (same work), and for pair_mlp the hand-written
batched path too, and for a module with a batched_forward (cnn) its vmap path as the before; --write then
fills the `ensemble-bench-<model>` section, if BENCHMARKS.md has its markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from common import BENCHMARKS, report

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


def bench_ensemble(model: str, members: int, steps: int, threads: int, loop_models: int, chunk: int) -> dict:
    """groklab.bench.ensemble_benchmark in its own process (the allocator tuning must start with it)."""
    code = ("import json, sys; from groklab.bench import ensemble_benchmark as b; "
            "print(json.dumps(b(*json.loads(sys.argv[1]))))")
    args = json.dumps([model, members, steps, threads, "cpu", loop_models, 100, chunk])
    out = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def ensemble_table(a) -> None:
    load0 = os.getloadavg()[0]
    rows = [bench_ensemble(a.model, int(m), a.steps, a.threads, a.loop_models, c)
            for m in a.members.split(",") for c in sorted({0, a.member_chunk})]
    hand = a.model == "pair_mlp"
    fast = "vmap_step_ms" in rows[0]  # the module has a batched_forward: its vmap path is the before
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC on {platform.machine()} ({os.cpu_count()} cores), "
        f"torch threads {rows[0]['threads']}, device {rows[0]['device']}, load average {load0:.2f} at start; "
        f"model {a.model} ({rows[0]['params_per_member']} parameters per member, {rows[0]['optimizer']}, "
        f"batch {rows[0]['batch']}), {a.steps} timed steps. Loop: single nn.Modules with torch.optim, "
        "one after the other.",
        "",
        "| members | member chunk | ensemble step ms | ensemble model-steps/s | loop model-steps/s | ensemble vs loop"
        + (" | hand-written step ms | hand-written vs ensemble |" if hand else " |")
        + (" before: vmap step ms | fast path vs vmap |" if fast else ""),
        "|---|---|---|---|---|---|" + ("---|---|" if hand else "") + ("---|---|" if fast else ""),
    ]
    for r in rows:
        line = (f"| {r['members']} | {r['member_chunk'] or 'all'} | {r['ensemble_step_ms']:.1f} | "
                f"{r['ensemble_model_steps_per_s']:.0f} | "
                f"{r['loop_model_steps_per_s']:.0f} | {r['speedup']:.2f}x |")
        if hand:
            line += f" {r['handwritten_step_ms']:.1f} | {r['handwritten_vs_ensemble']:.1f}x |"
        if fast:
            line += f" {r['vmap_step_ms']:.1f} | {r['fast_path_vs_vmap']:.2f}x |"
        lines.append(line)
    name = f"ensemble-bench-{a.model}"
    write = a.write and f"<!-- {name}:begin -->" in BENCHMARKS.read_text()
    if a.write and not write:
        print(f"(BENCHMARKS.md has no <!-- {name}:begin/end --> markers; not written)")
    report("\n".join(lines), name, write)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--loop-models", type=int, default=8)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--model", choices=("pair_mlp", "mlp", "cnn"), default=None,
                    help="time the vmap ModuleEnsemble of this model vs a loop of nn.Modules instead")
    ap.add_argument("--members", default="64,256", help="--model: comma-separated ensemble sizes")
    ap.add_argument("--threads", type=int, default=1, help="--model: torch threads")
    ap.add_argument("--member-chunk", type=int, default=0, help="--model: also time this member chunk")
    a = ap.parse_args()
    if a.model is not None:  # --loop-models 0 = loop over all members
        return ensemble_table(a)
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
