"""The lab rows of `groklab bench suite`: PAIR's parity sweep (the small grid end to end, the full grid
estimated group by group), the compression lab's addition8 training loop, and its arithmetic coder.
Each function returns a list of `Row`s; everything is written to temporary folders, never the run store."""

from __future__ import annotations

import tempfile
import time

import numpy as np
import torch

from groklab.bench.rows import Row, goal
from groklab.labs.compression import config as cconfig

PARITY = "pair-parity-grid"
ADDITION = "addition8-cpu"
CODER = "addition8-small"  # the lab's model for coding: at the floor, ~4x fewer FLOPs per token than ADDITION
STAND_IN = "addition-tiny"


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def parity_small(size, device: str, threads: int, progress) -> list[Row]:
    """`groklab sweep --preset pair-parity-grid --scale small` through the Python API, in a temporary store.
    size.parity_steps > 0 shortens every run to that many steps; size.parity_shrink keeps one value per axis
    and one seed (test size)."""
    from groklab.config import load_preset_raw
    from groklab.sweep.grid import parse_spec
    from groklab.sweep.run import run_sweep

    raw = load_preset_raw(PARITY, "sweep")
    over = [("train.steps", size.parity_steps)] if size.parity_steps else []
    spec = parse_spec(raw, PARITY, "small", over)
    if size.parity_shrink:
        spec.grid, spec.seeds = {k: v[:1] for k, v in spec.grid.items()}, 1
    with tempfile.TemporaryDirectory() as tmp:
        s = run_sweep(spec, tmp, device=device, threads=threads,
                      on_progress=lambda d, t, info: progress(f"parity grid (small): step {d:,}/{t:,}, {info}"))
    what = (f"{s['n_runs']} runs in {s['groups']} groups, {s['model_steps']:,} member-steps "
            f"({s['member_steps_per_s'] or 0:,.0f}/s), outcomes {s['outcome_counts']}")
    if size.parity_steps:
        what = f"REDUCED: the small grid at {size.parity_steps:,} of its 8,000 steps" \
               + (", one value per axis, one seed" if size.parity_shrink else "") + f"; {what}"
    return [Row("parity_grid_small_wall_s", s["wall_s"], "s", "-", what)]


def _step_and_eval_s(marks: list[tuple[int, float]], wall: float, steps: int) -> tuple[float, float]:
    """(s per step, s per evaluation) from the trainer's progress callbacks, which come after each log step's
    evaluation: the time between two of them is (steps between) x step + one evaluation, fitted by least
    squares from the second callback on (the first step carries warm-up). Fallback: wall / steps, 0."""
    d = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks[1:], marks[2:]) if b[0] > a[0]]
    if len({n for n, _ in d}) >= 2:
        (s, e), *_ = np.linalg.lstsq(np.array([[n, 1.0] for n, _ in d]), np.array([t for _, t in d]), rcond=None)
        if s > 0 and e >= 0:
            return float(s), float(e)
    if d:
        return sum(t for _, t in d) / sum(n for n, _ in d), 0.0
    return wall / steps, 0.0


def parity_full_estimate(size, device: str, threads: int, progress) -> list[Row]:
    """The full grid's training time, estimated: every group (45 members) trained as the sweep trains it for
    size.grid_steps steps with early stopping off; its time per step and per evaluation (fitted from the log
    steps' callbacks) times the grid's 20,000 steps and its evaluations, summed. An upper bound: early
    stopping only removes work."""
    from groklab.config import load_preset_raw
    from groklab.engine import device as devmod
    from groklab.engine.trainer import log_steps_for
    from groklab.sweep.grid import groups, lab_sweep, parse_spec

    raw = load_preset_raw(PARITY, "sweep")
    full = groups(parse_spec(raw, PARITY, "full"))
    plan = groups(parse_spec(raw, PARITY, "full", [("train.steps", size.grid_steps), ("train.early_stop", False)]))
    plan = plan[: size.grid_groups or len(plan)]
    total, member_steps, evals = 0.0, 0, 0
    dev = devmod.setup(device, threads)
    for gi, (cfg, pts) in enumerate(plan):
        cfg.train.device, cfg.train.threads = device, threads
        progress(f"parity grid (full, estimate): group {gi + 1}/{len(plan)}")
        marks: list[tuple[int, float]] = []
        res = lab_sweep(cfg).train_group(cfg, pts, dev,
                                         lambda step, _a, marks=marks: marks.append((step, time.perf_counter())))
        step_s, eval_s = _step_and_eval_s(marks, res.wall_s, size.grid_steps)
        fc = full[gi][0].train
        evals = len(log_steps_for(fc.steps, fc.log_every))
        total += fc.steps * step_s + evals * eval_s
        member_steps += len(pts) * fc.steps
    total *= len(full) / len(plan)
    note = (f"upper bound, early stopping off: {len(plan)} of {len(full)} groups trained {size.grid_steps} steps "
            f"each; s/step and s/evaluation fitted per group, scaled to {full[0][0].train.steps:,} steps and "
            f"{evals} evaluations ({member_steps * len(full) // len(plan):,} member-steps)")
    return [Row("parity_grid_full_estimate_s", total, "s", goal("parity_grid_full_estimate_s", device), note)]


