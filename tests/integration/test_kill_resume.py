"""A real `kill -9` in the middle of training, then `--resume`: the run ends with exactly the metrics of an
uninterrupted run of the same command (same machine, same kernels: bit-identical)."""

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

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


@pytest.fixture(scope="module")
def straight_sweep(tmp_path_factory) -> Path:
    """The same sweep, never interrupted: what every killed-and-resumed one must end as."""
    out = groklab_json(*SWEEP, runs=tmp_path_factory.mktemp("straight"))
    return Path(out["run_dir"])


def random_kill_point(seed: int, n_groups: int = 4):
    """A kill point somewhere in the sweep: once `k` groups are done and another is claimed (k random, the
    last group excluded so that the kill comes before the end), up to half a second later. Returns (k,
    ready(folder) for start_and_kill)."""
    rng = random.Random(seed)
    k, delay = rng.randrange(n_groups - 1), rng.uniform(0.0, 0.5)
    first: list[float] = []

    def ready(p: Path) -> bool:
        if len(list((p / "groups").glob("g*[0-9].parquet"))) < k or not list((p / "groups").glob("*.claim")):
            return False
        first.append(time.monotonic())
        return time.monotonic() - first[0] >= delay

    return k, ready


def assert_nothing_half_written_looks_complete(run: Path, straight: Path) -> None:
    """Killed: not complete, no summary; each group table present is whole and equals the straight run's."""
    assert not store.is_complete(run) and not (run / "summary.json").exists()
    assert store.status(run)[0] in ("incomplete", "interrupted")
    for g in (run / "groups").glob("g*[0-9].parquet"):
        assert table(run / "groups", g.name) == table(straight / "groups", g.name), g.name
    assert not [p for p in (run / "groups").iterdir() if not p.name.startswith(".")
                and p.suffix not in (".parquet", ".claim")]


def test_sweep_kill_9_at_a_random_point_then_resume_equals_uninterrupted(tmp_path, straight_sweep):
    seed = random.randrange(2**31)
    k, ready = random_kill_point(seed)
    killed_runs = tmp_path / "killed"
    run = start_and_kill(SWEEP, killed_runs, ready)
    assert_nothing_half_written_looks_complete(run, straight_sweep)
    resumed = groklab_json("sweep", "--resume", run, runs=killed_runs)
    assert resumed["complete"] and not list((run / "groups").glob("*.claim"))
    a, b = table(run, "members.parquet"), table(straight_sweep, "members.parquet")
    assert a == b, f"seed {seed} (kill after {k} groups)"  # every member's row, its group's order included


def test_two_processes_share_a_sweep_and_one_is_killed(tmp_path, straight_sweep):
    """Group claims under a real kill: B joins A's sweep (`--resume`), A is killed -9 mid-group; B takes
    A's group over once A is gone, and the sweep ends exactly as an uninterrupted one."""
    seed = random.randrange(2**31)
    k, ready = random_kill_point(seed, n_groups=2)  # A and B share four groups: A gets to do about two
    runs = tmp_path / "runs"
    joined: list[subprocess.Popen] = []

    def start_b_then_kill_a(p: Path) -> bool:
        if not joined and list((p / "groups").glob("*.claim")):  # A trains its first group: B joins
            env = {**os.environ, "GROKLAB_RUNS": str(runs)}
            joined.append(subprocess.Popen([sys.executable, "-m", "groklab.cli", "sweep", "--resume", str(p),
                                            "--threads", "1", "--json"], env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True))
        return bool(joined) and ready(p)

    try:
        run = start_and_kill(SWEEP, runs, start_b_then_kill_a)
        out, err = joined[0].communicate(timeout=300)
    finally:
        if joined and joined[0].poll() is None:
            joined[0].kill()
            joined[0].wait()
    assert joined[0].returncode == 0, err
    b = json.loads(out)
    if not b["complete"]:  # A died after B's last look at the claims: the next resume takes its group
        assert b["groups_pending"] and store.status(run)[0] == "incomplete"
        b = groklab_json("sweep", "--resume", run, runs=runs)
    assert b["complete"] and store.is_complete(run) and not list((run / "groups").glob("*.claim"))
    assert table(run, "members.parquet") == table(straight_sweep, "members.parquet"), f"seed {seed}"
