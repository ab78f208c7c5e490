"""The capacity lab's row of `groklab bench suite` (bench/capacity.py) at the test-only size: a real (tiny)
emc-demo search through the lab's batched search; the figure itself lives in BENCHMARKS.md."""

import pytest

from groklab.bench.capacity import EMC_SIZES, emc_search


def test_emc_row_tiny_runs_a_real_search_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("GROKLAB_RUNS", str(tmp_path / "runs"))
    seen = []
    rows = emc_search("tiny", "cpu", 1, seen.append)
    assert [r.name for r in rows] == ["emc_trainings_per_min"]
    r = rows[0]
    assert r.unit == "trainings/min" and r.goal == "-" and r.met() is None
    assert r.value > 0 and r.to_dict()["value"] == pytest.approx(r.value)
    # tiny: 1 seed, k = 3 sizes in round 1 (n 10-40, 4-epoch cap: nothing fits, so one round of 3)
    assert "REDUCED" in r.note and "3 trainings in 1 rounds" in r.note and "4-epoch cap" in r.note
    assert seen and "emc-demo" in seen[0]
    assert not (tmp_path / "runs").exists()


def test_emc_sizes_cover_the_suite_sizes():
    from groklab.bench.suite import SIZES

    assert set(EMC_SIZES) == set(SIZES)
    for seeds, cap, n_min, n_max, tol in EMC_SIZES.values():
        assert seeds >= 1 and cap >= 1 and 1 <= n_min < n_max and 0 < tol < 1
