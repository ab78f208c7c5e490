"""Fuzzing the CLI with hypothesis, in-process (no interpreter start-up per example): random bad `--set`
values, config/preset files, argument combinations and corrupted inputs (coded files, run folders, data
files). Every example must end with exit 2, one line on stderr starting `error: `, no traceback, nothing on
stdout and no run folder. The examples tried per test are `max_examples` below (see the report of #15)."""

import contextlib
import dataclasses
import gzip
import io
import json
import os
import random
import shutil
import string
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from groklab import cli, config
from groklab.labs import all_labs

# derandomized: the same examples every run; no shrinking (a failure's message names its input already)
FUZZ = settings(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck),
                phases=(Phase.explicit, Phase.generate))


def run_cli(*args, runs=None) -> tuple[int, str, str]:
    """The real entry point (groklab.cli.main) in this process: (exit code, stdout, stderr)."""
    argv, env = sys.argv, os.environ.get("GROKLAB_RUNS")
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["groklab", *map(str, args)]
    if runs is not None:
        os.environ["GROKLAB_RUNS"] = str(runs)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = argv
        if runs is not None:
            if env is None:
                os.environ.pop("GROKLAB_RUNS", None)
            else:
                os.environ["GROKLAB_RUNS"] = env
    return code, out.getvalue(), err.getvalue()


def assert_one_line_error(code: int, out: str, err: str, args) -> None:
    assert code == 2, f"{args} -> exit {code}\n{err[-3000:]}"
    assert "Traceback" not in err and err.startswith("error: ") and err.count("\n") == 1, f"{args}\n{err}"
    assert out == "", f"{args} wrote to stdout: {out[:300]}"


def no_runs(root: Path) -> bool:
    return not root.exists() or not [p for p in root.iterdir() if p.name != ".cache"]


# ------------------------------------------------------------------------------------ bad --set values

BASES = {"grokking": ["grok", "--preset", "demo"], "compression": ["compress", "train", "--preset", "addition-tiny"],
         "capacity": ["capacity", "emc", "--preset", "emc-demo"]}
FIELDS = {lab.name: [(name, f) for s, cls in config.sections(lab.config).items()
                     for name, f in config.leaf_fields(cls, s)] for lab in all_labs()}
WORD = st.text(string.ascii_lowercase + "_", min_size=1, max_size=8).filter(lambda w: w not in BASES and w != "sweep")


def _kind(f):
    return type(f.default) if f.default is not dataclasses.MISSING else list


def bad_value(f) -> st.SearchStrategy[str]:
    """TOML text of a value the field must refuse: wrong type, outside its range, not one of its choices."""
    kind, m = _kind(f), f.metadata
    wrong = {bool: ["1", "0", "yes", '"true"', "[true]", "0.5"],
             int: ['"3"', "1.5", "true", "[1]", "{a = 1}", "2e3"],
             float: ['"0.1"', "true", "[0.1]", "nan", "inf", "-inf", "{a = 1}"],
             str: ["1", "true", "[\"a\"]", "2.5", "{a = 1}"]}[kind]
    options = [st.sampled_from(wrong)]
    if kind in (int, float):
        step = st.integers(1, 10**6) if kind is int else st.floats(1e-6, 1e6)
        for key, sign in (("ge", -1), ("gt", -1), ("le", 1), ("lt", 1)):
            if m.get(key) is not None:
                edge = m[key] if key in ("gt", "lt") else None
                options.append(step.map(lambda d, b=m[key], s=sign, e=edge: repr(e if e is not None and d == 1
                                                                                  else b + s * d)))
    if kind is str and m.get("choices"):
        options.append(WORD.filter(lambda w, c=m["choices"]: w not in c).map(lambda w: f'"{w}"'))
    return st.one_of(options)


@st.composite
def bad_override(draw, lab: str) -> str:
    name, f = draw(st.sampled_from(FIELDS[lab]))
    how = draw(st.sampled_from(["value", "value", "value", "unknown key", "unknown section", "table", "syntax"]))
    if how == "value":
        return f"{name}={draw(bad_value(f))}"
    if how == "unknown key":
        return f"{name.rsplit('.', 1)[0]}.{draw(WORD.filter(lambda w: w + '.' not in name + '.'))}zz=1"
    if how == "unknown section":
        return f"{draw(WORD)}zz.{name.rsplit('.', 1)[1]}=1"
    if how == "table":
        return f"{name.split('.')[0]}=3"
    return draw(st.sampled_from([name, f"={draw(WORD)}", f"{name}.x.y=1", f".{name}=1", f"{name} 1"]))


