"""The curves lab's stage of `groklab tour`: double descent of random-features regression (`rf-demo`, seconds:
the test error peaks at p = n and falls again, the classical U-curve beside it); the full tour trains the
`dd-demo` MNIST-1D width sweep instead (a model-wise peak on the shared engine)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from groklab.tour import Progress, Stage

SETS = {
    "tiny": ["features.trials=3", "features.points=9", "features.gauss_trials=20", "ucurve.trials=5",
             "features.n_test=200"],
    "quick": [],
}
COST_S = {"tiny": 2, "quick": 10, "full": 180}


def stages(size: str) -> list[Stage]:
    if size == "full":
        return [Stage("curves", "double descent (MNIST-1D)", "test error against MLP width, 15% label noise",
                      partial(run_stage, "dd-demo", []), COST_S[size])]
    return [Stage("curves", "double descent", "test error of random-features regression across p = n",
                  partial(run_stage, "rf-demo", SETS[size]), COST_S[size])]


def run_stage(preset: str, sets: list[str], root: Path, on_progress: Progress) -> dict:
    from groklab.labs.curves.config import load
    from groklab.labs.curves.run import prepare_network, run_double_descent

    cfg = load(preset, None, [*sets, "train.threads=1"])
    net = cfg.experiment.kind == "network"
    s = run_double_descent(cfg, root, on_progress=lambda done, info: on_progress(int(done), 3, info),
                           prepared=prepare_network(cfg, root) if net else None)
    pk, thr = s["peak"], s["interpolation_threshold"]
    head = {"interpolation_threshold": thr, "peak": pk, "x_name": s["x_name"]}
    text = (f"peak test error {pk['test_error']:.3g} at {s['x_name'].split()[0]} = {pk['x']} (threshold {thr}); "
            f"last {s['points'][-1]['test_error']:.3g}")
    return {"lab": "curves", "run_dir": s["run_dir"], "headline": head, "text": text}
