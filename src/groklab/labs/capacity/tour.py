"""The capacity lab's stage of `groklab tour`: effective model complexity (EMC, the largest sample count a
model fits to 100% train accuracy) of the `emc-demo` MLP on MNIST-1D (built offline, no download); the full
tour runs the `emc-labels` study instead (semantic vs random labels, real vs Gaussian vs permuted inputs)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from groklab.tour import Progress, Stage

# `emc-demo` overrides per tour size (full: the emc-labels sweep at --scale small instead)
SETS = {
    "tiny": ["train.seeds=1", "search.n_min=20", "search.n_max=120", "search.tol=0.5", "search.max_epochs=150",
             "search.check_every=10", "search.window=20", "train.threads=0"],
    # one seed, the 10% bracket and 1,000-epoch cap of emc-labels' small scale
    "quick": ["train.seeds=1", "search.tol=0.1", "search.max_epochs=1000", "train.threads=1"],
}
COST_S = {"tiny": 5, "quick": 30, "full": 200}  # full: docs/capacity.md, emc-labels --scale small 3 min 5 s


def stages(size: str) -> list[Stage]:
    if size == "full":
        return [Stage("capacity", "EMC: labels and inputs", "samples fitted to 100% (semantic vs random labels)",
                      run_labels_stage, COST_S[size])]
    return [Stage("capacity", "EMC", "samples a 1,098-parameter MLP fits to 100% on MNIST-1D",
                  partial(run_emc_stage, size), COST_S[size])]


def run_emc_stage(size: str, root: Path, on_progress: Progress) -> dict:
    from groklab.labs.capacity.config import load
    from groklab.labs.capacity.run import expected_rounds, prepare, run_emc

    cfg = load("emc-demo", None, SETS[size])
    total = expected_rounds(cfg)
    s = run_emc(cfg, root, on_progress=lambda r, active: on_progress(r, total, f"round {r:.1f}, {active} training"),
                prepared=prepare(cfg, root))
    test = [p["test_acc_at_emc"] for p in s["per_seed"] if p.get("test_acc_at_emc") is not None]
    head = {"emc": s["emc"], "emc_std": s["emc_std"], "bracket": s["bracket"], "params": s["params"],
            "seeds": len(s["per_seed"]), "trainings": s["trainings"],
            "test_acc_at_emc": min(test) if test else None}
    emc = "-" if s["emc"] is None else f"{s['emc']:,.0f}"
    text = (f"EMC {emc} samples (bracket {_n(s['bracket'][0])}-{_n(s['bracket'][1])}) with {s['params']:,} parameters; "
            f"{s['trainings']} trainings")
    return {"lab": "capacity", "run_dir": s["run_dir"], "headline": head, "text": text}


def run_labels_stage(root: Path, on_progress: Progress) -> dict:
    import pyarrow.parquet as pq

    from groklab import config
    from groklab.sweep.grid import parse_spec
    from groklab.sweep.run import run_sweep

    spec = parse_spec(config.load_preset_raw("emc-labels", "sweep"), "emc-labels", "small")
    s = run_sweep(spec, root, threads=1, on_progress=on_progress)
    t = pq.read_table(Path(s["run_dir"]) / "members.parquet").to_pylist()
    emc = {f"{r['labels']} labels, {r['inputs']} inputs": r["emc"] for r in t}
    head = {"emc": emc, "params": t[0]["params"], "runs": s["n_runs"]}
    real = {r["labels"]: r["emc"] for r in t if r["inputs"] == "real"}
    text = (f"EMC, real inputs: semantic labels {_n(real.get('semantic'))}, random {_n(real.get('random'))} "
            f"({t[0]['params']:,} parameters; {len(t)} conditions in the report)")
    return {"lab": "capacity", "run_dir": s["run_dir"], "headline": head, "text": text}


def _n(v) -> str:
    return "-" if v is None else f"{v:,.0f}"
