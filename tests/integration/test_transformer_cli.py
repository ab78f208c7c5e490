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


def test_nanda_preset_runs_with_his_split_init_warmup_and_float64_loss(runs):
    """nanda-transformer at a tiny size through the CLI: his split, init, warm-up and loss reach the run's config,
    and the run trains (train loss falls) with progress measures on."""
    out = groklab_json("grok", "--preset", "nanda-transformer", "--steps", "40", "--set", "task.p=13",
                       "--set", "model.transformer.d_model=16", "--set", "model.transformer.d_mlp=32",
                       "--set", "train.log_every=20", "--set", "train.progress_every=20", "--set", "train.threads=1",
                       "--set", "train.snapshots=0", runs=runs)
    run = store.resolve(out["run_dir"])
    cfg = (run / "config.toml").read_text()
    for line in ('split = "python"', 'init = "normal"', "warmup_from_zero = true", 'logits_dtype = "float64"'):
        assert line in cfg, line
    t = pq.read_table(run / "metrics.parquet").to_pydict()
    loss = {s: v for s, m, v in zip(t["step"], t["metric"], t["value"]) if m == "train_loss"}
    assert loss[40] < loss[0] and "restricted_loss" in set(t["metric"])


GROKFAST = ["--preset", "grokfast-mul", "--steps", "40", "--set", "task.p=11", "--set", "model.decoder.dim=16",
            "--set", "train.batch_size=16", "--set", "train.log_every=10", "--set", "train.threads=1",
            "--set", "train.snapshots=0", "--seeds", "2"]


def test_grokfast_preset_trains_its_decoder_with_coupled_decay(runs):
    """grokfast-mul at tiny size: Grokfast's decoder on x·y mod p with y != 0, mini-batch epochs, Adam's coupled L2
    (here 0.01, its MA run's), and the MA filter — through the real CLI; the stored config says so."""
    out = groklab_json("grok", *GROKFAST, "--set", "optim.weight_decay=0.01", "--set", "optim.grokfast=ma",
                       "--set", "optim.grokfast_window=5", runs=runs)
    run = store.resolve(out["run_dir"])
    cfg = (run / "config.toml").read_text()
    assert 'kind = "decoder"' in cfg and 'decay = "l2_coupled"' in cfg and "nonzero_b = true" in cfg
    assert len(out["models"]) == 2 and all(0.0 <= m["train_acc"] <= 1.0 for m in out["models"])
    t = pq.read_table(run / "metrics.parquet").to_pydict()
    steps = sorted({s for s, m in zip(t["step"], t["metric"]) if m == "train_loss"})
    assert {0, 10, 20, 30, 40} <= set(steps) and steps[-1] == 40
    first = [v for s, m, v in zip(t["step"], t["metric"], t["value"]) if m == "train_loss" and s == 0]
    last = [v for s, m, v in zip(t["step"], t["metric"], t["value"]) if m == "train_loss" and s == 40]
    assert max(last) < min(first)  # it learns


def test_decoder_heads_must_divide_dim(runs):
    proc = groklab("grok", *GROKFAST, "--set", "model.decoder.heads=3", runs=runs, check=False)
    assert proc.returncode == 2 and "model.decoder.heads" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
