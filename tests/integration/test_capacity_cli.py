"""`groklab capacity emc` through the real CLI at seconds: the JSON schema, the stored run, EMC inside its
bracket, more parameters fit at least as many samples, bad input is one line with exit 2 and no run folder."""

import json

import pyarrow.parquet as pq
import pytest

from groklab import store

from .conftest import groklab, groklab_json, start_and_kill

TINY = ["--set", "data.mnist1d_samples=1000", "--set", "search.n_min=20", "--set", "search.n_max=400",
        "--set", "search.tol=0.25", "--set", "train.batch_size=0", "--set", "optim.lr=0.01",
        "--set", "search.max_epochs=400", "--set", "search.check_every=10", "--set", "search.window=100",
        "--set", "train.threads=1", "--set", "train.seeds=1"]
KEYS = {"run_dir", "wall_s", "emc", "emc_std", "bracket", "params", "trainings", "per_seed", "batching", "config"}


def emc(runs, width: int, *extra):
    return groklab_json("capacity", "emc", "--preset", "emc-demo", *TINY, "--set", f"model.width={width}", *extra,
                        runs=runs)


def run_folders(runs):
    return [p for p in runs.glob("*") if p.is_dir() and not p.name.startswith(".")] if runs.is_dir() else []


def test_tiny_search_json_schema_store_and_bracket(runs):
    out = emc(runs, 6, "--seeds", "2")
    assert set(out) == KEYS
    lo, hi = out["bracket"]
    assert out["emc"] is not None and lo <= out["emc"] <= hi
    assert len(out["per_seed"]) == 2 and out["emc_std"] >= 0
    for p in out["per_seed"]:
        assert p["state"] == "found" and p["bracket"][0] == p["emc"]
        assert (p["bracket"][1] - p["emc"]) / p["emc"] <= 0.25
    assert out["params"] == (40 * 6 + 6) + (6 * 6 + 6) + (6 * 10 + 10)
    assert out["config"]["lab"] == "capacity" and out["config"]["model"]["width"] == 6
    run = run_folders(runs)[0]
    assert str(run) == out["run_dir"] and (run / "COMPLETE").is_file()
    members = pq.read_table(run / "members.parquet").to_pydict()
    assert len(members["n"]) == out["trainings"]
    assert {"lab", "group", "member", "seed", "n", "round", "fitted", "epochs", "train_acc", "train_loss",
            "params"} <= set(members)
    for seed_row in out["per_seed"]:  # the bracket is what the trainings say
        rows = [(n, f) for n, f, s in zip(members["n"], members["fitted"], members["seed"]) if s == seed_row["seed"]]
        assert max(n for n, f in rows if f) == seed_row["emc"]
        assert min(n for n, f in rows if not f and n > seed_row["emc"]) == seed_row["bracket"][1]
        fitted_acc = [a for a, f, s in zip(members["train_acc"], members["fitted"], members["seed"])
                      if f and s == seed_row["seed"]]
        assert all(a == 1.0 for a in fitted_acc)
    metrics = pq.read_table(run / "metrics.parquet").to_pydict()
    assert {"round", "member", "n", "epoch", "metric", "value"} <= set(metrics)
    assert (run / "figures" / "search_path.png").is_file() and (run / "figures" / "train_curves.png").is_file()
    summary = json.loads((run / "summary.json").read_text())
    assert summary["emc"] == out["emc"] and summary["lab"] == "capacity"
    shown = groklab("runs", "show", out["run_dir"], runs=runs)
    assert "EMC" in shown.stdout


def test_more_parameters_fit_at_least_as_many_samples(runs):
    small, big = emc(runs, 4), emc(runs, 24)
    assert big["params"] > small["params"]
    assert small["per_seed"][0]["state"] == "found"  # a real bracket inside the range
    assert big["emc"] >= small["per_seed"][0]["bracket"][1] > small["emc"]


