"""Run orchestration of the curves lab: one store lifecycle per command (store.open_run), tables written to
the run folder, figures drawn from them, summary.json last.

runs/<id>/ of `curves double-descent`:
  features   features.parquet (kind, method, p, train/test MSE, test SE)  gaussian.parquet (p, Monte-Carlo risk
             and SE, closed form)  ucurve.parquet (degree, params, train/test MSE)
  network    points.parquet (width, seed, params, train/test error and loss)  metrics.parquet (width, seed,
             step, epoch, metric, value)
  summary.json  figures/double_descent.png  COMPLETE
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from groklab import GroklabError, store
from groklab.engine import device as devmod
from groklab.labs.curves import features, figures, networks
from groklab.labs.curves.config import CurvesConfig

TRAIN_ZERO = 1e-9  # relative train MSE counted as interpolation (features)


def threshold_and_peak(points: list[dict], zero: float) -> tuple[float | None, dict]:
    """Interpolation threshold: the first x whose train error is <= zero (None if no x fits). Peak: the highest
    test error after the classical sweet spot, i.e. after the lowest test error at or below the threshold (of
    all points when none fits); {"x": None, ...} when nothing after the sweet spot rises above it (the curve only
    falls: e.g. clean labels, where the lowest point at the threshold is followed by lower ones)."""
    thr = next((p["x"] for p in points if p["train_error"] <= zero), None)
    under = [i for i, p in enumerate(points) if thr is None or p["x"] <= thr]
    best = min(under, key=lambda i: points[i]["test_error"])
    after = [p for p in points[best + 1:] if np.isfinite(p["test_error"])]
    peak = max(after, key=lambda p: p["test_error"]) if after else None
    if peak is None or peak["test_error"] <= points[best]["test_error"]:
        return thr, {"x": None, "test_error": None}
    return thr, {"x": peak["x"], "test_error": peak["test_error"]}


def _device(cfg):
    return devmod.setup(cfg.train.device, cfg.train.threads)


def prepare_network(cfg: CurvesConfig, root: Path):
    """Device and data before any run folder: bad input is one line and no folder."""
    dev = _device(cfg)
    n, full = cfg.train_size(), round(cfg.data.samples * cfg.data.train_split)
    if cfg.data.n_train > full:
        raise GroklabError(f"data.n_train: {cfg.data.n_train} is beyond the {full} training examples of data.samples × "
                           f"data.train_split; allowed: 0 (all) or 1..{full}")
    if cfg.train.batch_size > n:
        raise GroklabError(f"train.batch_size: at most the {n} training examples, got {cfg.train.batch_size}")
    return dev, networks.load_data(cfg, root / ".cache" / "data")


def run_double_descent(cfg: CurvesConfig, root: Path | str | None = None, on_progress=None, prepared=None) -> dict:
    t0 = time.perf_counter()
    root = Path(root or store.default_root())
    if cfg.experiment.kind == "features":
        dev = _device(cfg)
        with store.open_run(root, cfg.name, cfg.to_toml(), devmod.environment(dev)) as run:
            run.mark_started()
            s = _features(cfg, run, on_progress)
            return _finish(run, s, t0)
    dev, data = prepared or prepare_network(cfg, root)
    with store.open_run(root, cfg.name, cfg.to_toml(), devmod.environment(dev)) as run:
        run.mark_started()
        s = _network(cfg, run, data, dev, on_progress)
        return _finish(run, s, t0)


def _finish(run: store.Run, s: dict, t0: float) -> dict:
    s["figures"] = [str(f) for f in figures.redraw_summary(run.path, s)]
    s["wall_s"] = round(time.perf_counter() - t0, 3)
    run.write_json("summary.json", s)
    run.complete()
    return s


def _base(cfg: CurvesConfig, run: store.Run, command: str) -> dict:
    return {"lab": cfg.lab, "command": command, "kind": cfg.experiment.kind, "preset": cfg.name,
            "run_dir": str(run.path), "run_id": run.id, "wall_s": 0.0}


def _features(cfg: CurvesConfig, run: store.Run, on_progress) -> dict:
    f = cfg.features
    tick = on_progress or (lambda done, info: None)
    tick(0, "random features")
    rows = features.random_features(cfg)
    run.write_table("features.parquet", {k: [r[k] for r in rows] for k in rows[0]})
    tick(1, "Gaussian model")
    gauss = features.gaussian_model(cfg)
    run.write_table("gaussian.parquet", {k: [r[k] for r in gauss] for k in gauss[0]})
    tick(2, "U-curve")
    uc = features.ucurve(cfg)
    run.write_table("ucurve.parquet", {k: [r[k] for r in uc] for k in uc[0]})
    tick(3, "done")
    main = [r for r in rows if r["kind"] == f.kinds[0] and r["method"] == "minnorm"]
    points = [{"x": r["p"], "params": r["p"], "train_error": r["train_mse"], "test_error": r["test_mse"]}
              for r in main]
    scale = float(np.mean([r["train_mse"] for r in main[:1]]))
    thr, peak = threshold_and_peak(points, TRAIN_ZERO * max(scale, 1e-12))
    ridge = [r for r in rows if r["kind"] == f.kinds[0] and r["method"] == "ridge"]
    z = [abs(g["mc_risk"] - g["theory"]) / g["mc_se"] for g in gauss if abs(g["p"] - f.gauss_n) > 4]
    best_u = min(uc, key=lambda r: r["test_mse"])
    series = {}
    for kind in f.kinds:
        for m in ("minnorm", "ridge"):
            sel = [r for r in rows if r["kind"] == kind and r["method"] == m]
            top = max(sel, key=lambda r: r["test_mse"])
            series[f"{kind}_{m}"] = {"peak_p": top["p"], "peak_test_mse": top["test_mse"],
                                     "last_test_mse": sel[-1]["test_mse"],
                                     "best_test_mse": min(r["test_mse"] for r in sel)}
    return {**_base(cfg, run, "double-descent"), "x_name": "p (random features)", "points": points,
            "interpolation_threshold": thr, "peak": peak, "n": f.n, "series": series,
            "ridge_peak": {"x": max(ridge, key=lambda r: r["test_mse"])["p"],
                           "test_error": max(r["test_mse"] for r in ridge)},
            "gaussian": {"n": f.gauss_n, "d": f.gauss_d, "sigma": f.gauss_noise, "trials": f.gauss_trials,
                         "max_abs_z": float(max(z)), "points": len(z)},
            "ucurve": {"best_degree": best_u["degree"], "best_test_mse": best_u["test_mse"],
                       "last_test_mse": uc[-1]["test_mse"], "n": cfg.ucurve.n}}


def network_points(cfg: CurvesConfig, res: dict) -> list[dict]:
    """One row per (width, seed): final train/test error and loss, parameters."""
    rows = []
    for i, (w, s) in enumerate(res["members"]):
        m = {k: res["metrics"][k][i, -1] for k in ("train_acc", "test_acc", "train_loss", "test_loss")}
        rows.append({"width": w, "seed": s, "params": networks.n_params(cfg.model.kind, w),
                     "train_error": 1 - float(m["train_acc"]), "test_error": 1 - float(m["test_acc"]),
                     "train_loss": float(m["train_loss"]), "test_loss": float(m["test_loss"])})
    return rows


def long_metrics(res: dict) -> dict[str, np.ndarray]:
    """The evaluations of one training as long columns: width, seed, step, epoch, metric, value."""
    cols: dict[str, list] = {k: [] for k in ("width", "seed", "step", "epoch", "metric", "value")}
    for name in ("train_loss", "train_acc", "test_loss", "test_acc"):
        vals = res["metrics"][name]  # (M, L)
        for i, (w, s) in enumerate(res["members"]):
            ok = ~np.isnan(vals[i])
            n = int(ok.sum())
            cols["width"].append(np.full(n, w)), cols["seed"].append(np.full(n, s))
            cols["step"].append(res["steps"][ok]), cols["epoch"].append(res["epochs"][ok])
            cols["metric"].append(np.full(n, name, dtype=object)), cols["value"].append(vals[i][ok])
    return {k: np.concatenate(v) for k, v in cols.items()}


def _network(cfg: CurvesConfig, run: store.Run, data, dev, on_progress) -> dict:
    t = cfg.train
    groups = networks.plan_groups(cfg.model.kind, cfg.model.widths, t.seeds, cfg.model.groups)
    spe = networks.steps_per_epoch(len(data.y_train), t.batch_size)
    rows, mets, wall, msteps = [], [], 0.0, 0
    for gi, grp in enumerate(groups):
        prog = None if on_progress is None else (
            lambda step, active, gi=gi: on_progress(gi + step / (t.epochs * spe), f"group {gi + 1}/{len(groups)}"))
        res = networks.train_widths(cfg, data, grp, dev, t.eval_every * spe, prog)
        rows += network_points(cfg, res)
        mets.append(long_metrics(res))
        wall, msteps = wall + res["wall_s"], msteps + res["model_steps"]
        run.write_table("points.parquet", {k: [r[k] for r in rows] for k in rows[0]})
        run.write_table("metrics.parquet", {k: np.concatenate([m[k] for m in mets]) for k in mets[0]})
    points = []
    for w in sorted(set(cfg.model.widths)):
        sel = [r for r in rows if r["width"] == w]
        te, tr = [r["test_error"] for r in sel], [r["train_error"] for r in sel]
        points.append({"x": w, "params": sel[0]["params"], "train_error": float(np.mean(tr)),
                       "test_error": float(np.mean(te)), "test_error_std": float(np.std(te))})
    thr, peak = threshold_and_peak(points, 0.0)
    return {**_base(cfg, run, "double-descent"), "x_name": "width" if cfg.model.kind == "mlp" else "channels",
            "points": points, "interpolation_threshold": thr, "peak": peak, "model": cfg.model.kind,
            "groups": groups, "train_wall_s": round(wall, 3), "model_steps": msteps, "n_train": len(data.y_train),
            "label_noise": cfg.data.label_noise, "epochs": t.epochs, "seeds": t.seeds,
            "device": str(dev), "threads": devmod.environment(dev)["torch_threads"]}
