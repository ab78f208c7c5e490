"""Capacity lab: the EMC search's bracket logic on fake fit functions, the fit/convergence rule, conditions
applied per member, config checks."""

import math

import numpy as np
import pytest
import torch

from groklab import GroklabError
from groklab.data.members import member_data
from groklab.engine.ensemble import ModuleEnsemble
from groklab.labs.capacity.config import CapacityConfig, load
from groklab.labs.capacity.search import Bracket, rounds_needed, search, summarize
from groklab.labs.capacity.train import Rule, ensemble, load_base, member_set
from groklab.nn.modules import build_module


def threshold_fits(emc: dict[int, int], calls: list):
    """Fake trainer: seed s fits n samples iff n <= emc[s]; records each call (one per round)."""
    def fits(cands):
        calls.append(list(cands))
        return [n <= emc[s] for s, n in cands]
    return fits


@pytest.mark.parametrize("true_emc", [50, 51, 77, 123, 400, 999, 1500, 2718, 3999])
def test_search_brackets_the_true_emc_within_tolerance_in_at_most_12_trainings(true_emc):
    calls = []
    res = search(threshold_fits({0: true_emc}, calls), [0], 50, 4000, k=3, tol=0.05)
    b = res.brackets[0]
    assert b.lo <= true_emc < b.hi
    assert (b.hi - b.lo) / b.lo <= 0.05 or b.hi - b.lo == 1
    assert len(b.tried) <= 12 and res.trainings <= 12
    assert res.per_seed()[0]["emc"] == b.lo and res.per_seed()[0]["state"] == "found"
    assert len(calls) == len(res.rounds) <= rounds_needed(50, 4000, 3, 0.05) == 4


def test_every_round_is_one_call_with_all_seeds_and_done_seeds_drop_out():
    calls = []
    emc = {0: 300, 1: 3000, 2: 10}  # seed 2 is below the range: done after round 1
    res = search(threshold_fits(emc, calls), [0, 1, 2], 50, 4000, k=3, tol=0.05)
    assert {s for s, _ in calls[0]} == {0, 1, 2}
    assert all(s != 2 for c in calls[1:] for s, _ in c)
    per = {p["seed"]: p for p in res.per_seed()}
    assert per[2]["state"] == "below_range" and per[2]["emc"] is None and per[2]["bracket"] == [0, 50]
    for s in (0, 1):
        lo, hi = per[s]["bracket"]
        assert lo <= emc[s] < hi and (hi - lo) / lo <= 0.05
    agg = summarize([per[0], per[1]])
    assert agg["emc"] == pytest.approx((per[0]["emc"] + per[1]["emc"]) / 2)
    assert agg["bracket"][0] <= agg["emc"] <= agg["bracket"][1]


def test_above_range_and_a_search_that_did_not_find_the_emc_is_caught():
    res = search(threshold_fits({0: 10**6}, []), [0], 50, 4000)
    assert res.per_seed()[0]["state"] == "above_range" and res.per_seed()[0]["bracket"] == [4000, None]
    wrong = search(lambda c: [n <= 1000 for _, n in c], [0], 50, 4000, max_rounds=2)  # cut short
    p = wrong.per_seed()[0]
    assert p["state"] == "max_rounds" and (p["bracket"][1] - p["bracket"][0]) / p["bracket"][0] > 0.05


def test_non_monotone_fitting_counts_inversions_and_keeps_the_largest_fitted_n():
    b = Bracket(50, 4000)
    for n, ok in ((50, True), (447, False), (800, True), (4000, False)):
        b.record(n, ok)
    assert (b.lo, b.hi, b.inversions) == (800, 4000, 1)
    assert all(800 < n < 4000 for n in b.candidates(3))


