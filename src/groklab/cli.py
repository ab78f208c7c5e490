"""groklab command line: the shared commands (presets, sweep, runs, bench) plus each lab's commands,
assembled from `groklab.labs.LABS`. Nothing lab-specific lives here."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from groklab import GroklabError, __version__, config, store
from groklab.console import JSON, OUT, PRESET, emit_json, err, out, progress_bar, run_app  # noqa: F401
from groklab.labs import all_labs, get_lab

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None, help="groklab: how neural networks memorize, compress and generalize.")
runs_app = typer.Typer(no_args_is_help=True, help="Inspect the run store.")
bench_app = typer.Typer(no_args_is_help=True, help="Measure speed (results go to BENCHMARKS.md).")
data_app = typer.Typer(no_args_is_help=True,
                       help="Data sets that are loaded (MNIST-1D, scikit-learn, MNIST/CIFAR files).")
app.add_typer(runs_app, name="runs")
app.add_typer(bench_app, name="bench")
app.add_typer(data_app, name="data")
for _lab in all_labs():
    _lab.register(app, runs_app)


@app.command()
def sweep(preset: str | None = PRESET,
          config_file: Path | None = typer.Option(None, "--config", help="a sweep TOML file (lab = \"sweep\")"),
          scale: str = typer.Option("full", help="small | full"),
          set_: list[str] | None = typer.Option(None, "--set", help="override a base field: section.key=value"),
          resume: Path | None = typer.Option(None, help="continue a killed sweep folder, or join one that "
                                             "other processes are running (each takes unclaimed groups)"),
          device: str | None = typer.Option(None, help="auto | cpu | cuda"),
          threads: int | None = typer.Option(None, help="torch threads (default: this job's share of the cores, "
                                             "$GROKLAB_THREADS; with --backend ray: CPUs per task, default 1)"),
          backend: str = typer.Option("local", help="local: groups one after another in this process; ray: "
                                      "each group a Ray core task (pip install 'groklab[ray]')"),
          address: str | None = typer.Option(None, help="--backend ray: a running Ray cluster (auto, HOST:PORT, "
                                             "ray://HOST:PORT; default $RAY_ADDRESS, else a local Ray)"),
          out_dir: Path | None = OUT, as_json: bool = JSON):
    """Train a grid of models (any config field, seeds as an axis) grouped into batched ensembles."""
    from groklab.sweep.grid import parse_spec
    from groklab.sweep.run import BACKENDS, open_resume, run_sweep

    spec = None
    if backend not in BACKENDS:
        raise GroklabError(f"--backend: {backend!r} is not allowed; choose one of: {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise GroklabError("--address: only with --backend ray")
    if backend == "ray":
        from groklab.sweep.ray_backend import check_address, import_ray

        import_ray()  # one line naming the extra when Ray is missing, before any work
        check_address(address)
    if resume is None:
        if config_file is not None:
            if not config_file.is_file():
                raise GroklabError(f"--config: no such file {str(config_file)!r}")
            raw = config.read_toml(config.read_text(config_file, "--config"), f"--config {config_file}")
            name = config_file.stem
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
    from groklab.engine.device import resolve_device

    if backend == "local":  # (on Ray the cluster's GPUs count: checked once connected)
        resolve_device(device or "auto")  # a bad device is one line before any progress bar or sweep folder
    prog, _ = progress_bar(1, f"sweep {preset or config_file or resume}" + (" on Ray" if backend == "ray" else ""),
                           not as_json)
    task = prog.task_ids[0]

    def update(done: int, total: int, info: str) -> None:
        prog.update(task, completed=done, total=total, info=info)

    with prog:
        summary = run_sweep(spec, out_dir, resume, device, threads, on_progress=update, backend=backend,
                            address=address)
    if as_json:
        return emit_json(summary)
    if not summary["complete"]:
        out.print(f"this process is done; groups {summary['groups_pending']} are still being trained by other "
                  f"processes (the last one to finish writes the table): {summary['run_dir']}")
        return
    out.print(f"{summary['n_runs']} runs in {summary['groups']} groups, {summary['wall_s']:.1f} s "
              f"({summary['member_steps_per_s']} member-steps/s)")
    if summary["outcome_counts"]:
        out.print("outcomes: " + ", ".join(f"{k} {v}" for k, v in summary["outcome_counts"].items()))
    out.print(f"sweep folder: {summary['run_dir']} (rows: groklab runs query \"SELECT * FROM members\")")
    out.print(f"report: groklab report {summary['run_dir']}", soft_wrap=True, highlight=False)
    for f in summary["figures"]:
        out.print(f"figure: {f}")


@app.command()
def presets(as_json: bool = JSON, fields: bool = typer.Option(False, "--fields", help="list every config field")):
    """List the named presets with a one-line description and their source."""
    if fields:
        rows = [{"lab": lab.name, "field": name, "default": f.default, "help": f.metadata["help"],
                 "choices": f.metadata.get("choices")} for lab in all_labs()
                for s, cls in config.sections(lab.config).items() for name, f in config.leaf_fields(cls, s)]
        if as_json:
            return emit_json(rows)
        for r in rows:
            ch = f" [{' | '.join(map(str, r['choices']))}]" if r["choices"] else ""
            out.print(f"{r['lab']:<12} {r['field']:<34} {r['default']!s:<10} {r['help']}{ch}", highlight=False)
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


@data_app.command("list")
def data_list(as_json: bool = JSON):
    """Every loadable data set with its options and their defaults."""
    from groklab.data.loaded import DATASETS, dataset_options

    rows = [{"name": n, "options": dataset_options(n)} for n in DATASETS]
    if as_json:
        return emit_json(rows)
    for r in rows:
        out.print(f"{r['name']:<14} " + ", ".join(f"{k}={v}" for k, v in r["options"].items()), highlight=False)


@data_app.command("info")
def data_info(name: str = typer.Argument(..., help="a data set (see `groklab data list`)"),
              data_dir: Path | None = typer.Option(None, "--data-dir", help="folder with MNIST / CIFAR files"),
              set_: list[str] | None = typer.Option(None, "--set", help="option=value (repeatable)"),
              root: Path | None = OUT, as_json: bool = JSON):
    """Load (or read from the store's cache) a data set and print its shapes and class counts."""
    from groklab.data.loaded import load_dataset

    opts = dict(config.parse_override(s) for s in set_ or [])
    d = load_dataset(name, data_dir, (root or store.default_root()) / ".cache" / "data", **opts)
    info = {"name": name, "x_train": list(d.x_train.shape), "x_test": list(d.x_test.shape),
            "n_classes": d.n_classes, "train_counts": d.y_train.bincount(minlength=d.n_classes).tolist(),
            "test_counts": d.y_test.bincount(minlength=d.n_classes).tolist(),
            "x_mean": float(d.x_train.float().mean()), "x_std": float(d.x_train.float().std())}
    if as_json:
        return emit_json(info)
    for k, v in info.items():
        out.print(f"{k:<12} {v}", highlight=False)


@runs_app.command("list")
def runs_list(root: Path | None = OUT, as_json: bool = JSON):
    """Every run under the store root: complete, running, interrupted (resumable) or damaged (with why)."""
    rows = store.list_runs(root)
    if as_json:
        return emit_json(rows)
    t = Table(title=f"runs in {root or store.default_root()}")
    for c in ("id", "lab", "preset", "members", "wall s", "status"):
        t.add_column(c)
    for r in rows:
        status = r["status"] + (f": {r['reason']}" if r.get("reason") else "")
        t.add_row(r["id"], str(r["lab"] or "-"), str(r["preset"] or "-"), str(r["n_members"]),
                  f"{r['wall_s']:.1f}" if r["wall_s"] else "-", status)
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
    lab = summary.get("lab")
    show = get_lab(lab).show if lab in [x.name for x in all_labs()] else None
    if show is None:
        return out.print_json(data=summary)
    show(summary)


@runs_app.command("figures")
def runs_figures(run: str = typer.Argument(..., help="run folder or run id (prefix)"),
                 root: Path | None = OUT, as_json: bool = JSON):
    """Redraw every figure of a finished run from its store folder alone."""
    path = store.resolve(run, root)
    if not store.is_complete(path):
        raise GroklabError(f"RUN: {path} is incomplete (killed or still running); no figures to draw")
    lab = config.load_run_config(path).lab
    draw = get_lab(lab).figures
    if draw is None:
        raise GroklabError(f"RUN: the {lab} lab draws no figures from a run folder")
    figs = [str(f) for f in draw(path)]
    if as_json:
        return emit_json({"run_dir": str(path), "figures": figs})
    for f in figs:
        out.print(f"figure: {f}")


@runs_app.command("query")
def runs_query(sql: str = typer.Argument(..., help="SQL over views `runs`, `members` and `metrics`"),
               root: Path | None = OUT, as_json: bool = JSON):
    """Query every complete run with DuckDB, e.g. "SELECT outcome, count(*) FROM members GROUP BY 1".
    Damaged runs are left out and named on stderr."""
    cols, rows, skipped = store.query_with_skipped(sql, root)
    for run_id, why in skipped:
        err.print(f"skipped damaged run {run_id}: {why}", highlight=False, markup=False, soft_wrap=True)
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
                 model: str | None = typer.Option(None, "--model", help="pair_mlp | mlp | cnn: time the torch.func "
                                                  "vmap ensemble of that nn.Module against a loop of single "
                                                  "modules (and, for pair_mlp, the hand-written path); default: "
                                                  "the hand-written PAIR MLP against its loop, and the matmul rate"),
                 as_json: bool = JSON):
    """Batched ensemble vs a loop of independent models, and this machine's matmul rate."""
    from groklab.bench import ENSEMBLE_MODELS, engine_benchmark, ensemble_benchmark

    if models < 1 or steps < 1 or loop_models < 1:
        raise GroklabError("--models/--steps/--loop-models: must be >= 1")
    if member_chunk < 0 or threads < 0:
        raise GroklabError("--member-chunk/--threads: must be >= 0")
    if device not in ("auto", "cpu", "cuda"):
        raise GroklabError(f"--device: {device!r} is not allowed; choose one of: auto, cpu, cuda")
    if model is not None and model not in ENSEMBLE_MODELS:
        raise GroklabError(f"--model: {model!r} is not allowed; choose one of: {', '.join(ENSEMBLE_MODELS)}")
    if model is None:
        res = engine_benchmark(models, steps, loop_models, threads, device, member_chunk)
    else:
        res = ensemble_benchmark(model, models, steps, threads, device, loop_models, member_chunk=member_chunk)
    if as_json:
        return emit_json(res)
    t = Table(title=f"engine benchmark{f' ({model})' if model else ''} ({res['device']}, {res['threads']} threads)")
    t.add_column("measure")
    t.add_column("value")
    for k, v in res.items():
        t.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    out.print(t)


