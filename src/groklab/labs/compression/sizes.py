"""Model-size sweep (seed 002: "bigger model, higher compression"): the same data stream, the same steps,
several widths; held-out code length, gap to the floor and prequential code length vs parameters."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from groklab import GroklabError, plot, store
from groklab.engine import device as devmod
from groklab.labs.compression.config import CompressConfig
from groklab.labs.compression.figures import FLOOR
from groklab.labs.compression.train import LN2, description_bits, train_model


def parse_widths(text: str, heads: int) -> list[int]:
    try:
        widths = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise GroklabError(f"--widths: expected comma-separated integers, got {text!r}") from None
    if len(widths) < 2 or any(w < 1 or w % heads for w in widths):
        raise GroklabError(f"--widths: at least two positive widths divisible by model.heads ({heads}); got {text!r}")
    return widths


def run_sizes(cfg: CompressConfig, widths: list[int], root: Path | str | None = None, on_progress=None) -> dict:
    t0 = time.perf_counter()
    dev = devmod.setup(cfg.train.device, cfg.train.threads)
    fmt = cfg.fmt()
    rows, metrics = [], []
    with store.open_run(root or store.default_root(), f"sizes-{cfg.name}", cfg.to_toml(),
                        devmod.environment(dev)) as run:
        for i, w in enumerate(widths):
            c = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, width=w))
            model, mrows, preq_nats, n_seen, wall = train_model(c, dev)
            final = {m: v for (s, m, v, p) in mrows if p < 0}
            rows.append({"width": w, "n_params": model.n_params(), "val_loss": final["val_loss"],
                         "gap_pct": 100 * (final["val_loss"] / fmt.floor() - 1),
                         "exact_match": final["exact_match"],
                         "bits_per_example": fmt.bits_per_example(final["val_loss"]),
                         "prequential_bits_per_example": preq_nats / LN2 / n_seen,
                         "description_bits": description_bits(model)["xz_bits"], "wall_s": wall})
            metrics += [(s, m, v, p, w) for (s, m, v, p) in mrows]
            if on_progress:
                on_progress(i + 1, len(widths))
        return _write(cfg, run, rows, metrics, t0)


def _write(cfg: CompressConfig, run: store.Run, rows: list[dict], metrics: list[tuple], t0: float) -> dict:
    fmt = cfg.fmt()
    step, metric, value, pos, width = zip(*metrics)
    run.write_table("metrics.parquet", {"step": np.array(step), "metric": np.array(metric, dtype=object),
                                        "value": np.array(value), "position": np.array(pos), "width": np.array(width)})
    run.write_table("sizes.parquet", {k: [r[k] for r in rows] for k in rows[0]})
    fig = figure(rows, fmt.floor_bits(), run.path / "figures" / "sizes.png", cfg.name)
    summary = {"lab": "compression", "kind": "sizes", "preset": cfg.name, "run_dir": str(run.path),
               "floor": fmt.floor(), "floor_bits_per_example": fmt.floor_bits(),
               "steps": cfg.train.steps, "batch_size": cfg.train.batch_size, "sizes": rows,
               "figures": [str(fig)], "wall_s": round(time.perf_counter() - t0, 3)}
    run.write_json("summary.json", summary)
    run.complete()
    return summary


def figure(rows: list[dict], floor_bits: float, path: Path, title: str) -> Path:
    fig, ax = plot.subplots(1, 2, w=5)
    p = [r["n_params"] for r in rows]
    a = ax[0, 0]
    a.plot(p, [r["bits_per_example"] for r in rows], marker="o", color=plot.TEST, label="final model, held-out")
    a.plot(p, [r["prequential_bits_per_example"] for r in rows], marker="s", color=plot.TRAIN,
           label="prequential (one pass)")
    a.axhline(floor_bits, color=FLOOR, ls="--", label=f"floor {floor_bits:.2f}")
    a.set_xscale("log")
    a.set_xlabel("parameters")
    a.set_ylabel("bits per example")
    a.legend()
    a.set_title(f"{title}: code length vs model size")
    b = ax[0, 1]
    b.plot(p, [max(r["gap_pct"], 1e-4) for r in rows], marker="o", color=plot.TEST)
    b.set_xscale("log")
    b.set_yscale("log")
    b.set_xlabel("parameters")
    b.set_ylabel("gap to floor (%)")
    b.set_title("epistemic gap vs size")
    return plot.save(fig, path)
