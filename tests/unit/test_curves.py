"""Curves lab math: the Belkin-Hsu-Xu closed form against Monte Carlo, random features peak at p = n and ridge
removes the peak, exact width padding (a padded member trains like the lone width-H net), group planning,
scaling fits recover known laws, second-descent and peak detection, one-line config errors."""

import math

import numpy as np
import pytest
import torch

from groklab import GroklabError
from groklab.config import validate
from groklab.labs.curves import features, networks, scaling
from groklab.labs.curves.config import CurvesConfig
from groklab.labs.curves.run import threshold_and_peak
from groklab.labs.curves.run_more import second_descent
from tests.numerics import assert_close_scaled


def small() -> CurvesConfig:
    c = CurvesConfig()
    c.features.n, c.features.trials, c.features.points, c.features.n_test = 30, 6, 9, 300
    c.features.gauss_n, c.features.gauss_d, c.features.gauss_trials = 20, 60, 200
    c.ucurve.n, c.ucurve.max_degree, c.ucurve.trials = 12, 11, 30
    return c


def test_gaussian_model_agrees_with_the_closed_form_within_monte_carlo_error():
    c = small()
    rows = features.gaussian_model(c)
    n = c.features.gauss_n
    far = [r for r in rows if abs(r["p"] - n) > 4]  # finite variance: |p - n| >= 4
    assert len(far) >= 15
    z = [abs(r["mc_risk"] - r["theory"]) / r["mc_se"] for r in far]
    assert max(z) < 4.5, z
    assert all(math.isinf(features.bhx_risk(p, n, 80, 0.5)) for p in (n - 1, n, n + 1))
    at_n = next(r for r in rows if r["p"] == n)
    assert at_n["mc_risk"] > 10 * min(r["mc_risk"] for r in rows)


def test_random_features_peak_at_p_equals_n_and_ridge_removes_it():
    c = small()
    rows = features.random_features(c)
    n = c.features.n
    for kind in ("relu", "fourier"):
        mn = [r for r in rows if r["kind"] == kind and r["method"] == "minnorm"]
        rg = [r for r in rows if r["kind"] == kind and r["method"] == "ridge"]
        top = max(mn, key=lambda r: r["test_mse"])
        assert top["p"] == n
        assert top["test_mse"] > 5 * mn[-1]["test_mse"]  # second descent: far below the peak at p = 10 n
        assert all(r["train_mse"] < 1e-12 for r in mn if r["p"] >= n)  # interpolation from p = n on
        assert all(r["train_mse"] > 1e-3 for r in mn if r["p"] < n)
        ridge_at_n = next(r for r in rg if r["p"] == n)["test_mse"]
        assert ridge_at_n < 2 * min(r["test_mse"] for r in rg)  # no peak with ridge
    pts = [{"x": r["p"], "train_error": r["train_mse"], "test_error": r["test_mse"]}
           for r in rows if r["kind"] == "relu" and r["method"] == "minnorm"]
    thr, peak = threshold_and_peak(pts, 1e-12)
    assert thr == n and peak["x"] == n


def test_ucurve_is_u_shaped():
    uc = features.ucurve(small())
    test = [r["test_mse"] for r in uc]
    best = int(np.argmin(test))
    assert 0 < best < len(uc) - 1 and test[-1] > 3 * test[best] and test[0] > test[best]
    assert uc[-1]["train_mse"] < uc[0]["train_mse"]


@pytest.mark.parametrize("kind,widths", [("mlp", [3, 7]), ("cnn", [2, 5])])
def test_padded_member_is_the_lone_width_h_net_and_trains_like_it(kind, widths):
    from groklab.engine.batches import Batch
    from groklab.engine.optim import BatchedOptimizer
    from groklab.engine.trainer import train_step

    torch.manual_seed(0)
    x, y = torch.randn(16, 40), torch.randint(0, 10, (16,))
    ens = networks.WidthEnsemble(kind, widths)
    params = {k: v.requires_grad_(True) for k, v in ens.init([5, 6], torch.ones(2)).items()}
    lone = []
    for w, seed in zip(widths, [5, 6]):
        torch.manual_seed(seed)
        lone.append(networks.build(kind, w))
    logits = ens.forward({k: v.detach() for k, v in params.items()}, x)  # (2, 16, 10)
    for i, m in enumerate(lone):
        assert_close_scaled(logits[i], m(x).detach(), 1e-5, f"{kind} member {i} forward")
    opt = BatchedOptimizer(params, "sgd", torch.full((2,), 0.05), torch.zeros(2), momentum=0.9)
    opts = [torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9) for m in lone]
    kw = {"reduction": "ce", "softmax": "softmax", "dtype": "float32"}
    for _ in range(3):
        train_step(ens, params, opt, Batch(x, y), None, kw)
        for m, o in zip(lone, opts):
            o.zero_grad()
            torch.nn.functional.cross_entropy(m(x), y).backward()
            o.step()
    small_w = widths[0]
    for k, v in lone[0].named_parameters():
        got = params[k][0].detach()
        if kind == "cnn" and k == "linear.weight":
            got = got.view(10, -1, 5)[:, :small_w].reshape(10, -1)
            pad = params[k][0].detach().view(10, -1, 5)[:, small_w:]
        else:
            sl = tuple(slice(0, n) for n in v.shape)
            pad_mask = torch.ones_like(params[k][0], dtype=torch.bool)
            pad_mask[sl] = False
            pad = params[k][0].detach()[pad_mask]
            got = got[sl]
        assert_close_scaled(got, v.detach(), 1e-4, f"{kind} {k} after 3 steps")
        assert torch.count_nonzero(pad) == 0, f"{kind} {k}: padded weights moved"


