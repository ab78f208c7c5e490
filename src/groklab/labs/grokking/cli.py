"""The grokking lab's commands: `groklab grok`, `groklab compare`, `groklab runs animate`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from groklab import GroklabError, config, store
from groklab.console import (
    CONFIG,
    DEVICE,
    JSON,
    OUT,
    PRESET,
    RESUME,
    SET,
    emit_json,
    out,
    progress_bar,
    resume_config,
)
from groklab.engine.device import resolve_device


def register(app: typer.Typer, runs_app: typer.Typer) -> None:
    app.command()(grok)
    app.command()(compare)
    runs_app.command("animate")(runs_animate)


def grok(preset: str | None = PRESET, config_file: Path | None = CONFIG,
         set_: list[str] | None = SET, seeds: int | None = typer.Option(None, help="members (seeds)"),
         steps: int | None = typer.Option(None, help="optimizer steps"),
         device: str | None = DEVICE, resume: str | None = RESUME,
         out_dir: Path | None = OUT, as_json: bool = JSON):
    """Train an ensemble on a grokking task (modular arithmetic or sparse parity)."""
    from groklab.labs.grokking.config import GrokConfig
    from groklab.labs.grokking.run import run_grok

    if resume is not None:
        path, cfg = resume_config(resume, out_dir, "grokking",
                                  {"--preset": preset, "--config": config_file, "--set": set_, "--seeds": seeds,
                                   "--steps": steps}, {"train.device": device})
    else:
        path = None
        cfg = config.load_config(preset or "demo", config_file, set_ or [], cls=GrokConfig, train__seeds=seeds,
                                 train__steps=steps, train__device=device)
    resolve_device(cfg.train.device)  # a bad device is one line before any progress bar or run folder
    prog, update = progress_bar(cfg.train.steps, f"grok {cfg.name}", not as_json)
    with prog:
        summary = run_grok(cfg, out_dir, on_progress=update, resume=path)
    if as_json:
        keys = ("seed", "train_acc", "test_acc", "step_memorized", "step_generalized", "outcome",
                "key_frequencies")
        emit_json({"run_dir": summary["run_dir"], "wall_s": summary["wall_s"],
                   "models": [{k: m[k] for k in keys} for m in summary["models"]]})
        return
    print_grok(summary)


def print_grok(summary: dict) -> None:
    t = Table(title=f"{summary['preset']}: {len(summary['models'])} member(s), {summary['wall_s']:.1f} s")
    for c in ("seed", "outcome", "train acc", "test acc", "memorized@", "generalized@", "key freqs"):
        t.add_column(c)
    for m in summary["models"]:
        t.add_row(str(m["seed"]), m["outcome"], f"{m['train_acc']:.3f}", f"{m['test_acc']:.3f}",
                  str(m["step_memorized"]), str(m["step_generalized"]),
                  ",".join(map(str, m["key_frequencies"])) or "-")
    out.print(t)
    out.print("outcomes: " + ", ".join(f"{k} {v}" for k, v in summary["outcome_counts"].items()))
    out.print(f"run folder: {summary['run_dir']}")
    for f in summary["figures"]:
        out.print(f"figure: {f}")
    out.print(f"report: groklab report {summary['run_dir']}", soft_wrap=True, highlight=False)


def compare(preset: str | None = PRESET,
            intervention: list[str] = typer.Option(..., help="grokfast-ema | grokfast-ma | orthograd | stablemax | "
                                                   "float64 | l1; repeat (or comma-separate) for several arms "
                                                   "against one baseline"),
            set_: list[str] | None = SET, seeds: int | None = typer.Option(None, help="members (seeds) per arm"),
            steps: int | None = typer.Option(None, help="optimizer steps"),
            probe_steps: int = typer.Option(200, help="steps used to measure the effective step size"),
            out_dir: Path | None = OUT, as_json: bool = JSON):
    """Interventions vs one baseline with the same weight decay and seeds: steps to 95% test, ratios."""
    from groklab.labs.grokking.compare import INTERVENTIONS
    from groklab.labs.grokking.compare import compare as run_compare

    names = [n.strip() for v in intervention for n in v.split(",") if n.strip()]
    for name in names:
        if name not in INTERVENTIONS:
            raise GroklabError(f"--intervention: {name!r} is not known; choose one of: {', '.join(INTERVENTIONS)}")
    if not names or len(set(names)) != len(names):
        raise GroklabError(f"--intervention: give each intervention once; choose from: {', '.join(INTERVENTIONS)}")
    if probe_steps < 1:
        raise GroklabError("--probe-steps: must be >= 1")
    from groklab.labs.grokking.config import GrokConfig

    cfg = config.load_config(preset or "demo", None, set_ or [], cls=GrokConfig, train__seeds=seeds,
                             train__steps=steps)
    n_runs = 1 + len(names)
    prog, update = progress_bar(cfg.train.steps * n_runs, f"compare {cfg.name}: baseline + {', '.join(names)}",
                                not as_json)
    runs_done = [-1]

    def on_progress(step: int, active: int) -> None:  # one bar over every arm's run
        if step == 0:
            runs_done[0] += 1
        update(runs_done[0] * cfg.train.steps + step, active)

    with prog:
        res = run_compare(cfg, names, root=out_dir, probe_steps=probe_steps, on_progress=on_progress)
    if as_json:
        return emit_json(res)
    t = Table(title=f"{cfg.name}: interventions vs baseline (weight decay {res['weight_decay']} {res['decay']}, "
                    f"{res['steps']} steps)")
    for c in ("arm", "generalized", "median step to 95% test", "speedup", "paired speedup", "mean |Δw| per step",
              "step size ratio", "run"):
        t.add_column(c)

    def fmt(v, spec=".2f", suffix="x"):
        return "n/a" if v is None else f"{v:{spec}}{suffix}"

    b = res["baseline"]
    t.add_row("baseline", f"{b['generalized']}/{b['members']}", str(b["median_step_generalized"]), "", "",
              f"{b['step_size']:.3g}", "", b["run_dir"])
    for name, r in res["arms"].items():
        t.add_row(name, f"{r['generalized']}/{r['members']}", str(r["median_step_generalized"]), fmt(r["speedup"]),
                  fmt(r["paired_speedup"]), f"{r['step_size']:.3g}", fmt(r["step_size_ratio"]), r["run_dir"])
    out.print(t)
    out.print("speedup: ratio of the medians over seeds that reached 95% test; paired: median per-seed ratio "
              "over seeds that reached it in both arms; n/a: an arm never got there")


def runs_animate(run: str = typer.Argument(..., help="run folder or run id (prefix)"),
                 member: int = typer.Option(0, help="which member"), root: Path | None = OUT,
                 as_json: bool = JSON):
    """Write an animated GIF of a member's weights across all snapshots (grokking runs)."""
    from groklab.labs.grokking.run import animate

    path = store.resolve(run, root)
    if not store.is_complete(path):
        raise GroklabError(f"RUN: {path} is incomplete (killed or still running)")
    if store.read_summary(path).get("lab") != "grokking":
        raise GroklabError(f"RUN: {path} is not a grokking run")
    gif = animate(path, member)
    if as_json:
        return emit_json({"gif": str(gif)})
    out.print(f"animation: {gif}")