def addition8(size, device: str, threads: int, progress) -> list[Row]:
    """size.add_steps steps of the compression lab's training loop (train_model) with addition8-cpu's model
    and batch, in float32 and then with `train.precision=bf16`; the rate is timed between progress callbacks,
    so the held-out evaluations at the first and last step are left out."""
    recipe = cconfig.load(ADDITION)
    steps, m = recipe.train.steps, recipe.model
    rows, base = [], None
    for prec, sfx in (("fp32", ""), ("bf16", "_bf16")):
        rate, how = _addition8_rate(recipe.optim, size, device, threads, prec, progress)
        base = base or rate
        vs = "" if prec == "fp32" else f"; {rate / base:.2f}x the float32 rate of this run"
        rows += [Row(f"addition8_train_steps_per_s{sfx}", rate, "steps/s",
                     goal(f"addition8_train_steps_per_s{sfx}", device, steps),
                     f"{ADDITION}: {m.layers} layers x {m.width} wide, batch {recipe.train.batch_size}, "
                     f"train.precision={prec}; {how}{vs}"),
                 Row(f"addition8_to_floor_s{sfx}", steps / rate, "s", goal(f"addition8_to_floor_s{sfx}", device),
                     f"the recipe's {steps:,} steps at this rate (held-out evaluations every "
                     f"{recipe.train.log_every} steps not included)")]
    return rows


def _addition8_rate(o, size, device: str, threads: int, precision: str, progress) -> tuple[float, str]:
    """(steps/s, how it was timed) of size.add_steps training steps at `precision`; o: the recipe's [optim]."""
    from groklab.engine import device as devmod
    from groklab.labs.compression.train import train_model

    n = size.add_steps
    cfg = cconfig.load(ADDITION, overrides=[f"train.steps={n}", f"train.log_every={n}",
                                            f"optim.warmup={min(o.warmup, n // 4)}",
                                            f"optim.cooldown={min(o.cooldown, n // 4)}",
                                            f"data.val_examples={size.add_val}", f"train.device={device}",
                                            f"train.threads={threads}", f"train.precision={precision}"])
    dev = devmod.setup(device, threads)
    marks: list[tuple[int, float]] = []

    def on_progress(step: int, _active: int) -> None:
        _sync(dev)
        marks.append((step, time.perf_counter()))
        progress(f"addition8 training ({precision}): step {step}/{n}")

    t0 = time.perf_counter()
    train_model(cfg, dev, on_progress=on_progress)
    wall = time.perf_counter() - t0
    inner = [mk for mk in marks if 1 <= mk[0] < n]  # after the first update, before the last evaluation
    if len(inner) >= 2 and inner[-1][0] > inner[0][0]:
        return ((inner[-1][0] - inner[0][0]) / (inner[-1][1] - inner[0][1]),
                f"steps {inner[0][0]}..{inner[-1][0]} of {n} timed (evaluation excluded)")
    return n / wall, f"{n} steps, wall incl. evaluation"


