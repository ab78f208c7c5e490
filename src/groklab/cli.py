"""groklab command line: parse -> Config -> lab -> print (rich progress, or one JSON object)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from groklab import GroklabError, __version__, config, store

try:  # typer >= 0.17 vendors click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="groklab: how neural networks memorize, compress and generalize.")
runs_app = typer.Typer(no_args_is_help=True, help="Inspect the run store.")
bench_app = typer.Typer(no_args_is_help=True, help="Measure speed (results go to BENCHMARKS.md).")
app.add_typer(runs_app, name="runs")
app.add_typer(bench_app, name="bench")
from groklab.labs.compression.cli import compress_app  # noqa: E402

app.add_typer(compress_app, name="compress")
err = Console(stderr=True)
out = Console()

PRESET = typer.Option(None, "--preset", "-p", help="named setup; see `groklab presets`")
CONFIG = typer.Option(None, "--config", help="TOML file with [task] [data] [model] [optim] [train] tables")
SET = typer.Option(None, "--set", help="override: section.key=value (repeatable)")
OUT = typer.Option(None, "--out", help="run store root (default ./runs or $GROKLAB_RUNS)")
JSON = typer.Option(False, "--json", help="print exactly one JSON object and nothing else on stdout")


def emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, default=store._json_default) + "\n")


def progress_bar(total: int, label: str, enabled: bool):
    """A rich progress bar on stderr (a no-op with --json); returns (context, callback)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    prog = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                    console=err, disable=not enabled, transient=False)
    task = prog.add_task(label, total=total, info="")

    def update(step: int, active: int) -> None:
        prog.update(task, completed=step, info=f"{active} training")

    return prog, update


@app.command()
def grok(preset: str | None = PRESET, config_file: Path | None = CONFIG,
         set_: list[str] | None = SET, seeds: int | None = typer.Option(None, help="members (seeds)"),
         steps: int | None = typer.Option(None, help="optimizer steps"),
         device: str | None = typer.Option(None, help="auto | cpu | cuda"),
         out_dir: Path | None = OUT, as_json: bool = JSON):
    """Train an ensemble on a grokking task (modular arithmetic or sparse parity)."""
    from groklab.labs.grokking.run import run_grok

    cfg = config.load_config(preset or "demo", config_file, set_ or [], train__seeds=seeds,
                             train__steps=steps, train__device=device)
    prog, update = progress_bar(cfg.train.steps, f"grok {cfg.name}", not as_json)
    with prog:
        summary = run_grok(cfg, out_dir, on_progress=update)
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


@app.command()
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
    cfg = config.load_config(preset or "demo", None, set_ or [], train__seeds=seeds, train__steps=steps)
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


@app.command()
def sweep(preset: str | None = PRESET,
          config_file: Path | None = typer.Option(None, "--config", help="a sweep TOML file (lab = \"sweep\")"),
          scale: str = typer.Option("full", help="small | full"),
          set_: list[str] | None = typer.Option(None, "--set", help="override a base field: section.key=value"),
          resume: Path | None = typer.Option(None, help="continue a killed sweep folder, or join one that "
                                             "other processes are running (each takes unclaimed groups)"),
          device: str | None = typer.Option(None, help="auto | cpu | cuda"),
          threads: int | None = typer.Option(None, help="torch threads (default: all cores)"),
          out_dir: Path | None = OUT, as_json: bool = JSON):
    """Train a grid of models (any config field, seeds as an axis) grouped into batched ensembles."""
    from groklab.sweep.grid import parse_spec
    from groklab.sweep.run import open_resume, run_sweep

    spec = None
    if resume is None:
        if config_file is not None:
            if not config_file.is_file():
                raise GroklabError(f"--config: no such file {str(config_file)!r}")
            raw, name = config.read_toml(config_file.read_text(), f"--config {config_file}"), config_file.stem
        elif preset:
            raw, name = config.load_preset_raw(preset, "sweep"), preset
        else:
            raise GroklabError("--preset: a sweep needs --preset NAME, --config FILE or --resume DIR; sweep "
                               "presets: " + ", ".join(config.preset_names("sweep")))
        spec = parse_spec(raw, name, scale, [config.parse_override(s) for s in set_ or []])
    elif preset or set_ or config_file:
        raise GroklabError("--resume: takes no --preset/--set; the sweep folder holds its spec")
    else:
        _, spec = open_resume(resume)
    if threads is not None and threads < 0:
        raise GroklabError("--threads: must be >= 0")
    if device is not None and device not in ("auto", "cpu", "cuda"):
        raise GroklabError(f"--device: {device!r} is not allowed; choose one of: auto, cpu, cuda")
    prog, _ = progress_bar(1, f"sweep {preset or resume}", not as_json)
    task = prog.task_ids[0]

    def update(done: int, total: int, info: str) -> None:
        prog.update(task, completed=done, total=total, info=info)

    with prog:
        summary = run_sweep(spec, out_dir, resume, device, threads, on_progress=update)
    if as_json:
        return emit_json(summary)
    if not summary["complete"]:
        out.print(f"this process is done; groups {summary['groups_pending']} are still being trained by other "
                  f"processes (the last one to finish writes the table): {summary['run_dir']}")
        return
    out.print(f"{summary['n_runs']} runs in {summary['groups']} groups, {summary['wall_s']:.1f} s "
              f"({summary['member_steps_per_s']} member-steps/s)")
    out.print("outcomes: " + ", ".join(f"{k} {v}" for k, v in summary["outcome_counts"].items()))
    out.print(f"sweep folder: {summary['run_dir']}")
    for f in summary["figures"]:
        out.print(f"figure: {f}")


