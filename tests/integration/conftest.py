import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def start_and_kill(args: list, runs: Path, ready) -> Path:
    """Run the CLI in a subprocess, SIGKILL it once `ready(run_folder)` holds; return the run folder."""
    env = {**os.environ, "GROKLAB_RUNS": str(runs)}
    proc = subprocess.Popen([sys.executable, "-m", "groklab.cli", *map(str, args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            folders = ([p for p in runs.glob("*") if p.is_dir() and not p.name.startswith(".")]  # not .cache
                       if runs.is_dir() else [])
            if folders and ready(folders[0]):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                return folders[0]
            if proc.poll() is not None:
                raise AssertionError(f"finished before it could be killed: {proc.stderr.read().decode()[-2000:]}")
            time.sleep(0.05)
        raise AssertionError("never reached the kill point")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
