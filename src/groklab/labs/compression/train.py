"""`groklab compress train`: one pass over fresh addition examples; the loss of each fresh batch before
its update is the prequential code length. Logs held-out loss, exact match and per-position loss."""

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
def evaluate(model: GPT, tokens: torch.Tensor, fmt: Addition, batch: int, dev) -> dict:
    """Eval-mode loss per target position, mean loss and exact match.

    Exact match = every answer digit and `e` is the argmax given the true prefix; by induction this is
    the same as greedy decoding of the whole answer, at the cost of one forward pass."""
    was = model.training
    model.eval()
    pos_sum = torch.zeros(fmt.n_targets, dtype=torch.float64)
    hits = 0
    for i in range(0, len(tokens), batch):
        x = tokens[i:i + batch].to(dev)  # (b, T)
        logits = model(x[:, :-1])  # (b, T-1, V)
        nll = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")  # (b, T-1)
        pos_sum += nll.double().sum(0).cpu()
        ans = fmt.answer_slice
        hits += int((logits[:, ans].argmax(-1) == x[:, 1:][:, ans]).all(1).sum())
    model.train(was)
    pos = (pos_sum / len(tokens)).numpy()
    return {"loss": float(pos.mean()), "pos_loss": pos, "exact_match": hits / len(tokens)}


def lr_at(step: int, cfg: CompressConfig) -> float:
    """Linear warm-up, cosine from lr to lr * min_lr_frac, then (optim.cooldown) linear from there to 0."""
    o, n = cfg.optim, cfg.train.steps
    if step < o.warmup:
        return o.lr * (step + 1) / o.warmup
    if step >= n - o.cooldown:
        return o.lr * o.min_lr_frac * (n - step) / o.cooldown
    t = (step - o.warmup) / max(1, n - o.cooldown - o.warmup)
    return o.lr * (o.min_lr_frac + (1 - o.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


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


def train_batch(fmts: list[Addition], cfg: CompressConfig, stream: torch.Generator) -> tuple[torch.Tensor, int]:
    """One fresh training batch: (tokens (B, T), n_seed) — the first n_seed rows follow the seed's
    distribution (they are the prequential code); the rest carry planted carry chains (data.carry_boost)
    and are trained on their answer positions only, so the operand statistics stay the seed's."""
    b = cfg.train.batch_size
    n_boost = int(round(b * cfg.data.carry_boost)) if len(fmts) == 1 else 0
    x = mixture_sample(fmts, b - n_boost, stream)
    if n_boost:
        x = torch.cat([x, fmts[0].sample(n_boost, stream, chains=True)])
    return x, b - n_boost


def train_model(cfg: CompressConfig, dev, on_progress=None, on_log=None, fmts: list[Addition] | None = None):
    """The training loop. Returns (model, rows, prequential_nats, prequential_examples, wall_s).

    fmts: train on an even mixture of these formats instead of cfg's (joint compression)."""
    fmt = cfg.fmt()
    fmts = fmts or [fmt]
    t, o = cfg.train, cfg.optim
    torch.manual_seed(t.seed)
    model = GPT(cfg.shape()).to(dev)
    opt = torch.optim.AdamW(model.param_groups(o.weight_decay), lr=o.lr, betas=(o.beta1, o.beta2))
    stream = torch.Generator().manual_seed(cfg.data.seed)
    val = mixture_sample(fmts, cfg.data.val_examples, torch.Generator().manual_seed(cfg.data.seed + VAL_SEED))
    rows: list[tuple[int, str, float, int]] = []
    floor_pos = np.mean([f.floor_per_target() for f in fmts], axis=0)
    preq_nats, preq_examples = 0.0, 0
    t0 = time.perf_counter()

    def log_eval(step: int) -> None:
        ev = evaluate(model, val, fmt, t.eval_batch, dev)
        rows.extend([(step, "val_loss", ev["loss"], -1), (step, "exact_match", ev["exact_match"], -1)])
        rows.extend((step, "pos_loss", float(v), i) for i, v in enumerate(ev["pos_loss"]))
        rows.append((step, "epistemic", float(ev["loss"] - floor_pos.mean()), -1))
        if on_log:
            on_log(step, ev)

    log_eval(0)
    model.train()
    for step in range(t.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        x, n_seed = train_batch(fmts, cfg, stream)  # (B, T) fresh examples, each seen once
        x = x.to(dev)
        logits = model(x[:, :-1])  # (B, T-1, V)
        nll = F.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none")  # (B, T-1)
        loss = nll.mean()
        if n_seed < len(x):  # planted-chain rows teach only the answer: their operands are not the seed's
            loss = torch.cat([nll[:n_seed].flatten(), nll[n_seed:, fmt.answer_slice].flatten()]).mean()
        if cfg.model.dropout > 0:  # the code length must be the eval-mode loss before the update
            with torch.no_grad():
                model.eval()
                pre = F.cross_entropy(model(x[:n_seed, :-1]).transpose(1, 2), x[:n_seed, 1:]).detach()
                model.train()
        else:
            pre = nll[:n_seed].detach().mean()
        pre_v = float(pre)
        if not math.isfinite(pre_v):
            raise GroklabError(f"optim.lr: training diverged (loss {pre_v}) at step {step}; lower the lr")
        # step 0 is coded with the untrained model's distribution: a real first block a decoder can replay
        preq_nats += pre_v * x[:n_seed, 1:].numel()  # mean nats/token x tokens
        preq_examples += n_seed
        rows.append((step, "train_loss", pre_v, -1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if o.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip)
        opt.step()
        done = step + 1
        if done % t.log_every == 0 or done == t.steps:
            log_eval(done)
        if on_progress:
            on_progress(done, 1)
    return model, rows, preq_nats, preq_examples, time.perf_counter() - t0


def description_bits(model: GPT) -> dict:
    """The model's own size: raw float32 bits, and xz-compressed float32 weights (a two-part code's
    first part; a smarter weight code would be shorter)."""
    import lzma
    raw = b"".join(p.detach().cpu().float().contiguous().numpy().tobytes() for p in model.parameters())
    return {"float32_bits": 8 * len(raw), "xz_bits": 8 * len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))}


def run_train(cfg: CompressConfig, root: Path | str | None = None, on_progress=None, on_log=None) -> dict:
    """Train, store (config, env, metrics, weights, figures, summary) and return the summary."""
    from groklab.labs.compression import figures

    t0 = time.perf_counter()
    dev = devmod.setup(cfg.train.device, cfg.train.threads)
    fmt = cfg.fmt()
    run = store.Run.create(root or store.default_root(), cfg.name)
    try:
        run.write_text("config.toml", cfg.to_toml())
        run.write_json("env.json", devmod.environment(dev))
        model, rows, preq_nats, preq_examples, train_wall = train_model(cfg, dev, on_progress, on_log)
    except BaseException:
        run.abandon()
        raise
    model = model.cpu().eval()
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    mhash = model_hash(state, arch_toml(cfg))
    store.atomic_write(run.path / WEIGHTS, lambda t: save_file(state, str(t), metadata={
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
    }
    figs = figures.draw_run(run.path, fmt, cfg.name)
    summary["figures"] = [str(f) for f in figs]
    summary["wall_s"] = round(time.perf_counter() - t0, 3)
    run.write_json("summary.json", summary)
    run.complete()
    return summary
