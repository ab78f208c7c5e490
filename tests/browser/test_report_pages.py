"""`groklab report` pages in a real browser (Playwright driving Debian's chromium, never a downloaded one):
they load offline with no console error, page error or request outside file:, and the controls work.
Tiny runs (a grokking ensemble, a parity run, a compression run, a sweep) are trained once per module."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
MAX_BYTES = 8 * 2**20
LOCAL = ("file:", "data:", "blob:")  # a page may request nothing else

pytestmark = pytest.mark.skipif(
    not os.environ.get("CI") and not (Path(CHROMIUM).exists() and shutil.which("chromium")),
    reason="needs Debian's chromium (`make test` installs it; CI fails instead of skipping)")

SWEEP = """lab = "sweep"
base = "parity-demo"
seeds = 2
x = "optim.weight_decay"
y = "data.n_train"
[grid]
"optim.weight_decay" = [0.01, 1.0]
"data.n_train" = [300, 600]
[set]
"train.steps" = 200
"""

CAPACITY = [a for kv in ("data.mnist1d_samples=1000", "search.n_min=20", "search.n_max=300", "search.tol=0.5",
                         "search.max_epochs=150", "search.check_every=10", "search.window=20", "train.seeds=1",
                         "model.width=6") for a in ("--set", kv)]


def train(jobs: dict[str, list], runs: Path) -> dict[str, Path]:
    """Run the CLI jobs side by side (one thread each); {name: run folder}."""
    env = {**os.environ, "GROKLAB_RUNS": str(runs), "OMP_NUM_THREADS": "1"}
    procs = {k: subprocess.Popen([sys.executable, "-m", "groklab.cli", *map(str, a), "--json"], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE) for k, a in jobs.items()}
    out = {}
    for k, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{k}: {stderr[-2000:]}"
        out[k] = Path(json.loads(stdout)["run_dir"])
    return out


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """{kind: report path} of four tiny runs, "index": ROOT/index.html, "runs": ROOT."""
    from groklab.report import build_index

    runs = tmp_path_factory.mktemp("browser") / "runs"
    (runs.parent / "grid.toml").write_text(SWEEP)
    made = train({
        "grok": ["grok", "--preset", "demo", "--seeds", "2", "--steps", "200", "--set", "train.snapshots=8"],
        "parity": ["grok", "--preset", "parity-demo", "--seeds", "1", "--steps", "200"],
        "compress": ["compress", "train", "--preset", "addition-tiny", "--steps", "60"],
        "sweep": ["sweep", "--config", runs.parent / "grid.toml", "--threads", "1"],
        "capacity": ["capacity", "emc", "--preset", "emc-demo", "--threads", "1", *CAPACITY],
    }, runs)
    return {**{k: p / "report.html" for k, p in made.items()}, "index": build_index(runs), "runs": runs}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="module")
def opened(pages, browser):
    """kind -> (page, problems): each report loaded once (a load parses ~5 MB of plotly.js), shared by tests;
    `problems` collects console errors, page errors and requests outside file:."""
    cache = {}

    def get(kind: str):
        if kind not in cache:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            problems = []
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on("request", lambda r: None if r.url.startswith(LOCAL) else problems.append(f"request {r.url}"))
            page.goto(pages[kind].resolve().as_uri())
            page.wait_for_load_state("load")
            cache[kind] = page, problems
        return cache[kind]

    yield get
    for page, _ in cache.values():
        page.close()


def js(page, expr: str):
    return page.evaluate(f"() => JSON.stringify({expr})")


def test_reports_are_single_files_under_8mb_and_indexed(pages):
    for kind in ("grok", "parity", "compress", "sweep", "capacity"):
        assert pages[kind].is_file() and pages[kind].stat().st_size < MAX_BYTES, kind
        assert "<script src" not in pages[kind].read_text()  # nothing loaded from elsewhere
    index = pages["index"].read_text()
    for kind in ("grok", "parity", "compress", "sweep", "capacity"):
        assert f'href="{pages[kind].parent.name}/report.html"' in index


@pytest.mark.parametrize("kind", ["grok", "parity", "compress", "sweep", "capacity", "index"])
def test_page_loads_offline_without_errors(opened, kind, tmp_path):
    page, problems = opened(kind)
    if kind != "index":
        assert page.locator(".js-plotly-plot").count() >= 2
    shot = tmp_path / f"{kind}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert problems == []


def test_slider_moves_heatmap_and_curve_marker(opened):
    page, problems = opened("grok")
    slider = page.locator("#snapshots .gl-slider")
    assert slider.input_value() == slider.get_attribute("max")  # starts at the last snapshot, not playing
    page.wait_for_timeout(700)
    assert slider.input_value() == slider.get_attribute("max")
    z0, bars0 = js(page, "heat.data[0].z"), js(page, "bars.data[1].y")
    x0, loss0 = js(page, "acc.data[4].x"), js(page, "loss.data[2].x")
    box = slider.bounding_box()
    page.mouse.click(box["x"] + 3, box["y"] + box["height"] / 2)  # drag to the first snapshot
    assert slider.input_value() == "0"
    assert "step 0 " in page.locator("#snapshots .gl-label").inner_text()
    assert js(page, "heat.data[0].z") != z0 and js(page, "bars.data[1].y") != bars0
    assert js(page, "acc.data[4].x") == "[1,1]" != x0 and js(page, "loss.data[2].x") != loss0
    page.keyboard.press("ArrowRight")
    assert slider.input_value() == "1"
    assert problems == []


def test_play_button_and_member_picker(opened):
    page, problems = opened("grok")
    slider = page.locator("#snapshots .gl-slider")
    slider.focus()
    page.keyboard.press("End")
    page.locator("#snapshots .gl-play").click()  # from the end it restarts at the first snapshot
    page.wait_for_timeout(1000)
    assert 0 < int(slider.input_value()) < int(slider.get_attribute("max"))
    page.locator("#snapshots .gl-play").click()  # pause
    words, z, acc = page.locator("#words").inner_text(), js(page, "heat.data[0].z"), js(page, "acc.data[1].y")
    page.locator("#snapshots .gl-member").select_option("1")
    assert page.locator("#words").inner_text().startswith("seed 1") and words.startswith("seed 0")
    assert js(page, "heat.data[0].z") != z and js(page, "acc.data[1].y") != acc
    assert problems == []


def test_phase_diagram_click_shows_cell_curves(opened):
    page, problems = opened("sweep")
    assert js(page, "cellcurves.data.length") == "0"
    box = page.locator("#phase .barlayer .point path").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_function("() => cellcurves.data.length > 0", timeout=5000)
    assert int(js(page, "cellcurves.data.length")) == 4  # 2 seeds x (train, test)
    assert "seed(s)" in json.loads(js(page, "cellcurves.layout.title.text"))
    assert problems == []


def test_compression_slider_moves_bars_and_markers(opened):
    page, problems = opened("compress")
    y0, h0 = js(page, "decomp.data[1].y"), js(page, "heat.data[1].x")
    page.locator("#steps .gl-slider").focus()
    page.keyboard.press("Home")
    assert js(page, "decomp.data[1].y") != y0 and js(page, "heat.data[1].x") == "[0,0]" != h0
    assert "Model vs classical compressors" in page.content()  # the skipped panel says why
    assert problems == []


def test_report_cli_writes_a_page_and_rejects_bad_input_in_one_line(pages, tmp_path, monkeypatch, capsys):
    from groklab import cli

    def run(*args) -> int:
        monkeypatch.setattr(sys, "argv", ["groklab", "report", *map(str, args)])
        try:
            cli.main()
        except SystemExit as e:
            return e.code or 0
        return 0

    monkeypatch.setenv("GROKLAB_RUNS", str(pages["runs"]))
    assert run(pages["compress"].parent.name[:-2], "--out", tmp_path / "c.html", "--json") == 0
    assert json.loads(capsys.readouterr().out)["report"] == str(tmp_path / "c.html")
    bad = tmp_path / "bad"
    shutil.copytree(pages["grok"].parent, bad)
    (bad / "COMPLETE").unlink()
    unknown = tmp_path / "unknown"
    shutil.copytree(pages["compress"].parent, unknown)
    s = json.loads((unknown / "summary.json").read_text())
    (unknown / "summary.json").write_text(json.dumps({**s, "lab": "nolab"}))
    (unknown / "COMPLETE").write_text("2026-11-30T10:00:00\n")  # no file list: the edit is not damage
    for args, says in (([tmp_path], "not a run"), ([bad], "incomplete"), ([unknown], "not a lab"), ([], "--all"),
                       (["--all", "--root", tmp_path / "none"], "no run store")):
        assert run(*args) == 2
        err = capsys.readouterr().err
        assert says in err and len(err.strip().splitlines()) == 1, err


def test_capacity_page_shows_every_training_of_the_search(opened, pages):
    import pyarrow.parquet as pq

    page, problems = opened("capacity")
    n = pq.read_table(pages["capacity"].parent / "members.parquet").num_rows
    shown = json.loads(js(page, "document.getElementById('search').data.filter(t => t.mode === 'markers')"
                                ".reduce((a, t) => a + t.y.length, 0)"))
    assert shown == n  # one marker per training, fitted or not
    curves = json.loads(js(page, "document.getElementById('curves').data.length"))
    assert curves == n and page.get_by_text("Every training", exact=True).count() == 1 and problems == []


RF_TINY = [a for kv in ("features.n=40", "features.trials=2", "features.points=7", "features.n_test=100",
                        "features.gauss_n=20", "features.gauss_d=60", "features.gauss_trials=10", "ucurve.trials=3")
           for a in ("--set", kv)]


def test_curves_page_marks_threshold_and_peak(browser, tmp_path_factory):
    """A tiny rf-demo run: the page loads offline without errors and its double-descent plot carries the
    interpolation threshold (a line at p = n) and the peak (on the min-norm test curve) from summary.json."""
    import torch

    from groklab.report import build
    from tests.numerics import assert_close_scaled

    run = train({"rf": ["curves", "double-descent", "--preset", "rf-demo", *RF_TINY]},
                tmp_path_factory.mktemp("curves") / "runs")["rf"]
    s = json.loads((run / "summary.json").read_text())
    report = build(run)
    assert report.stat().st_size < MAX_BYTES and "<script src" not in report.read_text()
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    problems = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: None if r.url.startswith(LOCAL) else problems.append(f"request {r.url}"))
    page.goto(report.resolve().as_uri())
    page.wait_for_load_state("load")
    marks = json.loads(js(page, "Object.fromEntries(document.getElementById('curves-dd').data.filter(t => t.meta)"
                                ".map(t => [t.meta, [t.x, t.y]]))"))
    thr, pk = s["interpolation_threshold"], s["peak"]
    assert thr == s["n"] and marks["threshold"][0] == [thr, thr]  # the dashed line sits at p = n
    assert marks["peak"][0] == [pk["x"]]
    assert_close_scaled(torch.tensor(marks["peak"][1]), torch.tensor([pk["test_error"]]), 1e-6, "peak")
    test = json.loads(js(page, "document.getElementById('curves-dd').data.find(t => t.name === 'relu, min-norm: "
                               "test')"))
    assert max(test["y"]) == pytest.approx(pk["test_error"], rel=1e-6)  # the ring is on the curve's top
    for div in ("curves-gauss", "curves-ucurve"):
        assert json.loads(js(page, f"document.getElementById('{div}').data.length")) >= 2
    page.screenshot(path=str(run / "page.png"), full_page=True)
    page.close()
    assert problems == []
