"""`groklab bench engine` runs through the CLI at tiny sizes (speed figures live in BENCHMARKS.md)."""

import pytest

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