@bench_app.command("suite")
def bench_suite(device: str = typer.Option("cpu", help="cpu | cuda"),
                quick: bool = typer.Option(False, "--quick", help="reduced sizes, <= 5 min on 2 cores (reduced rows "
                                           "say how in their note); default: the full suite, <= 30 min"),
                threads: int = typer.Option(0, help="torch threads (0 = all cores)"),
                coder_model: str | None = typer.Option(None, "--coder-model", help="a `compress train` run (folder "
                                                       "or id) for the coder rows; default: random addition8-small "
                                                       "weights for speed, a briefly trained stand-in for size"),
                tiny: bool = typer.Option(False, "--tiny", hidden=True, help="test size: seconds, meaningless numbers"),
                as_json: bool = JSON):
    """Every performance figure side by side in one run (engine, parity sweep, addition8 training, coder)."""
    import torch

    from groklab.bench.rows import fmt_value
    from groklab.bench.suite import check_coder_model, run_suite

    if device not in ("cpu", "cuda"):
        raise GroklabError(f"--device: {device!r} is not allowed; choose one of: cpu, cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise GroklabError("--device: 'cuda' requested but no CUDA device is available; use --device cpu")
    if threads < 0:
        raise GroklabError(f"--threads: must be >= 0, got {threads}")
    check_coder_model(coder_model)
    prog, _ = progress_bar(1, "bench suite", not as_json)
    task = prog.task_ids[0]

    def update(done: int, total: int, info: str) -> None:
        prog.update(task, completed=done, total=total, info=info)

    with prog:
        res = run_suite(device, threads, "tiny" if tiny else "quick" if quick else "full", coder_model, update)
    if as_json:
        return emit_json(res)
    t = Table(title=f"bench suite ({res['size']}; {res['device']}, {res['threads']} threads, matmul "
                    f"{res['matmul_gflops']:.0f} GFLOP/s, load {res['load_avg']:.2f}; {res['wall_s']:.0f} s)")
    for c in ("row", "value", "unit", "goal", "met"):
        t.add_column(c, no_wrap=True)
    t.add_column("how", overflow="fold")
    for r in res["rows"]:
        t.add_row(r["name"], fmt_value(r["value"]), r["unit"], r["goal"],
                  {True: "yes", False: "no", None: "-"}[r["met"]], r["note"])
    out.print(t)
    out.print(f"machine: {res['machine']}; {res['date']}")


@app.command()
def tour(quick: bool = typer.Option(False, "--quick", help="the short tour (what `make demo` runs, <= 5 min on 2 "
                                    "cores); default: every lab at a size where its claim is clear (~16 min)"),
         tiny: bool = typer.Option(False, "--tiny", hidden=True, help="test size: seconds, meaningless numbers"),
         out_dir: Path | None = OUT, as_json: bool = JSON):
    """A short, real run of every lab on the embedded defaults, their reports and the index, one table."""
    from groklab.tour import print_tour, run_tour

    res = run_tour("tiny" if tiny else "quick" if quick else "full", out_dir, show_progress=not as_json)
    if as_json:
        emit_json(res)
    else:
        print_tour(res)
    if res.get("interrupted"):
        raise typer.Abort()  # run_app: "aborted", exit 130


@app.command()
def report(run: str | None = typer.Argument(None, help="run or sweep folder, or run id (prefix)"),
           out_file: Path | None = typer.Option(None, "--out", help="HTML file to write (default RUN/report.html)"),
           all_runs: bool = typer.Option(False, "--all", help="every complete run's report and ROOT/index.html"),
           root: Path | None = typer.Option(None, "--root", help="run store root (default ./runs or $GROKLAB_RUNS)"),
           open_page: bool = typer.Option(False, "--open", help="open the page in the default browser"),
           as_json: bool = JSON):
    """A self-contained HTML page of a run or sweep (works offline, plotly embedded); --all: an index too."""
    from groklab import report as rep

    if all_runs == (run is not None):
        raise GroklabError("RUN: give one run or sweep (folder or id), or --all for every run and the index")
    if all_runs and out_file is not None:
        raise GroklabError("--out: not with --all (each report goes into its run folder, the index into ROOT)")
    path = rep.build_index(root or store.default_root()) if all_runs else rep.build(store.resolve(run, root), out_file)
    if as_json:
        emit_json({"report": str(path), "bytes": path.stat().st_size})
    else:
        out.print(f"report: {path} ({path.stat().st_size / 1e6:.1f} MB)", highlight=False, soft_wrap=True)
    if open_page:
        import webbrowser

        webbrowser.open(path.resolve().as_uri())


@app.callback(invoke_without_command=True)
def _root(version: bool = typer.Option(False, "--version", help="print the version")):
    if version:
        out.print(f"groklab {__version__}")
        raise typer.Exit()


def main() -> None:
    """Entry point: user errors print one line and exit 2; bugs keep their traceback."""
    run_app(app)


if __name__ == "__main__":
    main()
