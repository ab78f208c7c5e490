"""`curves scaling` with scaling.source = addition: seed 002's addition GPT (nn/gpt.py, data/addition.py) over
widths, each trained to convergence on fresh examples, then the same L(N) fits as scaling-mnist1d (scaling.py).

Training is the engine's stream loop (engine/stream.py: the GPT as a ModuleEnsemble of one, BatchedOptimizer
with GPT.param_groups' decay mask), one training per width × seed, every batch fresh (one pass, no overfitting).

Per-width learning rate (addition.lr_rule = inverse_width): lr(w) = optim.lr × lr_width / w, at most lr_max.
It borrows μP's Adam rule for hidden matrices, learning rate ∝ 1/fan_in (Yang et al. 2022, Tensor Programs V;
microsoft/mup's MuAdam divides those learning rates by the width multiplier), and applies it to every parameter
of the standard-parametrized GPT from a base set at one width: a simplification of μP (which would keep the
embedding's rate and rescale the output layer), chosen because it costs no per-width search (a probe of a few
learning rates per width would multiply the CPU time of the sweep).

Convergence (addition.*): evaluate the validation set every eval_every steps; at an evaluation at step t ≥
min_steps, with b_old the best validation loss of the evaluations at steps ≤ (1 − window)·t and b the best so
far, the width has converged when b_old − b < max(tol · (b_old − floor), abs_tol): the last `window` fraction of
the training (half, by default: it trained at least twice as long as its last real gain) no longer lowered the
excess over the entropy floor by tol. max_steps caps it (converged = false). The plateau window grows with t,
so the long flat stretch before addition "clicks" (seen at width 16: flat 1.44-1.47 nats for 2,000 steps, then
a drop to 1.11) is not mistaken for convergence as easily as a fixed window would.

Reported loss of a run: the test-set loss (nats per target) at the evaluation with the lowest validation loss
(separate sets, so the selection does not bias the number); bits per example = loss × targets / ln 2, against
the exact floor of the generator (Addition.floor_bits).

Prequential code (seed 002's "training = lossless compression of the dataset"): every batch is coded by the model
*before* it trains on it (engine/stream.py records that loss per step), so the sum of those losses over the first K
steps is the length of a real two-part-free code of the first K × batch_size stream examples that a decoder could
replay. Reported per run as bits per example at K = min(min_steps, max_steps), the prefix every width trains
(`preq_bits_per_example`; the same budget for every width, unlike the held-out loss at each width's own plateau), and
per evaluation as metric "preq_loss" (the running mean, nats per target, up to that step).

runs/<id>/ points.parquet (width, seed, params, lr, steps, converged, test/val loss, bits, gap, exact match)
           metrics.parquet (width, seed, step, metric, value)  fits.json  figures/  summary.json
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from groklab import store
from groklab.data.addition import Addition
from groklab.engine import device as devmod
from groklab.engine.ensemble import ModuleEnsemble
from groklab.engine.optim import decay_mask_of
from groklab.engine.stream import StreamBatch, train_stream
from groklab.nn.gpt import GPT, GPTShape

VAL_SEED, TEST_SEED = 10**9, 2 * 10**9  # offsets of the held-out sets from addition.data_seed


def fmt_of(cfg) -> Addition:
    a = cfg.addition
    return Addition(n_digits=a.n_digits, sampling=a.sampling, reverse=a.reverse)


def shape_of(cfg, width: int) -> GPTShape:
    a = cfg.addition
    return GPTShape(vocab=14, block=fmt_of(cfg).seq_len - 1, layers=a.layers, heads=a.heads, width=width,
                    rope=a.rope)


def lr_for(cfg, width: int) -> float:
    """The per-width learning rate (module docstring)."""
    a = cfg.addition
    lr = cfg.optim.lr * a.lr_width / width if a.lr_rule == "inverse_width" else cfg.optim.lr
    return min(lr, a.lr_max)


def n_params(cfg, width: int) -> int:
    return GPT(shape_of(cfg, width)).n_params()


def converged(steps: list[int], val: list[float], floor: float, a) -> bool:
    """The plateau rule of the module docstring on the evaluations so far (steps ascending)."""
    t = steps[-1]
    old = [v for s, v in zip(steps, val) if s <= (1 - a.window) * t]
    if t < a.min_steps or not old:
        return False
    b_old, b = min(old), min(val)
    return b_old - b < max(a.tol * (b_old - floor), a.abs_tol)


class FreshStream:
    """engine/stream.py's TokenStream: every batch is batch_size new examples of the generator."""

    def __init__(self, fmt: Addition, batch: int, seed: int):
        self.fmt, self.batch, self.gen = fmt, batch, torch.Generator().manual_seed(seed)

    def next(self) -> StreamBatch:
        return StreamBatch(self.fmt.sample(self.batch, self.gen), self.batch)  # (B, T)

    def state(self) -> dict[str, torch.Tensor]:
        return {"gen": self.gen.get_state()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        self.gen.set_state(tensors["gen"].clone())


def prepare_addition(cfg, root: Path):
    """Device and held-out sets before any run folder (config.check already validated the values)."""
    dev = devmod.setup(cfg.train.device, cfg.train.threads)
    fmt, a = fmt_of(cfg), cfg.addition
    val = fmt.sample(a.val_examples, torch.Generator().manual_seed(a.data_seed + VAL_SEED))  # (V, T)
    test = fmt.sample(a.test_examples, torch.Generator().manual_seed(a.data_seed + TEST_SEED))  # (Q, T)
    return dev, (val, test)


@torch.no_grad()
def _eval(logits_of, tokens: torch.Tensor, fmt: Addition, dev, chunk: int = 2000) -> tuple[float, float]:
    """(mean nats per target, exact-match rate of the answer) in eval mode. tokens (n, T)"""
    nats, hits = 0.0, 0
    for i in range(0, len(tokens), chunk):
        x = tokens[i:i + chunk].to(dev)  # (b, T)
        logits = logits_of(x[:, :-1])  # (b, T-1, V)
        nats += float(F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="sum"))
        ans = fmt.answer_slice
        hits += int((logits[:, ans].argmax(-1) == x[:, 1:][:, ans]).all(1).sum())
    return nats / (len(tokens) * fmt.n_targets), hits / len(tokens)


