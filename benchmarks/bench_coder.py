"""Arithmetic-coder throughput on CPU: constriction's range coder alone, and end to end with the GPT.

    python benchmarks/bench_coder.py [--model RUN] [--examples 10000] [--threads 2] [--chunk 2000]

Without --model a randomly initialized GPT of the addition8-cpu shape is used (throughput does not depend
on the weights). Prints one JSON object; the numbers go to the compression section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import constriction
import numpy as np
import torch

from groklab.data.addition import format_text
from groklab.engine import device as devmod
from groklab.labs.compression import coder
from groklab.labs.compression.config import load
from groklab.labs.compression.train import arch_toml, load_model, model_hash
from groklab.nn.gpt import GPT


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def range_coder_only(n_tokens: int, repeat: int) -> dict:
    """Encode/decode n_tokens symbols over 14 letters with a per-symbol probability row."""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(14, 0.3), size=n_tokens)  # (n, 14) float64
    sym = np.array([rng.choice(14, p=p) for p in probs[:2000]] * (n_tokens // 2000), dtype=np.int32)
    probs = probs[: len(sym)]
    fam = constriction.stream.model.Categorical(perfect=False)
    words = None

    def enc():
        nonlocal words
        e = constriction.stream.queue.RangeEncoder()
        e.encode(sym, fam, probs)
        words = e.get_compressed()

    t_enc = best_of(enc, repeat)

    def dec():
        d = constriction.stream.queue.RangeDecoder(words)
        assert np.array_equal(d.decode(fam, probs), sym)

    t_dec = best_of(dec, repeat)
    return {"tokens": len(sym), "encode_tokens_per_s": len(sym) / t_enc, "decode_tokens_per_s": len(sym) / t_dec}


def with_model(model: GPT, mhash: str, fmt, n: int, chunk: int, repeat: int) -> dict:
    data = format_text(fmt.sample(n, torch.Generator().manual_seed(123))).encode()
    blob = coder.encode_bytes(model, mhash, fmt, data, chunk)
    t_enc = best_of(lambda: coder.encode_bytes(model, mhash, fmt, data, chunk), repeat)
    out = {}
    t_dec = best_of(lambda: out.setdefault("d", coder.decode_bytes(model, mhash, fmt, blob)), repeat)
    assert out["d"] == data
    tokens = n * fmt.n_targets
    return {"examples": n, "tokens": tokens, "n_params": model.n_params(), "chunk": chunk,
            "encode_tokens_per_s": tokens / t_enc, "decode_tokens_per_s": tokens / t_dec,
            "bits_per_example": 8 * len(blob) / n}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="run folder of a compress train run")
    ap.add_argument("--examples", type=int, default=10_000)
    ap.add_argument("--chunk", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    devmod.setup("cpu", a.threads)
    if a.model:
        model, cfg, mhash, _ = load_model(a.model)
    else:
        cfg = load("addition8-cpu")
        torch.manual_seed(0)
        model = GPT(cfg.shape()).eval()
        mhash = model_hash(model.state_dict(), arch_toml(cfg))
    res = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "model": a.model or "random addition8-cpu shape",
           "range_coder_only": range_coder_only(a.examples * 28, a.repeat),
           "with_model": with_model(model, mhash, cfg.fmt(), a.examples, a.chunk, a.repeat)}
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
