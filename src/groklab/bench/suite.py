"""`groklab bench suite`: every performance figure of groklab measured side by side in one run, on one
device with one thread count: the engine (batched ensemble vs a loop of single models, and the fraction of
this machine's fp32 matmul rate, measured in the same run), PAIR's parity sweep, the compression lab's
training loop and its arithmetic coder. Sizes: "full" (<= 30 min on 2 cores), "quick" (<= 5 min; reduced
rows say so in their note) and "tiny" (tests only: seconds, the numbers mean nothing)."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from groklab import GroklabError
from groklab.bench import capacity, labs
from groklab.bench.engine import engine_benchmark, ensemble_benchmark, matmul_gflops
from groklab.bench.rows import Row, fmt_value, goal
from groklab.engine import device as devmod


@dataclass(frozen=True)
class Size:
    pair: tuple[int, int, int]  # PAIR MLP: members, timed steps, loop members
    module: tuple[int, int, int]  # MNIST-1D MLP / CNN through ModuleEnsemble: members, steps, loop members
    transformer: tuple[int, int, int]  # the 1-layer grokking transformer: members, steps, loop members
    parity_steps: int  # 0 = the small grid as a user runs it (8,000 steps); else every run cut to this many
    grid_steps: int  # timed steps per full-grid group for the full-grid estimate
    add_steps: int  # addition8 training steps
    coder_examples: int
    transformer_set: tuple[str, ...] = ()  # config overrides of the transformer preset
    parity_shrink: bool = False  # one value per axis, one seed
    grid_groups: int = 0  # time only the first k full-grid groups (0 = all 25) and scale up
    add_val: int = 2000  # held-out examples evaluated at the first and last step (not timed)
    stand_in_steps: int = 0  # coder stand-in training steps (0 = the addition-tiny preset's)
    matmul: tuple[int, int] = (0, 0)  # n, reps (0 = matmul_gflops's defaults)


SIZES = {
    "full": Size(pair=(256, 20, 8), module=(256, 5, 16), transformer=(16, 3, 4), parity_steps=0, grid_steps=100,
                 add_steps=300, coder_examples=10_000),
    "quick": Size(pair=(256, 10, 4), module=(256, 3, 8), transformer=(8, 2, 2), parity_steps=400, grid_steps=20,
                  add_steps=40, coder_examples=2000),
    "tiny": Size(pair=(4, 1, 2), module=(4, 1, 2), transformer=(2, 1, 1), parity_steps=10, grid_steps=2,
                 add_steps=4, coder_examples=20, parity_shrink=True, grid_groups=2, add_val=20, stand_in_steps=10,
                 transformer_set=("task.p=11", "model.transformer.d_model=16", "model.transformer.n_heads=2",
                                  "model.transformer.d_mlp=32"), matmul=(256, 2)),
}
PAIR_CHUNK = 32  # members per forward/backward chunk of the PAIR MLP (BENCHMARKS.md's "after" row)


def engine_rows(size: Size, device: str, threads: int, peak: float, progress) -> list[Row]:
    rows = []
    for name, preset, (m, steps, loop), chunk, over in (
            ("pair_mlp", "pair-mlp", size.pair, PAIR_CHUNK, ()),
            ("transformer", "nanda-transformer", size.transformer, 0, size.transformer_set)):
        progress(f"engine: {name}, {m} members")
        r = engine_benchmark(m, steps, loop, threads, device, chunk, preset, over, peak_gflops=peak)
        note = (f"{preset}: hand-written batched model, {m} members{f' in chunks of {chunk}' if chunk else ''}, "
                f"{r['batched_step_ms']:.1f} ms/step, {r['engine_gflops']:.1f} GFLOP/s; loop of {loop} "
                f"nn.Modules + torch.optim.AdamW: {r['loop_model_steps_per_s']:.1f} model-steps/s")
        if over:
            note += f"; {', '.join(over)}"
        rows += [Row(f"engine_speedup_{name}", r["speedup"], "x", goal(f"engine_speedup_{name}", device), note),
                 Row(f"engine_fraction_of_peak_{name}", r["fraction_of_peak"], "of matmul",
                     goal(f"engine_fraction_of_peak_{name}", device), note)]
    for name in ("mlp", "cnn"):
        m, steps, loop = size.module
        progress(f"engine: {name} (ModuleEnsemble), {m} members")
        r = ensemble_benchmark(name, m, steps, threads, device, loop, peak_gflops=peak)
        note = (f"MNIST-1D {name} (batch {r['batch']}, SGD) as a torch.func ModuleEnsemble of {m}, "
                f"{r['ensemble_step_ms']:.1f} ms/step, {r['ensemble_gflops']:.1f} GFLOP/s; loop of {loop}: "
                f"{r['loop_model_steps_per_s']:.0f} model-steps/s")
        if "vmap_step_ms" in r:
            note += (f"; its batched_forward fast path vs torch.func vmap: {r['vmap_step_ms']:.1f} ms/step before, "
                     f"{r['fast_path_vs_vmap']:.2f}x")
        rows += [Row(f"engine_speedup_{name}", r["speedup"], "x", goal(f"engine_speedup_{name}", device), note),
                 Row(f"engine_fraction_of_peak_{name}", r["fraction_of_peak"], "of matmul",
                     goal(f"engine_fraction_of_peak_{name}", device), note)]
    return rows


def check_coder_model(coder_model: str | None) -> None:
    """A bad --coder-model fails before the long rows, not after them."""
    if coder_model:
        from groklab.labs.compression.train import load_model
        try:
            load_model(coder_model)
        except GroklabError as e:
            msg = str(e)
            raise GroklabError(f"--coder-model: {msg.split(': ', 1)[1] if msg.startswith(('--model', 'RUN')) else msg}"
                               ) from None


def run_suite(device: str = "cpu", threads: int = 0, size: str = "full", coder_model: str | None = None,
              on_progress: Callable[[int, int, str], None] | None = None) -> dict:
    """Measure every row; returns {"wall_s", "device", "threads", "matmul_gflops", "load_avg", "machine",
    "load_avg_end", "size", "date", "torch", "rows": [{"name", "value", "unit", "goal", "note", "met"}]}; load_avg
    is the 1-minute load average at the start (load_avg_end: at the end)."""
    sz = SIZES[size]
    check_coder_model(coder_model)
    t0, date = time.perf_counter(), time.strftime("%Y-%m-%d %H:%M %Z")
    load_avg = os.getloadavg()[0]
    dev = devmod.setup(device, threads)
    n_threads = torch.get_num_threads()
    stages = ["matmul", "engine", "parity small", "parity full", "addition8", "coder", "capacity"]
    state = {"done": 0}

    def progress(info: str) -> None:
        if on_progress:
            on_progress(state["done"], len(stages), info)

    progress("fp32 matmul rate")
    peak = matmul_gflops(dev, *sz.matmul)
    rows: list[Row] = []
    steps = [lambda: [], lambda: engine_rows(sz, device, threads, peak, progress),
             lambda: labs.parity_small(sz, device, threads, progress),
             lambda: labs.parity_full_estimate(sz, device, threads, progress),
             lambda: labs.addition8(sz, device, threads, progress),
             lambda: labs.coder(sz, device, threads, coder_model, progress),
             lambda: capacity.emc_search(size, device, threads, progress)]
    for i, run in enumerate(steps):
        state["done"] = i
        rows += run()
    state["done"] = len(stages)
    progress("done")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}"
    if dev.type == "cuda":
        machine += f", {torch.cuda.get_device_name(dev)}"
    return {"wall_s": time.perf_counter() - t0, "device": str(dev), "threads": n_threads, "matmul_gflops": peak,
            "load_avg": load_avg, "load_avg_end": os.getloadavg()[0], "machine": machine, "size": size,
            "date": date, "torch": torch.__version__, "rows": [r.to_dict() for r in rows]}


def markdown(res: dict) -> str:
    """The BENCHMARKS.md section: when, where, threads, load, then one table of every row."""
    met = {True: "yes", False: "**no**", None: "-"}
    lines = [f"Measured {res['date']} on {res['machine']}; device {res['device']}, torch {res['torch']}, "
             f"{res['threads']} threads, load average {res['load_avg']:.2f} at start, "
             f"{res.get('load_avg_end', float('nan')):.2f} at the end; fp32 matmul "
             f"{res['matmul_gflops']:.0f} GFLOP/s (the peak of every fraction); `groklab bench suite"
             f"{' --quick' if res['size'] == 'quick' else ''}`, {res['wall_s'] / 60:.1f} min in all.", "",
             "| row | value | unit | goal | met | how |", "|---|---|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| `{r['name']}` | {fmt_value(r['value'])} | {r['unit']} | {r['goal']} | {met[r['met']]} | "
                     f"{r['note'].replace('|', '/')} |")
    return "\n".join(lines)
