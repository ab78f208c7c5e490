"""Shared CLI helpers for every lab: consoles, the common options, progress bars, --json output and the
one-line error policy. Labs import this; it imports no lab."""

from __future__ import annotations

import json
import os
import sys

import typer
from rich.console import Console

from groklab import GroklabError, store

try:  # typer >= 0.17 vendors click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc

err = Console(stderr=True)
out = Console()

PRESET = typer.Option(None, "--preset", "-p", help="named setup; see `groklab presets`")
CONFIG = typer.Option(None, "--config", help="TOML file with the lab's config tables")
SET = typer.Option(None, "--set", help="override: section.key=value (repeatable)")
OUT = typer.Option(None, "--out", help="run store root (default ./runs or $GROKLAB_RUNS)")
JSON = typer.Option(False, "--json", help="print exactly one JSON object and nothing else on stdout")
DEVICE = typer.Option(None, help="auto | cpu | cuda")
THREADS = typer.Option(None, help="torch CPU threads (0 = all cores)")
RESUME = typer.Option(None, "--resume", help="continue an interrupted run (folder or id) from its last checkpoint")


def emit_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, default=store._json_default) + "\n")


def progress_bar(total: int, label: str, enabled: bool):
    """A rich progress bar on stderr (a no-op with --json); returns (context, callback(step, active))."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from groklab.engine.device import rebalance

    class SharingProgress(Progress):
        def update(self, *args, **kwargs) -> None:  # called from the training loop: its thread share
            rebalance()  # (engine/device.py: takes this job's share now that other jobs started or ended)
            super().update(*args, **kwargs)

    prog = SharingProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                           console=err, disable=not enabled, transient=False)
    task = prog.add_task(label, total=total, info="")

    def update(step: int, active: int) -> None:
        prog.update(task, completed=step, info=f"{active} training")

    return prog, update


def check_choice(option: str, value, allowed: tuple) -> None:
    if value is not None and value not in allowed:
        raise GroklabError(f"{option}: {value!r} is not allowed; choose one of: {', '.join(map(str, allowed))}")


def resume_config(resume: str, out_dir, lab: str, given: dict[str, object], overrides: dict[str, object]):
    """The run folder and stored config of `--resume RUN` for a lab's training command: `given` are the
    options a resume may not take (name -> value), `overrides` the fields it may (field -> value or None)."""
    from groklab import config

    if any(v not in (None, False, [], ()) for v in given.values()):
        raise GroklabError(f"--resume: takes no {'/'.join(given)}; the run folder holds its config")
    path = store.resolve(resume, out_dir)
    cfg = config.load_run_config(path)
    if cfg.lab != lab:
        raise GroklabError(f"--resume: {path} is a {cfg.lab} run, not a {lab} one")
    for key, value in overrides.items():
        if value is not None:
            config.set_field(cfg, key, value)
    return path, cfg


def run_app(app: typer.Typer) -> None:
    """Run a typer app: user errors print one line and exit 2; bugs keep their traceback."""
    try:
        if os.environ.get("GROKLAB_DENORMALS"):  # a bad value fails before any command starts (or opens a run)
            from groklab.engine.device import denormals
            denormals()
        code = app(standalone_mode=False)  # click returns typer.Exit's code instead of raising here
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
    if isinstance(code, int) and not isinstance(code, bool) and code:
        sys.exit(code)
