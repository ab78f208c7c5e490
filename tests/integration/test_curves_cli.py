"""`groklab curves ...` through the real CLI at seconds: the JSON contracts, the stored runs and their redrawn
figures, the random-features peak at p = n, a tiny MNIST-1D width sweep and bad input (one line, exit 2, no
run folder)."""

import json
from pathlib import Path

import pytest

from .conftest import groklab, groklab_json

RF = ["--set", "features.n=30", "--set", "features.trials=4", "--set", "features.points=7", "--set",
      "features.n_test=200", "--set", "features.gauss_trials=20", "--set", "features.gauss_d=60", "--set",
      "features.gauss_n=20", "--set", "ucurve.trials=5"]
NET = ["--set", "data.samples=500", "--set", "data.train_split=0.5", "--set", "train.epochs=2", "--set",
       "train.eval_every=1", "--set", "train.batch_size=50", "--set", "train.threads=1"]


def folders(runs):
    return [p for p in runs.glob("*") if p.is_dir() and not p.name.startswith(".")] if runs.is_dir() else []


def test_random_features_json_store_and_peak_at_n(runs):
    out = groklab_json("curves", "double-descent", "--preset", "rf-demo", *RF, runs=runs)
    assert set(out) == {"run_dir", "wall_s", "x_name", "points", "interpolation_threshold", "peak"}
    assert out["interpolation_threshold"] == 30 and out["peak"]["x"] == 30
    assert {"x", "params", "train_error", "test_error"} <= set(out["points"][0])
    run = folders(runs)[0]
    assert str(run) == out["run_dir"] and (run / "COMPLETE").is_file()
    for f in ("features.parquet", "gaussian.parquet", "ucurve.parquet", "figures/double_descent.png"):
        assert (run / f).is_file(), f
    (run / "figures" / "double_descent.png").unlink()
    redrawn = groklab_json("runs", "figures", out["run_dir"], runs=runs)
    assert redrawn["figures"] and (run / "figures" / "double_descent.png").is_file()


def test_network_sweep_epochs_and_scaling_json(runs):
    out = groklab_json("curves", "double-descent", "--preset", "dd-demo", *NET, "--set", "model.widths=[2, 6]",
                       runs=runs)
    assert [p["x"] for p in out["points"]] == [2, 6]
    assert [p["params"] for p in out["points"]] == [h * h + 52 * h + 10 for h in (2, 6)]
    assert all(0 <= p["test_error"] <= 1 for p in out["points"])
    ep = groklab_json("curves", "epochs", "--preset", "epochs-demo", *NET, "--set", "epochs.width=4", runs=runs)
    assert set(ep) == {"run_dir", "epochs", "test_error", "train_error"}
    assert len(ep["epochs"]) == len(ep["test_error"]) >= 3 and ep["epochs"][-1] == 2
    sc = groklab_json("curves", "scaling", "--preset", "scaling-demo", *NET, "--set", "model.widths=[2]", "--set",
                      "scaling.widths=[2, 3, 4, 5, 6, 8]", "--set", "scaling.n_trains=[100, 250]", "--set",
                      "scaling.bootstrap=2", "--set", "train.seeds=1", runs=runs)
    assert set(sc) == {"run_dir", "fits"} and set(sc["fits"]) == {"power", "hoffmann_n", "hoffmann_nd"}
    for f in sc["fits"].values():
        assert set(f) == {"params", "ci95", "heldout_rel_error"} and f["heldout_rel_error"] >= 0
    summary = json.loads((Path(sc["run_dir"]) / "summary.json").read_text())
    assert summary["command"] == "scaling" and len(summary["figures"]) == 2


def test_baselines_json(runs):
    out = groklab_json("curves", "baselines", "--preset", "mnist1d-baselines", *NET, "--set",
                       'baselines.models=["logistic", "gru"]', "--set", "baselines.steps=3", "--set",
                       "baselines.seeds=2", "--set", "baselines.eval_every=3", runs=runs)
    assert [m["model"] for m in out["models"]] == ["logistic", "gru"]
    assert all({"mean", "std", "published", "params"} <= set(m) for m in out["models"])
    assert out["models"][0]["published"] == 0.32


@pytest.mark.parametrize("cmd,args,words", [
    ("double-descent", ["--preset", "dd-demo", "--set", "model.widths=[]"], ["model.widths", "empty"]),
    ("double-descent", ["--preset", "dd-demo", "--set", "model.widths=[8, -2]"], ["model.widths", ">= 1"]),
    ("double-descent", ["--preset", "dd-demo", "--set", "data.label_noise=1.0"], ["data.label_noise", "< 1"]),
    ("scaling", ["--preset", "scaling-demo", "--set", "scaling.widths=[4, 8]"], ["scaling.widths", "parameters"]),
])
def test_bad_input_is_one_line_exit_2_and_no_run_folder(runs, cmd, args, words):
    proc = groklab("curves", cmd, *args, runs=runs, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in words), proc.stderr
    assert folders(runs) == []
