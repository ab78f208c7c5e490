"""`curves epochs`, `curves baselines` and `curves scaling`: one store lifecycle each (see run.py).

runs/<id>/ epochs     metrics.parquet (width, seed, step, epoch, metric, value)
           baselines  models.parquet (model, seed, params, test/train accuracy and loss)  metrics.parquet
           scaling    points.parquet (width, n_train, seed, params, test/train loss and error)
                      fits.json (every form: parameters, CIs, held-out check, residuals)  metrics.parquet
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from groklab import GroklabError, store
from groklab.config import OptimConfig
from groklab.data import TaskData
from groklab.engine import device as devmod
from groklab.engine.ensemble import ModuleEnsemble
from groklab.engine.trainer import Member, train
from groklab.labs.curves import baselines as bl
from groklab.labs.curves import networks, scaling
from groklab.labs.curves.run import _base, _finish, long_metrics, prepare_network


def second_descent(epochs: np.ndarray, test: np.ndarray, min_rise: float = 0.01) -> dict:
    """The largest rise of the test error above an earlier minimum (the bump) and whether it falls back by at
    least half of that rise afterwards (a second descent), with the epochs where each happens."""
    run_min = np.minimum.accumulate(test)
    i_peak = int(np.argmax(test - run_min))
    i_min = int(np.argmin(test[:i_peak + 1]))
    rise = float(test[i_peak] - test[i_min])
    later = np.flatnonzero(test[i_peak:] <= test[i_peak] - rise / 2) + i_peak
    found = rise >= min_rise and len(later) > 0
    return {"first_min": {"epoch": float(epochs[i_min]), "test_error": float(test[i_min])},
            "bump": {"epoch": float(epochs[i_peak]), "test_error": float(test[i_peak]), "rise": rise},
            "second_descent": bool(found), "descent_epoch": float(epochs[later[0]]) if found else None}


def run_epochs(cfg, root: Path | str | None = None, on_progress=None, prepared=None) -> dict:
    """Train epochs.width for train.epochs, evaluating every epoch (and at steps 1, 2, 5, 10, 20, 50 of the
    first epochs): on a log axis the evaluations are dense from the first step to the last."""
    t0 = time.perf_counter()
    root = Path(root or store.default_root())
    dev, data = prepared or prepare_network(cfg, root)
    spe = networks.steps_per_epoch(len(data.y_train), cfg.train.batch_size)
    with store.open_run(root, cfg.name, cfg.to_toml(), devmod.environment(dev)) as run:
        run.mark_started()
        prog = None if on_progress is None else (
            lambda step, active: on_progress(step / (cfg.train.epochs * spe), f"step {step}"))
        res = networks.train_widths(cfg, data, [cfg.epochs.width], dev, spe, prog)
        run.write_table("metrics.parquet", long_metrics(res))
        ep = res["epochs"]
        test = 1 - res["metrics"]["test_acc"].mean(0)  # (L,) mean over seeds
        tr = 1 - res["metrics"]["train_acc"].mean(0)
        s = {**_base(cfg, run, "epochs"), "model": cfg.model.kind, "width": cfg.epochs.width,
             "params": networks.n_params(cfg.model.kind, cfg.epochs.width), "n_train": len(data.y_train),
             "label_noise": cfg.data.label_noise, "seeds": cfg.train.seeds, "epochs": ep.tolist(),
             "test_error": test.tolist(), "train_error": tr.tolist(),
             "test_loss": res["metrics"]["test_loss"].mean(0).tolist(), **second_descent(ep, test),
             "interpolated_epoch": float(ep[np.flatnonzero(tr == 0)[0]]) if (tr == 0).any() else None,
             "train_wall_s": round(res["wall_s"], 3)}
        return _finish(run, s, t0)


def _ensemble_train(make, data: TaskData, seeds: list[int], opt, tcfg, dev, on_progress=None):
    ens = ModuleEnsemble(make)
    return ens, train(ens, data, [Member(s, opt.lr, opt.weight_decay, 1.0) for s in seeds], opt, tcfg, dev,
                      on_progress=on_progress)


def run_baselines(cfg, root: Path | str | None = None, on_progress=None, prepared=None) -> dict:
    """Each model: one ensemble of baselines.seeds members, Adam (β2 0.999, no decay), batch train.batch_size."""
    t0 = time.perf_counter()
    root = Path(root or store.default_root())
    dev, data = prepared or prepare_network(cfg, root)
    b = cfg.baselines
    opt = OptimConfig(name="adamw", lr=b.lr, weight_decay=0.0, beta2=0.999)
    tcfg = dataclasses.replace(cfg.train, steps=b.steps, log_every=b.eval_every, snapshots=0, early_stop=False,
                               eval_examples=0)
    seeds = [cfg.train.seed + i for i in range(b.seeds)]
    with store.open_run(root, cfg.name, cfg.to_toml(), devmod.environment(dev)) as run:
        run.mark_started()
        rows, mets, models = [], [], []
        for mi, name in enumerate(b.models):
            prog = None if on_progress is None else (
                lambda step, active, mi=mi, name=name: on_progress(mi + step / b.steps, name))
            ens, res = _ensemble_train(lambda name=name: bl.build_baseline(name), data, seeds, opt, tcfg, dev, prog)
            m = {k: res.metrics[k][:, -1] for k in ("test_acc", "train_acc", "test_loss", "train_loss")}
            for i, s in enumerate(seeds):
                rows.append({"model": name, "seed": s, "params": ens.n_params,
                             **{k: float(v[i]) for k, v in m.items()}})
            lm = long_metrics({"members": [(0, s) for s in seeds], "steps": res.steps, "epochs": res.steps * 1.0,
                               "metrics": res.metrics})
            lm["model"] = np.full(len(lm["step"]), name, dtype=object)
            mets.append({k: v for k, v in lm.items() if k not in ("width", "epoch")})
            models.append({"model": name, "params": ens.n_params, "mean": float(m["test_acc"].mean()),
                           "std": float(m["test_acc"].std(ddof=1)) if len(seeds) > 1 else 0.0,
                           "train_acc": float(m["train_acc"].mean()), "published": bl.PUBLISHED.get(name),
                           "wall_s": round(res.wall_s, 3)})
            run.write_table("models.parquet", {k: [r[k] for r in rows] for k in rows[0]})
            run.write_table("metrics.parquet", {k: np.concatenate([x[k] for x in mets]) for k in mets[0]})
        s = {**_base(cfg, run, "baselines"), "models": models, "seeds": b.seeds, "steps": b.steps,
             "n_train": len(data.y_train), "n_test": len(data.y_test), "published_source": bl.PUBLISHED_SOURCE}
        return _finish(run, s, t0)


def run_scaling(cfg, root: Path | str | None = None, on_progress=None, prepared=None) -> dict:
    """Every width × training-set size × seed trained (widths batched per size), the lowest test loss of each
    run's evaluations taken as its loss, then every form fitted (scaling.py). scaling.source = addition: the
    addition GPT over widths instead (scaling_addition.py)."""
    if cfg.scaling.source == "addition":
        from groklab.labs.curves import scaling_addition
        return scaling_addition.run(cfg, root, on_progress, prepared)
    t0 = time.perf_counter()
    root = Path(root or store.default_root())
    sc = cfg.scaling
    dev, full = prepared or prepare_network(cfg, root)
    n_max = len(full.y_train)
    sizes = sorted(set(sc.n_trains))
    if sizes[-1] > n_max:
        raise GroklabError(f"scaling.n_trains: {sizes[-1]} is beyond the {n_max} training examples; "
                           f"allowed: 1..{n_max}")
    with store.open_run(root, cfg.name, cfg.to_toml(), devmod.environment(dev)) as run:
        run.mark_started()
        rows, mets = [], []
        for si, n in enumerate(sizes):
            data = TaskData(full.x_train[:n], full.y_train[:n], full.x_test, full.y_test, full.n_classes)
            spe = networks.steps_per_epoch(n, cfg.train.batch_size)
            for grp in networks.plan_groups(cfg.model.kind, sc.widths, cfg.train.seeds, cfg.model.groups):
                prog = None if on_progress is None else (
                    lambda step, active, si=si, n=n, spe=spe: on_progress(si + step / (cfg.train.epochs * spe),
                                                                          f"n = {n}"))
                res = networks.train_widths(cfg, data, grp, dev, cfg.train.eval_every * spe, prog)
                for i, (w, s) in enumerate(res["members"]):
                    tl = res["metrics"]["test_loss"][i]
                    j = int(np.nanargmin(tl))
                    rows.append({"width": w, "n_train": n, "seed": s, "params": networks.n_params(cfg.model.kind, w),
                                 "test_loss": float(tl[j]), "best_epoch": float(res["epochs"][j]),
                                 "test_error": 1 - float(res["metrics"]["test_acc"][i, j]),
                                 "train_loss": float(res["metrics"]["train_loss"][i, j])})
                lm = long_metrics(res)
                lm["n_train"] = np.full(len(lm["step"]), n)
                mets.append(lm)
            run.write_table("points.parquet", {k: [r[k] for r in rows] for k in rows[0]})
            run.write_table("metrics.parquet", {k: np.concatenate([x[k] for x in mets]) for k in mets[0]})
        fits = fit_all(cfg, rows)
        run.write_json("fits.json", fits)
        s = {**_base(cfg, run, "scaling"), "fits": {k: {"params": f["params"], "ci95": f["ci95"],
                                                        "heldout_rel_error": f["heldout_rel_error"]}
                                                    for k, f in fits.items()},
             "model": cfg.model.kind, "widths": sorted(set(sc.widths)), "n_trains": sizes, "seeds": cfg.train.seeds,
             "loss": "lowest test cross-entropy over the evaluations (nats)"}
        return _finish(run, s, t0)


def fit_all(cfg, rows: list[dict]) -> dict:
    sc = cfg.scaling
    n_all = np.array([r["params"] for r in rows], float)
    d_all = np.array([r["n_train"] for r in rows], float)
    l_all = np.array([r["test_loss"] for r in rows], float)
    out = {}
    for form in sc.forms:
        sel = np.ones(len(rows), bool) if form == "hoffmann_nd" else d_all == d_all.max()
        out[form] = scaling.fit_form(form, n_all[sel], d_all[sel], l_all[sel], sc.huber, sc.bootstrap, sc.holdout,
                                     cfg.train.seed)
        out[form]["rows"] = np.flatnonzero(sel).tolist()
    return out
