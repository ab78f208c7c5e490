"""The lab contract. A lab is a folder `labs/<lab>/` whose `__init__.py` defines `LAB = Lab(...)`:

    config.py   its root config (a config.RootConfig subclass with its own sections)
    cli.py      `register(app, runs_app)`: adds its commands to the root CLI
    run.py      its run orchestration (one store lifecycle: store.open_run)
    figures.py  figures drawn from a run folder alone (so `groklab runs figures RUN` can redraw them)
    report.py   `sections(run_path)` (and `sweep_sections(sweep_path)` if it sweeps): the lab's part of
                `groklab report`, a list of groklab.report.Panel / plotly figures / HTML fragments
    presets/<lab>/*.toml (package data)

The root CLI assembles the labs from `LABS`; a new lab adds its folder and one name here. A lab never
imports another lab.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from groklab import GroklabError

LABS = ("grokking", "compression", "capacity", "curves")


@dataclass
class Lab:
    name: str  # the `lab` key of its configs, presets and summaries
    summary: str  # one line for `groklab --help`
    config_module: str  # module defining `ROOT`, the root config class
    cli_module: str  # module defining `register(app, runs_app)`
    figures: Callable[[Path], list[Path]] | None = None  # redraw a run's figures from its folder
    show: Callable[[dict], None] | None = None  # print a run summary (default: JSON)
    sweep_module: str | None = None  # module defining `SWEEP` (groklab.sweep.LabSweep) if it can sweep
    report_module: str | None = None  # module defining `sections(run_path)` (+ `sweep_sections`): its report
    tour_module: str | None = None  # module defining `stages(size) -> list[groklab.tour.Stage]` for `groklab tour`

    @property
    def config(self) -> type:
        return importlib.import_module(self.config_module).ROOT

    def register(self, app, runs_app) -> None:
        """Add the lab's commands to the root CLI (and, where it has some, to `groklab runs`)."""
        importlib.import_module(self.cli_module).register(app, runs_app)

    @property
    def sweep(self):
        if self.sweep_module is None:
            raise GroklabError(f"lab {self.name!r} has no sweep support")
        return importlib.import_module(self.sweep_module).SWEEP


def get_lab(name: str) -> Lab:
    if name not in LABS:
        raise GroklabError(f"lab: {name!r} is not a lab; choose one of: {', '.join(LABS)}")
    return importlib.import_module(f"groklab.labs.{name}").LAB


def all_labs() -> list[Lab]:
    return [get_lab(n) for n in LABS]