@app.command()
def presets(as_json: bool = JSON, fields: bool = typer.Option(False, "--fields", help="list every config field")):
    """List the named presets with a one-line description and their source."""
    if fields:
        rows = [{"lab": root.lab, "field": f"{s}.{f.name}", "default": f.default, "help": f.metadata["help"],
                 "choices": f.metadata.get("choices")} for root in config.ROOTS
                for s, cls in config.sections(root).items() for f in config.fields(cls)]
        if as_json:
            return emit_json(rows)
        for r in rows:
            ch = f" [{' | '.join(map(str, r['choices']))}]" if r["choices"] else ""
            out.print(f"{r['lab']:<12} {r['field']:<26} {r['default']!s:<10} {r['help']}{ch}", highlight=False)
        return
    rows = []
    for name in config.preset_names():
        raw = config.load_preset_raw(name)
        rows.append({"name": name, "lab": raw.get("lab", "grokking"), "description": raw.get("description", ""),
                     "source": raw.get("source", "")})
    if as_json:
        return emit_json(rows)
    t = Table(title="groklab presets")
    t.add_column("name")
    t.add_column("lab")
    t.add_column("description")
    t.add_column("source")
    for r in rows:
        t.add_row(r["name"], r["lab"], r["description"], r["source"])
    out.print(t)


@runs_app.command("list")
def runs_list(root: Path | None = OUT, as_json: bool = JSON):
    """Every run under the store root, complete or not."""
    rows = store.list_runs(root)
    if as_json:
        return emit_json(rows)
    t = Table(title=f"runs in {root or store.default_root()}")
    for c in ("id", "lab", "preset", "members", "wall s", "status"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["id"], str(r["lab"] or "-"), str(r["preset"] or "-"), str(r["n_members"]),
                  f"{r['wall_s']:.1f}" if r["wall_s"] else "-", "complete" if r["complete"] else "INCOMPLETE")
    out.print(t)


@runs_app.command("show")
def runs_show(run: str = typer.Argument(..., help="run folder or run id (prefix)"),
              root: Path | None = OUT, as_json: bool = JSON):
    """A run's summary (outcomes, milestones, figures)."""
    path = store.resolve(run, root)
    if not store.is_complete(path):
        raise GroklabError(f"RUN: {path} is incomplete (killed or still running); no summary to show")
    summary = store.read_summary(path)
    if as_json:
        return emit_json(summary)
    if summary.get("lab") == "grokking":
        return print_grok(summary)
    out.print_json(data=summary)


@runs_app.command("animate")
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


@runs_app.command("query")
def runs_query(sql: str = typer.Argument(..., help="SQL over views `runs` and `members`"),
               root: Path | None = OUT, as_json: bool = JSON):
    """Query every complete run with DuckDB, e.g. "SELECT outcome, count(*) FROM members GROUP BY 1"."""
    cols, rows = store.query(sql, root)
    if as_json:
        return emit_json([dict(zip(cols, r)) for r in rows])
    t = Table()
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*map(str, r))
    out.print(t)


@bench_app.command("engine")
def bench_engine(models: int = typer.Option(256, help="ensemble members"),
                 steps: int = typer.Option(30, help="timed steps of the batched ensemble"),
                 loop_models: int = typer.Option(16, help="members timed in the one-by-one loop"),
                 threads: int = typer.Option(0, help="torch threads (0 = all cores)"),
                 device: str = typer.Option("cpu", help="cpu | cuda | auto"),
                 member_chunk: int = typer.Option(0, help="members per forward/backward chunk (0 = all)"),
                 as_json: bool = JSON):
    """Batched ensemble vs a loop of independent models (PAIR MLP), and this machine's matmul rate."""
    from groklab.bench import engine_benchmark

    if models < 1 or steps < 1 or loop_models < 1:
        raise GroklabError("--models/--steps/--loop-models: must be >= 1")
    if member_chunk < 0 or threads < 0:
        raise GroklabError("--member-chunk/--threads: must be >= 0")
    if device not in ("auto", "cpu", "cuda"):
        raise GroklabError(f"--device: {device!r} is not allowed; choose one of: auto, cpu, cuda")
    res = engine_benchmark(models, steps, loop_models, threads, device, member_chunk)
    if as_json:
        return emit_json(res)
    t = Table(title=f"engine benchmark ({res['device']}, {res['threads']} threads)")
    t.add_column("measure")
    t.add_column("value")
    for k, v in res.items():
        t.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    out.print(t)


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="print the version")):
    if version:
        out.print(f"groklab {__version__}")
        raise typer.Exit()


def main() -> None:
    """Entry point: user errors print one line and exit 2; bugs keep their traceback."""
    try:
        app(standalone_mode=False)
    except GroklabError as e:
        err.print(f"error: {e}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except click_exc.ClickException as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # bare `groklab`: show help, like --help
            out.print(e.format_message(), highlight=False, markup=False)
            sys.exit(0)
        err.print(f"error: {e.format_message()}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