def train_width(cfg, width: int, seed: int, dev, sets, on_step=None) -> tuple[dict, list[tuple]]:
    """One width × seed trained to convergence (or max_steps). Returns its row and its (step, metric, value)."""
    a, fmt = cfg.addition, fmt_of(cfg)
    val, test = sets
    floor = fmt.floor()
    lr = lr_for(cfg, width)
    ens = ModuleEnsemble(lambda: GPT(shape_of(cfg, width)))
    module = ens.build(0)
    mask = decay_mask_of(module, module.param_groups(1.0))
    optim = dataclasses.replace(cfg.optim, lr=lr)
    tcfg = SimpleNamespace(steps=a.max_steps, log_every=a.eval_every, seed=seed)
    evals: list[dict] = []
    state = {"stop": False}

    def evaluate(logits_of, step: int) -> list[tuple[str, float, int]]:
        vl, vm = _eval(logits_of, val, fmt, dev)
        tl, tm = _eval(logits_of, test, fmt, dev)
        evals.append({"step": step, "val_loss": vl, "test_loss": tl, "val_exact": vm, "test_exact": tm})
        state["stop"] = step < a.max_steps and converged([e["step"] for e in evals], [e["val_loss"] for e in evals],
                                                        floor, a)
        return [("val_loss", vl, -1), ("test_loss", tl, -1)]

    t0 = time.perf_counter()
    res = train_stream(ens, FreshStream(fmt, a.batch_size, a.data_seed + seed), optim, tcfg, dev, evaluate,
                 decay_mask=mask, on_progress=on_step, should_stop=lambda done: state["stop"])
    done = state["stop"]
    best = min(evals, key=lambda e: e["val_loss"])
    last = evals[-1]["step"]
    bits = fmt.bits_per_example(best["test_loss"])
    row = {"width": width, "seed": seed, "params": module.n_params(), "lr": lr, "steps": last,
           "examples_seen": last * a.batch_size, "converged": done, "best_step": best["step"],
           "test_loss": best["test_loss"], "val_loss": best["val_loss"], "bits_per_example": bits,
           "gap_bits": bits - fmt.floor_bits(), "gap_pct": 100 * (best["test_loss"] / floor - 1),
           "exact_match": best["test_exact"], "wall_s": round(time.perf_counter() - t0, 3)}
    mets = [(e["step"], k, e[k]) for e in evals for k in ("val_loss", "test_loss", "val_exact", "test_exact")]
    code = np.array([v for _, m, v, _ in res.rows if m == "train_loss"])  # (steps,) nats per target, pre-update
    k = preq_steps(a)
    row["preq_bits_per_example"] = fmt.bits_per_example(float(code[:k].mean()))
    running = np.cumsum(code) / np.arange(1, len(code) + 1)  # (steps,) the code so far, nats per target
    mets += [(e["step"], "preq_loss", float(running[e["step"] - 1])) for e in evals if e["step"] > 0]
    return row, mets