@settings(FUZZ, max_examples=100)
@given(data=st.data())
def test_bad_set_values(tmp_path_factory, data):
    lab = data.draw(st.sampled_from(sorted(BASES)))
    bad = data.draw(bad_override(lab))
    runs = tmp_path_factory.mktemp("runs")
    args = [*BASES[lab], "--set", "train.steps=1", "--set", bad]
    code, out, err = run_cli(*args, runs=runs)
    assert_one_line_error(code, out, err, args)
    assert no_runs(runs)


# ------------------------------------------------------------------------------- config / preset files

def _toml_value(v) -> str:
    return json.dumps(v) if isinstance(v, (str, bool)) or v is None else repr(v)


@settings(FUZZ, max_examples=50)
@given(data=st.data())
def test_bad_config_files(tmp_path_factory, data):
    """A --config file: valid settings mixed with at least one bad one, or bytes that are not TOML/UTF-8."""
    lab = data.draw(st.sampled_from(sorted(BASES)))
    how = data.draw(st.sampled_from(["bad entry", "bad entry", "garbage", "not utf-8", "wrong lab"]))
    if how in ("bad entry", "wrong lab"):
        lines = []
        for name, f in data.draw(st.lists(st.sampled_from(FIELDS[lab]), max_size=4)):  # valid noise
            if f.default is not dataclasses.MISSING and f.name != "steps":
                lines.append(f"{name} = {_toml_value(f.default)}")
        key, _, value = data.draw(bad_override(lab)).partition("=")
        if how == "wrong lab":
            lines.append(f'lab = "{data.draw(WORD)}"')
        elif "." in key and value and " " not in key:
            lines.append(f"{key.strip()} = {value}")
        else:
            lines.append(f"{data.draw(WORD)}zz = 1")
        body = ("\n".join(lines) + "\n").encode()
    elif how == "garbage":
        body = data.draw(st.text(max_size=60)).encode() + b"\n= = [\n"
    else:
        body = data.draw(st.binary(max_size=60)) + b"\xff\xfe\x80" + data.draw(st.binary(max_size=20))
    root = tmp_path_factory.mktemp("cfg")
    f = root / "c.toml"
    f.write_bytes(body)
    steps = [] if b"train.steps" in body else ["--set", "train.steps=1"]  # (never override the bad entry)
    args = [*BASES[lab][:-2], "--config", f, *steps]
    code, out, err = run_cli(*args, runs=root / "runs")
    assert_one_line_error(code, out, err, [*args, body])
    assert no_runs(root / "runs")


SWEEP_KEYS = {"seeds": st.one_of(st.integers(-5, 0), st.sampled_from(['"3"', "1.5", "true", "[2]"])),
              "grid": st.sampled_from(['{}', '[1]', '"optim.weight_decay"', '{ "optim.weight_decay" = [] }',
                                       '{ "optim.weight_decay" = ["big"] }', '{ "model.nope" = [1] }',
                                       '{ "train.seed" = [1, 2] }', '{ "optim.weight_decay" = 0.1 }']),
              "base": st.sampled_from(['"no-such"', '"pair-parity-grid"', "3", '""']),
              "x": st.sampled_from(['"optim.lr"', "1"]), "set": st.sampled_from(['{ "train.steps" = -1 }', "1",
                                                                                 '{ "nope.x" = 1 }']),
              "lab": st.sampled_from(['"grokking"', "1"]), "bogus": st.just("1")}


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_bad_sweep_files(tmp_path_factory, data):
    keys = data.draw(st.lists(st.sampled_from(sorted(SWEEP_KEYS)), min_size=1, max_size=3, unique=True))
    raw = {"lab": '"sweep"', "base": '"parity-demo"', "seeds": "1", "grid": '{ "optim.weight_decay" = [0.1] }',
           "set": '{ "train.steps" = 1 }'}
    raw.update({k: data.draw(SWEEP_KEYS[k]) for k in keys})
    root = tmp_path_factory.mktemp("sweep")
    f = root / "s.toml"
    f.write_text("".join(f"{k} = {v}\n" for k, v in raw.items()))
    args = ["sweep", "--config", f, "--threads", "1"]
    code, out, err = run_cli(*args, runs=root / "runs")
    assert_one_line_error(code, out, err, [*args, f.read_text()])
    assert no_runs(root / "runs")


