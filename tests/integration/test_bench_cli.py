"""`groklab bench engine` and `groklab bench suite` run through the CLI at tiny sizes (speed figures live in
BENCHMARKS.md)."""

import json

import pytest
import torch

from .conftest import groklab, groklab_json


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_bench_engine_module_ensemble(model, runs):
    r = groklab_json("bench", "engine", "--model", model, "--models", "4", "--steps", "1", "--loop-models", "2",
                     "--threads", "1", runs=runs)
    assert r["model"] == model and r["members"] == 4 and r["params_per_member"] > 0
    assert r["ensemble_model_steps_per_s"] > 0 and r["loop_model_steps_per_s"] > 0 and r["speedup"] > 0


def test_bench_engine_bad_model(runs):
    proc = groklab("bench", "engine", "--model", "vit", runs=runs, check=False)
    assert proc.returncode == 2 and "--model" in proc.stderr and "cnn" in proc.stderr


SUITE_ROWS = ("engine_speedup_pair_mlp", "engine_fraction_of_peak_pair_mlp", "engine_speedup_transformer",
              "engine_fraction_of_peak_transformer", "engine_speedup_mlp", "engine_speedup_cnn",
              "engine_fraction_of_peak_cnn", "parity_grid_small_wall_s", "addition8_train_steps_per_s",
              "addition8_train_steps_per_s_bf16", "addition8_to_floor_s_bf16",
              "coder_encode_tokens_per_s", "coder_decode_tokens_per_s", "coder_roundtrip_tokens_per_s",
              "coder_size_vs_floor", "coder_roundtrip_tokens_per_s_bf16", "coder_size_vs_floor_bf16",
              "emc_trainings_per_min")


def test_bench_suite_tiny(runs):
    """Every row at the test-only size: the JSON schema, positive values, goals; nothing in the run store."""
    from groklab.bench.suite import markdown

    proc = groklab("bench", "suite", "--tiny", "--threads", "1", "--json", runs=runs)
    r = json.loads(proc.stdout)  # exactly one JSON object on stdout
    assert {"wall_s", "device", "threads", "matmul_gflops", "load_avg", "machine", "rows"} <= set(r)
    assert r["device"] == "cpu" and r["threads"] == 1 and r["matmul_gflops"] > 0 and r["wall_s"] > 0
    rows = {row["name"]: row for row in r["rows"]}
    assert set(SUITE_ROWS) <= set(rows)
    for row in rows.values():
        assert {"name", "value", "unit", "goal"} <= set(row)
        assert row["value"] > 0 and isinstance(row["goal"], str)
    assert rows["engine_speedup_pair_mlp"]["goal"] == ">= 30"
    assert rows["coder_roundtrip_tokens_per_s"]["goal"] == ">= 250000"
    assert rows["coder_size_vs_floor"]["goal"] == "<= 1.002" and "STAND-IN" in rows["coder_size_vs_floor"]["note"]
    assert "REDUCED" in rows["parity_grid_small_wall_s"]["note"]
    assert not runs.exists()
    table = markdown(r)
    assert all(f"`{name}`" in table for name in SUITE_ROWS)


@pytest.mark.parametrize("device", ["tpu", "cuda"])
def test_bench_suite_bad_device(device, runs):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("a GPU is present: --device cuda is valid here")
    proc = groklab("bench", "suite", "--device", device, runs=runs, check=False)
    assert proc.returncode == 2 and "--device" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stdout == ""


def test_bench_suite_bad_coder_model(runs, tmp_path):
    proc = groklab("bench", "suite", "--tiny", "--coder-model", tmp_path, runs=runs, check=False)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --coder-model:")
    assert len(proc.stderr.strip().splitlines()) == 1