def preq_steps(a) -> int:
    """The prequential budget in steps: the prefix every width trains (module docstring); config.check keeps
    max_steps >= min_steps, the min only guards a config built around it."""
    return min(a.min_steps, a.max_steps)


def run(cfg, root: Path | str | None = None, on_progress=None, prepared=None) -> dict:
    """Every width × seed trained to convergence, then every form fitted (run_more.fit_all)."""
    from groklab.labs.curves.run import _base, _finish
    from groklab.labs.curves.run_more import fit_all

    t0 = time.perf_counter()
    root = Path(root or store.default_root())
    dev, sets = prepared or prepare_addition(cfg, root)
    fmt, a = fmt_of(cfg), cfg.addition
    widths = sorted(set(cfg.scaling.widths))
    seeds = [cfg.train.seed + i for i in range(cfg.train.seeds)]
    budget = a.max_steps * a.batch_size  # the D column: the stream's example budget, the same for every width
    with store.open_run(root, cfg.name, cfg.to_toml(), devmod.environment(dev)) as run_:
        run_.mark_started()
        rows, mets = [], []
        for i, w in enumerate(widths):
            for s in seeds:
                tick = None if on_progress is None else (
                    lambda done, i=i, w=w: on_progress(i + min(1.0, done / a.max_steps), f"width {w}, step {done}"))
                row, m = train_width(cfg, w, s, dev, sets, tick)
                rows.append({**row, "n_train": budget})
                mets += [(w, s, *x) for x in m]
                if on_progress is not None:
                    on_progress(i + 1, f"width {w}: {row['bits_per_example']:.2f} bits/example")
                run_.write_table("points.parquet", {k: [r[k] for r in rows] for k in rows[0]})
        cols = list(zip(*mets))
        run_.write_table("metrics.parquet", {"width": np.array(cols[0]), "seed": np.array(cols[1]),
                                             "step": np.array(cols[2]), "metric": np.array(cols[3], dtype=object),
                                             "value": np.array(cols[4], dtype=np.float64)})
        fits = fit_all(cfg, rows)
        run_.write_json("fits.json", fits)
        s = {**_base(cfg, run_, "scaling"), "source": "addition",
             "fits": {k: {"params": f["params"], "ci95": f["ci95"], "heldout_rel_error": f["heldout_rel_error"]}
                      for k, f in fits.items()},
             "model": f"gpt{a.layers}", "widths": widths, "n_trains": [budget], "seeds": cfg.train.seeds,
             "loss": "test cross-entropy (nats per target) at the evaluation with the lowest validation loss",
             "n_digits": a.n_digits, "sampling": a.sampling, "n_targets": fmt.n_targets,
             "floor": fmt.floor(), "floor_bits_per_example": fmt.floor_bits(),
             "per_width": per_width(rows), "floor_check": floor_check(fits, fmt)}
        pw = s["per_width"]
        s["monotone"] = all(b["bits_per_example"] < p["bits_per_example"] for p, b in zip(pw, pw[1:]))
        s["preq_steps"], s["preq_examples"] = preq_steps(a), preq_steps(a) * a.batch_size
        s["preq_monotone"] = all(b["preq_bits_per_example"] < p["preq_bits_per_example"] for p, b in zip(pw, pw[1:]))
        return _finish(run_, s, t0)


