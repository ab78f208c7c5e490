"""The compression CLI at tiny sizes: real training, real files, real coding, a real kill -9 and --resume."""

import json
import math
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from groklab import GroklabError, cli, store

from .conftest import groklab, groklab_json, start_and_kill

TINY = ["--preset", "addition-tiny"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    out = groklab_json("compress", "train", *TINY, runs=runs)
    return runs, out


def test_train_json_and_run_folder(trained):
    runs, out = trained
    assert set(out) == {"run_dir", "val_loss", "floor", "exact_match", "steps", "wall_s"}
    assert out["steps"] == 60 and 0 <= out["exact_match"] <= 1 and out["val_loss"] > out["floor"] > 0
    assert out["val_loss"] < 0.8 * math.log(14)  # learned: well below the uniform code over 14 tokens
    run = store.resolve(out["run_dir"])
    names = {p.name for p in run.iterdir()}
    assert {"config.toml", "env.json", "metrics.parquet", "model.safetensors", "summary.json", "figures",
            "COMPLETE"} <= names
    assert {"loss.png", "exact_match.png", "position_loss.png", "decomposition.png"} <= {
        p.name for p in (run / "figures").iterdir()}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["lab"] == "compression" and summary["prequential"]["bits_per_example"] > 0
    t = pq.read_table(run / "metrics.parquet").to_pydict()
    assert {"train_loss", "val_loss", "exact_match", "pos_loss", "epistemic"} <= set(t["metric"])
    assert max(t["step"]) == 60 and max(t["position"]) == 9  # 2 digits: 10 targets


def test_same_command_twice_gives_identical_metrics(trained):
    runs, out = trained
    again = groklab_json("compress", "train", *TINY, runs=runs)
    a = pq.read_table(f"{out['run_dir']}/metrics.parquet").to_pydict()
    b = pq.read_table(f"{again['run_dir']}/metrics.parquet").to_pydict()
    assert a == b and out["val_loss"] == again["val_loss"]


def test_bf16_training_is_reproducible_and_close_to_fp32(trained):
    """train.precision=bf16: matmuls in bfloat16 under autocast (the result moves), same command twice equal."""
    runs, out = trained
    a, b = (groklab_json("compress", "train", *TINY, "--set", "train.precision=bf16", runs=runs) for _ in range(2))
    ta = pq.read_table(f"{a['run_dir']}/metrics.parquet").to_pydict()
    assert ta == pq.read_table(f"{b['run_dir']}/metrics.parquet").to_pydict()
    assert a["val_loss"] != out["val_loss"]  # the training matmuls did run in bfloat16
    assert abs(a["val_loss"] - out["val_loss"]) < 0.02 * out["val_loss"]
    assert 'precision = "bf16"' in Path(a["run_dir"], "config.toml").read_text()


def test_data_encode_decode_compare(trained, tmp_path):
    runs, out = trained
    src, z, back = tmp_path / "d.txt", tmp_path / "d.glac", tmp_path / "back.txt"
    groklab("compress", "data", "--n-examples", "700", "--digits", "2", "--out", src, runs=runs)
    assert len(src.read_text().splitlines()) == 700
    enc = groklab_json("compress", "encode", src, z, "--model", out["run_dir"], runs=runs)
    assert enc["n_examples"] == 700 and z.stat().st_size == enc["bytes_out"]
    groklab("compress", "decode", z, back, "--model", out["run_dir"], runs=runs)
    assert back.read_bytes() == src.read_bytes()
    cmp = groklab_json("compress", "compare", src, "--model", out["run_dir"], runs=runs)
    assert {"n_examples", "floor_bits_per_example", "bits_per_example", "roundtrip_ok"} <= set(cmp)
    assert cmp["roundtrip_ok"] is True and cmp["n_examples"] == 700
    assert {"gzip", "bz2", "xz", "zstd", "model"} <= set(cmp["bits_per_example"])


def test_addition8_small_trains_and_codes_8_digit_files(tmp_path):
    """The coder's preset at a tiny size: its 64-wide, 4-head model, bf16 training, and an 8-digit round trip."""
    runs = tmp_path / "runs"
    out = groklab_json("compress", "train", "--preset", "addition8-small", "--steps", "8", "--set",
                       "data.val_examples=100", "--set", "train.log_every=8", "--set", "optim.warmup=2",
                       "--set", "optim.cooldown=2", runs=runs)
    summary = json.loads(Path(out["run_dir"], "summary.json").read_text())
    assert summary["preset"] == "addition8-small" and summary["n_params"] == 103_680 and out["steps"] == 8
    assert 'precision = "bf16"' in Path(out["run_dir"], "config.toml").read_text()
    src, z, back = tmp_path / "d.txt", tmp_path / "d.glac", tmp_path / "back.txt"
    groklab("compress", "data", "--n-examples", "30", "--out", src, runs=runs)
    groklab("compress", "encode", src, z, "--model", out["run_dir"], runs=runs)
    groklab("compress", "decode", z, back, "--model", out["run_dir"], runs=runs)
    assert back.read_bytes() == src.read_bytes()
    assert len(src.read_text().splitlines()[0]) == 29  # s, 8 + 8 digits, a 9-digit answer, e


def main(args, runs, monkeypatch, capsys) -> tuple[int, str, str]:
    """The real entry point in-process (no interpreter start-up): (exit code, stdout, stderr)."""
    monkeypatch.setenv("GROKLAB_RUNS", str(runs))
    monkeypatch.setattr(sys, "argv", ["groklab", *map(str, args)])
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code
    o, e = capsys.readouterr()
    return code, o, e


def _bad(run, args, needle, outfile=None):
    code, _, stderr = run(args)
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("error: "), stderr
    if outfile is not None:
        assert not outfile.exists() and not list(outfile.parent.glob(f".{outfile.name}*"))


def test_bad_inputs(trained, tmp_path, monkeypatch, capsys):
    runs, out = trained
    model = out["run_dir"]

    def run(args):
        return main(args, runs, monkeypatch, capsys)

    good, z, dst = tmp_path / "good.txt", tmp_path / "good.glac", tmp_path / "out.txt"
    assert run(["compress", "data", "--n-examples", "50", "--digits", "2", "--out", good])[0] == 0
    assert run(["compress", "encode", good, z, "--model", model])[0] == 0
    malformed = tmp_path / "malformed.txt"
    malformed.write_text("s12+34=046e\ns12+34=46e\n")
    _bad(run, ["compress", "encode", malformed, dst, "--model", model], "line 2 is malformed", dst)
    nondigit = tmp_path / "nondigit.txt"
    nondigit.write_text("s12+34=046e\ns1a+34=046e\n")
    _bad(run, ["compress", "encode", nondigit, dst, "--model", model], "'a' is not in the vocabulary", dst)
    trunc = tmp_path / "trunc.glac"
    trunc.write_bytes(z.read_bytes()[:-5])
    _bad(run, ["compress", "decode", trunc, dst, "--model", model], "truncated", dst)
    flip = tmp_path / "flip.glac"
    b = bytearray(z.read_bytes())
    b[-2] ^= 1
    flip.write_bytes(bytes(b))
    _bad(run, ["compress", "decode", flip, dst, "--model", model], "corrupted", dst)
    code, o, _ = run(["compress", "train", *TINY, "--set", "train.seed=1", "--json"])
    other = json.loads(o)["run_dir"]
    _bad(run, ["compress", "decode", z, dst, "--model", other], "wrong model", dst)
    _bad(run, ["compress", "encode", tmp_path / "missing.txt", dst, "--model", model], "no such file", dst)
    _bad(run, ["compress", "encode", good, dst, "--model", model, "--precision", "fp16"], "--precision", dst)
    zb = tmp_path / "bf16.glac"
    assert run(["compress", "encode", good, zb, "--model", model, "--precision", "bf16"])[0] == 0
    assert run(["compress", "decode", zb, dst, "--model", model])[0] == 0 and dst.read_bytes() == good.read_bytes()
    dst.unlink()
    _bad(run, ["compress", "decode", z, dst, "--model", tmp_path], "no run", dst)
    _bad(run, ["compress", "decode", good, dst, "--model", model], "bad magic", dst)
    _bad(run, ["compress", "data", "--n-examples", "0", "--out", dst], "--n-examples", dst)
    _bad(run, ["compress", "data", "--n-examples", "5", "--sampling", "normal", "--out", dst], "data.sampling", dst)
    assert not list(tmp_path.glob(".*"))  # no temp files left behind


@pytest.mark.parametrize("args,field", [
    (["--set", "model.width=31"], "model.width"),
    (["--set", "data.sampling=gauss"], "data.sampling"),
    (["--set", "data.n_digits=0"], "data.n_digits"),
    (["--preset", "demo"], "--preset"),
    (["--set", "optim.warmup=1000"], "optim.warmup"),
    (["--set", "optim.cooldown=-1"], "optim.cooldown"),
    (["--set", "train.precision=fp16"], "train.precision"),
])
def test_config_errors_leave_no_run(tmp_path, args, field, monkeypatch, capsys):
    runs = tmp_path / "runs"
    code, _, stderr = main(["compress", "train", *TINY, *args], runs, monkeypatch, capsys)
    assert code == 2 and stderr.strip().startswith(f"error: {field}") and len(stderr.strip().splitlines()) == 1
    assert not runs.exists() or not any(runs.iterdir())


def test_joint_and_sizes_tiny(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    small = ["--set", "data.n_digits=2", "--set", "model.width=16", "--set", "model.heads=2", "--set",
             "train.steps=20", "--set", "optim.warmup=5", "--set", "optim.cooldown=5", "--set", "data.val_examples=200",
             "--json"]
    code, o, e = main(["compress", "joint", *small, "--n-file", "200"], runs, monkeypatch, capsys)
    assert code == 0, e
    res = json.loads(o)
    assert {r["pair"] for r in res["rows"]} == {"related", "unrelated"}
    coders = {r["coder"] for r in res["rows"]}
    assert {"gzip", "xz", "model (prequential)", "model (two-part: xz weights + data)"} <= coders
    for r in res["rows"]:
        assert r["C(X)+C(Y)"] == pytest.approx(r["C(X)"] + r["C(Y)"])
    code, o, e = main(["compress", "sizes", *small, "--widths", "8,16"], runs, monkeypatch, capsys)
    assert code == 0, e
    sizes = json.loads(o)["sizes"]
    assert [s["width"] for s in sizes] == [8, 16] and sizes[0]["n_params"] < sizes[1]["n_params"]
    code, _, e = main(["compress", "sizes", "--widths", "7,16"], runs, monkeypatch, capsys)
    assert code == 2 and "--widths" in e


KILL = ["compress", "train", *TINY, "--steps", "400", "--set", "train.log_every=20",
        "--set", "train.checkpoint_every=10", "--set", "data.carry_boost=0.25"]


def _checkpointed_past(step: int):
    def ready(path: Path) -> bool:
        try:
            state = store.Run(path).read_checkpoint()
        except GroklabError:  # a file being replaced: look again
            return False
        return state is not None and state[1]["step"] >= step
    return ready


def test_kill_9_then_resume_equals_uninterrupted(tmp_path):
    killed_runs = tmp_path / "killed"
    run = start_and_kill(KILL, killed_runs, _checkpointed_past(100))
    assert store.status(run)[0] == "interrupted"
    meta = store.Run(run).read_checkpoint()[1]
    assert 100 <= meta["step"] < 400
    resumed = groklab_json("compress", "train", "--resume", run.name, runs=killed_runs)
    straight = groklab_json(*KILL, runs=tmp_path / "straight")
    a, b = (json.loads((Path(r["run_dir"]) / "summary.json").read_text()) for r in (resumed, straight))
    assert a["resumed_from"] == meta["step"] and b["resumed_from"] is None
    assert a["model_hash"] == b["model_hash"] and a["prequential"] == b["prequential"]
    assert a["val_loss"] == b["val_loss"] and a["exact_match"] == b["exact_match"]
    assert pq.read_table(run / "metrics.parquet").to_pydict() == pq.read_table(
        Path(straight["run_dir"]) / "metrics.parquet").to_pydict()
    assert store.is_complete(run) and not (run / "checkpoint").exists()
    again = groklab("compress", "train", "--resume", run.name, runs=killed_runs, check=False)
    assert again.returncode == 2 and "already complete" in again.stderr


def test_resume_takes_no_config_and_needs_a_run(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    code, _, e = main(["compress", "train", "--resume", "nope", *TINY], runs, monkeypatch, capsys)
    assert code == 2 and "--resume" in e
    code, _, e = main(["compress", "train", "--resume", "nope"], runs, monkeypatch, capsys)
    assert code == 2 and "no run" in e
