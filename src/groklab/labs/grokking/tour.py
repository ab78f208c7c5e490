"""The grokking lab's stages of `groklab tour`: PAIR's MLP groks a+b mod 67 (the `demo` preset), and a
sparse-parity phase diagram through the shared sweep (the `pair-parity-grid` preset, reduced)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from statistics import median

from groklab.tour import Progress, Stage

# `demo` overrides per tour size (full: 8 seeds, so the spread of the grokking step shows)
GROK_SETS = {
    "tiny": ["train.steps=300", "train.log_every=50", "train.snapshots=3"],
    "quick": ["train.threads=1"],
    "full": ["train.seeds=8", "train.threads=1"],
}
GROK_COST_S = {"tiny": 5, "quick": 20, "full": 90}

# the `[small]` table of pair-parity-grid per tour size (full: the preset's own `--scale small`)
PARITY_SMALL = {
    "tiny": {"seeds": 1, "grid": {"optim.weight_decay": [0.01, 1.0], "model.mlp.hidden": [16],
                                  "data.n_train": [750]}, "set": {"train.steps": 200}},
    # weight decay from too little to more at one shape, one batched ensemble: measured with pair-parity's
    # AdamW L2 and 0/1 bits (#15): memorize at 0.01 (test loss 0.4-0.6), grok at 0.3 (stopped ~2,500),
    # generalize directly at 1 (stopped ~1,800); 127 s on a CPU shared with ~6 other jobs (load 8)
    "quick": {"seeds": 2, "grid": {"optim.weight_decay": [0.01, 0.3, 1.0], "model.mlp.hidden": [64],
                                   "data.n_train": [1750]}, "set": {"train.steps": 3500}},
    "full": None,
}
THREADS = {"tiny": 0, "quick": 1, "full": 1}  # 0: $OMP_NUM_THREADS or all cores
PARITY_COST_S = {"tiny": 5, "quick": 40, "full": 400}  # full: docs/grokking.md, 370 s


def stages(size: str) -> list[Stage]:
    return [
        Stage("grokking", "a+b mod 67", "PAIR's 24-neuron MLP memorizes, then generalizes",
              partial(run_grok_stage, size), GROK_COST_S[size]),
        Stage("grokking", "sparse parity", "outcome per weight decay and seed (a sweep)",
              partial(run_parity_stage, size), PARITY_COST_S[size]),
    ]


def run_grok_stage(size: str, root: Path, on_progress: Progress) -> dict:
    from groklab import config
    from groklab.labs.grokking.config import GrokConfig
    from groklab.labs.grokking.run import run_grok

    cfg = config.load_config("demo", None, GROK_SETS[size], cls=GrokConfig)
    steps = cfg.train.steps
    s = run_grok(cfg, root, on_progress=lambda step, active: on_progress(step, steps, f"{active} training"))
    models = s["models"]
    gen = [m["step_generalized"] for m in models if m["step_generalized"] is not None]
    mem = [m["step_memorized"] for m in models if m["step_memorized"] is not None]
    counts = {k: v for k, v in s["outcome_counts"].items() if v}
    head = {"seeds": len(models), "outcome_counts": counts,
            "median_step_memorized": median(mem) if mem else None,
            "median_step_generalized": median(gen) if gen else None,
            "test_acc": min(m["test_acc"] for m in models), "key_frequencies": models[0]["key_frequencies"]}
    outcome = ", ".join(f"{k} {v}/{len(models)}" for k, v in counts.items())
    text = (f"{outcome}: memorized @{_step(head['median_step_memorized'])}, generalized "
            f"@{_step(head['median_step_generalized'])}{' (medians)' if len(models) > 1 else ''}; "
            f"key freqs {','.join(map(str, head['key_frequencies'])) or '-'}")
    return {"lab": "grokking", "run_dir": s["run_dir"], "headline": head, "text": text}


def run_parity_stage(size: str, root: Path, on_progress: Progress) -> dict:
    from groklab import config
    from groklab.sweep.grid import parse_spec
    from groklab.sweep.run import run_sweep

    raw = config.load_preset_raw("pair-parity-grid", "sweep")
    name = "pair-parity-grid"
    if PARITY_SMALL[size] is not None:
        raw["small"], name = PARITY_SMALL[size], f"pair-parity-grid-tour-{size}"
    s = run_sweep(parse_spec(raw, name, "small"), root, threads=THREADS[size], on_progress=on_progress)
    counts = {k: v for k, v in s["outcome_counts"].items() if v}
    head = {"runs": s["n_runs"], "groups": s["groups"], "outcome_counts": counts, "outcome_classes": len(counts)}
    text = f"{s['n_runs']} runs: " + ", ".join(f"{k} {v}" for k, v in counts.items())
    return {"lab": "grokking", "run_dir": s["run_dir"], "headline": head, "text": text}


def _step(v) -> str:
    return "-" if v is None else f"{v:,.0f}"
