"""Capacity studies from a members table: which study a grid is, the per-point means, the EMC gap against
the generalization gap with Pearson r and its bootstrap CI, the width/depth slopes."""

import math

import numpy as np
import pytest

from groklab.labs.capacity import studies
from groklab.sweep.run import column


def table(rows: list[dict]) -> dict:
    return {k: [r[k] for r in rows] for k in rows[0]}


def row(emc, acc=0.5, params=100, seed=0, **axes):
    return {"emc": emc, "test_acc_at_emc": acc, "params": params, "seed": seed, "state": "found", "trainings": 9,
            "train_wall_s": 1.0, **axes}


def test_kind_of_each_preset_grid():
    assert studies.kind(["data.inputs", "data.labels"], {"data.inputs": ["real", "gaussian"],
                                                         "data.labels": ["semantic", "random"]}) == "bars"
    assert studies.kind(["data.classes", "data.labels"], {"data.classes": [2, 5, 10],
                                                          "data.labels": ["semantic", "random"]}) == "lines"
    assert studies.kind(["model.width", "model.act", "data.labels"],
                        {"model.width": [4, 8], "model.act": ["relu", "tanh"],
                         "data.labels": ["semantic", "random"]}) == "gap"
    assert studies.kind(["model.kind", "model.width"], {"model.kind": ["mlp"], "model.width": [4]}) == "arch"
    assert studies.kind(["optim.name"], {"optim.name": ["sgd", "gd"]}) == "bars"
    assert studies.kind(["model.act", "model.width", "model.kind"], {"model.act": ["relu", "tanh"],
                        "model.width": [8, 16], "model.kind": ["mlp"]}) == "bars"


def test_points_average_the_seeds():
    t = table([row(100, 0.4, width=4, seed=0), row(120, 0.6, width=4, seed=1), row(300, 0.7, width=8)])
    pts = studies.points(t, ["model.width"], lambda k, keys: k.split(".")[-1])
    w4 = next(p for p in pts if p["model.width"] == 4)
    assert w4["emc"] == 110 and w4["emc_std"] == 10 and w4["seeds"] == 2 and w4["test_acc"] == pytest.approx(0.5)


def test_gap_pairs_semantic_with_random_and_r_has_a_bootstrap_ci():
    rng = np.random.default_rng(1)
    rows, keys = [], ["model.width", "data.labels"]
    for w in range(4, 16):
        acc = 0.3 + 0.04 * w + rng.normal(0, 0.01)  # better generalization ...
        sem = 1000.0
        rows += [row(sem, acc, width=w, labels="semantic"), row(sem * (1.3 - acc), None, width=w, labels="random")]
    pts = studies.points(table(rows), keys, column)
    g = studies.gap(pts, keys)  # ... larger relative EMC gap: negative correlation with the generalization gap
    assert g["n"] == 12 and g["r"] < -0.9 and g["ci"][0] <= g["r"] <= g["ci"][1] < 0
    q = g["rows"][0]
    assert q["emc_gap"] == pytest.approx((q["emc_semantic"] - q["emc_random"]) / q["emc_semantic"])
    assert q["gen_gap"] == pytest.approx(1 - q["test_acc"])
    r, lo, hi = studies.pearson_ci(np.arange(5.0), np.arange(5.0) ** 2)
    assert r == pytest.approx(np.corrcoef(np.arange(5.0), np.arange(5.0) ** 2)[0, 1]) and lo <= r <= hi
    assert all(math.isnan(v) for v in studies.pearson_ci(np.ones(4), np.arange(4.0)))


def test_arch_slopes_and_ratio():
    keys = ["model.kind", "model.width", "model.depth"]
    rows = [row(p ** 0.5 * (2 if d == 2 else 1), params=p, kind="mlp", width=w, depth=d)
            for w, p in ((4, 100), (8, 400)) for d in (1, 2)]
    pts = studies.points(table(rows), keys, column)
    a = studies.arch(pts, keys)["per_kind"]["mlp"]
    assert a["width_slope"] == pytest.approx(0.5)
    assert a["emc_per_param"] > 0 and "depth_slope" in a
    head, body = studies.table(pts, keys)
    assert len(body) == 4 and "EMC/param" in head
    assert "| kind |" in studies.markdown(head, body)
