"""The transformer with progress measures through the real CLI, at a tiny size."""

import pyarrow.parquet as pq

from groklab import store

from .conftest import groklab, groklab_json

TINY = ["--preset", "transformer-demo", "--steps", "60", "--set", "task.p=13", "--set", "model.transformer.d_model=16",
        "--set", "model.transformer.d_mlp=32", "--set", "train.log_every=20", "--set", "train.threads=1"]


def test_transformer_logs_progress_measures(runs):
    out = groklab_json("grok", *TINY, "--set", "train.progress_every=20", runs=runs)
    run = store.resolve(out["run_dir"])
    t = pq.read_table(run / "metrics.parquet").to_pydict()
    progress = {"restricted_loss", "excluded_loss", "n_key_freqs", "fourier_gini", "sum_sq_weights"}
    assert progress <= set(t["metric"])
    assert sorted({s for s, m in zip(t["step"], t["metric"]) if m == "restricted_loss"}) == [0, 20, 40, 60]
    assert (run / "figures" / "progress.png").is_file()


def test_progress_off_means_no_measures(runs):
    out = groklab_json("grok", *TINY, "--set", "train.progress_every=0", runs=runs)
    run = store.resolve(out["run_dir"])
    assert "restricted_loss" not in set(pq.read_table(run / "metrics.parquet").to_pydict()["metric"])
    assert not (run / "figures" / "progress.png").exists()


def test_bad_heads_is_one_line(runs):
    proc = groklab("grok", *TINY, "--set", "model.transformer.n_heads=3", runs=runs, check=False)
    assert proc.returncode == 2 and "model.transformer.n_heads" in proc.stderr
