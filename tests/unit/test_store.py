import json
import os
import socket
import subprocess
import sys
from pathlib import Path

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


# ------------------------------------------------------------------------------------- lifecycle

ENV = {"torch": "x", "threads": 1}


def only_run(root):
    runs = [p for p in root.iterdir() if p.is_dir()]
    assert len(runs) == 1
    return runs[0]


@pytest.mark.parametrize("exc", [ValueError("bad input"), KeyboardInterrupt()])
def test_error_before_training_removes_the_folder(tmp_path, exc):
    with pytest.raises(type(exc)):
        with store.open_run(tmp_path, "t", "x = 1\n", ENV) as run:
            assert (run.path / "config.toml").read_text() == "x = 1\n"
            assert json.loads((run.path / "env.json").read_text()) == ENV  # written before the body runs
            raise exc
    assert not run.path.exists() and list(tmp_path.iterdir()) == []


def test_ctrl_c_while_a_new_run_writes_its_spec_leaves_no_folder(tmp_path, monkeypatch):
    """create_run (a sweep's folder, open_run's): Ctrl-C between the spec files removes the half-made folder."""
    run = store.create_run(tmp_path, "ok", {"sweep.json": {"a": 1}, "config.toml": "x = 1\n"})
    assert json.loads((run.path / "sweep.json").read_text()) == {"a": 1}
    assert (run.path / "config.toml").read_text() == "x = 1\n"
    write = store.Run.write_text

    def interrupted_on_the_second_file(self, rel, text):
        if rel == "config.toml":
            raise KeyboardInterrupt
        return write(self, rel, text)

    monkeypatch.setattr(store.Run, "write_text", interrupted_on_the_second_file)
    with pytest.raises(KeyboardInterrupt):
        store.create_run(tmp_path, "cut", {"sweep.json": {"a": 1}, "config.toml": "x = 1\n"})
    assert [p.name for p in tmp_path.iterdir()] == [run.path.name]


