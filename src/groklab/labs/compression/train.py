"""`groklab compress train`: one pass over fresh addition examples; the loss of each fresh batch before
its update is the prequential code length. Logs held-out loss, exact match and per-position loss.

Training is the engine's stream loop (engine/stream.py): the GPT as a ModuleEnsemble of one, the shared
BatchedOptimizer (decay mask from GPT.param_groups, lr schedule, clipping), checkpoints and resume through
the store's run lifecycle."""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from groklab import GroklabError, store
from groklab.data.addition import Addition
from groklab.engine import device as devmod
from groklab.engine.ensemble import ModuleEnsemble
from groklab.engine.optim import decay_mask_of
from groklab.engine.stream import StreamBatch, train_stream
from groklab.labs.compression import config as cconfig
from groklab.labs.compression.config import CompressConfig
from groklab.nn.gpt import GPT

LN2 = math.log(2)
WEIGHTS = "model.safetensors"
VAL_SEED, TEST_SEED = 10**9, 2 * 10**9  # offsets of the held-out streams from data.seed


def held_out(fmt: Addition, n: int, seed: int) -> torch.Tensor:
    """A fixed held-out set (disjoint stream from the training samples). # (n, T)"""
    return fmt.sample(n, torch.Generator().manual_seed(seed))


@torch.no_grad()
def evaluate(logits_of, tokens: torch.Tensor, fmt: Addition, batch: int, dev) -> dict:
    """Eval-mode loss per target position, mean loss and exact match; logits_of(x (b, T-1)) -> (b, T-1, V)
    runs the model in eval mode (a GPT module in eval mode, or the engine's eval-mode forward).

    Exact match = every answer digit and `e` is the argmax given the true prefix; by induction this is
    the same as greedy decoding of the whole answer, at the cost of one forward pass."""
    pos_sum = torch.zeros(fmt.n_targets, dtype=torch.float64)
    hits = 0
    for i in range(0, len(tokens), batch):
        x = tokens[i:i + batch].to(dev)  # (b, T)
        logits = logits_of(x[:, :-1])  # (b, T-1, V)
        nll = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")  # (b, T-1)
        pos_sum += nll.double().sum(0).cpu()
        ans = fmt.answer_slice
        hits += int((logits[:, ans].argmax(-1) == x[:, 1:][:, ans]).all(1).sum())
    pos = (pos_sum / len(tokens)).numpy()
    return {"loss": float(pos.mean()), "pos_loss": pos, "exact_match": hits / len(tokens)}


def model_hash(state: dict[str, torch.Tensor], cfg_toml: str) -> str:
    """sha256 over the model's shape/format config and every weight's bytes (sorted by name)."""
    h = hashlib.sha256(cfg_toml.encode())
    for k in sorted(state):
        h.update(k.encode())
        h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def arch_toml(cfg: CompressConfig) -> str:
    """The part of the config a decoder needs (data format and model shape)."""
    import tomli_w
    return tomli_w.dumps({"data": {k: getattr(cfg.data, k) for k in ("n_digits", "sampling", "reverse")},
                          "model": {k: getattr(cfg.model, k) for k in ("layers", "heads", "width", "rope")}})


def load_model(run: str | Path) -> tuple[GPT, CompressConfig, str, Path]:
    """A trained model from a run folder: (model on CPU in eval mode, config, model hash, path)."""
    p = Path(run)
    if (p.is_absolute() or p.exists()) and not (p / "config.toml").is_file():
        raise GroklabError(f"--model: no run {str(run)!r} (not a run folder with config.toml)")
    path = store.resolve(run)
    if not (path / WEIGHTS).is_file():
        raise GroklabError(f"--model: {path} has no {WEIGHTS} (not a finished compression run)")
    cfg = cconfig.load(config_file=path / "config.toml")
    model = GPT(cfg.shape())
    state = load_file(str(path / WEIGHTS))
    model.load_state_dict(state)
    model.eval()
    return model, cfg, model_hash(state, arch_toml(cfg)), path


def long_rows(rows: list[tuple[int, str, float, int]]) -> dict[str, np.ndarray]:
    step, metric, value, pos = zip(*rows)
    return {"step": np.array(step, dtype=np.int64), "metric": np.array(metric, dtype=object),
            "value": np.array(value, dtype=np.float64), "position": np.array(pos, dtype=np.int64)}