@pytest.mark.parametrize("args,names", [
    (["--set", "data.name=imagenet"], ["data.name", "mnist1d", "cifar100"]),
    (["--set", "model.kind=efficientnet"], ["model.kind", "mlp", "vit"]),
    (["--set", "optim.name=lbfgs"], ["optim.name", "sgd", "adamw"]),
    (["--set", "data.mnist1d_samples=1000", "--set", "data.classes=20"], ["data.classes", "1..10"]),
    (["--set", "data.mnist1d_samples=1000", "--set", "search.n_max=900"], ["search.n_max", "800"]),
    (["--set", "data.name=mnist", "--set", "search.n_max=1000", "--data-dir", "EMPTY"], ["EMPTY", "MNIST"]),
    (["--set", "data.name=cifar10", "--set", "search.n_max=1000", "--data-dir", "EMPTY/nope"], ["EMPTY/nope"]),
])
def test_bad_input_is_one_line_exit_2_and_no_run_folder(runs, tmp_path, args, names):
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [a.replace("EMPTY", str(empty)) for a in args]
    proc = groklab("capacity", "emc", "--preset", "emc-demo", *args, runs=runs, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and proc.stdout == ""
    for name in names:
        assert name.replace("EMPTY", str(empty)) in lines[0]
    assert run_folders(runs) == []


def test_sweep_one_emc_search_per_group(runs, tmp_path):
    spec = tmp_path / "s.toml"
    sets = "\n".join(f'"{a.split("=")[0]}" = {a.split("=")[1]}' for a in TINY[1::2] if "n_max" not in a)
    spec.write_text(f'lab = "sweep"\nbase = "emc-demo"\nseeds = 2\nx = "data.labels"\n'
                    f'[grid]\n"data.labels" = ["semantic", "random"]\n[set]\n{sets}\n'
                    '"model.width" = 6\n"search.n_max" = 300\n')
    out = groklab_json("sweep", "--config", spec, "--threads", "1", "--out", runs, runs=runs)
    t = pq.read_table(f"{out['run_dir']}/members.parquet").to_pydict()
    assert out["complete"] and out["groups"] == 2 and len(t["emc"]) == 4
    assert sorted(zip(t["labels"], t["seed"])) == [("random", 0), ("random", 1), ("semantic", 0), ("semantic", 1)]
    for i in range(4):
        assert t["bracket_lo"][i] == t["emc"][i] and t["params"][i] == 358 and t["trainings"][i] >= 3
    for lab in ("semantic", "random"):  # emc_std is the spread of the group's two seeds
        e = [e for e, la in zip(t["emc"], t["labels"]) if la == lab]
        assert [s for s, la in zip(t["emc_std"], t["labels"]) if la == lab] == [pytest.approx(abs(e[0] - e[1]) / 2)] * 2
    assert (runs / out["run_dir"].split("/")[-1] / "figures" / "sweep_emc.png").is_file()
    assert [p.name for p in runs.iterdir()] == [out["run_dir"].split("/")[-1]]  # no data cache beside it


def test_emc_kill_9_after_a_round_then_resume_equals_uninterrupted(tmp_path):
    """A real SIGKILL once round 1 is stored; --resume keeps that round (not retrained) and ends with the
    brackets, trainings and member table of an uninterrupted search; the sweep writes nothing outside --out."""
    args = ["capacity", "emc", "--preset", "emc-demo", *TINY, "--set", "model.width=6",
            "--set", "search.max_epochs=300"]
    killed = tmp_path / "killed"
    run = start_and_kill(args, killed, lambda p: (p / "members.parquet").is_file())
    rounds_kept = set(pq.read_table(run / "members.parquet").column("round").to_pylist())
    assert not store.is_complete(run) and len(rounds_kept) >= 1
    resumed = groklab_json("capacity", "emc", "--resume", run.name, runs=killed)
    straight = groklab_json(*args, runs=tmp_path / "straight")
    assert resumed["run_dir"] == str(run) and store.is_complete(run)
    assert resumed["per_seed"] == straight["per_seed"] and resumed["trainings"] == straight["trainings"]
    assert json.loads((run / "summary.json").read_text())["resumed_rounds"] == len(rounds_kept)
    a, b = (pq.read_table(p / "members.parquet").to_pydict() for p in (run, tmp_path / "straight" /
                                                                       straight["run_dir"].split("/")[-1]))
    assert [a[k] for k in ("seed", "n", "round", "fitted", "steps")] == [b[k] for k in ("seed", "n", "round",
                                                                                       "fitted", "steps")]
    again = groklab("capacity", "emc", "--resume", run.name, runs=killed, check=False)
    assert again.returncode == 2 and "already complete" in again.stderr
    bad = groklab("capacity", "emc", "--resume", run.name, "--set", "search.k=4", runs=killed, check=False)
    assert bad.returncode == 2 and "--resume" in bad.stderr
