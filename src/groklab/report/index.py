"""ROOT/index.html: one row per complete run (date, lab, preset, headline number, link to its report), then
the runs that have no report (incomplete, interrupted, damaged) with why. Plain HTML, no script."""

from __future__ import annotations

import html
from pathlib import Path

from groklab import GroklabError, store
from groklab.report.assets import CSS
from groklab.report.data import Raw, run_date, table


def _fresh(path: Path, report: Path) -> bool:
    """The report exists and is newer than every store file it is drawn from."""
    if not report.is_file():
        return False
    t = report.stat().st_mtime
    return all(f.stat().st_mtime <= t for f in (path / store.COMPLETE, path / "summary.json", path / "coder.json")
               if f.is_file())


def _row(r: dict, root: Path) -> tuple[list, str | None]:
    from groklab.report import REPORT, build, report_module, run_lab

    path = Path(r["path"])
    summary = store.read_summary(path)
    try:
        lab, sweep = run_lab(path)
        rep = path / REPORT
        if not _fresh(path, rep):
            build(path)
        headline = report_module(lab).headline(path, summary)
        link = Raw(f'<a href="{html.escape(rep.relative_to(root).as_posix())}">{html.escape(path.name)}</a>')
        err = None
    except GroklabError as e:
        lab, sweep, headline, link, err = summary.get("lab") or "?", False, "–", path.name, str(e)
    wall = summary.get("wall_s")
    row = [run_date(path), link, f"{lab} sweep" if sweep else lab, summary.get("preset") or "–", headline,
           f"{wall:.0f}" if isinstance(wall, (int, float)) else "–"]
    return row, err


def write_index(root: Path) -> Path:
    if not root.is_dir():
        raise GroklabError(f"--all: no run store at {root} (no such folder; see --root or $GROKLAB_RUNS)")
    rows = store.list_runs(root)
    done, other = [], []
    for r in rows:
        if r["status"] == "complete":
            row, err = _row(r, root)
            done.append(row)
            if err:
                other.append([r["id"], "report failed", err])
        else:
            other.append([r["id"], r["status"], r.get("reason") or "–"])
    done.sort(key=lambda row: (row[0], str(row[1])), reverse=True)
    parts = [f"<h1>groklab runs in <code>{html.escape(str(root.resolve()))}</code></h1>",
             f"<p>{len(done)} complete run(s), newest first. Each link opens a self-contained report (works "
             "offline). <b>headline</b>: grokking runs: how many seeds grokked and the median step at which test "
             "accuracy reached the threshold; compression runs: held-out loss above the entropy floor and exact "
             "match; sweeps: models trained and their outcomes or the best gap to the floor. Rebuild with "
             "<code>groklab report --all</code>.</p>",
             table(["finished", "run (report)", "lab", "preset", "headline", "wall s"], done, left=5)]
    if other:
        parts += ["<h2>Runs without a report</h2><p>Incomplete runs can be continued with <code>--resume</code>; "
                  "<code>groklab runs list</code> shows them too.</p>",
                  table(["run", "status", "why"], other, left=3)]
    text = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>groklab runs</title>'
            f"<style>{CSS}</style></head><body>{''.join(parts)}</body></html>\n")
    return store.atomic_write(root / "index.html", lambda t: t.write_text(text, encoding="utf-8"))
