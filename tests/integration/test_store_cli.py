"""A damaged run never breaks the store's commands for the others; its weights give a one-line error."""

import json
from pathlib import Path

from .conftest import groklab, groklab_json

TINY = ["grok", "--preset", "demo", "--steps", "100", "--set", "task.p=13", "--set", "model.pair_mlp.embed_size=8",
        "--set", "train.log_every=50", "--set", "train.threads=1"]


def _truncate(path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def test_damaged_runs_are_listed_and_skipped(runs):
    good, bad_summary, bad_members = (groklab_json(*TINY, runs=runs)["run_dir"] for _ in range(3))
    _truncate(Path(bad_summary) / "summary.json")
    _truncate(Path(bad_members) / "members.parquet")
    rows = {r["path"]: r for r in groklab_json("runs", "list", runs=runs)}
    assert rows[good]["status"] == "complete" and rows[good]["damaged"] is None
    for bad, name in ((bad_summary, "summary.json"), (bad_members, "members.parquet")):
        assert rows[bad]["status"] == "damaged" and name in rows[bad]["damaged"]
    proc = groklab("runs", "query", "SELECT count(*) AS n FROM members", "--json", runs=runs)
    assert json.loads(proc.stdout) == [{"n": 1}]  # only the good run answers
    assert proc.stderr.count("skipped damaged run") == 2
    table = groklab("runs", "list", runs=runs).stdout
    assert "damaged" in table


def test_corrupt_weights_are_a_one_line_error(runs):
    run = groklab_json(*TINY, runs=runs)["run_dir"]
    snap = sorted((Path(run) / "snapshots").glob("step_*.safetensors"))[-1]
    _truncate(snap, 0.7)
    proc = groklab("runs", "animate", run, runs=runs, check=False)
    assert proc.returncode == 2 and snap.name in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
