"""The compression lab's stage of `groklab tour`: train a small addition GPT (one pass over fresh examples),
then code fresh held-out examples with it through the real range coder (encode, decode, byte-exact check)
and compare the code length with gzip, bz2, xz, zstd and brotli and with the entropy floor."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from groklab.tour import Progress, Stage

# `addition-tiny` overrides per tour size: (name, overrides, fresh examples to code). Measured, one thread:
# quick 87 s of training, held-out loss 1.3% above the floor, exact match 95.6%, 20.37 bits/example (floor
# 19.93, bz2 37.24); full 262 s, +0.012%, exact match 100%, 26.66 bits/example (floor 26.58, xz 51.39).
SETS = {
    "tiny": ("addition-tiny", ["train.threads=0"], 200),
    "quick": ("addition3-tour", ["data.n_digits=3", "data.val_examples=2000", "model.layers=2", "model.heads=4",
                                 "model.width=64", "model.rope=true", "optim.warmup=50", "train.steps=1500",
                                 "train.batch_size=128", "train.log_every=250", "train.eval_batch=2000",
                                 "train.threads=1"], 5000),
    "full": ("addition4-tour", ["data.n_digits=4", "data.val_examples=5000", "model.layers=2", "model.heads=4",
                                "model.width=64", "model.rope=true", "optim.warmup=100", "optim.min_lr_frac=0.05",
                                "train.steps=6000", "train.batch_size=128", "train.log_every=500",
                                "train.eval_batch=2500", "train.threads=1"], 10_000),
}
COST_S = {"tiny": 5, "quick": 70, "full": 270}
CHUNK = 2000  # examples per forward pass of the coder


def stages(size: str) -> list[Stage]:
    return [Stage("compression", "addition GPT", "range-coded fresh examples vs the floor and gzip/bz2/xz/zstd/brotli",
                  partial(run_compress_stage, size), COST_S[size])]


def run_compress_stage(size: str, root: Path, on_progress: Progress) -> dict:
    from groklab import store
    from groklab.data.addition import format_text
    from groklab.labs.compression import config as cconfig
    from groklab.labs.compression.compare import compare_file
    from groklab.labs.compression.train import TEST_SEED, held_out, load_model, run_train

    name, sets, n_fresh = SETS[size]
    cfg = cconfig.load("addition-tiny", None, sets)
    if name != "addition-tiny":
        cfg.name, cfg.source = name, "groklab tour: the addition-tiny preset with the tour's overrides"
        cfg.description = (f"groklab tour ({size}): {cfg.data.n_digits}-digit addition, {cfg.model.layers}-layer "
                           f"rotary GPT of width {cfg.model.width}, one pass over fresh examples")
    steps = cfg.train.steps
    info = [""]

    def on_log(step, ev):
        info[0] = f"val {ev['loss']:.4f} em {ev['exact_match']:.3f}"

    s = run_train(cfg, root, on_progress=lambda done, _: on_progress(done, steps + 1, info[0]), on_log=on_log)
    on_progress(steps, steps + 1, "coding fresh examples")
    model, mcfg, mhash, path = load_model(s["run_dir"])
    fmt = mcfg.fmt()
    # fresh examples: the held-out test stream (disjoint from the training stream and the validation set)
    seed = mcfg.data.seed + TEST_SEED
    data = format_text(held_out(fmt, n_fresh, seed)).encode("ascii")
    res = compare_file(model, mhash, fmt, data, CHUNK, "fresh examples")  # encode, decode, compare bytes
    store.atomic_write_bytes(path / "coder.json", _dumps({"examples_seed": seed, "chunk": CHUNK, **res}))
    bpe = res["bits_per_example"]
    best = min((k for k in bpe if k != "model"), key=bpe.get)
    head = {"val_loss": s["val_loss"], "floor": s["floor"], "gap_pct": s["gap_pct"],
            "exact_match": s["exact_match"], "n_params": s["n_params"], "fresh_examples": res["n_examples"],
            "model_bits_per_example": bpe["model"], "floor_bits_per_example": res["floor_bits_per_example"],
            "best_classical": best, "best_classical_bits_per_example": bpe[best],
            "roundtrip_ok": res["detail"]["model"]["roundtrip_ok"]}
    text = (f"{bpe['model']:.2f} bits/example (floor {res['floor_bits_per_example']:.2f}, {best} {bpe[best]:.2f}), "
            f"round trip {'byte-exact' if head['roundtrip_ok'] else 'FAILED'}; exact match {s['exact_match']:.1%}")
    return {"lab": "compression", "run_dir": s["run_dir"], "headline": head, "text": text}


def _dumps(obj) -> bytes:
    import json

    from groklab import store
    return (json.dumps(obj, indent=2, default=store._json_default) + "\n").encode()
