"""Joint compression (seed 000): is C(X‖Y) < C(X) + C(Y)? Shared structure says yes, none says no.

Pairs (same digit count, same line length):
  related:   X = addition problems; Y = the *same problems* with the answer written least-significant
             digit first (same arithmetic, another layout)
  unrelated: X = addition problems; Y = other operands with a random answer (no arithmetic to share)
Coders: every classical compressor on the files (X, Y, X then Y), and GPTs trained on X's, Y's and the
mixed distribution: their prequential code length (learning included) and a two-part code (the
weights, xz-compressed, plus the final model's arithmetic code of the files).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

from groklab import plot, store
from groklab.data.addition import Addition, format_text
from groklab.engine import device as devmod
from groklab.labs.compression import baselines, coder
from groklab.labs.compression.config import CompressConfig
from groklab.labs.compression.train import LN2, arch_toml, description_bits, model_hash, train_model

FILE_SEED = 7


def pairs(cfg: CompressConfig) -> dict[str, tuple[Addition, Addition, int]]:
    """name -> (format X, format Y, seed of Y's file: same as X's for the related pair)."""
    x = cfg.fmt()
    return {"related": (x, dataclasses.replace(x, reverse=not x.reverse), FILE_SEED),
            "unrelated": (x, dataclasses.replace(x, answer="random"), FILE_SEED + 1)}


def file_bytes(fmt: Addition, n: int, seed: int) -> bytes:
    return format_text(fmt.sample(n, torch.Generator().manual_seed(seed))).encode()


def _train(cfg: CompressConfig, fmts: list[Addition], steps: int, dev) -> dict:
    c = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, steps=steps))
    model, rows, preq_nats, _, wall = train_model(c, dev, fmts=fmts)
    model = model.cpu().eval()
    return {"model": model, "rows": rows, "preq_bits": preq_nats / LN2, "wall_s": wall,
            "hash": model_hash(model.state_dict(), arch_toml(cfg)), "desc_bits": description_bits(model)["xz_bits"]}


def run_joint(cfg: CompressConfig, n_file: int = 10_000, root: Path | str | None = None, on_progress=None) -> dict:
    t0 = time.perf_counter()
    dev = devmod.setup(cfg.train.device, cfg.train.threads)
    with store.open_run(root or store.default_root(), f"joint-{cfg.name}", cfg.to_toml(),
                        devmod.environment(dev)) as run:
        res = _experiment(cfg, n_file, dev, on_progress)
        return _write(cfg, run, res, n_file, t0)


def _write(cfg: CompressConfig, run: store.Run, res: dict, n_file: int, t0: float) -> dict:
    run.write_table("joint.parquet", _table(res["rows"]))
    fig = figure(res["rows"], run.path / "figures" / "joint.png", cfg.name)
    summary = {"lab": "compression", "kind": "joint", "preset": cfg.name, "run_dir": str(run.path),
               "n_file": n_file, "examples_per_format": cfg.train.steps * cfg.train.batch_size,
               "rows": res["rows"], "models": res["models"], "figures": [str(fig)],
               "wall_s": round(time.perf_counter() - t0, 3)}
    run.write_json("summary.json", summary)
    run.complete()
    return summary


def _experiment(cfg: CompressConfig, n_file: int, dev, on_progress=None) -> dict:
    rows, models = [], {}
    steps = cfg.train.steps
    x_fmt = cfg.fmt()
    done = 0

    def tick():
        nonlocal done
        done += 1
        if on_progress:
            on_progress(done, 5)

    m_x = _train(cfg, [x_fmt], steps, dev)
    tick()
    for pair, (fx, fy, y_seed) in pairs(cfg).items():
        X, Y = file_bytes(fx, n_file, FILE_SEED), file_bytes(fy, n_file, y_seed)
        XY = X + Y
        for name, (c, _) in baselines.compressors().items():
            rows.append(_row(pair, name, 8 * len(c(X)), 8 * len(c(Y)), 8 * len(c(XY)), n_file))
        m_y = _train(cfg, [fy], steps, dev)
        tick()
        m_xy = _train(cfg, [fx, fy], 2 * steps, dev)  # the same number of examples of each format
        tick()
        rows.append(_row(pair, "model (prequential)", m_x["preq_bits"], m_y["preq_bits"], m_xy["preq_bits"],
                         cfg.train.steps * cfg.train.batch_size))

        def code(m, data, fx=fx):
            return 8 * (len(coder.encode_bytes(m["model"], m["hash"], fx, data, cfg.train.eval_batch))
                        - coder.HEADER_BYTES)

        cx, cy, cxy = code(m_x, X), code(m_y, Y), code(m_xy, XY)
        rows.append(_row(pair, "model (final, data only)", cx, cy, cxy, n_file))
        rows.append(_row(pair, "model (two-part: xz weights + data)", m_x["desc_bits"] + cx,
                         m_y["desc_bits"] + cy, m_xy["desc_bits"] + cxy, n_file))
        cross = {"X_by_model_Y": code(m_y, X), "Y_by_model_X": code(m_x, Y)}
        models[pair] = {"wall_s": {"X": m_x["wall_s"], "Y": m_y["wall_s"], "XY": m_xy["wall_s"]},
                        "description_bits": {"X": m_x["desc_bits"], "Y": m_y["desc_bits"], "XY": m_xy["desc_bits"]},
                        "bits_per_example": {"X_by_X": cx / n_file, "Y_by_Y": cy / n_file,
                                             "XY_by_XY": cxy / (2 * n_file),
                                             **{k: v / n_file for k, v in cross.items()}},
                        "floor_bits_per_example": {"X": fx.floor_bits(),
                                                   "Y": fy.floor_bits()}}
    return {"rows": rows, "models": models}


def _row(pair: str, coder_name: str, cx: float, cy: float, cxy: float, n: int) -> dict:
    """Sizes in bits per example of each dataset (n examples each)."""
    s = cx + cy
    return {"pair": pair, "coder": coder_name, "C(X)": cx / n, "C(Y)": cy / n, "C(X)+C(Y)": s / n,
            "C(X||Y)": cxy / n, "saving_pct": 100 * (1 - cxy / s)}


def _table(rows: list[dict]) -> dict[str, list]:
    return {k: [r[k] for r in rows] for k in rows[0]}


def figure(rows: list[dict], path: Path, title: str) -> Path:
    fig, ax = plot.subplots(1, 2, w=6, h=4)
    for a, pair in zip(ax[0], ("related", "unrelated")):
        rs = [r for r in rows if r["pair"] == pair]
        y = np.arange(len(rs))
        a.barh(y - 0.2, [r["C(X)+C(Y)"] for r in rs], 0.4, color=plot.TRAIN, label="C(X) + C(Y)")
        a.barh(y + 0.2, [r["C(X||Y)"] for r in rs], 0.4, color=plot.TEST, label="C(X‖Y)")
        for yi, r in zip(y, rs):
            a.text(r["C(X)+C(Y)"], yi, f" {r['saving_pct']:+.1f}%", va="center", fontsize=7)
        a.set_yticks(y, [r["coder"] for r in rs], fontsize=7)
        a.set_xscale("log")
        a.set_xlabel("bits per example (X and Y together)")
        a.set_title(f"{pair} pair")
        a.invert_yaxis()
    ax[0, 0].legend()
    fig.suptitle(f"{title}: joint compression (saving = 1 − C(X‖Y) / (C(X)+C(Y)))")
    return plot.save(fig, path)

