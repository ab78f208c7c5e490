"""A real `kill -9` in the middle of training, then `--resume`: the run ends with exactly the metrics of an
uninterrupted run of the same command (same machine, same kernels: bit-identical)."""

from pathlib import Path

import pyarrow.parquet as pq

from groklab import store

from .conftest import groklab, groklab_json, start_and_kill


def table(path: Path, name: str) -> dict:
    return pq.read_table(path / name).to_pydict()


GROK = ["grok", "--preset", "demo", "--steps", "1500", "--seeds", "2", "--set", "task.p=23",
        "--set", "model.pair_mlp.embed_size=32", "--set", "train.log_every=50", "--set", "train.checkpoint_every=100",
        "--set", "train.early_stop=false", "--set", "train.threads=1"]


def test_grok_kill_9_then_resume_equals_uninterrupted(tmp_path):
    killed_runs = tmp_path / "killed"
    run = start_and_kill(GROK, killed_runs, lambda p: (p / store.CHECKPOINT).is_file()
                         and len(list((p / "snapshots").glob("*"))) >= 12)
    assert store.status(run)[0] == "interrupted"  # its process is gone: listed as resumable
    rows = groklab_json("runs", "list", runs=killed_runs)
    assert [r["status"] for r in rows] == ["interrupted"]
    meta = store.Run(run).read_checkpoint()[1]
    assert 0 < meta["step"] < 1500
    resumed = groklab_json("grok", "--resume", run.name, runs=killed_runs)
    straight = groklab_json("grok", *GROK[1:], runs=tmp_path / "straight")
    assert resumed["models"] == straight["models"]
    assert table(run, "metrics.parquet") == table(Path(straight["run_dir"]), "metrics.parquet")
    assert store.is_complete(run) and not (run / "checkpoint").exists()
    again = groklab("grok", "--resume", run.name, runs=killed_runs, check=False)
    assert again.returncode == 2 and "already complete" in again.stderr


def test_resume_takes_no_config_and_needs_a_run(runs):
    proc = groklab("grok", "--resume", "nope", "--steps", "5", runs=runs, check=False)
    assert proc.returncode == 2 and "--resume" in proc.stderr
    proc = groklab("grok", "--resume", "nope", runs=runs, check=False)
    assert proc.returncode == 2 and "no run" in proc.stderr


SWEEP = ["sweep", "--preset", "pair-parity-grid", "--scale", "small", "--set", "train.steps=200",
         "--set", "data.n_test=100", "--set", "train.log_every=20", "--threads", "1"]


def test_sweep_kill_9_then_resume_equals_uninterrupted(tmp_path):
    killed_runs = tmp_path / "killed"
    run = start_and_kill(SWEEP, killed_runs, lambda p: len(list((p / "groups").glob("g*[0-9].parquet"))) >= 1)
    assert not store.is_complete(run) and list((run / "groups").glob("*.claim"))  # killed mid-group
    resumed = groklab_json("sweep", "--resume", run, runs=killed_runs)
    straight = groklab_json(*SWEEP, runs=tmp_path / "straight")
    assert resumed["complete"] and resumed["outcome_counts"] == straight["outcome_counts"]
    a, b = table(run, "members.parquet"), table(Path(straight["run_dir"]), "members.parquet")
    assert a == b  # every member's row, its group's order included
