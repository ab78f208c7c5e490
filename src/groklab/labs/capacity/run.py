"""`groklab capacity emc`: the batched EMC search, stored as one run.

runs/<id>/  config.toml  env.json  metrics.parquet (every round's trainings: round, member, seed, n, step, epoch,
            metric, value)  members.parquet (one row per training: lab, group, member, seed, n, round, fitted,
            status, epochs, steps, final train/test accuracy and loss, grad_norm, params)  summary.json
            figures/search_path.png  figures/train_curves.png  COMPLETE
The tables are rewritten after every round, so an interrupted search keeps the rounds it finished.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from groklab import GroklabError, store
from groklab.engine import device as devmod
from groklab.labs.capacity import figures
from groklab.labs.capacity.config import CapacityConfig
from groklab.labs.capacity.loop import batching_note, is_looped, train_round_looped
from groklab.labs.capacity.search import rounds_needed, search, summarize
from groklab.labs.capacity.train import condition, ensemble, load_base, train_round

RULE = ("fits = 100% train accuracy on all n samples at a check; converged = train loss fell < {plateau:g} "
        "(relative) over {window} epochs AND full-batch gradient norm <= {grad_tol:g}; capped = {max_epochs} "
        "epochs (counted unfitted); checks every {check_every} epochs of the round's largest candidate")
MEMBER_KEYS = ("train_acc", "train_loss", "test_acc", "test_loss")


def prepare(cfg: CapacityConfig, root: Path):
    """Everything that can reject the input, before any run folder: device, data, condition, model."""
    dev = devmod.setup(cfg.train.device, cfg.train.threads)
    base = load_base(cfg, root / ".cache" / "data")
    condition(cfg)
    return dev, base, ensemble(cfg, base)


def expected_rounds(cfg: CapacityConfig) -> int:
    s = cfg.search
    return min(s.max_rounds, rounds_needed(s.n_min, s.n_max, s.k, s.tol))


def run_search(cfg: CapacityConfig, base, ens, dev, seeds: list[int], on_progress=None, on_round=None,
               prior: tuple[list[dict], list[dict[str, np.ndarray]]] = ([], [])):
    """The search itself, without a store: (SearchResult, per-seed dicts, member rows, curve tables, cost).
    on_progress(rounds done as a float, trainings running); on_round(rows, curves) after every round.
    prior: (rows, curves) of rounds finished before a kill (read_prior); they are replayed, not retrained."""
    s = cfg.search
    rows: list[dict] = list(prior[0])
    curves: list[dict[str, np.ndarray]] = list(prior[1])
    walls = {r["round"]: r.get("round_wall_s", 0.0) for r in rows}
    cost = {"wall": float(sum(walls.values())), "model_steps": int(sum(r["steps"] for r in rows))}
    done = [[(r["seed"], r["n"], r["fitted"]) for r in rows if r["round"] == rd] for rd in sorted(walls)]

    def fits(cands: list[tuple[int, int]]) -> list[bool]:
        r = len({row["round"] for row in rows})
        prog = None if on_progress is None else (lambda frac, active: on_progress(r + frac, active))
        res = (train_round_looped if is_looped(cfg) else train_round)(cfg, base, ens, cands, dev, prog)
        first = len(rows)
        for i, (seed, n) in enumerate(cands):
            rows.append({"lab": cfg.lab, "group": 0, "member": first + i, "seed": seed, "n": n, "round": r + 1,
                         "fitted": bool(res.fitted[i]), "status": res.status[i], "epochs": float(res.epochs[i]),
                         "steps": int(res.steps[i]), **{k: float(res.final[k][i]) for k in MEMBER_KEYS},
                         "grad_norm": float(res.grad_norm[i]), "params": ens.n_params,
                         "round_wall_s": round(res.wall_s, 3)})
        c = res.curves
        m = c["member"]
        curves.append({"round": np.full(len(m), r + 1), "member": m + first,
                       "seed": np.array([cands[i][0] for i in m], dtype=np.int64),
                       "n": np.array([cands[i][1] for i in m], dtype=np.int64),
                       **{k: c[k] for k in ("step", "epoch", "metric", "value")}})
        cost["wall"] += res.wall_s
        cost["model_steps"] += res.model_steps
        if on_round is not None:
            on_round(rows, curves)
        return list(res.fitted)

    try:
        result = search(fits, seeds, s.n_min, s.n_max, s.k, s.tol, s.max_rounds, done=done)
    except ValueError as e:
        raise GroklabError(f"--resume: the stored rounds do not match the config ({e})") from None
    per_seed = result.per_seed()
    for p in per_seed:  # generalization at the EMC: the fitted training of size lo
        at = [r for r in rows if r["seed"] == p["seed"] and r["n"] == p["emc"] and r["fitted"]]
        p["test_acc_at_emc"] = at[-1]["test_acc"] if at else None
    return result, per_seed, rows, curves, cost


def read_prior(path: Path) -> tuple[list[dict], list[dict[str, np.ndarray]]]:
    """The rounds a killed search finished: its member rows and curve tables (none if it stored none)."""
    import pyarrow.parquet as pq

    if not (path / "members.parquet").is_file():
        return [], []
    t = pq.read_table(path / "members.parquet").to_pydict()
    rows = [dict(zip(t, vals)) for vals in zip(*t.values())]
    c = store.read_metrics(path).to_pydict() if (path / "metrics.parquet").is_file() else {}
    curves = [{k: np.asarray(v, dtype=object if k == "metric" else None) for k, v in c.items()}] if c else []
    return rows, curves


def run_emc(cfg: CapacityConfig, root: Path | str | None = None, on_progress=None, prepared=None,
            resume: Path | None = None) -> dict:
    """Search EMC for every seed, store everything, draw the figures; returns the summary.
    on_progress(rounds done as a float, trainings running). resume: the folder of a killed search (its
    config.toml is `cfg`): its finished rounds are replayed from members.parquet, the rest trained."""
    t0 = time.perf_counter()
    root = Path(root or store.default_root())
    dev, base, ens = prepared or prepare(cfg, root)
    seeds = [cfg.train.seed + i for i in range(cfg.train.seeds)]
    s = cfg.search
    env = devmod.environment(dev)
    prior = read_prior(Path(resume)) if resume is not None else ([], [])
    opened = (store.reopen_run(resume, env) if resume is not None
              else store.open_run(root, cfg.name, cfg.to_toml(), env))
    with opened as run:
        def on_round(rows, curves):
            write_tables(run, rows, curves)
            run.mark_started()  # a finished round is kept if the search is interrupted later

        result, per_seed, rows, curves, cost = run_search(cfg, base, ens, dev, seeds, on_progress, on_round,
                                                          prior)
        summary = {"lab": cfg.lab, "preset": cfg.name, "run_dir": str(run.path), "run_id": run.id,
                   "wall_s": 0.0, "train_wall_s": round(cost["wall"], 3), "model_steps": cost["model_steps"],
                   **summarize(per_seed), "params": ens.n_params, "trainings": result.trainings,
                   "rounds": len(result.rounds), "per_seed": per_seed, "tol": s.tol,
                   "resumed_rounds": len({r["round"] for r in prior[0]}),
                   "data": {"name": cfg.data.name, "labels": cfg.data.labels, "inputs": cfg.data.inputs,
                            "classes": base.n_classes, "n_train": len(base.y_train)},
                   "model": {"kind": cfg.model.kind, "width": cfg.model.width, "depth": cfg.model.depth,
                             "act": cfg.model.act},
                   "optim": cfg.optim.name, "lr": cfg.optim.lr_of(), "batching": batching_note(cfg),
                   "rule": RULE.format(**vars(s)), "device": str(dev),
                   "threads": devmod.environment(dev)["torch_threads"],
                   "models": [{k: r[k] for k in ("seed", "n", "round", "status", "epochs", "train_acc", "test_acc")}
                              for r in rows]}
        figs = figures.draw(summary, rows, merge(curves), run.path / "figures")
        summary["figures"] = [str(f) for f in figs]
        summary["wall_s"] = round(time.perf_counter() - t0, 3)
        run.write_json("summary.json", summary)
        run.complete()
    return summary


def merge(curves: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not curves:
        return {k: np.array([]) for k in ("round", "member", "seed", "n", "step", "epoch", "metric", "value")}
    return {k: np.concatenate([c[k] for c in curves]) for k in curves[0]}


def write_tables(run: store.Run, rows: list[dict], curves: list[dict[str, np.ndarray]]) -> None:
    run.write_table("members.parquet", {k: [r[k] for r in rows] for k in rows[0]})
    run.write_table("metrics.parquet", merge(curves))
