import numpy as np
import pytest
import torch

from groklab import GroklabError, store


def test_run_is_complete_only_after_marker(tmp_path):
    run = store.Run.create(tmp_path, "t")
    run.write_text("config.toml", "x = 1\n")
    assert not store.is_complete(run.path)
    assert store.list_runs(tmp_path)[0]["complete"] is False
    run.write_json("summary.json", {"lab": "grokking", "preset": "t", "wall_s": 1.0, "models": []})
    run.write_table("members.parquet", {"member": [0, 1], "outcome": ["grok", "fail"]})
    run.complete()
    assert store.is_complete(run.path)
    assert store.resolve(run.id[:20], tmp_path) == run.path
    cols, rows = store.query("SELECT outcome, count(*) AS n FROM members GROUP BY 1 ORDER BY 1", tmp_path)
    assert cols == ["outcome", "n"] and rows == [("fail", 1), ("grok", 1)]
    with pytest.raises(GroklabError):
        store.query("SELECT nope FROM members", tmp_path)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    run = store.Run.create(tmp_path, "t")

    def boom(_):
        raise RuntimeError("killed mid-write")
    with pytest.raises(RuntimeError):
        store.atomic_write(run.path / "metrics.parquet", boom)
    assert not (run.path / "metrics.parquet").exists()
    assert [p.name for p in run.path.iterdir() if p.name.startswith(".")] == []
    out = store.atomic_write_bytes(tmp_path / "sub" / "x.glac", b"abc")
    assert out.read_bytes() == b"abc" and (out.stat().st_mode & 0o777) == 0o644  # not mkstemp's 0600


def test_snapshots_round_trip_without_pickle(tmp_path):
    run = store.Run.create(tmp_path, "t")
    w = {"embed": torch.randn(3, 5, 4), "w_out": torch.randn(3, 4, 5)}
    run.write_snapshot(10, w)
    run.write_snapshot(2, {k: v * 0 for k, v in w.items()})
    snaps = store.load_snapshots(run.path)
    assert [s for s, _ in snaps] == [2, 10]
    assert torch.equal(snaps[1][1]["embed"], w["embed"])
    raw = (run.path / "snapshots" / "step_0000010.safetensors").read_bytes()
    assert b"pickle" not in raw and raw[8:9] == b"{"  # safetensors: u64 header length, then JSON


def test_resolve_errors(tmp_path):
    with pytest.raises(GroklabError, match="no run"):
        store.resolve("missing", tmp_path)
    for bad in (tmp_path / "not-a-run", "sub/dir", "run*"):  # absolute paths, paths and globs never glob
        with pytest.raises(GroklabError, match="no run"):
            store.resolve(bad, tmp_path)
    np.testing.assert_equal(store.list_runs(tmp_path / "none"), [])
