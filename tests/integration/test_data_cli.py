"""`groklab data`: loaded data sets through the CLI, cached under the store; missing files are one line."""

from .conftest import groklab, groklab_json


def test_data_info_caches_under_the_store(runs):
    info = groklab_json("data", "info", "mnist1d", "--set", "num_samples=500", "--out", runs, runs=runs)
    assert info["x_train"] == [400, 40] and info["x_test"] == [100, 40] and info["n_classes"] == 10
    assert sum(info["train_counts"]) == 400 and min(info["train_counts"]) > 0
    cached = list((runs / ".cache" / "data").glob("mnist1d-*.safetensors"))
    assert len(cached) == 1
    again = groklab_json("data", "info", "mnist1d", "--set", "num_samples=500", "--out", runs, runs=runs)
    assert again == info
    names = {r["name"] for r in groklab_json("data", "list", runs=runs)}
    assert {"mnist1d", "digits", "mnist", "cifar10", "cifar100"} <= names


def test_missing_files_and_bad_options_are_one_line(runs, tmp_path):
    proc = groklab("data", "info", "cifar10", "--data-dir", tmp_path, runs=runs, check=False)
    assert proc.returncode == 2 and str(tmp_path) in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = groklab("data", "info", "mnist1d", "--set", "foo=1", runs=runs, check=False)
    assert proc.returncode == 2 and "foo" in proc.stderr and "num_samples" in proc.stderr
    proc = groklab("data", "info", "imagenet", runs=runs, check=False)
    assert proc.returncode == 2 and "mnist1d" in proc.stderr
