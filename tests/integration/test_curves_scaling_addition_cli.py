"""`groklab curves scaling --preset scaling-addition` through the real CLI at tiny size: the JSON contract, the
stored run (per-width rows, the floor check, figures) and bad input (one line, exit 2, no run folder)."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .conftest import groklab, groklab_json

TINY = ["--set", "scaling.widths=[4, 8, 12, 16]", "--set", "addition.n_digits=2", "--set", "addition.batch_size=32",
        "--set", "addition.max_steps=6", "--set", "addition.min_steps=4", "--set", "addition.eval_every=2",
        "--set", "addition.val_examples=64", "--set", "addition.test_examples=64", "--set", "scaling.bootstrap=2",
        "--threads", "1"]


def folders(runs):
    return [p for p in runs.glob("*") if p.is_dir() and not p.name.startswith(".")] if runs.is_dir() else []


def test_scaling_addition_json_and_store(runs):
    out = groklab_json("curves", "scaling", "--preset", "scaling-addition", *TINY, runs=runs)
    assert set(out) == {"run_dir", "fits"} and set(out["fits"]) == {"power", "hoffmann_n"}
    for f in out["fits"].values():
        assert set(f) == {"params", "ci95", "heldout_rel_error"} and f["heldout_rel_error"] >= 0
    run = Path(out["run_dir"])
    s = json.loads((run / "summary.json").read_text())
    assert s["source"] == "addition" and [p["width"] for p in s["per_width"]] == [4, 8, 12, 16]
    assert all(p["steps"] <= 6 and p["bits_per_example"] > s["floor_bits_per_example"] for p in s["per_width"])
    assert s["floor_check"]["floor"] == pytest.approx(s["floor"]) and isinstance(s["monotone"], bool)
    preq = [p["preq_bits_per_example"] for p in s["per_width"]]
    assert s["preq_monotone"] == all(b < a for a, b in zip(preq, preq[1:])) and s["preq_examples"] > 0
    assert all(q > s["floor_bits_per_example"] for q in preq)
    assert s["floor_check"]["E"] == pytest.approx(out["fits"]["hoffmann_n"]["params"]["E"])
    pts = pq.read_table(run / "points.parquet").to_pydict()
    assert pts["params"] == sorted(pts["params"]) and len(set(pts["n_train"])) == 1
    assert {Path(f).name for f in s["figures"]} == {"scaling.png", "residuals.png", "addition.png"}
    assert (run / "COMPLETE").is_file()


def test_bad_source_is_one_line_exit_2_and_no_run_folder(runs):
    """(The other config errors of scaling-addition are unit tests: each CLI start costs seconds.)"""
    proc = groklab("curves", "scaling", "--preset", "scaling-addition", "--set", "scaling.source=cifar", runs=runs,
                   check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and all(w in lines[0] for w in ("scaling.source", "addition")), proc.stderr
    assert folders(runs) == []
