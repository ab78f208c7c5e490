"""`groklab tour`: a short, real run of every lab on the embedded defaults, then the reports and one table.

Each lab contributes stages through the lab contract (`Lab.tour_module`, a module defining
`stages(size) -> list[Stage]`, size = "quick" | "full" | "tiny" (tests)); this module runs them in order,
one progress bar each, builds each finished run's report and the index. A stage trains through its lab's
own run lifecycle, so Ctrl-C leaves its folder complete or resumable; the tour then stops and reports the
stages that finished. Nothing lab-specific lives here.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from groklab import GroklabError, store

SIZES = ("tiny", "quick", "full")

# on_progress(done, total, info): a stage reports its progress in its own units
Progress = Callable[[int, int, str], None]


@dataclass
class Stage:
    """One step of the tour, contributed by a lab."""

    lab: str  # the contributing lab's name
    name: str  # short name for the table, e.g. "a+b mod 67"
    measures: str  # what is measured, one line
    # run(store root, on_progress) -> {"lab", "run_dir", "headline": {...}, "text": the headline in words}
    run: Callable[[Path, Progress], dict]
    cost_s: float  # estimated wall seconds on 2 CPU cores (the tour's estimate; no test asserts it)


def collect(size: str) -> list[Stage]:
    """Every lab's stages at `size`, in the order of `groklab.labs.LABS`."""
    from groklab.labs import all_labs

    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    return [st for lab in all_labs() if lab.tour_module
            for st in importlib.import_module(lab.tour_module).stages(size)]


def run_tour(size: str = "full", root: Path | None = None, show_progress: bool = True,
             stages: list[Stage] | None = None) -> dict:
    """Run every stage, build its report, then the index. Ctrl-C (KeyboardInterrupt) stops the tour: the
    stages that finished are returned with `interrupted` naming the stage that was running."""
    from groklab import report
    from groklab.console import err, progress_bar

    t0 = time.perf_counter()
    root = Path(root or store.default_root())
    stages = collect(size) if stages is None else stages
    if show_progress:
        est = sum(st.cost_s for st in stages)
        err.print(f"tour ({size}): {len(stages)} stages, about {_minutes(est)} on 2 CPU cores; runs in {root}",
                  highlight=False)
    done: list[dict] = []
    interrupted, kept = None, []
    for i, st in enumerate(stages):
        t1 = time.perf_counter()
        res = None
        before = _folders(root)
        try:
            prog, _ = progress_bar(1, f"[{i + 1}/{len(stages)}] {st.name}", show_progress)
            task = prog.task_ids[0]

            def update(n: int, total: int, info: str, prog=prog, task=task) -> None:
                prog.update(task, completed=n, total=total, info=info)

            with prog:
                res = st.run(root, update)
                prog.update(task, completed=prog.tasks[0].total)  # early stopping ends a bar short
            res = {"lab": res["lab"], "stage": st.name, "measured": st.measures, "run_dir": str(res["run_dir"]),
                   "headline": res["headline"], "text": res.get("text", ""),
                   "wall_s": round(time.perf_counter() - t1, 1), "report": None}
            done.append(res)
            try:
                res["report"] = str(report.build(Path(res["run_dir"])))
            except GroklabError as e:  # a lab without a report (yet): the table shows why
                res["report_error"] = str(e)
            res["wall_s"] = round(time.perf_counter() - t1, 1)  # with its report
        except KeyboardInterrupt:
            interrupted = st.name if res is None else f"{st.name} (its report)"
            kept = [{"run_dir": str(p), "status": stat} for p in sorted(_folders(root) - before)
                    if (stat := store.status(p)[0]) != "complete"]
            break
    index = None
    if interrupted is None:
        try:
            index = str(report.build_index(root))
        except KeyboardInterrupt:
            interrupted = "the index report"
    out = {"wall_s": round(time.perf_counter() - t0, 1), "size": size, "labs": done, "index": index}
    if interrupted is not None:
        out["interrupted"], out["kept"] = interrupted, kept  # kept: the interrupted stage's folders
    return out


def _folders(root: Path) -> set[Path]:
    return {p for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()


def _minutes(s: float) -> str:
    return f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min"


def print_tour(res: dict) -> None:
    """The tour's one table (lab, what was measured, headline, report) and what finished."""
    from rich.table import Table

    from groklab.console import out

    t = Table(title=f"groklab tour ({res['size']}): {len(res['labs'])} stage(s), {res['wall_s']:.0f} s")
    for c in ("lab", "measured", "headline", "s", "report"):
        t.add_column(c, overflow="fold")
    for r in res["labs"]:
        t.add_row(r["lab"], f"{r['stage']}: {r['measured']}", r["text"], f"{r['wall_s']:.0f}",
                  r["report"] or f"{r['run_dir']} (no report: {r.get('report_error')})")
    out.print(t)
    if res["index"]:
        out.print(f"index: {res['index']}")
    if res.get("interrupted"):
        finished = ", ".join(r["stage"] for r in res["labs"]) or "none"
        out.print(f"interrupted during {res['interrupted']}; finished: {finished} (their run folders are complete)")
        for k in res.get("kept", []):
            out.print(f"kept: {k['run_dir']} ({k['status']}; `groklab runs list`, and its command's --resume "
                      "continues it)")