def test_interrupt_after_start_keeps_folder_and_checkpoint(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with store.open_run(tmp_path, "t", "x = 1\n", ENV) as run:
            assert store.status(run.path) == ("running", f"pid {os.getpid()}")
            run.write_checkpoint({"w": torch.ones(2, 3)}, {"step": 7})  # marks the run started
            raise KeyboardInterrupt
    assert run.path.is_dir() and not (run.path / store.RUNNING).exists()
    marker = (run.path / store.INTERRUPTED).read_text()
    assert marker.count("\n") == 1 and marker.strip().endswith("KeyboardInterrupt")
    assert store.status(run.path)[0] == "interrupted"
    row = store.list_runs(tmp_path)[0]
    assert row["status"] == "interrupted" and row["complete"] is False and row["damaged"] is None
    with store.reopen_run(run.path, env={"resumed": True}) as again:  # resume: same folder, same checkpoint
        assert again.path == run.path and again.started
        tensors, meta = again.read_checkpoint()
        assert meta == {"step": 7} and torch.equal(tensors["w"], torch.ones(2, 3))
        assert not (run.path / store.INTERRUPTED).exists()
        with pytest.raises(GroklabError, match="in use"):  # a live process holds it
            with store.reopen_run(run.path):
                pass
        again.write_json("summary.json", {"lab": "grokking"})
        again.complete()
    assert "KeyboardInterrupt" in (run.path / "interruptions.log").read_text()
    assert store.status(run.path) == ("complete", None) and json.loads((run.path / "env.json").read_text())
    with pytest.raises(GroklabError, match="already complete"):
        with store.reopen_run(run.path):
            pass
    with pytest.raises(GroklabError, match="no config.toml"):
        with store.reopen_run(tmp_path / "nope"):
            pass


def test_error_after_start_is_kept_and_clean_exit_completes(tmp_path):
    with pytest.raises(RuntimeError):
        with store.open_run(tmp_path, "a", "", ENV) as run:
            run.mark_started()
            raise RuntimeError("nan loss\nsecond line")
    assert (run.path / store.INTERRUPTED).read_text().strip().endswith("RuntimeError: nan loss")
    with store.open_run(tmp_path / "b", "b", "", ENV) as ok:
        ok.complete()
    assert store.is_complete(ok.path) and not (ok.path / store.RUNNING).exists()
    with pytest.raises(OSError):  # an error after complete() never removes the results
        with store.open_run(tmp_path / "c", "c", "", ENV) as done:
            done.write_json("summary.json", {})
            done.complete()
            raise OSError("disk full while printing")
    assert store.status(done.path) == ("complete", None)


def test_killed_process_reads_as_interrupted(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run = store.Run.create(tmp_path, "k")
    run.write_text("config.toml", "")
    assert store.status(run.path) == ("incomplete", None)  # no lifecycle marker: cannot tell
    run.write_json(store.RUNNING, {"pid": dead.pid, "host": socket.gethostname()})
    assert store.status(run.path) == ("interrupted", f"killed (pid {dead.pid} is gone)")
    with store.reopen_run(run.path) as again:  # a dead holder does not block a resume
        assert again.started


# ------------------------------------------------------------------------------------- checkpoints

def test_checkpoint_round_trip_with_rng_states(tmp_path):
    run = store.Run.create(tmp_path, "t")
    assert run.read_checkpoint() is None
    g = torch.Generator().manual_seed(3)
    torch.rand(5, generator=g)
    rng = np.random.default_rng(4)
    meta = {"step": 12, "lr": 1e-3, "name": "a", "losses": [1.5, float("inf")], "nested": {"k": [1, {"x": 2}]},
            "np_rng": rng.bit_generator.state, "legacy": np.random.RandomState(5).get_state(), "n": np.int64(9)}
    params = {"w": torch.randn(3, 4, 5), "b": torch.zeros(3, 5, dtype=torch.bfloat16), "s": torch.tensor(2.0)}
    run.write_checkpoint({**params, "rng/torch": g.get_state()}, meta)
    expect = torch.rand(5, generator=g)
    tensors, back = run.read_checkpoint()
    for k, v in params.items():
        assert tensors[k].dtype == v.dtype and torch.equal(tensors[k], v)
    g2 = torch.Generator()
    g2.set_state(tensors["rng/torch"])
    assert torch.equal(torch.rand(5, generator=g2), expect)
    assert {k: back[k] for k in ("step", "lr", "name", "nested", "n")} == {
        "step": 12, "lr": 1e-3, "name": "a", "nested": {"k": [1, {"x": 2}]}, "n": 9}
    assert back["losses"] == [1.5, float("inf")]
    r2 = np.random.default_rng()
    r2.bit_generator.state = back["np_rng"]
    assert r2.random() == rng.random()
    legacy = np.random.RandomState()
    legacy.set_state(tuple(back["legacy"]))
    assert legacy.rand() == np.random.RandomState(5).rand()


def test_damaged_checkpoint_is_one_line_error(tmp_path):
    run = store.Run.create(tmp_path, "t")
    f = run.write_checkpoint({"w": torch.arange(64.0)}, {"step": 1})
    raw = f.read_bytes()
    f.write_bytes(raw[: len(raw) - 10])  # truncated
    with pytest.raises(GroklabError, match="latest.safetensors: unreadable") as e:
        run.read_checkpoint()
    assert "\n" not in str(e.value) and str(f) in str(e.value)
    f.write_bytes(raw[:-4] + bytes(b ^ 0xFF for b in raw[-4:]))  # same length, flipped tensor bytes
    with pytest.raises(GroklabError, match="corrupted checkpoint") as e:
        run.read_checkpoint()
    assert str(f) in str(e.value)


def test_checkpoint_write_killed_midway_keeps_previous(tmp_path, monkeypatch):
    run = store.Run.create(tmp_path, "t")
    run.write_checkpoint({"w": torch.ones(8)}, {"step": 1})

    def half_then_die(tensors, path, metadata=None):
        Path(path).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"w\": ")  # a partial file, then the kill
        raise KeyboardInterrupt

    monkeypatch.setattr(store, "save_file", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        run.write_checkpoint({"w": torch.zeros(8)}, {"step": 2})
    tensors, meta = run.read_checkpoint()
    assert meta == {"step": 1} and torch.equal(tensors["w"], torch.ones(8))
    assert [p.name for p in (run.path / "checkpoint").iterdir()] == ["latest.safetensors"]


# ------------------------------------------------------------------------------------- damaged runs

def complete_run(root, name, outcome):
    run = store.Run.create(root, name)
    run.write_text("config.toml", "")
    run.write_json("summary.json", {"lab": "grokking", "preset": name, "wall_s": 1.0, "models": [{}]})
    run.write_table("members.parquet", {"member": [0], "outcome": [outcome]})
    run.write_table("metrics.parquet", {"member": [0], "step": [0], "metric": ["loss"], "value": [1.0]})
    run.complete()
    return run


def truncate(f):
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def test_damaged_runs_are_listed_and_skipped_by_queries(tmp_path):
    good, bad_summary, bad_members = (complete_run(tmp_path, n, o) for n, o in
                                      (("a", "grok"), ("b", "fail"), ("c", "memorize")))
    truncate(bad_summary.path / "summary.json")
    truncate(bad_members.path / "members.parquet")
    rows = {r["preset"] or r["id"]: r for r in store.list_runs(tmp_path)}
    assert rows["a"]["status"] == "complete" and rows["a"]["damaged"] is None and rows["a"]["n_members"] == 1
    b = rows[bad_summary.id]
    assert b["status"] == "damaged" and b["damaged"].startswith("summary.json: unreadable") and b["lab"] is None
    c = rows["c"]  # its summary is fine, so the row still says what the run was
    assert c["status"] == "damaged" and c["damaged"].startswith("members.parquet: unreadable")
    assert all("\n" not in r["damaged"] for r in (b, c))
    cols, got, skipped = store.query_with_skipped("SELECT run_id, outcome FROM members", tmp_path)
    assert got == [(good.id, "grok")]
    assert sorted(s[0] for s in skipped) == sorted([bad_summary.id, bad_members.id])
    assert store.query("SELECT count(*) FROM runs", tmp_path) == (["count_star()"], [(1,)])
    assert sorted(s[0] for s in store.last_skipped) == sorted([bad_summary.id, bad_members.id])
    truncate(good.path / "metrics.parquet")
    with pytest.raises(GroklabError, match="no complete runs .*3 damaged"):
        store.query("SELECT 1", tmp_path)


def test_corrupt_safetensors_is_one_line_error(tmp_path):
    run = store.Run.create(tmp_path, "t")
    f = run.write_snapshot(5, {"w": torch.randn(4, 4)})
    assert torch.equal(store.load_weights(f)["w"], store.load_snapshots(run.path)[0][1]["w"])
    truncate(f)
    for load in (lambda: store.load_weights(f), lambda: store.load_snapshots(run.path)):
        with pytest.raises(GroklabError, match="unreadable safetensors") as e:
            load()
        assert str(f) in str(e.value) and "\n" not in str(e.value)
    f.write_bytes(b"\xff" * 8 + b"garbage")  # a header length far beyond the file
    with pytest.raises(GroklabError, match=str(f.name)):
        store.load_weights(f)


def _complete_run(root: Path) -> store.Run:
    run = store.Run.create(root, "t")
    run.write_text("config.toml", "x = 1\n")
    run.write_json("summary.json", {"lab": "grokking", "preset": "t", "wall_s": 1.0, "models": []})
    run.write_table("members.parquet", {"member": list(range(64)), "value": np.linspace(0, 1, 64)})
    run.write_snapshot(10, {"w": torch.arange(4096, dtype=torch.float32).reshape(64, 64)})
    run.complete()
    return run


@pytest.mark.parametrize("rel", ["snapshots/step_0000010.safetensors", "members.parquet"])
def test_a_byte_flipped_after_completion_is_damage_not_garbage(tmp_path, rel):
    """A flip inside the data region parses fine (safetensors/parquet check only their headers), so COMPLETE
    records each data file's size and sha256; status, listing, queries and resolve all refuse the run."""
    run = _complete_run(tmp_path)
    assert store.status(run.path) == ("complete", None) and store.resolve(run.id, tmp_path) == run.path
    f = run.path / rel
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x40  # one bit, in the middle of the values
    f.write_bytes(bytes(data))
    st, why = store.status(run.path)
    assert st == "damaged" and why.startswith(f"{rel}: corrupted (sha256")
    with pytest.raises(GroklabError, match=r"^RUN: .* is damaged: "):
        store.resolve(run.id, tmp_path)
    assert store.list_runs(tmp_path)[0]["damaged"] == why


def test_truncated_or_missing_file_after_completion(tmp_path):
    run = _complete_run(tmp_path)
    f = run.path / "snapshots" / "step_0000010.safetensors"
    f.write_bytes(f.read_bytes()[:-10])
    why = store.status(run.path)[1]
    assert why.startswith(f"{f.relative_to(run.path)}: ") and "truncated" in why
    f.unlink()
    assert store.status(run.path) == ("damaged", f"{f.relative_to(run.path)}: missing (listed in COMPLETE)")
    figures_later = run.path / "figures" / "late.png"  # redrawn figures and reports are not data files
    figures_later.write_bytes(b"png")
    (run.path / "report.html").write_text("<html>")
    run2 = _complete_run(tmp_path / "b")
    (run2.path / "report.html").write_text("<html>")
    assert store.status(run2.path) == ("complete", None)


def test_run_completed_before_manifests_still_reads(tmp_path):
    run = _complete_run(tmp_path)
    (run.path / store.COMPLETE).write_text("2026-11-30T10:00:00\n")  # the old one-line COMPLETE
    assert store.status(run.path) == ("complete", None)
    (run.path / store.COMPLETE).write_text("2026-11-30T10:00:00\n{not json\n")
    assert store.status(run.path)[1].startswith("COMPLETE: unreadable file list")