def mixture_sample(fmts: list[Addition], n: int, g: torch.Generator) -> torch.Tensor:
    """n examples split evenly over formats of equal length (joint compression). # (n, T)"""
    k = len(fmts)
    return torch.cat([f.sample(n // k + (i < n % k), g) for i, f in enumerate(fmts)])


class AdditionStream:
    """The fresh training stream (engine/stream.py's TokenStream): each batch is new; the first rows follow
    the seed's distribution (they are the prequential code); the rest (data.carry_boost) carry planted carry
    chains and are trained on their answer positions only, so the operand statistics stay the seed's."""

    def __init__(self, fmts: list[Addition], cfg: CompressConfig):
        self.fmts, self.batch_size = fmts, cfg.train.batch_size
        self.n_boost = int(round(self.batch_size * cfg.data.carry_boost)) if len(fmts) == 1 else 0
        self.gen = torch.Generator().manual_seed(cfg.data.seed)

    def next(self) -> StreamBatch:
        x = mixture_sample(self.fmts, self.batch_size - self.n_boost, self.gen)  # (B - n_boost, T)
        if self.n_boost:
            x = torch.cat([x, self.fmts[0].sample(self.n_boost, self.gen, chains=True)])  # (B, T)
        return StreamBatch(x, self.batch_size - self.n_boost, self.fmts[0].answer_slice)

    def state(self) -> dict[str, torch.Tensor]:
        return {"gen": self.gen.get_state()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        self.gen.set_state(tensors["gen"].clone())


def ensemble(cfg: CompressConfig) -> tuple[ModuleEnsemble, dict[str, bool]]:
    """The GPT as a ModuleEnsemble, and its decay mask (matrices decay; biases, LayerNorms, embeddings not)."""
    shape = cfg.shape()
    ens = ModuleEnsemble(lambda: GPT(shape))
    module = ens.build(0)
    return ens, decay_mask_of(module, module.param_groups(1.0))


def train_model(cfg: CompressConfig, dev, on_progress=None, on_log=None, fmts: list[Addition] | None = None, *,
                checkpoint_every: int = 0, checkpoint_min_s: float = 0.0, on_checkpoint=None, resume=None):
    """The training (engine/stream.py). Returns (model (GPT on CPU, eval mode), rows, prequential_nats,
    prequential_examples, wall_s); with on_checkpoint, resumable from any (tensors, meta) it received.

    fmts: train on an even mixture of these formats instead of cfg's (joint compression).
    on_progress(updates done, 1); on_log(step, evaluation dict) after each held-out evaluation."""
    fmt = cfg.fmt()
    fmts = fmts or [fmt]
    t = cfg.train
    val = mixture_sample(fmts, cfg.data.val_examples, torch.Generator().manual_seed(cfg.data.seed + VAL_SEED))
    floor = float(np.mean([f.floor_per_target() for f in fmts], axis=0).mean())

    def log_eval(logits_of, step: int) -> list[tuple[str, float, int]]:
        ev = evaluate(logits_of, val, fmt, t.eval_batch, dev)
        rows = [("val_loss", ev["loss"], -1), ("exact_match", ev["exact_match"], -1)]
        rows.extend(("pos_loss", float(v), i) for i, v in enumerate(ev["pos_loss"]))
        rows.append(("epistemic", float(ev["loss"] - floor), -1))
        if on_log:
            on_log(step, ev)
        return rows

    ens, mask = ensemble(cfg)
    res = train_stream(ens, AdditionStream(fmts, cfg), cfg.optim, t, dev, log_eval, decay_mask=mask,
                       on_progress=(lambda done: on_progress(done, 1)) if on_progress else None,
                       checkpoint_every=checkpoint_every, checkpoint_min_s=checkpoint_min_s,
                       on_checkpoint=on_checkpoint, resume=resume)
    model = ens.to_module(res.params, 0).eval()
    return model, res.rows, res.code_nats, res.code_examples, res.wall_s


def description_bits(model: GPT) -> dict:
    """The model's own size: raw float32 bits, and xz-compressed float32 weights (a two-part code's
    first part; a smarter weight code would be shorter)."""
    import lzma
    raw = b"".join(p.detach().cpu().float().contiguous().numpy().tobytes() for p in model.parameters())
    return {"float32_bits": 8 * len(raw), "xz_bits": 8 * len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))}


def checkpoint_policy(train_cfg) -> tuple[int, float]:
    """(every k steps, at least s seconds apart): train.checkpoint_every, or 0 = at log steps, once a minute."""
    if train_cfg.checkpoint_every:
        return train_cfg.checkpoint_every, 0.0
    return train_cfg.log_every, 60.0


def run_train(cfg: CompressConfig, root: Path | str | None = None, on_progress=None, on_log=None,
              resume: Path | None = None) -> dict:
    """Train, store (config, env, metrics, weights, figures, summary) and return the summary. With `resume`
    (the folder of an interrupted run of this config) training continues from its last checkpoint and ends
    with the metrics and weights of an uninterrupted run."""
    t0 = time.perf_counter()
    dev = devmod.setup(cfg.train.device, cfg.train.threads)
    env = devmod.environment(dev)
    ctx = (store.reopen_run(resume, env) if resume is not None
           else store.open_run(root or store.default_root(), cfg.name, cfg.to_toml(), env))
    with ctx as run:
        return _train_and_write(cfg, run, dev, t0, on_progress, on_log)


def _train_and_write(cfg: CompressConfig, run: store.Run, dev, t0: float, on_progress, on_log) -> dict:
    from groklab.labs.compression import figures

    fmt = cfg.fmt()
    state = run.read_checkpoint()

    def on_step(done: int, active: int) -> None:
        if done > 0 and not run.started:
            run.mark_started()  # from here an error keeps the folder (resume with --resume)
        if on_progress:
            on_progress(done, active)

    every, min_s = checkpoint_policy(cfg.train)
    model, rows, preq_nats, preq_examples, train_wall = train_model(
        cfg, dev, on_step, on_log, checkpoint_every=every, checkpoint_min_s=min_s,
        on_checkpoint=run.write_checkpoint, resume=state)
    model = model.cpu().eval()
    weights = {k: v.contiguous() for k, v in model.state_dict().items()}
    mhash = model_hash(weights, arch_toml(cfg))
    store.atomic_write(run.path / WEIGHTS, lambda t: save_file(weights, str(t), metadata={
        "model_hash": mhash, "arch": arch_toml(cfg)}))
    run.write_table("metrics.parquet", long_rows(rows))
    last = {m: v for (s, m, v, p) in rows if p < 0 and m in ("val_loss", "exact_match")}
    floor = fmt.floor()
    n_seen = preq_examples  # the seed's-distribution examples of the stream (carry_boost rows excluded)
    bits_final = fmt.bits_per_example(last["val_loss"])
    desc = description_bits(model)
    floor_bits = fmt.floor_bits()
    preq = {"examples": n_seen, "total_bits": preq_nats / LN2, "bits_per_example": preq_nats / LN2 / n_seen,
            "floor_bits_per_example": floor_bits,
            "excess_bits": preq_nats / LN2 - n_seen * floor_bits}
    two_part = {"final_bits_per_example": bits_final, "description_bits": desc,
                "total_bits": desc["xz_bits"] + n_seen * bits_final}
    uniform_bits = fmt.n_targets * math.log2(14)
    two_part["pays_for_itself_after"] = math.ceil(desc["xz_bits"] / max(1e-9, uniform_bits - bits_final))
    summary = {
        "lab": "compression", "preset": cfg.name, "run_dir": str(run.path), "run_id": run.id,
        "val_loss": last["val_loss"], "floor": floor, "gap_pct": 100 * (last["val_loss"] / floor - 1),
        "exact_match": last["exact_match"], "val_examples": cfg.data.val_examples, "steps": cfg.train.steps,
        "examples_seen": cfg.train.steps * cfg.train.batch_size, "n_params": model.n_params(), "model_hash": mhash,
        "device": str(dev), "threads": torch.get_num_threads(),
        "train_wall_s": round(train_wall, 3), "prequential": preq, "two_part": two_part,
        "resumed_from": state[1]["step"] if state else None,
    }
    figs = figures.draw_run(run.path, fmt, cfg.name)
    summary["figures"] = [str(f) for f in figs]
    summary["wall_s"] = round(time.perf_counter() - t0, 3)
    run.write_json("summary.json", summary)
    run.complete()
    return summary
