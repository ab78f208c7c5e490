"""benchmarks/pair_seed_selection.py: the split of a run's seeds by whether they generalize, against PAIR's file,
on small files written here (a sample selected on success matches; the whole population does not)."""

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

spec = importlib.util.spec_from_file_location(
    "pair_seed_selection", Path(__file__).parents[2] / "benchmarks" / "pair_seed_selection.py")
pss = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pss)


def _curve(rng, reach_step, start):
    """Test loss every 1,000 steps from `start`, falling below 1e-2 at reach_step (None: never)."""
    steps = np.arange(0, 51000, 1000)
    loss = start * np.exp(-steps / 40000) + 0.05
    if reach_step is not None:
        loss[steps >= reach_step] = 1e-3
    return {int(s): float(v * (1 + 0.01 * rng.standard_normal())) for s, v in zip(steps, loss)}


def test_a_success_selected_sample_matches_only_the_seeds_that_get_there(tmp_path):
    rng = np.random.default_rng(0)
    ours, theirs = {}, {}
    for m in range(120):  # half generalize (lower early loss), half never do
        ok = m % 2 == 0
        ours[m] = _curve(rng, int(rng.integers(10, 45)) * 1000 if ok else None, 1.0 if ok else 1.6)
    for m in range(200):  # "PAIR": only runs that generalized, same law
        theirs[m] = _curve(rng, int(rng.integers(10, 45)) * 1000, 1.0)
    r = pss.compare(ours, theirs)
    assert (r["members"], r["reach"], r["pair_reach"]) == (120, 60, 200)
    assert r["step_ks_p"] > 0.01
    assert [e["step"] for e in r["early"]] == list(pss.EARLY_STEPS)
    for e in r["early"]:  # the successes are the selected sample's law, the whole population is not
        assert abs(e["reach_median"] - e["pair_median"]) < 0.02 * e["pair_median"]
        assert e["all_ks_p"] < 1e-6 and e["never_ks_p"] < 1e-6
        assert e["never_median"] > e["reach_median"]
    assert sum(e["reach_ks_p"] > 0.05 for e in r["early"]) >= 3
    # the file readers: a groklab long metrics table and PAIR's CSV (step in thousands, eval_loss)
    cols = {"member": [], "step": [], "metric": [], "value": []}
    for m, c in list(ours.items())[:4]:
        for s, v in c.items():
            for k in ("test_loss", "train_loss"):
                cols["member"].append(m), cols["step"].append(s), cols["metric"].append(k)
                cols["value"].append(v if k == "test_loss" else 1e-6)
    pq.write_table(pa.table(cols), tmp_path / "metrics.parquet")
    assert pss.groklab_curves(tmp_path) == {m: ours[m] for m in range(4)}
    with open(tmp_path / "pair.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["modelIndex", "step", "train_loss", "eval_loss"])
        for s, v in theirs[0].items():
            w.writerow([0, s // 1000, 1e-6, v])
    assert pss.pair_curves(tmp_path / "pair.csv")[0] == theirs[0]
    assert pss.first_below({100: 0.5, 22300: 5e-3, 22400: 4e-3}, 1e-2, 1000) == 23000


def test_printed_report_with_nothing_reaching(tmp_path, capsys, monkeypatch):
    """No seed of ours reaches the threshold: the report says '-' where a statistic does not exist."""
    rng = np.random.default_rng(1)
    ours = {m: _curve(rng, None, 1.6) for m in range(5)}
    theirs = {m: _curve(rng, 20000, 1.0) for m in range(5)}
    r = pss.compare(ours, theirs)
    assert r["reach"] == 0 and r["step_ks_p"] is None and r["step_quantiles"]["ours_reach"] is None
    assert pss.first_below({0: 0.06, 1000: 1.4, 2000: 0.05}, 0.1) == 2000  # step 0 never counts
    monkeypatch.setattr(pss, "groklab_curves", lambda _: ours)
    monkeypatch.setattr(pss, "pair_curves", lambda _: theirs)
    monkeypatch.setattr("sys.argv", ["x", str(tmp_path), str(tmp_path / "p.csv")])
    pss.main()
    out = capsys.readouterr().out
    assert "0 of 5 seeds" in out and "KS p = -" in out


def test_bad_inputs_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    (tmp_path / "bad.csv").write_text("modelIndex,step\n0,zero\n")
    monkeypatch.setattr("sys.argv", ["x", str(tmp_path / "nowhere"), str(tmp_path / "bad.csv")])
    with pytest.raises(SystemExit) as e:
        pss.main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: cannot read the inputs") and len(err.strip().splitlines()) == 1
