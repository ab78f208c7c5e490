"""The compression lab on the engine: config upgrade and presets (same lr curve as before), the stream loop's
prequential code and carry-boost masking, determinism and checkpoint/resume."""

import math

import pytest
import torch

from groklab import store
from groklab.config import from_dict, load_preset_raw, preset_names
from groklab.engine.schedule import lr_factor
from groklab.engine.stream import StreamBatch, stream_loss, stream_nll
from groklab.labs.compression import config as cconfig
from groklab.labs.compression.config import CompressConfig
from groklab.labs.compression.train import AdditionStream, ensemble, train_model

CPU = torch.device("cpu")


def _old_lr_at(step: int, lr: float, n: int, warmup: int, cooldown: int, min_lr_frac: float) -> float:
    """The compression lab's lr_at before the engine (0-based step), copied as the reference."""
    if step < warmup:
        return lr * (step + 1) / warmup
    if step >= n - cooldown:
        return lr * min_lr_frac * (n - step) / cooldown
    t = (step - warmup) / max(1, n - cooldown - warmup)
    return lr * (min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + math.cos(math.pi * t)))


def _lrs(cfg: CompressConfig) -> list[float]:
    o, n = cfg.optim, cfg.train.steps
    return [o.lr * lr_factor(s + 1, o.warmup, n, o.schedule, o.min_lr_frac, o.cooldown) for s in range(n)]


OLD_RUN_OPTIM = {"lr": 3e-3, "min_lr_frac": 0.05, "warmup": 20, "cooldown": 30, "weight_decay": 0.1,
                 "beta1": 0.9, "beta2": 0.98, "grad_clip": 0.5}  # an old run folder's [optim], written in full


def test_old_run_config_loads_with_the_same_meaning():
    raw = {"lab": "compression", "optim": dict(OLD_RUN_OPTIM), "train": {"steps": 200}}
    cfg = from_dict(raw, CompressConfig())
    o = cfg.optim
    assert (o.schedule, o.clip, o.weight_decay, o.name, o.decay) == ("cosine", 0.5, 0.1, "adamw", "l2")
    assert _lrs(cfg) == pytest.approx([_old_lr_at(s, 3e-3, 200, 20, 30, 0.05) for s in range(200)], rel=1e-12)
    partial = from_dict({"lab": "compression", "optim": {"min_lr_frac": 0.2}}, CompressConfig())  # old file
    assert (partial.optim.schedule, partial.optim.clip, partial.optim.weight_decay) == ("cosine", 1.0, 0.1)
    new = from_dict({"lab": "compression", "optim": {"lr": 1e-2}}, CompressConfig())  # not an old layout
    assert new.optim.schedule == "constant" and new.optim.lr == 1e-2


@pytest.mark.parametrize("name", preset_names("compression"))
def test_presets_keep_their_lr_curve_clip_and_decay(name):
    """Every preset had (implicitly) weight decay 0.1 and clipping 1.0, and a cosine to min_lr_frac."""
    raw = load_preset_raw(name)
    cfg = cconfig.load(name)
    old_frac = raw["optim"].get("min_lr_frac", 1.0) if cfg.optim.schedule == "cosine" else 1.0
    o, n = cfg.optim, cfg.train.steps
    assert _lrs(cfg) == pytest.approx([_old_lr_at(s, o.lr, n, o.warmup, o.cooldown, old_frac) for s in range(n)],
                                      rel=1e-12)
    assert (o.weight_decay, o.clip, o.beta2) == (0.1, 1.0, 0.98)


def tiny(*overrides: str) -> CompressConfig:
    return cconfig.load("addition-tiny", overrides=["train.steps=24", "train.log_every=8", "data.val_examples=100",
                                                    *overrides])


def test_carry_boost_rows_train_on_answer_positions_only():
    cfg = tiny("data.carry_boost=0.25")
    stream = AdditionStream([cfg.fmt()], cfg)
    batch = stream.next()
    assert batch.tokens.shape == (64, cfg.fmt().seq_len) and batch.n_code == 48
    nll = torch.rand(64, cfg.fmt().n_targets)  # (B, T-1)
    ans = cfg.fmt().answer_slice
    want = (nll[:48].sum() + nll[48:, ans].sum()) / (48 * nll.shape[1] + 16 * nll[0, ans].numel())
    torch.testing.assert_close(stream_loss(nll, batch), want)
    assert stream_loss(nll, StreamBatch(batch.tokens, 64, ans)) == nll.mean()


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_train_loss_is_the_eval_mode_code_before_the_update(dropout):
    """Row step 0 of train_loss = the untrained model's eval-mode loss on the first batch's coded rows."""
    cfg = tiny(f"model.dropout={dropout}", "data.carry_boost=0.25", "train.steps=2", "optim.warmup=1")
    _, rows, nats, examples, _ = train_model(cfg, CPU)
    batch = AdditionStream([cfg.fmt()], cfg).next()
    x = batch.tokens[:batch.n_code]
    model = ensemble(cfg)[0].build(cfg.train.seed).eval()
    with torch.no_grad():
        want = float(stream_nll(model(x[:, :-1]), x).mean())
    first = [v for s, m, v, p in rows if m == "train_loss"]
    assert first[0] == pytest.approx(want, rel=1e-6) and len(first) == 2 and examples == 2 * 48
    assert nats == pytest.approx(sum(first) * 48 * cfg.fmt().n_targets, rel=1e-12)


def _state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_same_rows_and_resume_is_exact(tmp_path):
    cfg = tiny("data.carry_boost=0.25", "model.rope=true", "optim.cooldown=6", "optim.grokfast=ema")
    model, rows, nats, n, _ = train_model(cfg, CPU)
    model2, rows2, nats2, n2, _ = train_model(cfg, CPU)
    assert rows == rows2 and nats == nats2 and n == n2
    assert all(torch.equal(a, b) for a, b in zip(_state(model).values(), _state(model2).values()))
    run = store.Run.create(tmp_path, "ck")
    seen = []

    def on_checkpoint(tensors, meta):
        seen.append(meta["step"])
        if meta["step"] == 12:  # through the store: safetensors + JSON meta, read back
            run.write_checkpoint(tensors, meta)

    train_model(cfg, CPU, checkpoint_every=6, on_checkpoint=on_checkpoint)
    assert seen == [6, 12, 18]
    resumed = train_model(cfg, CPU, resume=run.read_checkpoint())
    assert resumed[1] == rows and resumed[2] == nats and resumed[3] == n
    assert all(torch.equal(a, b) for a, b in zip(_state(resumed[0]).values(), _state(model).values()))
