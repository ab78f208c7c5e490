"""`groklab sweep --backend ray` on a real local Ray: the same members table as the local backend, no Ray
process left behind; a missing Ray or an unreachable cluster is one line, exit 2, no sweep folder."""

import os
import sys
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from groklab import store

from .conftest import groklab_json
from .test_fuzz_cli import run_cli

# Two groups (hidden 16 and 32) of four members (weight decay x 2 seeds): two Ray tasks side by side.
GRID = """lab = "sweep"
base = "pair-parity"
seeds = 2
x = "optim.weight_decay"
y = "model.mlp.hidden"
[grid]
"optim.weight_decay" = [0.1, 1.0]
"model.mlp.hidden" = [16, 32]
[set]
"train.steps" = 80
"data.n_train" = 200
"data.n_test" = 100
"train.log_every" = 20
"""


def _tagged(tag: str) -> list[int]:
    """Live processes whose environment carries `tag` (the CLI run and everything it started)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if tag.encode() in (p / "environ").read_bytes():
                    pids.append(int(p.name))
            except OSError:
                pass
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to find left-over Ray processes")
def test_ray_backend_gives_the_local_members_table_and_leaves_no_ray_process(tmp_path, monkeypatch):
    pytest.importorskip("ray")
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    tag = f"GROKLAB_RAY_TEST={uuid.uuid4().hex}"
    name, value = tag.split("=")
    monkeypatch.setenv(name, value)  # inherited by the CLI, its Ray processes and Ray's workers
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    on_ray = groklab_json("sweep", "--config", grid, "--threads", "1", "--backend", "ray", runs=tmp_path / "ray")
    code, out, err = run_cli("sweep", "--config", grid, "--threads", "1", "--json", runs=tmp_path / "local")
    assert code == 0, err
    ray_dir = Path(on_ray["run_dir"])
    assert on_ray["complete"] and on_ray["groups"] == 2 and on_ray["n_runs"] == 8 and store.is_complete(ray_dir)
    assert '"backend": "ray"' in (ray_dir / "env.json").read_text()
    assert not list((ray_dir / "groups").glob("*.claim"))
    local_dir = next((tmp_path / "local").iterdir())
    a = pq.read_table(ray_dir / "members.parquet").to_pydict()
    b = pq.read_table(local_dir / "members.parquet").to_pydict()
    assert a == b  # same kernels, one thread each: every member's row, bit for bit
    deadline = time.monotonic() + 10
    while _tagged(tag) and time.monotonic() < deadline:  # Ray's processes exit within a second or two
        time.sleep(0.2)
    left = [(pid, (Path("/proc") / str(pid) / "cmdline").read_bytes()[:80]) for pid in _tagged(tag)
            if pid != os.getpid()]
    assert not left, f"Ray processes left behind: {left}"


def test_backend_ray_without_ray_installed_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    code, out, err = run_cli("sweep", "--preset", "pair-parity-grid", "--scale", "small", "--backend", "ray",
                             runs=tmp_path / "runs")
    assert code == 2 and err.count("\n") == 1 and "pip install 'groklab[ray]'" in err and not out
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args,field", [
    (["--backend", "ray", "--address", "127.0.0.1:1"], "--address: no Ray cluster answers at '127.0.0.1:1'"),
    (["--backend", "dask"], "--backend: 'dask' is not allowed; choose one of: local, ray"),
    (["--address", "auto"], "--address: only with --backend ray"),
])
def test_bad_backend_or_address_is_one_line(tmp_path, args, field):
    if "ray" in args:
        pytest.importorskip("ray")
    code, out, err = run_cli("sweep", "--preset", "pair-parity-grid", "--scale", "small", *args,
                             runs=tmp_path / "runs")
    assert code == 2 and err.startswith(f"error: {field}") and err.count("\n") == 1 and not out, err
    assert not (tmp_path / "runs").exists()
