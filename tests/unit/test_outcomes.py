import numpy as np

from groklab.labs.grokking.config import AnalysisConfig
from groklab.labs.grokking.outcomes import classify, first_step, member_summary, settled_mask

STEPS = np.array([0, 100, 200, 300, 400])


def test_pair_rules_in_order():
    assert classify([1, 1e-3, 1e-4], [1, 1, 1]) == "fail"  # never below 1e-5 on train
    assert classify([1, 1e-6, 1e-7], [1, 2, 1e-3]) == "memorize"
    assert classify([1, 1e-6, 1e-7], [1.1, 1e-5 * 0.5, 1e-6]) == "direct"  # ratio stays < 5e4
    assert classify([1, 1e-7, 1e-7], [1, 1.0, 1e-6]) == "grok"  # ratio 1e7 on the way
    assert classify([1, np.nan, 1e-6], [1, np.nan, 1e-6]) == "direct"  # NaN steps ignored


def test_thresholds_configurable():
    assert classify([1, 1e-3], [1, 1e-3], fail_loss=1e-2, memorize_loss=1e-2, direct_ratio=10) == "direct"
    assert classify([1, 1e-3], [1, 1e-3], fail_loss=1e-4) == "fail"


def test_first_step_and_summary():
    acc = np.array([0.0, 0.5, 0.99, 1.0, 1.0])
    assert first_step(STEPS, acc, 0.99) == 200
    assert first_step(STEPS, acc, 1.01) is None
    hist = {"train_acc": np.array([[0, 0.9, 1, 1, 1]]), "test_acc": np.array([[0, 0, 0, 0.5, 0.96]]),
            "train_loss": np.array([[1, 1e-3, 1e-6, 1e-7, 1e-7]]),
            "test_loss": np.array([[1, 2, 3, 1e-2, 1e-6]])}
    s = member_summary(STEPS, hist, 0, AnalysisConfig())
    assert (s["step_memorized"], s["step_generalized"], s["outcome"]) == (200, 400, "grok")
    assert settled_mask(hist, AnalysisConfig()).tolist() == [True]
    hist["test_acc"][0, -1] = 0.5
    assert settled_mask(hist, AnalysisConfig()).tolist() == [False]


def test_loss_floor_bounds_the_ratio_like_pairs_float32_loss():
    """Rule 3 with PAIR's float32 floor: a train loss that falls to 1e-12 no longer makes a ratio of 1e9."""
    tr, te = [1, 1e-4, 1e-12, 1e-12], [1, 1e-3, 1e-4, 1e-8]  # test loss 1e-4 while train is at 1e-12
    assert classify(tr, te) == "grok"  # 1e-4 / 1e-12 = 1e8 >= 5e4
    floor = 2.0**-23  # 1.19e-7: max ratio 1e-4 / 1.19e-7 = 839 < 5e4
    assert classify(tr, te, loss_floor=floor) == "direct"
    assert classify(tr, [1, 1e-3, 1e-2, 1e-8], loss_floor=floor) == "grok"  # 1e-2 / 1.19e-7 = 8.4e4
    assert classify([1, 1e-3, 2e-5], [1, 1, 1], loss_floor=floor) == "fail"  # rules 1-2 unchanged
    assert classify([1, 1e-7, 1e-12], [1, 1, 1e-6], loss_floor=floor) == "grok"
    hist = {"train_acc": np.ones((1, 5)), "test_acc": np.ones((1, 5)),
            "train_loss": np.array([[1, 1e-3, 1e-12, 1e-12, 1e-12]]),
            "test_loss": np.array([[1, 1e-3, 1e-4, 1e-6, 1e-8]])}
    assert member_summary(STEPS, hist, 0, AnalysisConfig())["outcome"] == "grok"
    assert member_summary(STEPS, hist, 0, AnalysisConfig(loss_floor=floor))["outcome"] == "direct"


def _hist(train, test, norm):
    n = len(train)
    return {"train_loss": np.array([train], float), "test_loss": np.array([test], float),
            "test_acc": np.full((1, n), 0.5), "train_acc": np.ones((1, n)), "l2_norm": np.array([norm], float)}


def test_stationary_rule_stops_a_member_that_no_longer_moves():
    """Rule 2 of settled_mask: over the last settle_window steps every watched curve stays in its band."""
    steps = np.arange(0, 1100, 100)  # 0..1000
    a = AnalysisConfig(settle_window=500, settle_loss_band=0.1, settle_norm_band=0.01, loss_floor=1e-7)
    flat = _hist([1.0] * 5 + [1e-9] * 6, [2.0] * 5 + [3.0] * 6, [10.0] * 5 + [5.0] * 6)
    assert settled_mask(flat, a, steps).tolist() == [True]  # train 1e-9 and 1e-12 both read as the floor
    assert settled_mask(flat, AnalysisConfig(), steps).tolist() == [False]  # off by default
    assert settled_mask(flat, a, None).tolist() == [False]  # no steps, no rule
    drift = _hist([1e-9] * 11, [3.0] * 11, [5.0] * 10 + [4.9])  # the norm moved 2% in the last 100 steps
    assert settled_mask(drift, a, steps).tolist() == [False]
    test_moves = _hist([1e-9] * 11, [3.0] * 10 + [2.5], [5.0] * 11)  # ln(3/2.5) = 0.18 > 0.1
    assert settled_mask(test_moves, a, steps).tolist() == [False]
    early = {k: v[:, :5] for k, v in flat.items()}  # 400 steps logged < the 500-step window
    assert settled_mask(early, a, steps[:5]).tolist() == [False]
    # the window reaches back to the last logged point at or before its start (step 500 for 1000 - 500)
    step_at_start = _hist([1e-9] * 11, [3.0] * 5 + [9.0] + [3.0] * 5, [5.0] * 11)
    assert settled_mask(step_at_start, a, steps).tolist() == [False]
    gone = _hist([1e-9] * 11, [3.0] * 11, [5.0] * 10 + [np.nan])  # not logged: counts as moving
    assert settled_mask(gone, a, steps).tolist() == [False]
