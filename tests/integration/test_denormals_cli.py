"""GROKLAB_DENORMALS through the real CLI: flushing denormals changes speed, not results; a bad value is one line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def _grok(runs, value, *extra):
    env = {**os.environ, "GROKLAB_RUNS": str(runs), "GROKLAB_DENORMALS": value}
    return subprocess.run([sys.executable, "-m", "groklab.cli", "grok", "--preset", "demo", "--steps", "600",
                           "--set", "train.threads=1", *extra], capture_output=True, text=True, env=env, timeout=600)


def test_flush_and_keep_give_the_same_metrics(tmp_path):
    out = {}
    for value in ("keep", "flush"):
        proc = _grok(tmp_path / value, value, "--json")
        assert proc.returncode == 0, proc.stderr
        s = json.loads(proc.stdout)
        env = json.loads((Path(s["run_dir"]) / "env.json").read_text())
        assert env["flush_denormal"] is (value == "flush")
        out[value] = s["models"]
    for kept, flushed in zip(out["keep"], out["flush"], strict=True):
        assert kept["outcome"] == flushed["outcome"] and kept["step_memorized"] == flushed["step_memorized"]
        for k in ("train_acc", "test_acc"):
            assert flushed[k] == pytest.approx(kept[k], rel=1e-4, abs=1e-6)


def test_bad_value_is_one_line_and_no_run_folder(tmp_path):
    runs = tmp_path / "runs"
    proc = _grok(runs, "maybe")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "GROKLAB_DENORMALS" in lines[0] and "flush, keep" in lines[0], proc.stderr
    assert not runs.exists() or not any(p for p in runs.iterdir() if not p.name.startswith("."))
