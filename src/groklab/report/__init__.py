"""`groklab report`: one self-contained HTML page per run or sweep, and an index page of every run.

Choice: plotly.js is embedded in every report (~4.8 MB of the file; one copy per page, shared by its
figures), so a report is one file that works offline from file:// wherever it is copied, with no request
of any kind. The data a lab embeds is thinned to keep a report under 8 MB (float32, capped snapshots,
members and curve points; the page says when it shows less than the run holds). The index page
(ROOT/index.html) is plain HTML without plotly and links each complete run's report.html.

A lab contributes its part through the lab contract: `Lab.report_module` names a module with
`sections(run_path) -> list` of page items (page.Panel, page.Controls, page.Drilldown, plotly figures,
HTML fragments), `headline(run_path, summary) -> str` (the index's one number) and, if the lab sweeps,
`sweep_sections(sweep_path)`. The core never reaches into a lab otherwise. Every number comes from the
run's folder, so a report can be rebuilt at any time.
"""

from __future__ import annotations

import html
import importlib
from pathlib import Path

from groklab import GroklabError, store
from groklab.report.page import Controls, Drilldown, Panel, style  # noqa: F401 - what labs build pages from

REPORT = "report.html"
MAX_BYTES = 8 * 2**20  # a report stays under this (tests check it)


def run_lab(path: Path) -> tuple[str, bool]:
    """(lab whose report module draws the run, whether it is a sweep) from summary.json (or config.toml)."""
    summary = store.read_summary(path)
    lab = summary.get("lab")
    if lab is None:
        from groklab.config import read_toml

        try:
            lab = read_toml((path / "config.toml").read_text(), f"{path}/config.toml").get("lab", "grokking")
        except OSError as e:
            raise GroklabError(f"RUN: {path}/config.toml: unreadable ({store._line(e)})") from None
    if lab == "sweep":
        base = summary.get("base_lab")
        if base is None:
            raise GroklabError(f"RUN: {path} is a sweep without base_lab in its summary.json")
        return str(base), True
    return str(lab), False


def report_module(lab_name: str):
    from groklab.labs import get_lab

    lab = get_lab(lab_name)  # a GroklabError naming the labs if unknown
    if lab.report_module is None:
        raise GroklabError(f"RUN: the {lab_name} lab has no report")
    return importlib.import_module(lab.report_module)


def check_run(path: Path) -> Path:
    path = Path(path)
    if not (path / "config.toml").is_file():
        raise GroklabError(f"RUN: {path} is not a run folder (no config.toml)")
    if not store.is_complete(path):
        raise GroklabError(f"RUN: {path} is incomplete (killed or still running); finish or resume it first")
    if (why := store.damage(path)) is not None:
        raise GroklabError(f"RUN: {path} is damaged: {why}")
    return path


def build(run_path: Path, out: Path | None = None) -> Path:
    """Write the report of a complete run or sweep (default RUN/report.html); returns its path."""
    from plotly.offline import get_plotlyjs

    from groklab.report import page
    from groklab.report.data import run_date

    path = check_run(Path(run_path))
    lab, sweep = run_lab(path)
    mod = report_module(lab)
    fn = getattr(mod, "sweep_sections" if sweep else "sections", None)
    if fn is None:
        raise GroklabError(f"RUN: the {lab} lab has no {'sweep ' if sweep else ''}report")
    summary = store.read_summary(path)
    items = fn(path)
    kind = f"{lab} sweep" if sweep else f"{lab} run"
    title = f"{summary.get('preset') or path.name} · {kind}"
    wall = summary.get("wall_s")
    intro = (f"<p>Run <code>{html.escape(path.name)}</code>, finished {html.escape(run_date(path))}"
             + (f", {wall:.0f} s of wall time" if isinstance(wall, (int, float)) else "")
             + f". Folder: <code>{html.escape(str(path.resolve()))}</code>. Rebuild this page with "
             f"<code>groklab report {html.escape(path.name)}</code>.</p>")
    text = page.render(title, intro, items, get_plotlyjs())
    out = Path(out) if out is not None else path / REPORT
    if out.is_dir():
        raise GroklabError(f"--out: {out} is a folder; give a file name such as report.html")
    store.atomic_write(out, lambda t: t.write_text(text, encoding="utf-8"))
    return out


def build_index(root: Path) -> Path:
    """Write ROOT/index.html linking every complete run's report (built or refreshed first if missing or
    older than the run) with its lab, preset, date and headline number; returns its path."""
    from groklab.report.index import write_index

    return write_index(Path(root))