def per_width(rows: list[dict]) -> list[dict]:
    """Mean over seeds per width: parameters, lr, steps, converged (all seeds), bits, gap, exact match."""
    out = []
    for w in sorted({r["width"] for r in rows}):
        rs = [r for r in rows if r["width"] == w]
        m = {k: float(np.mean([r[k] for r in rs])) for k in ("test_loss", "bits_per_example", "gap_bits",
                                                              "gap_pct", "exact_match", "steps", "wall_s",
                                                              "preq_bits_per_example")}
        out.append({"width": w, "params": rs[0]["params"], "lr": rs[0]["lr"],
                    "converged": all(r["converged"] for r in rs), **m})
    return out


def floor_check(fits: dict, fmt: Addition) -> dict | None:
    """The fitted irreducible loss E of L(N) = E + A/N^α against the generator's exact entropy floor."""
    f = fits.get("hoffmann_n")
    if f is None:
        return None
    e, ci = f["params"]["E"], f["ci95"]["E"]
    floor = fmt.floor()
    return {"E": e, "E_ci95": ci, "floor": floor, "E_bits_per_example": fmt.bits_per_example(e),
            "floor_bits_per_example": fmt.floor_bits(), "E_minus_floor": e - floor,
            "at_or_above_floor": bool(e >= floor * (1 - 1e-9)),
            "ci_reaches_floor": bool(ci[0] is not None and ci[0] <= floor <= ci[1])}


def show(s: dict) -> None:
    """The per-width table and the floor check (the CLI's show prints the fits after this)."""
    from rich.table import Table

    from groklab import console as cli
    t = Table(title=f"{s['preset']}: {s['n_digits']}-digit addition, floor {s['floor_bits_per_example']:.2f} "
              "bits/example")
    preq = "preq_monotone" in s  # runs stored before the prequential code have none
    cols = ["width", "params", "lr", "steps", "converged", "bits/example", "gap to floor", "exact match"]
    for c in cols + ([f"prequential bits/example (first {s['preq_examples']:,})"] if preq else []):
        t.add_column(c)
    for p in s["per_width"]:
        t.add_row(str(p["width"]), f"{p['params']:,}", f"{p['lr']:.3g}", f"{p['steps']:,.0f}",
                  "yes" if p["converged"] else "no (cap)", f"{p['bits_per_example']:.3f}", f"{p['gap_bits']:.3f}",
                  f"{p['exact_match']:.1%}", *([f"{p['preq_bits_per_example']:.3f}"] if preq else []))
    cli.out.print(t)
    fc = s.get("floor_check")
    words = f"monotone (bigger model, fewer bits): held-out {'yes' if s['monotone'] else 'no'}"
    if preq:
        words += f", prequential code {'yes' if s['preq_monotone'] else 'no'}"
    if fc:
        lo, hi = fc["E_ci95"]
        ci = f" [{lo:.4f}, {hi:.4f}]" if lo is not None else ""
        words += (f"; fitted E = {fc['E']:.4f}{ci} nats/target vs floor {fc['floor']:.4f} "
                  f"({'at or above' if fc['at_or_above_floor'] else 'BELOW'} the floor)")
    cli.out.print(words, highlight=False, soft_wrap=True)