def test_plan_groups_are_contiguous_and_cover_the_widths():
    ws = [2, 3, 4, 5, 7, 9, 12, 16, 21, 28, 37, 49, 65, 86, 113, 150, 198, 261, 300]
    for groups in (0, 1, 3, len(ws), 50):
        g = networks.plan_groups("mlp", ws, 1, groups)
        assert [w for grp in g for w in grp] == ws
        if groups:
            assert len(g) == min(groups, len(ws))
    assert networks.n_params("mlp", 10) == 10 * 10 + 52 * 10 + 10


def test_scaling_fits_recover_known_laws_and_the_jacobian_is_exact():
    rng = np.random.default_rng(0)
    n = np.repeat([300.0, 900, 3000, 9000, 30000], 4)
    d = np.tile([250.0, 500, 1000, 2000], 5)
    true = np.array([0.0, 3.0, 0.5, 4.0, 0.4])  # E 1, A e^3, alpha 0.5, B e^4, beta 0.4
    loss = np.exp(scaling.predict_log("hoffmann_nd", true, n, d) + rng.normal(0, 1e-4, len(n)))
    x, _ = scaling.fit("hoffmann_nd", n, d, loss, 1e-3, k=3)
    p = scaling.natural("hoffmann_nd", x)
    assert abs(p["alpha"] - 0.5) < 0.05 and abs(p["beta"] - 0.4) < 0.05 and abs(p["E"] - 1) < 0.1
    top = d == d.max()
    noisy = np.exp(1.0 - 0.3 * np.log(n[top]) + rng.normal(0, 0.01, top.sum()))
    pw = scaling.fit_form("power", n[top], d[top], noisy, 1e-3, 20, True)
    assert abs(pw["params"]["alpha"] - 0.3) < 0.02 and abs(pw["params"]["A"] - math.e) < 0.2
    lo, hi = pw["ci95"]["alpha"]
    assert lo < hi and lo - 0.01 <= pw["params"]["alpha"] <= hi + 0.01
    assert pw["heldout_rel_error"] < 0.05 and len(pw["residuals"]) == top.sum()
    x0 = np.array([0.2, 2.0, 0.7, 3.0, 0.3])
    h = 1e-6
    num = np.stack([(scaling.predict_log("hoffmann_nd", x0 + h * e, n, d)
                     - scaling.predict_log("hoffmann_nd", x0 - h * e, n, d)) / (2 * h) for e in np.eye(5)], 1)
    assert np.abs(scaling.jacobian("hoffmann_nd", x0, n, d) - num).max() < 1e-6


def test_second_descent_and_peak_detection():
    ep = np.arange(1, 101, dtype=float)
    curve = np.where(ep < 20, 0.5 - ep / 100, np.where(ep < 40, 0.3 + (ep - 20) / 200, 0.4 - (ep - 40) / 300))
    s = second_descent(ep, curve)
    assert s["second_descent"] and s["first_min"]["epoch"] == 20 and s["bump"]["epoch"] == 40
    assert not second_descent(ep, 0.5 - ep / 1000)["second_descent"]
    pts = [{"x": x, "train_error": tr, "test_error": te} for x, tr, te in
           [(2, 0.6, 0.7), (8, 0.3, 0.4), (16, 0.1, 0.5), (32, 0.0, 0.45), (64, 0.0, 0.3)]]
    assert threshold_and_peak(pts, 0.0) == (32, {"x": 16, "test_error": 0.5})
    falling = [{"x": x, "train_error": tr, "test_error": te} for x, tr, te in  # clean labels: no bump after the
               [(2, 0.6, 0.7), (8, 0.3, 0.5), (16, 0.0, 0.42), (32, 0.0, 0.41), (64, 0.0, 0.38)]]  # sweet spot
    assert threshold_and_peak(falling, 0.0) == (16, {"x": None, "test_error": None})


@pytest.mark.parametrize("field,value,words", [
    ("model.widths", [], ["model.widths", "empty"]),
    ("model.widths", [4, 0], ["model.widths", ">= 1"]),
    ("data.label_noise", 1.0, ["data.label_noise", "< 1"]),
    ("data.label_noise", -0.1, ["data.label_noise", ">= 0"]),
    ("ucurve.max_degree", 30, ["ucurve.max_degree", "23"]),
])
def test_bad_config_names_the_field(field, value, words):
    from groklab.config import set_field

    c = CurvesConfig()
    set_field(c, field, value)
    with pytest.raises(GroklabError) as e:
        validate(c)
    assert all(w in str(e.value) for w in words), str(e.value)


def test_fewer_scaling_points_than_parameters_is_an_error():
    c = CurvesConfig()
    c.experiment.kind = "scaling"
    c.scaling.widths, c.scaling.n_trains = [4, 8, 16], [100, 200]
    with pytest.raises(GroklabError, match="hoffmann_n fit has 3 parameters"):
        validate(c)
    c.scaling.forms = ["power"]
    validate(c)
