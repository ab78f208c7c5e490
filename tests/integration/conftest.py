import json
import os
import subprocess
import sys

import pytest


def groklab(*args, runs=None, check=True):
    """Run the real CLI in a subprocess; returns CompletedProcess."""
    env = {**os.environ, "GROKLAB_RUNS": str(runs) if runs else os.environ.get("GROKLAB_RUNS", "runs")}
    proc = subprocess.run([sys.executable, "-m", "groklab.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"groklab {' '.join(map(str, args))} -> {proc.returncode}\n{proc.stderr}")
    return proc


def groklab_json(*args, runs=None):
    proc = groklab(*args, "--json", runs=runs)
    return json.loads(proc.stdout)


@pytest.fixture
def runs(tmp_path):
    return tmp_path / "runs"
