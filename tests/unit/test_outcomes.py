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
