"""`groklab tour` at its test-only size (--tiny): the JSON object, every stage's run folder complete, the
compression round trip verified; Ctrl-C after the first stage keeps that stage's folder complete."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from groklab import store
from groklab.labs import get_lab
from groklab.tour import collect

from .conftest import groklab_json


def test_tiny_tour_json_folders_and_round_trip(runs):
    res = groklab_json("tour", "--tiny", runs=runs)
    assert {"wall_s", "labs", "index"} <= set(res) and "interrupted" not in res
    assert [(r["lab"], r["stage"]) for r in res["labs"]] == [(st.lab, st.name) for st in collect("tiny")]
    assert {r["lab"] for r in res["labs"]} >= {"grokking", "compression", "capacity"}
    for r in res["labs"]:
        assert {"lab", "run_dir", "headline", "report"} <= set(r)
        path = Path(r["run_dir"])
        assert path.parent == runs and store.is_complete(path) and store.status(path) == ("complete", None)
        assert store.read_summary(path)["run_dir"] == r["run_dir"]
        if get_lab(r["lab"]).report_module:
            assert Path(r["report"]).is_file() and Path(r["report"]).parent == path
        else:  # a lab without a report (yet) says so
            assert r["report"] is None and r["report_error"]
    assert Path(res["index"]).is_file() and Path(res["index"]).parent == runs
    grok, parity, comp, cap = (r["headline"] for r in res["labs"][:4])
    assert cap["params"] > 0 and cap["trainings"] >= 2
    assert grok["seeds"] == 1 and sum(grok["outcome_counts"].values()) == 1
    assert parity["runs"] == 2 and sum(parity["outcome_counts"].values()) == 2
    assert comp["roundtrip_ok"] is True and comp["fresh_examples"] == 200
    assert comp["model_bits_per_example"] > comp["floor_bits_per_example"] > 0
    coder = json.loads((Path(res["labs"][2]["run_dir"]) / "coder.json").read_text())
    assert coder["roundtrip_ok"] and coder["detail"]["model"]["roundtrip_ok"]
    assert {"model", "gzip", "bz2", "xz"} <= set(coder["bits_per_example"])


def test_ctrl_c_after_first_stage_keeps_it_complete(runs):
    env = {**os.environ, "GROKLAB_RUNS": str(runs)}
    # a child of a background job starts with SIGINT ignored (and Python keeps it so): restore the default
    proc = subprocess.Popen([sys.executable, "-m", "groklab.cli", "tour", "--tiny", "--json"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    first = None
    deadline = time.monotonic() + 120
    try:
        while first is None and time.monotonic() < deadline:
            folders = sorted(p for p in runs.glob("*") if p.is_dir()) if runs.is_dir() else []
            # the second stage (the parity sweep) has begun: its folder holds its spec
            if len(folders) > 1 and store.is_complete(folders[0]) and (folders[1] / "sweep.json").is_file():
                first = folders[0]
                proc.send_signal(signal.SIGINT)
            elif proc.poll() is not None:
                raise AssertionError(f"ended before the first stage finished: {proc.stderr.read()[-2000:]}")
            time.sleep(0.02)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert first is not None, "the first stage never finished"
    assert proc.returncode == 130, stderr[-2000:]
    res = json.loads(stdout)
    assert res["interrupted"] and res["labs"][0]["run_dir"] == str(first), res
    assert store.status(first) == ("complete", None) and store.read_summary(first)["lab"] == "grokking"
    # the stage the interrupt caught (the parity sweep) keeps its folder, and it resumes to complete
    assert [Path(k["run_dir"]) for k in res["kept"]] == [p for p in folders[1:] if p.is_dir()], res
    sweep = Path(res["kept"][0]["run_dir"])
    assert res["kept"][0]["status"] == "incomplete" and (sweep / "sweep.json").is_file()
    assert groklab_json("sweep", "--resume", sweep, runs=runs)["n_runs"] == 2 and store.is_complete(sweep)