def test_candidates_are_log_spaced_inside_and_integers_run_out():
    b = Bracket(10, 1000)
    assert b.candidates(3) == [10, 100, 1000]
    b.record(10, True), b.record(100, True), b.record(1000, False)
    c = b.candidates(3)
    assert c == sorted(c) and len(c) == 3 and all(100 < n < 1000 for n in c)
    ratios = np.diff(np.log([100, *c, 1000]))
    assert np.allclose(ratios, ratios.mean(), rtol=0.05)
    b.record(101, True), b.record(103, False)
    assert b.candidates(3) == [102] and b.state(0.001) == "searching"


# -------------------------------------------------------------------------------------- the rule

def _rule(cfg, spe, log_steps, grad):
    ens = ModuleEnsemble(lambda: build_module("mlp", d_in=4, n_classes=2, width=3))
    m = len(spe)
    data = type("D", (), {"x": torch.zeros(m, 5, 4), "y": torch.zeros(m, 5, dtype=torch.int64),
                          "mask": torch.ones(m, 5, dtype=torch.bool)})()
    rule = Rule(cfg, ens, data, np.array(spe), log_steps, torch.device("cpu"))
    rule.grad_norms = lambda rows: np.array([grad[rule.active[r]] for r in rows], dtype=float)
    return rule


def test_rule_fitted_capped_converged_and_still_learning():
    cfg = CapacityConfig()
    cfg.search.max_epochs, cfg.search.window, cfg.search.plateau, cfg.search.grad_tol = 100, 20, 0.01, 0.05
    log_steps = [0, 10, 20, 30, 40]
    # members (1 step per epoch, 40 epochs): fits | flat loss, zero gradient | plateau, small gradient |
    # plateau, large gradient | loss still falling
    rule = _rule(cfg, [1, 1, 1, 1, 1], log_steps, grad=[0.0, 0.0, 0.01, 0.5, 0.01])
    acc = np.array([[.5, .8, .9, .95, 1.0], [.5] * 5, [.5, .6, .7, .7, .7], [.5, .6, .7, .7, .7], [.5] * 5])
    loss = np.array([[1, .5, .3, .2, .1], [1, 1, 1, 1, 1], [1, .8, .6, .6, .6], [1, .8, .6, .6, .6],
                     [1, .8, .6, .4, .2]], dtype=float)
    done = rule({"train_acc": acc, "train_loss": loss})
    assert done.tolist() == [True, True, True, False, False]
    assert rule.status[:3] == ["fitted", "converged", "converged"]
    assert rule.active.tolist() == [3, 4] and rule.grad_norm[3] == 0.5
    # the cap counts each member's own epochs: 100 steps are 100 epochs at 1 step/epoch, 10 at 10
    rule2 = _rule(cfg, [1, 10], [0, 50, 100], grad=[1.0, 1.0])
    d2 = rule2({"train_acc": np.array([[.5, .6, .7], [.5, .6, .7]]),
                "train_loss": np.array([[1, .5, .2], [1, .5, .2]])})
    assert d2.tolist() == [True, False] and rule2.status[0] == "capped"


def test_plateau_needs_a_full_window_of_epochs():
    cfg = CapacityConfig()
    cfg.search.window, cfg.search.grad_tol = 50, 1.0
    rule = _rule(cfg, [1], [0, 10, 20, 30], grad=[0.0])
    assert not rule({"train_acc": np.full((1, 4), .5), "train_loss": np.ones((1, 4))}).any()


def test_grad_norm_of_the_rule_is_each_members_full_batch_gradient():
    torch.manual_seed(0)
    ens = ModuleEnsemble(lambda: build_module("mlp", d_in=4, n_classes=3, width=5))
    params = ens.init([0, 1], torch.ones(2))
    x, y = torch.randn(2, 6, 4), torch.randint(0, 3, (2, 6))
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2], dtype=torch.bool)
    data = type("D", (), {"x": x, "y": y, "mask": mask})()
    rule = Rule(CapacityConfig(), ens, data, np.array([1, 1]), [0, 1], torch.device("cpu"))
    rule.on_log(1, params)
    got = rule.grad_norms(np.array([0, 1]))
    for i in range(2):
        mod = ens.to_module(params, i)
        n = int(mask[i].sum())
        torch.nn.functional.cross_entropy(mod(x[i, :n]), y[i, :n]).backward()
        want = math.sqrt(sum(float(p.grad.square().sum()) for p in mod.parameters()))
        assert got[i] == pytest.approx(want, rel=1e-5)


