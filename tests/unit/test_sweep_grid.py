import pytest

from groklab import GroklabError
from groklab.config import load_preset_raw
from groklab.sweep.grid import groups, parse_spec, points
from groklab.sweep.run import work_order

RAW = {"lab": "sweep", "base": "parity-demo", "seeds": 2, "x": "optim.weight_decay", "y": "data.n_train",
       "grid": {"optim.weight_decay": [0.1, 1.0], "data.n_train": [100, 200], "model.mlp.hidden": [8]},
       "set": {"train.steps": 50}}


def test_pair_grid_has_1125_runs_in_25_groups():
    spec = parse_spec(load_preset_raw("pair-parity-grid"), "pair-parity-grid")
    g = groups(spec)
    assert len(points(spec)) * spec.seeds == 1125
    assert len(g) == 25 and all(len(m) == 45 for _, m in g)  # 5 wd x 9 seeds vary inside a group
    small = parse_spec(load_preset_raw("pair-parity-grid"), "pair-parity-grid", "small")
    assert set(small.grid) == set(spec.grid) and small.sets["train.steps"] == 8000


def test_groups_share_shapes_and_vary_members():
    spec = parse_spec(RAW, "t")
    g = groups(spec)
    assert len(g) == 2  # n_train x hidden
    cfg, members = g[0]
    assert cfg.data.n_train == 100 and cfg.model.mlp.hidden == 8 and cfg.train.steps == 50
    assert [(m["optim.weight_decay"], m["seed"]) for m in members] == [(0.1, 0), (0.1, 1), (1.0, 0), (1.0, 1)]


@pytest.mark.parametrize("change,field", [
    ({"grid": {"optim.weight_decay": []}}, "grid.optim.weight_decay"),
    ({"grid": {"optim.weight_decay": ["big"]}}, "grid.optim.weight_decay"),
    ({"grid": {"model.mlp.hidden": [8.5]}}, "grid.model.mlp.hidden"),
    ({"grid": {"model.nope": [1]}}, "grid.model.nope"),
    ({"grid": {}}, "grid"),
    ({"seeds": 0}, "seeds"),
    ({"x": "optim.lr"}, "x/y/facet"),
    ({"base": "no-such"}, "--preset"),
    ({"lab": "grokking"}, "--preset"),
])
def test_bad_specs_name_the_field(change, field):
    raw = {**RAW, **change}
    with pytest.raises(GroklabError) as e:
        parse_spec(raw, "t")
    assert str(e.value).startswith(field)


def test_work_order_takes_the_most_expensive_group_first():
    spec = parse_spec(load_preset_raw("pair-parity-grid"), "pair-parity-grid")
    plan = groups(spec)
    order = work_order(plan)
    assert sorted(order) == list(range(25))
    first, last = plan[order[0]][0], plan[order[-1]][0]
    assert (first.model.mlp.hidden, first.data.n_train) == (258, 1750)
    assert (last.model.mlp.hidden, last.data.n_train) == (16, 750)


# --- thread budget: jobs sharing one machine (two sweeps at once, or a sweep beside any other job) ---

def _job(pid, threads=0, since=0.0):
    return {"pid": pid, "threads": threads, "since": since}


def test_auto_jobs_split_the_budget_and_explicit_ones_keep_theirs():
    from groklab.engine.device import share

    two = [_job(1, since=1.0), _job(2, since=2.0)]
    assert [share(two, p, 2) for p in (1, 2)] == [1, 1]  # two jobs on 2 cores: one thread each
    three = [_job(3, since=3.0), _job(1, since=1.0), _job(2, since=2.0)]
    assert [share(three, p, 16) for p in (1, 2, 3)] == [6, 5, 5]  # the longest-running takes the remainder
    mixed = [_job(1, threads=3), _job(2), _job(3)]
    assert share(mixed, 1, 4) == 3 and share(mixed, 2, 4) == 1 and share(mixed, 3, 4) == 1  # at least one each
    assert share([_job(1)], 1, 2) == 2 and share([_job(2)], 1, 2) == 2  # alone (or not registered): all of it


def test_a_job_takes_its_share_while_another_runs_and_the_cores_back_when_it_is_killed(tmp_path, monkeypatch):
    """Real processes: this one registers alone (2 threads), a second job starts (1 each), the second is
    killed -9 (its file is stale: this one goes back to 2)."""
    import json
    import os
    import signal
    import subprocess
    import sys

    import torch

    from groklab.engine import device as devmod

    monkeypatch.setenv("GROKLAB_JOBS_DIR", str(tmp_path / "jobs"))
    monkeypatch.setenv("GROKLAB_THREADS", "2")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("GROKLAB_THREAD_SHARING", raising=False)
    monkeypatch.setattr(devmod, "_JOB", dict(devmod._JOB, file=None, since=0.0))
    try:
        devmod.setup("cpu", 0)
        assert torch.get_num_threads() == 2 and devmod.environment()["groklab_jobs"] == 1
        other = subprocess.Popen([sys.executable, "-c", "import sys, torch\nfrom groklab.engine import device as d\n"
                                  "d.setup('cpu', 0); print(torch.get_num_threads(), flush=True); sys.stdin.read()"],
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
        try:
            assert other.stdout.readline().strip() == "1"  # it started second: one thread
            assert devmod.rebalance(0.0) == 1 == torch.get_num_threads()  # this one gives one back
            files = sorted(p.name for p in (tmp_path / "jobs").glob("*.json"))
            assert files == sorted([f"{os.getpid()}.json", f"{other.pid}.json"])
            assert json.loads((tmp_path / "jobs" / f"{other.pid}.json").read_text())["threads"] == 0
        finally:
            os.kill(other.pid, signal.SIGKILL)
            other.wait()
        assert devmod.rebalance(0.0) == 2 == torch.get_num_threads()  # the killed job's file no longer counts
        assert [p.name for p in (tmp_path / "jobs").glob("*.json")] == [f"{os.getpid()}.json"]
        monkeypatch.setenv("GROKLAB_THREADS", "two")
        with pytest.raises(GroklabError, match="^GROKLAB_THREADS: expected an integer >= 1"):
            devmod.cpu_budget()
    finally:
        devmod._leave()
        torch.set_num_threads(1)
    assert not list((tmp_path / "jobs").glob("*.json"))
