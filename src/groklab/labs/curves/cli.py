"""`groklab curves double-descent | epochs | baselines | scaling`: risk curves, baselines and scaling fits."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from groklab import GroklabError, store
from groklab import console as cli

curves_app = typer.Typer(no_args_is_help=True, help="Curves lab (seed 000): the U-curve versus double descent, "
                         "MNIST-1D baselines and scaling-law fits with error bars.")

JSON_KEYS = {
    "double-descent": ("run_dir", "wall_s", "x_name", "points", "interpolation_threshold", "peak"),
    "epochs": ("run_dir", "epochs", "test_error", "train_error"),
    "baselines": ("run_dir", "wall_s", "models"),
    "scaling": ("run_dir", "fits"),
}
KINDS = {"double-descent": ("features", "network"), "epochs": ("network",), "baselines": ("baselines",),
         "scaling": ("scaling",)}
DEFAULT = {"double-descent": "rf-demo", "epochs": "epochs-demo", "baselines": "mnist1d-baselines",
           "scaling": "scaling-demo"}


def register(app: typer.Typer, runs_app: typer.Typer) -> None:
    app.add_typer(curves_app, name="curves")


def _load(command: str, preset, config_file, set_, device, threads):
    from groklab import config
    from groklab.labs.curves.config import load

    cfg = load(preset or DEFAULT[command], config_file, set_ or [], train__device=device, train__threads=threads)
    if cfg.experiment.kind not in KINDS[command]:
        names = [n for n in config.preset_names("curves")
                 if config.load_preset_raw(n).get("experiment", {}).get("kind", "features") in KINDS[command]]
        raise GroklabError(f"--preset: {cfg.name!r} sets up a {cfg.experiment.kind} study; curves {command} takes "
                           f"experiment.kind {' or '.join(KINDS[command])} (presets: {', '.join(names)})")
    return cfg


def _run(command: str, cfg, out_dir, as_json: bool, runner, total: int, prepare=None):
    root = Path(out_dir or store.default_root())
    prepared = prepare(cfg, root) if prepare else None  # bad input: one line before any bar or run folder
    prog, _ = cli.progress_bar(total, f"curves {command} {cfg.name}", not as_json)
    task = prog.task_ids[0]

    def update(done: float, info: str) -> None:
        prog.update(task, completed=done, info=info)

    with prog:
        summary = runner(cfg, root, on_progress=update, prepared=prepared)
    if as_json:
        return cli.emit_json({k: summary[k] for k in JSON_KEYS[command]})
    show(summary)


@curves_app.command("double-descent")
def double_descent(preset: str | None = cli.PRESET, config_file: Path | None = cli.CONFIG,
                   set_: list[str] | None = cli.SET, device: str | None = cli.DEVICE, threads: int | None = cli.THREADS,
                   out_dir: Path | None = cli.OUT, as_json: bool = cli.JSON):
    """Test error against model size: random features (p across n) or MNIST-1D networks (widths)."""
    from groklab.labs.curves.networks import plan_groups
    from groklab.labs.curves.run import prepare_network, run_double_descent

    cfg = _load("double-descent", preset, config_file, set_, device, threads)
    net = cfg.experiment.kind == "network"
    total = len(plan_groups(cfg.model.kind, cfg.model.widths, cfg.train.seeds, cfg.model.groups)) if net else 3
    return _run("double-descent", cfg, out_dir, as_json, run_double_descent, total, prepare_network if net else None)


@curves_app.command("epochs")
def epochs(preset: str | None = cli.PRESET, config_file: Path | None = cli.CONFIG, set_: list[str] | None = cli.SET,
           device: str | None = cli.DEVICE, threads: int | None = cli.THREADS, out_dir: Path | None = cli.OUT,
           as_json: bool = cli.JSON):
    """Epoch-wise curve: one network (epochs.width) evaluated at log-spaced steps; is there a second descent?"""
    from groklab.labs.curves.run import prepare_network
    from groklab.labs.curves.run_more import run_epochs

    cfg = _load("epochs", preset, config_file, set_, device, threads)
    return _run("epochs", cfg, out_dir, as_json, run_epochs, 1, prepare_network)


@curves_app.command("baselines")
def baselines(preset: str | None = cli.PRESET, config_file: Path | None = cli.CONFIG,
              set_: list[str] | None = cli.SET, device: str | None = cli.DEVICE, threads: int | None = cli.THREADS,
              out_dir: Path | None = cli.OUT, as_json: bool = cli.JSON):
    """Logistic regression, MLP, CNN and GRU on MNIST-1D over seeds, against the published table."""
    from groklab.labs.curves.run import prepare_network
    from groklab.labs.curves.run_more import run_baselines

    cfg = _load("baselines", preset, config_file, set_, device, threads)
    return _run("baselines", cfg, out_dir, as_json, run_baselines, len(cfg.baselines.models), prepare_network)


@curves_app.command("scaling")
def scaling(preset: str | None = cli.PRESET, config_file: Path | None = cli.CONFIG, set_: list[str] | None = cli.SET,
            device: str | None = cli.DEVICE, threads: int | None = cli.THREADS, out_dir: Path | None = cli.OUT,
            as_json: bool = cli.JSON):
    """Fit L(N) = E + A/N^α, L(N, D) = E + A/N^α + B/D^β and A/N^α with bootstrap CIs and a held-out check."""
    from groklab.labs.curves.run import prepare_network
    from groklab.labs.curves.run_more import run_scaling
    from groklab.labs.curves.scaling_addition import prepare_addition

    cfg = _load("scaling", preset, config_file, set_, device, threads)
    if cfg.scaling.source == "addition":
        return _run("scaling", cfg, out_dir, as_json, run_scaling, len(set(cfg.scaling.widths)), prepare_addition)
    return _run("scaling", cfg, out_dir, as_json, run_scaling, len(cfg.scaling.n_trains), prepare_network)


def _f(v, spec: str = ".4g") -> str:
    return "-" if v is None else format(v, spec)


def show(s: dict) -> None:
    out = cli.out
    cmd = s.get("command")
    if cmd == "double-descent":
        t = Table(title=f"curves double-descent {s['preset']}: {s['x_name']}")
        for c in (s["x_name"], "params", "train error", "test error"):
            t.add_column(c)
        for p in s["points"]:
            t.add_row(str(p["x"]), f"{p['params']:,}", _f(p["train_error"]), _f(p["test_error"]))
        out.print(t)
        pk = s["peak"]
        out.print(f"interpolation threshold: {s['x_name']} = {_f(s['interpolation_threshold'])}; peak: "
                  f"{_f(pk['x'])} (test error {_f(pk['test_error'])})", highlight=False)
        if s["kind"] == "features":
            g, u = s["gaussian"], s["ucurve"]
            out.print(f"ridge (same features): highest test error {_f(s['ridge_peak']['test_error'])} at p = "
                      f"{s['ridge_peak']['x']}; Gaussian model vs closed form: max |MC − theory| {g['max_abs_z']:.2f} "
                      f"SE over {g['points']} p; U-curve best degree {u['best_degree']} (test MSE "
                      f"{_f(u['best_test_mse'])})", highlight=False, soft_wrap=True)
        else:
            out.print(f"groups: {s['groups']}; {s['train_wall_s']:.1f} s training ({s['device']}, {s['threads']} "
                      "threads)", highlight=False)
    elif cmd == "epochs":
        out.print(f"curves epochs {s['preset']}: {s['model']} {s['width']} ({s['params']:,} parameters); test error "
                  f"first minimum {_f(s['first_min']['test_error'])} at epoch {_f(s['first_min']['epoch'])}, then max "
                  f"{_f(s['bump']['test_error'])} at epoch {_f(s['bump']['epoch'])}, final {_f(s['test_error'][-1])}; "
                  f"second descent: {s['second_descent']}", highlight=False, soft_wrap=True)
    elif cmd == "baselines":
        t = Table(title=f"curves baselines {s['preset']}: test accuracy over {s['seeds']} seeds")
        for c in ("model", "params", "mean", "std", "published"):
            t.add_column(c)
        for m in s["models"]:
            t.add_row(m["model"], f"{m['params']:,}", f"{m['mean']:.1%}", f"{m['std']:.1%}",
                      _f(m.get("published"), ".0%"))
        out.print(t)
    elif cmd == "scaling":
        if s.get("source") == "addition":
            from groklab.labs.curves.scaling_addition import show as show_addition
            show_addition(s)
        t = Table(title=f"curves scaling {s['preset']}: fits of the test loss")
        for c in ("form", "parameters (95% CI)", "held-out rel. error"):
            t.add_column(c)
        for form, f in s["fits"].items():
            ci = f["ci95"]
            ps = ", ".join(f"{k} {v:.3g} [{ci[k][0]:.3g}, {ci[k][1]:.3g}]" for k, v in f["params"].items())
            t.add_row(form, ps, _f(f["heldout_rel_error"], ".2%"))
        out.print(t)
    out.print(f"run folder: {s['run_dir']} ({s['wall_s']:.1f} s)", highlight=False)
    for f in s.get("figures", []):
        out.print(f"figure: {f}")
