"""`groklab grok`: train an ensemble on a grokking task, store it, analyze it, draw it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from groklab import store
from groklab.data import make_task
from groklab.engine import device as devmod
from groklab.engine.trainer import METRICS, Member, TrainResult, loss_kwargs, train
from groklab.labs.grokking import figures, fourier, progress
from groklab.labs.grokking.config import GrokConfig as Config
from groklab.labs.grokking.outcomes import OUTCOMES, member_summary, settled_fn
from groklab.nn import make_model


def members_for(cfg: Config) -> list[Member]:
    """Members seed, seed+1, ... sharing the config's lr, weight decay and init scale."""
    return [Member(cfg.train.seed + i, cfg.optim.lr, cfg.optim.weight_decay, cfg.model.init_scale)
            for i in range(cfg.train.seeds)]


def long_metrics(res: TrainResult, members: list[Member]) -> dict[str, np.ndarray]:
    """member × step × metric rows (NaN = not logged, dropped)."""
    cols: dict[str, list] = {"member": [], "seed": [], "step": [], "metric": [], "value": []}
    for name in [*METRICS, *(k for k in res.metrics if k not in METRICS)]:  # + progress measures
        vals = res.metrics[name]  # (M, L)
        mi, li = np.nonzero(~np.isnan(vals))
        cols["member"].append(mi)
        cols["seed"].append(np.array([members[i].seed for i in mi], dtype=np.int64))
        cols["step"].append(res.steps[li])
        cols["metric"].append(np.full(len(mi), name, dtype=object))
        cols["value"].append(vals[mi, li])
    return {k: np.concatenate(v) for k, v in cols.items()}


def checkpoint_policy(train_cfg) -> tuple[int, float]:
    """(every k steps, at least s seconds apart): train.checkpoint_every, or 0 = at log steps, once a minute."""
    if train_cfg.checkpoint_every:
        return train_cfg.checkpoint_every, 0.0
    return train_cfg.log_every, 60.0


def run_grok(cfg: Config, root: Path | str | None = None, on_progress=None, resume: Path | None = None) -> dict:
    """Train, store and analyze; returns the summary (also written to summary.json). With `resume` (a run
    folder of an interrupted run of this config) training continues from its last checkpoint and ends with
    the metrics of an uninterrupted run."""
    t0 = time.perf_counter()
    data = make_task(cfg)
    model = make_model(cfg, data)
    dev = devmod.setup(cfg.train.device, cfg.train.threads)
    torch.manual_seed(cfg.train.seed)
    env = devmod.environment(dev)
    ctx = (store.reopen_run(resume, env) if resume is not None
           else store.open_run(root or store.default_root(), cfg.name, cfg.to_toml(), env))
    with ctx as run:
        return _train_and_write(cfg, run, data, model, dev, t0, on_progress)


def _train_and_write(cfg: Config, run: store.Run, data, model, dev, t0: float, on_progress) -> dict:
    members = members_for(cfg)
    state = run.read_checkpoint()
    start = state[1]["step"] if state else 0
    snap_w: list[tuple[int, np.ndarray]] = [  # member 0's input weights per snapshot, for figures
        (s, figures.to_numpy(input_weights(model, p)[0])) for s, p in store.load_snapshots(run.path) if s <= start]

    def on_snapshot(step, params):
        run.write_snapshot(step, params)
        snap_w.append((step, figures.to_numpy(input_weights(model, params)[0])))

    def on_step(step, active):
        if step > 0 and not run.started:
            run.mark_started()  # from here an error keeps the folder (resume with --resume)
        if on_progress is not None:
            on_progress(step, active)

    every, min_s = checkpoint_policy(cfg.train)
    train_data = data
    if cfg.data.split == "per_seed":  # every member its own split (PAIR's per-seed np.random.permutation)
        from groklab.data.modular import modular_member_splits
        d = cfg.data
        train_data = modular_member_splits(cfg.task.p, cfg.task.op, d.train_fraction, d.only_a_le_b,
                                           [m.seed for m in members])
    res = train(model, train_data, members, cfg.optim, cfg.train, dev,
                settled=settled_fn(cfg), on_snapshot=on_snapshot,
                on_progress=on_step,
                on_log=progress_hook(cfg, model, data) if cfg.train.progress_every else None,
                checkpoint_every=every, checkpoint_min_s=min_s, on_checkpoint=run.write_checkpoint, resume=state)
    run.write_table("metrics.parquet", long_metrics(res, members))
    last = int(res.stopped_at[0]) if res.stopped_at[0] >= 0 else int(res.steps[-1])
    run.write_snapshot(last, res.params, name="final")  # every member's last weights
    w_final = input_weights(model, res.params)  # (M, p or d_in, H)
    if cfg.train.snapshots:
        snap_w = [(s, w) for s, w in snap_w if s < last] + [(last, figures.to_numpy(w_final[0]))]
    modular = cfg.task.kind == "modular"
    models = []
    for i, m in enumerate(members):
        s = {"seed": m.seed, **member_summary(res.steps, res.metrics, i, cfg.analysis)}
        if modular:
            fa = fourier.analyze(figures.to_numpy(w_final[i]), cfg.analysis.freq_threshold)
            s.update(key_frequencies=fa["key_frequencies"], gini=fa["gini"])
            if cfg.model.kind == "transformer":  # embedding spectrum, not per-neuron counts
                s["key_frequencies"] = progress.key_frequencies(w_final[i:i + 1])[0]
        else:
            w = np.abs(figures.to_numpy(w_final[i])).sum(1)  # (d_in,) weight mass per input
            s.update(key_frequencies=[], relevant_weight_share=float(w[: cfg.task.k_bits].sum() / w.sum()))
        if cfg.train.progress_every:
            s.update(progress.milestones(res.steps, res.metrics, i))
        s["stopped_early_at"] = int(res.stopped_at[i]) if res.stopped_at[i] >= 0 else None
        models.append(s)
    run.write_table("members.parquet", members_table(cfg, members, models))
    figs = draw(cfg, res, models, snap_w, run.path / "figures")
    counts = {o: sum(s["outcome"] == o for s in models) for o in OUTCOMES}
    summary = {
        "lab": "grokking", "preset": cfg.name, "run_dir": str(run.path), "run_id": run.id,
        "wall_s": round(time.perf_counter() - t0, 3), "train_wall_s": round(res.wall_s, 3),
        "model_steps": res.model_steps, "outcome_counts": counts, "figures": [str(f) for f in figs],
        "models": models,
    }
    run.write_json("summary.json", summary)
    run.complete()
    return summary


