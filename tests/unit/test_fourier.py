import numpy as np
import torch

from groklab.labs.grokking import fourier
from groklab.nn.mlp import PairMLP


def test_planted_frequency_and_phase_recovered():
    p, rng = 67, np.random.default_rng(0)
    i = np.arange(p)
    freqs, phases = [5, 5, 17, 23, 23, 23], [0.3, -1.0, 2.0, 0.0, 1.5, -2.5]
    w = np.stack([np.cos(2 * np.pi * k * i / p + ph) for k, ph in zip(freqs, phases)], 1)
    w += 0.05 * rng.standard_normal(w.shape)
    nf = fourier.neuron_frequencies(w, threshold=0.5)
    assert nf["freq"].tolist() == freqs
    # cos(x + φ) = cos x cos φ − sin x sin φ → atan2(sin coef, cos coef) = −φ
    np.testing.assert_allclose(-nf["phase"], phases, atol=0.05)
    res = fourier.analyze(w)
    assert res["key_frequencies"] == [23, 5, 17]
    assert res["gini"] > 0.7  # 3 of 33 frequencies carry the weight (noise alone: < 0.4)


def test_noise_has_no_key_frequencies_and_low_gini():
    w = np.random.default_rng(1).standard_normal((67, 24))
    res = fourier.analyze(w, threshold=0.5)
    assert res["key_frequencies"] == []
    assert res["gini"] < 0.4


def test_gini_extremes():
    assert fourier.gini(np.ones(10)) == 0.0
    assert abs(fourier.gini(np.eye(1, 10).ravel()) - 0.9) < 1e-12


def test_collapsed_weights_for_all_embedding_kinds():
    for e, tied in [(20, True), (20, False), (0, True), (0, False)]:
        m = PairMLP(11, 11, hidden=4, embed_size=e, tied=tied)
        params = m.init([0, 1], torch.ones(2))
        a, u = m.input_weights(params), m.output_weights(params)
        assert a.shape == (2, 11, 4) and u.shape == (2, 4, 11)
        x = torch.tensor([[3, 7]])
        if e:
            manual = torch.relu((params["embed"][:, 3] + params["embed"][:, 7]).unsqueeze(1) @ params["w_hidden"])[:, 0]
        else:
            manual = torch.relu(params["embed"][:, 3] + params["embed"][:, 7])
        torch.testing.assert_close(m.hidden(params, x)[:, 0], manual, rtol=1e-5, atol=1e-6)