# ---------------------------------------------------------------------------------- data, conditions

@pytest.fixture(scope="module")
def digits_cfg(tmp_path_factory):
    cfg = load(None, None, ["data.name=digits", "search.n_min=20", "search.n_max=400"])
    return cfg, load_base(cfg, tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize("labels,inputs", [("random", "real"), ("semantic", "gaussian"), ("semantic", "permuted"),
                                           ("random", "permuted")])
def test_conditions_are_applied_per_member_and_nested_in_n(digits_cfg, labels, inputs):
    cfg, base = digits_cfg
    cfg.data.labels, cfg.data.inputs = labels, inputs
    d = member_set(cfg, base, [100, 300, 300], [0, 0, 1])
    rows0 = d.index[0, :100]
    assert torch.equal(d.index[1, :100], rows0)  # nested per seed
    assert torch.equal(d.x[1, :100], d.x[0, :100]) and torch.equal(d.y[1, :100], d.y[0, :100])
    clean_x, clean_y = base.x_train[d.index[1, :300]], base.y_train[d.index[1, :300]]
    if labels == "random":
        assert (d.y[1, :300] != clean_y).float().mean() > 0.6 and not torch.equal(d.y[2, :300], d.y[1, :300])
        assert torch.equal(d.y[1, :300], member_data(base, [300], [0], "random_labels").y[0])  # as the engine's
    else:
        assert torch.equal(d.y[1, :300], clean_y)
    if inputs == "real":
        assert torch.equal(d.x[1, :300], clean_x)
    elif inputs == "gaussian":
        assert not torch.allclose(d.x[1, :300], clean_x) and not torch.allclose(d.x[2, :300], d.x[1, :300])
    else:  # one permutation of the 64 pixels per seed, the same for every row and the test set
        flat, clean = d.x[1, :300].flatten(1), clean_x.flatten(1)
        assert torch.equal(flat.sort(1).values, clean.sort(1).values) and not torch.equal(flat, clean)
    cfg.data.labels, cfg.data.inputs = "semantic", "real"


def test_classes_are_merged_and_bad_data_input_is_one_error(digits_cfg, tmp_path):
    cfg, _ = digits_cfg
    cfg2 = load(None, None, ["data.name=digits", "data.classes=3", "search.n_min=20", "search.n_max=400"])
    base = load_base(cfg2, tmp_path)
    assert base.n_classes == 3 and set(base.y_train.tolist()) == {0, 1, 2}
    with pytest.raises(GroklabError, match=r"data\.classes.*1\.\.10"):
        load_base(load(None, None, ["data.name=digits", "data.classes=11", "search.n_max=400"]), tmp_path)
    with pytest.raises(GroklabError, match=r"search\.n_max.*1438"):
        load_base(load(None, None, ["data.name=digits", "search.n_max=5000"]), tmp_path)
    assert ensemble(cfg, base).n_params == (64 * 64 + 64) + (64 * 64 + 64) + (64 * 3 + 3)


@pytest.mark.parametrize("override,field", [("optim.name=lbfgs", "optim.name"),
                                            ("model.kind=efficientnet", "model.kind"),
                                            ("model.kind=vit,model.heads=3", "model.heads"),
                                            ("optim.lrs=sgd:0.1;adam:1", "optim.lrs"),
                                            ("optim.lrs=lbfgs:0.1", "optim.lrs"),
                                            ("data.name=imagenet", "data.name"),
                                            ("search.n_min=5000", "search.n_min"),
                                            ("optim.weight_decay=0.1", "optim.weight_decay")])
def test_bad_config_names_the_field(override, field):
    with pytest.raises(GroklabError, match=field.replace(".", r"\.")):
        load(None, None, override.split(","))
