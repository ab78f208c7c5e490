"""Sweeps through the real CLI: tiny grid, resume after a kill, bad input."""

import os
import socket

import pyarrow.parquet as pq

from groklab import store

from .conftest import groklab, groklab_json

TINY = ["sweep", "--preset", "pair-parity-grid", "--scale", "small", "--set", "train.steps=60",
        "--set", "data.n_test=100", "--set", "train.log_every=20", "--threads", "1"]


def test_small_sweep_table_figures_and_resume(runs):
    out = groklab_json(*TINY, runs=runs)
    assert out["n_runs"] == 60 and out["groups"] == 4 and sum(out["outcome_counts"].values()) == 60
    run = store.resolve(out["run_dir"])
    t = pq.read_table(run / "members.parquet").to_pydict()
    assert {"weight_decay", "hidden", "n_train", "seed", "outcome", "step_generalized"} <= set(t)
    assert sorted(set(t["weight_decay"])) == [0.01, 0.03, 0.1, 0.3, 1.0] and set(t["hidden"]) == {32, 128}
    assert {p.name for p in (run / "figures").iterdir()} >= {"phase_outcomes.png", "phase_steps.png"}
    # simulate a kill during group 2: its table and the completion marker are gone
    (run / "groups" / "g002.parquet").unlink()
    (run / "COMPLETE").unlink()
    first = (run / "groups" / "g000.parquet").stat().st_mtime_ns
    # g002's claim is stale (its process is gone): taken over; g003 is claimed by a live process (this one)
    host = socket.gethostname()
    (run / "groups" / "g002.claim").write_text(f"{host} 4194305\n")
    (run / "groups" / "g003.parquet").unlink()
    (run / "groups" / "g003.claim").write_text(f"{host} {os.getpid()}\n")
    part = groklab_json("sweep", "--resume", run, runs=runs)
    assert part["complete"] is False and part["groups_pending"] == [3] and not store.is_complete(run)
    assert (run / "groups" / "g002.parquet").is_file() and not (run / "groups" / "g002.claim").exists()
    (run / "groups" / "g003.claim").unlink()  # that process "died" without finishing: resume again
    resumed = groklab_json("sweep", "--resume", run, runs=runs)
    assert resumed["n_runs"] == 60 and resumed["complete"] and store.is_complete(run)
    assert resumed["since_created_s"] > resumed["wall_s"]  # the folder's age spans all three processes
    assert (run / "groups" / "g000.parquet").stat().st_mtime_ns == first  # finished groups were skipped
    t2 = pq.read_table(run / "members.parquet").to_pydict()
    assert t2["outcome"] == t["outcome"] and t2["train_loss"] == t["train_loss"]  # deterministic re-run
    rows = groklab_json("runs", "query", "SELECT count(*) AS n FROM members", runs=runs)
    assert rows == [{"n": 60}]
    rows = groklab_json("runs", "query", "SELECT count(DISTINCT grp) AS g FROM metrics", runs=runs)
    assert rows == [{"g": len(list((run / "groups").glob("g*_metrics.parquet")))}]


def test_resume_dir_that_is_not_a_sweep(runs, tmp_path):
    proc = groklab("sweep", "--resume", tmp_path, runs=runs, check=False)
    assert proc.returncode == 2 and "not a sweep folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_bad_grid_file(runs, tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('lab = "sweep"\nbase = "parity-demo"\n[grid]\n"optim.weight_decay" = ["a lot"]\n')
    proc = groklab("sweep", "--config", f, runs=runs, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: grid.optim.weight_decay")
    f.write_text('lab = "sweep"\nbase = "parity-demo"\n[grid]\n"model.mlp.hidden" = []\n')
    proc = groklab("sweep", "--config", f, runs=runs, check=False)
    assert proc.returncode == 2 and "non-empty" in proc.stderr
    assert not runs.exists() or not any(runs.iterdir())
    proc = groklab("grok", "--preset", "pair-parity-grid", runs=runs, check=False)
    assert proc.returncode == 2 and "sweep" in proc.stderr


def test_sweep_of_another_lab(runs):
    """The shared sweep takes a compression preset as its base: each point is its own GPT."""
    out = groklab_json("sweep", "--preset", "addition-tiny-grid", "--scale", "small", "--set", "train.steps=30",
                       "--threads", "1", runs=runs)
    assert out["complete"] and out["base_lab"] == "compression" and out["n_runs"] == 4 and out["groups"] == 4
    rows = groklab_json("runs", "query", "SELECT lab, width, lr, gap_pct, val_loss, floor FROM members "
                        "ORDER BY width, lr", runs=runs)
    assert [(r["width"], r["lr"]) for r in rows] == [(16, 1e-3), (16, 3e-3), (32, 1e-3), (32, 3e-3)]
    assert all(r["lab"] == "compression" and r["val_loss"] > r["floor"] > 0 and r["gap_pct"] > 0 for r in rows)
    assert (store.resolve(out["run_dir"]) / "figures" / "sweep_gap.png").is_file()