def coder(size, device: str, threads: int, coder_model: str | None, progress) -> list[Row]:
    """Encode then decode fresh addition examples with a model through the compression lab's coder (as
    `groklab compress encode/decode` do), output checked equal; coded payload bits over the entropy floor.
    With coder_model (a `compress train` run): that model for every row. Without: throughput on random
    weights of the addition8-small shape (throughput does not depend on the weights), size on a briefly
    trained addition-tiny stand-in. The coder runs on the CPU (it computes probabilities in numpy)."""
    from groklab.engine import device as devmod
    from groklab.labs.compression import coder as cod
    from groklab.labs.compression.train import arch_toml, load_model, model_hash, run_train
    from groklab.nn.gpt import GPT

    devmod.setup("cpu", threads)
    if coder_model:
        timed = sized = load_model(coder_model)[:3]
        who = f"model {coder_model}"
    else:
        cfg8 = cconfig.load(CODER)
        torch.manual_seed(0)
        net = GPT(cfg8.shape()).eval()
        timed = (net, cfg8, model_hash(net.state_dict(), arch_toml(cfg8)))
        who = f"random weights of the {CODER} shape ({net.n_params():,} parameters)"
        progress(f"coder: training the {STAND_IN} stand-in")
        with tempfile.TemporaryDirectory() as tmp:
            over = [f"train.device={device}", f"train.threads={threads}"]
            over += [f"train.steps={size.stand_in_steps}"] if size.stand_in_steps else []
            s = run_train(cconfig.load(STAND_IN, overrides=over), root=tmp)
            sized = load_model(s["run_dir"])[:3]
        devmod.setup("cpu", threads)
    n, chunk = size.coder_examples, 2000

    def examples(fmt, k: int) -> bytes:
        from groklab.data.addition import format_text
        return format_text(fmt.sample(k, torch.Generator().manual_seed(123))).encode()

    model, cfg, mhash = timed
    fmt = cfg.fmt()
    data = examples(fmt, n)
    tokens = n * fmt.n_targets
    note = f"{who}; {n:,} examples = {tokens:,} tokens, chunk {chunk}, CPU, {torch.get_num_threads()} threads"
    if device == "cuda":
        note += " (the coder has no GPU path: coder.py computes probabilities in numpy)"
    rows = []
    for prec in ("fp32", "bf16"):  # bf16: the coder's matmuls in bfloat16 (`compress encode --precision bf16`)
        cod.encode_bytes(model, mhash, fmt, examples(fmt, min(n, 100)), chunk, precision=prec)  # warm-up
        progress(f"coder ({prec}): encoding {n:,} examples")
        t = time.perf_counter()
        blob = cod.encode_bytes(model, mhash, fmt, data, chunk, precision=prec)
        t_enc = time.perf_counter() - t
        progress(f"coder ({prec}): decoding {n:,} examples")
        t = time.perf_counter()
        back = cod.decode_bytes(model, mhash, fmt, blob)
        t_dec = time.perf_counter() - t
        if back != data:
            raise RuntimeError("bench suite: the coder's round trip changed the data")
        sfx = "" if prec == "fp32" else "_bf16"
        if prec == "fp32":
            rows += [Row("coder_encode_tokens_per_s", tokens / t_enc, "tokens/s", "-", note),
                     Row("coder_decode_tokens_per_s", tokens / t_dec, "tokens/s", "-", note)]
        rows.append(Row("coder_roundtrip_tokens_per_s" + sfx, tokens / (t_enc + t_dec), "tokens/s",
                        goal("coder_roundtrip_tokens_per_s" + sfx, device),
                        note + f"; {prec} matmuls; decoded output equal"))
    sm, scfg, shash = sized
    sfmt = scfg.fmt()
    sdata = examples(sfmt, n)
    for prec in ("fp32", "bf16"):
        if sized is not timed:
            progress(f"coder ({prec}): coding {n:,} examples with the stand-in")
        blob = cod.encode_bytes(sm, shash, sfmt, sdata, chunk, precision=prec)
        ratio = 8 * (len(blob) - cod.HEADER_BYTES) / (n * sfmt.floor_bits())
        size_note = (f"payload bits / ({n:,} x {sfmt.floor_bits():.2f} floor bits), {sfmt.n_digits}-digit "
                     f"examples, {prec} matmuls, " + (f"model {coder_model}" if coder_model else
                     f"STAND-IN: {STAND_IN} trained {size.stand_in_steps or 'its'} steps (not a real result)"))
        name = "coder_size_vs_floor" + ("" if prec == "fp32" else "_bf16")
        rows.append(Row(name, ratio, "ratio", goal(name, device), size_note))
    return rows