# -------------------------------------------------------------------------------- argument combinations

COMMANDS = {
    "grok": (["grok"], [["--preset", "demo"]],
             [["--seeds", "0"], ["--seeds", "-2"], ["--steps", "0"], ["--steps", "1.5"], ["--device", "tpu"],
              ["--preset", "nope"], ["--preset", "pair-parity-grid"], ["--resume", "nope"], ["--bogus"],
              ["--seeds"], ["--config", "/nonexistent.toml"], ["--set", "x"], ["--device", ""], ["extra"]]),
    "sweep": (["sweep"], [["--preset", "pair-parity-grid"], ["--scale", "small"], ["--threads", "1"]],
              [["--scale", "medium"], ["--threads", "-1"], ["--backend", "dask"], ["--address", "auto"],
               ["--resume", "/nonexistent"], ["--device", "tpu"], ["--preset", "demo"], ["--set", "train.steps=0"],
               ["--set", "nope=1"], ["--config", "/nonexistent.toml"]]),
    "compress": (["compress", "train"], [["--preset", "addition-tiny"]],
                 [["--steps", "0"], ["--threads", "-1"], ["--device", "tpu"], ["--preset", "demo"],
                  ["--resume", "nope"], ["--set", "model.width=31"]]),
    "capacity": (["capacity", "emc"], [["--preset", "emc-demo"]],
                 [["--seeds", "0"], ["--threads", "-3"], ["--device", "tpu"], ["--preset", "demo"],
                  ["--resume", "nope"], ["--set", "search.tol=0"]]),
    "report": (["report"], [], [["--all", "nope"], ["nope"], ["--all", "--out", "x.html"], []]),
    "runs": (["runs", "show"], [], [["nope"], []]),
    "data": (["data", "info"], [], [["nope"], ["mnist"], ["mnist1d", "--set", "bogus=1"],
                                    ["mnist1d", "--set", "num_samples=3"], ["iris", "--set", "test_fraction=2"]]),
    "bench": (["bench", "engine"], [], [["--models", "0"], ["--threads", "-1"], ["--device", "tpu"],
                                        ["--model", "vgg"], ["--member-chunk", "-1"]]),
}


@settings(FUZZ, max_examples=80)
@given(data=st.data())
def test_bad_argument_combinations(tmp_path_factory, data):
    cmd, good, bad = COMMANDS[data.draw(st.sampled_from(sorted(COMMANDS)))]
    chosen = data.draw(st.lists(st.sampled_from(bad), min_size=1, max_size=3, unique_by=lambda a: a[0] if a else ""))
    flags = {a[0] for a in chosen if a}
    parts = data.draw(st.permutations([*(g for g in good if g[0] not in flags), *chosen]))  # no bad one overridden
    args = [*cmd, *(a for p in parts for a in p)]
    root = tmp_path_factory.mktemp("args")
    code, out, err = run_cli(*args, runs=root / "runs")
    assert_one_line_error(code, out, err, args)
    assert no_runs(root / "runs")


# ------------------------------------------------------------------------------------ corrupted inputs

def corrupt(blob: bytes, data, flip: bool = True) -> bytes:
    """Truncate, flip bytes, append, or replace: the ways a file is damaged on disk or in transfer."""
    how = data.draw(st.sampled_from(["truncate", "flip", "append", "replace", "empty"] if flip else
                                    ["truncate", "append", "replace", "empty"]))
    if how == "truncate" and len(blob) > 1:
        return blob[:data.draw(st.integers(0, len(blob) - 1))]
    if how == "flip" and blob:
        b = bytearray(blob)
        for i in data.draw(st.lists(st.integers(0, len(b) - 1), min_size=1, max_size=8)):
            b[i] ^= data.draw(st.integers(1, 255))
        return bytes(b)
    if how == "append":
        return blob + data.draw(st.binary(min_size=1, max_size=64))
    if how == "replace":
        return data.draw(st.binary(max_size=200))
    return b""


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """A tiny trained `compress train` model and a file it encoded."""
    root = tmp_path_factory.mktemp("coded")
    code, out, err = run_cli("compress", "train", "--preset", "addition-tiny", "--steps", "20", "--threads", "1",
                             "--json", runs=root / "runs")
    assert code == 0, err
    model = json.loads(out)["run_dir"]
    src, z = root / "src.txt", root / "src.glac"
    assert run_cli("compress", "data", "--n-examples", "20", "--digits", "2", "--out", src)[0] == 0
    code, _, err = run_cli("compress", "encode", src, z, "--model", model, "--threads", "1")
    assert code == 0, err
    return model, z.read_bytes()


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_corrupted_coded_files(coded, tmp_path_factory, data):
    model, blob = coded
    bad = corrupt(blob, data)
    if bad == blob:
        return
    root = tmp_path_factory.mktemp("dec")
    (root / "in.glac").write_bytes(bad)
    args = ["compress", "decode", root / "in.glac", root / "out.txt", "--model", model, "--threads", "1"]
    code, out, err = run_cli(*args)
    assert_one_line_error(code, out, err, args)
    assert not (root / "out.txt").exists() and not list(root.glob(".*"))  # nothing half-written