def progress_hook(cfg: Config, model, data):
    return progress.on_log_hook(cfg, model, data, loss_kwargs(cfg.train))


def input_weights(model, params) -> torch.Tensor:
    """Per-token (modular) or per-input-bit (parity) weights into the hidden layer. # (M, in, H)"""
    if hasattr(model, "input_weights"):
        return model.input_weights(params)
    return params["w1"]


def members_table(cfg: Config, members: list[Member], models: list[dict]) -> dict[str, list]:
    keys = ("outcome", "step_memorized", "step_generalized", "train_acc", "test_acc", "train_loss",
            "test_loss", "last_step", "peak_test_acc", "step_peak_test_acc")
    cols = {"lab": [cfg.lab] * len(members), "group": [0] * len(members), "member": list(range(len(members))),
            "seed": [m.seed for m in members],
            "lr": [m.lr for m in members], "weight_decay": [m.weight_decay for m in members],
            "init_scale": [m.init_scale for m in members],
            "task": [cfg.task.kind] * len(members), "p": [cfg.task.p] * len(members),
            "op": [cfg.task.op] * len(members), "hidden": [getattr(cfg.model.arch, "hidden", 0)] * len(members),
            "decay": [cfg.optim.decay] * len(members)}
    for k in keys:
        cols[k] = [s[k] for s in models]
    cols["key_frequencies"] = [",".join(map(str, s["key_frequencies"])) for s in models]
    return cols


def draw(cfg: Config, res: TrainResult, models: list[dict], snap_w, out: Path) -> list[Path]:
    title = cfg.name
    figs = [figures.curves(res.steps, res.metrics, models, out / "curves.png", title)]
    if cfg.train.progress_every:
        figs.append(figures.progress_figure(res.steps, res.metrics, models, out / "progress.png", title))
    if snap_w and cfg.task.kind == "modular":
        figs.append(figures.weight_heatmaps(snap_w, out / "weights.png", cfg.analysis.freq_threshold, title,
                                            models[0]))
        figs.append(figures.spectrum_figure(snap_w[-1][1], out / "spectrum.png", title,
                                            models[0]["key_frequencies"]))
    if snap_w and cfg.task.kind == "parity":
        figs.append(figures.parity_weights(snap_w, cfg.task.k_bits, out / "parity_weights.png", title,
                                            cfg.task.n_bits))
    if len(models) > 1:
        figs.append(figures.step_distribution(models, out / "step_generalized.png", title))
    return figs


def animate(path: Path, member: int = 0) -> Path:
    """Rebuild member `member`'s weight snapshots from a run folder and write figures/weights.gif."""
    from groklab import GroklabError
    from groklab.config import load_run_config

    path = Path(path)
    cfg = load_run_config(path)
    snaps = store.load_snapshots(path)
    if not snaps:
        raise GroklabError(f"RUN: {path} has no weight snapshots (train.snapshots = 0)")
    n = next(iter(snaps[0][1].values())).shape[0]
    if not 0 <= member < n:
        raise GroklabError(f"--member: must be in 0..{n - 1}, got {member}")
    model = make_model(cfg, make_task(cfg))
    frames = [(s, figures.to_numpy(input_weights(model, {k: v[member:member + 1] for k, v in p.items()})[0]))
              for s, p in snaps]
    return figures.weight_animation(frames, path / "figures" / f"weights_member{member}.gif",
                                    cfg.analysis.freq_threshold, f"{cfg.name} member {member}")


def redraw_figures(path: Path) -> list[Path]:
    """Every figure of a finished run, rebuilt from its folder alone (metrics, summary, snapshots)."""
    from types import SimpleNamespace

    from groklab.config import load_run_config

    path = Path(path)
    cfg = load_run_config(path)
    summary = store.read_summary(path)
    models = summary["models"]
    t = store.read_metrics(path).to_pydict()  # long table: member, step, metric, value
    steps = np.array(sorted(set(t["step"])))
    col = {s: j for j, s in enumerate(steps)}
    metrics: dict[str, np.ndarray] = {}
    for mi, s, name, v in zip(t["member"], t["step"], t["metric"], t["value"]):
        metrics.setdefault(name, np.full((len(models), len(steps)), np.nan))[mi, col[s]] = v
    model = make_model(cfg, make_task(cfg))
    snap_w = [(s, figures.to_numpy(input_weights(model, {k: v[:1] for k, v in p.items()})[0]))
              for s, p in store.load_snapshots(path)]
    res = SimpleNamespace(steps=steps, metrics=metrics)
    return draw(cfg, res, models, snap_w, path / "figures")
