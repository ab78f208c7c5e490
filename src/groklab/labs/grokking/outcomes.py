"""PAIR's outcome classes and the memorize / generalize steps, from one member's logged curves."""

from __future__ import annotations

import numpy as np

from groklab.engine.trainer import log_steps_for

OUTCOMES = ("fail", "memorize", "direct", "grok")


def first_step(steps: np.ndarray, values: np.ndarray, threshold: float) -> int | None:
    """First logged step where values >= threshold (NaN never counts)."""
    hit = np.nonzero(np.nan_to_num(values, nan=-np.inf) >= threshold)[0]
    return int(steps[hit[0]]) if len(hit) else None


def classify(train_loss: np.ndarray, test_loss: np.ndarray, fail_loss: float = 1e-5,
             memorize_loss: float = 1e-5, direct_ratio: float = 5e4, loss_floor: float = 0.0) -> str:
    """PAIR's rules in order: min train loss > fail_loss -> fail; min test loss > memorize_loss ->
    memorize; max(test/train) < direct_ratio -> direct; else grok. NaNs (unlogged steps) are ignored.
    In rule 3 both losses count as at least `loss_floor`: PAIR's float32 cross-entropy never logged a
    mean below 2^-23 ≈ 1.19e-7, so its ratio is bounded by test loss / 1.19e-7; a loss free to fall to
    1e-12 would turn the same curves from "direct" into "grok"."""
    tr, te = np.asarray(train_loss, float), np.asarray(test_loss, float)
    ok = ~(np.isnan(tr) | np.isnan(te))
    if not ok.any():
        return "fail"
    tr, te = tr[ok], te[ok]
    if tr.min() > fail_loss:
        return "fail"
    if te.min() > memorize_loss:
        return "memorize"
    floor = max(float(loss_floor), np.finfo(float).tiny)
    with np.errstate(over="ignore"):
        ratio = np.maximum(te, floor) / np.maximum(tr, floor)
    return "direct" if ratio.max() < direct_ratio else "grok"


def settled_mask(hist: dict[str, np.ndarray], a, steps: np.ndarray | None = None) -> np.ndarray:
    """Members whose outcome is settled. (M,) bool. `a` is an AnalysisConfig; hist {metric: (M, L)} holds the
    logged values so far, steps (L,) their steps (needed for the stationary rule).
    1. Generalized: both PAIR loss thresholds crossed and test acc >= generalized_acc (its class can no longer
       be fail or memorize).
    2. Stationary (a.settle_window > 0): over the last settle_window steps (the logged points from the last one
       at or before the window's start), ln max(loss, loss_floor) of train and test each moved within
       settle_loss_band and ln(weight L2 norm) within settle_norm_band. A member that has stopped moving keeps
       its class, so a fail or memorize member stops costing compute. A prediction, not a proof: a slow drift
       inside the bands can still end in grokking (docs/grokking.md measures the rule against full runs). It needs
       loss_floor > 0 for members that fit: without it a train loss falling towards 0 keeps moving in log space,
       and only fail members settle."""
    tr_min = np.nanmin(hist["train_loss"], axis=1)
    te_min = np.nanmin(hist["test_loss"], axis=1)
    acc = np.nan_to_num(hist["test_acc"][:, -1], nan=0.0)
    done = (tr_min <= a.fail_loss) & (te_min <= a.memorize_loss) & (acc >= a.generalized_acc)
    if a.settle_window and steps is not None and len(steps) and steps[-1] - steps[0] >= a.settle_window:
        k = int(np.searchsorted(steps, steps[-1] - a.settle_window, side="right")) - 1  # window start
        floor = max(float(a.loss_floor), np.finfo(float).tiny)

        def band(name, lo=0.0):  # (M,) max - min of ln max(v, lo) over the window; NaN counts as moving
            with np.errstate(invalid="ignore"):
                r = np.ptp(np.log(np.maximum(hist[name][:, k:], lo)), axis=1)
            return np.nan_to_num(r, nan=np.inf)
        still = ((band("train_loss", floor) < a.settle_loss_band) & (band("test_loss", floor) < a.settle_loss_band)
                 & (band("l2_norm") < a.settle_norm_band))
        done |= still
    return done


def settled_fn(cfg):
    """The trainer's `settled` callback for a grokking config: settled_mask with the logged steps so far."""
    steps = np.array(log_steps_for(cfg.train.steps, cfg.train.log_every))
    return lambda h: settled_mask(h, cfg.analysis, steps[:h["train_loss"].shape[1]])


def member_summary(steps: np.ndarray, hist: dict[str, np.ndarray], i: int, a) -> dict:
    """Outcome and milestones of member i. `a` is an AnalysisConfig."""
    last = np.nonzero(~np.isnan(hist["train_loss"][i]))[0][-1]
    return {
        "train_acc": float(hist["train_acc"][i, last]), "test_acc": float(hist["test_acc"][i, last]),
        "train_loss": float(hist["train_loss"][i, last]), "test_loss": float(hist["test_loss"][i, last]),
        "step_memorized": first_step(steps, hist["train_acc"][i], a.memorized_acc),
        "step_generalized": first_step(steps, hist["test_acc"][i], a.generalized_acc),
        "outcome": classify(hist["train_loss"][i], hist["test_loss"][i], a.fail_loss, a.memorize_loss,
                            a.direct_ratio, a.loss_floor),
        "last_step": int(steps[last]),
        "peak_test_acc": float(np.nanmax(hist["test_acc"][i])),
        "step_peak_test_acc": int(steps[np.nanargmax(hist["test_acc"][i])]),  # reverse grokking: peak > final
    }