@pytest.fixture(scope="module")
def grok_run(tmp_path_factory):
    """A tiny complete grokking run (its folder is copied and damaged per example)."""
    root = tmp_path_factory.mktemp("grokrun")
    code, out, err = run_cli("grok", "--preset", "demo", "--steps", "40", "--seeds", "2", "--set", "task.p=7",
                             "--set", "train.log_every=10", "--set", "train.threads=1", "--json", runs=root)
    assert code == 0, err
    return Path(json.loads(out)["run_dir"])


RUN_FILES = ["config.toml", "summary.json", "metrics.parquet", "members.parquet", "env.json"]


@settings(FUZZ, max_examples=20)
@given(data=st.data())
def test_corrupted_run_folders(grok_run, tmp_path_factory, data):
    """A damaged file in a complete run (bytes flipped inside a parquet or safetensors file's data too: COMPLETE
    records every data file's sha256): each command that reads the run refuses it in one line, exit 2;
    `runs list` lists it as damaged; none crashes or decodes garbage."""
    root = tmp_path_factory.mktemp("store")
    run = root / grok_run.name
    shutil.copytree(grok_run, run)
    name = data.draw(st.sampled_from(RUN_FILES + sorted(p.name for p in (run / "snapshots").iterdir())[:2]))
    f = run / name if (run / name).exists() else run / "snapshots" / name
    before = f.read_bytes()
    after = corrupt(before, data)
    f.write_bytes(after)
    cmd = data.draw(st.sampled_from([["runs", "show", run.name], ["runs", "figures", run.name],
                                     ["report", run.name, "--root", root], ["runs", "list"]]))
    code, out, err = run_cli(*cmd, "--json", runs=root)
    assert "Traceback" not in err, f"{cmd} on damaged {name}\n{err}"
    if code != 0:
        assert_one_line_error(code, out, err, [cmd, name])
    if cmd[:2] == ["runs", "list"]:
        rows = json.loads(out)
        assert code == 0 and len(rows) == 1
        assert after == before or rows[0]["status"] == "damaged", (name, rows[0])
    elif after != before:
        assert code == 2, f"{cmd} read a run whose {name} changed after it completed\n{out[-500:]}"
    assert sorted(p.name for p in root.iterdir()) == [run.name]  # no new run folder


def _idx(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.astype(np.uint8).tobytes()


@settings(FUZZ, max_examples=40)
@given(data=st.data())
def test_corrupted_data_files(tmp_path_factory, data):
    """MNIST idx files (plain or gzip) with one of the four damaged: one line naming the file."""
    root = tmp_path_factory.mktemp("mnist")
    rng = random.Random(0)
    gz = data.draw(st.booleans())
    files = {}
    for prefix, n in (("train", 5), ("t10k", 3)):
        files[f"{prefix}-images-idx3-ubyte"] = _idx(np.array([[[rng.randrange(256)] * 28] * 28] * n))
        files[f"{prefix}-labels-idx1-ubyte"] = _idx(np.array([rng.randrange(10) for _ in range(n)]))
    target = data.draw(st.sampled_from(sorted(files)))
    for name, raw in files.items():
        blob = gzip.compress(raw) if gz else raw
        if name == target:
            blob = corrupt(blob, data)
            if blob == (gzip.compress(raw) if gz else raw):
                return
        (root / (name + (".gz" if gz else ""))).write_bytes(blob)
    args = ["data", "info", "mnist", "--data-dir", root, "--json"]
    code, out, err = run_cli(*args, runs=root / "runs")
    if code == 0:  # a flip inside the pixels (or labels still in 0..9) is data, not damage
        assert "Traceback" not in err and json.loads(out)["name"] == "mnist"
    else:
        assert_one_line_error(code, out, err, [*args, target])
    assert no_runs(root / "runs")
