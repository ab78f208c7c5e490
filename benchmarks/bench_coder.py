"""Arithmetic-coder throughput on CPU: constriction's range coder alone, and end to end with the GPT.

    python benchmarks/bench_coder.py [--model RUN[,RUN...]] [--examples 10000] [--threads 1,2] [--chunk 2000]
                                     [--write]

Several --model runs are measured side by side (e.g. addition8-cpu's model and addition8-small's). Without
--model a randomly initialized GPT of the addition8-cpu shape is used (throughput does not depend on the
weights). Prints a JSON line per thread count and a table; --write puts the table into the compression section
of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import constriction
import numpy as np
import torch
from common import report

from groklab.engine import device as devmod
from groklab.labs.compression import coder
from groklab.labs.compression.config import load
from groklab.labs.compression.train import load_model
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


def with_model(model: GPT, fmt, n: int, chunk: int, repeat: int, version: int, precision: str) -> dict:
    """The coder's two passes with the model, as `compress encode/decode` run them, for one file version:
    1 = `GPT.step` (before), 2 = `nn/gpt_step.IncrementalGPT` with fp32 or bf16 matmuls (after)."""
    tokens = fmt.sample(n, torch.Generator().manual_seed(123))  # (n, T)
    step = coder.stepper(model, version, precision)
    words = coder.encode_tokens(step, tokens, chunk)
    t_enc = best_of(lambda: coder.encode_tokens(step, tokens, chunk), repeat)
    out = {}
    t_dec = best_of(lambda: out.setdefault("d", coder.decode_tokens(step, words, n, fmt.seq_len, chunk)), repeat)
    assert torch.equal(out["d"], tokens)
    n_tok = n * fmt.n_targets
    return {"examples": n, "tokens": n_tok, "n_params": model.n_params(), "chunk": chunk, "version": version,
            "precision": precision, "encode_tokens_per_s": n_tok / t_enc, "decode_tokens_per_s": n_tok / t_dec,
            "bits_per_example": 32 * len(words) / n, "floor_bits_per_example": fmt.floor_bits()}


VARIANTS = [(1, "fp32", "before: `GPT.step` op by op (file version 1)"),
            (2, "fp32", "after: folded `IncrementalGPT`, fp32 (version 2, default)"),
            (2, "bf16", "after: folded `IncrementalGPT`, bf16 matmuls (`--precision bf16`)")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="run folder(s) of compress train runs, comma-separated")
    ap.add_argument("--examples", type=int, default=10_000)
    ap.add_argument("--chunk", type=int, default=2000)
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts, each measured")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--write", action="store_true", help="put the table into BENCHMARKS.md")
    a = ap.parse_args()
    if a.model:
        models = [(run, *load_model(run)[:2]) for run in a.model.split(",")]
    else:
        torch.manual_seed(0)
        cfg8 = load("addition8-cpu")
        models = [("random weights of the addition8-cpu shape", GPT(cfg8.shape()).eval(), cfg8)]
    cfg = models[0][2]
    load0 = os.getloadavg()[0]
    lines = [f"Measured {time.strftime('%Y-%m-%d %H:%M')} UTC on {platform.machine()} ({os.cpu_count()} cores), "
             f"torch {torch.__version__}, load average {load0:.2f} at start; models: "
             + "; ".join(f"{who} ({m.n_params():,} parameters)" for who, m, _ in models)
             + f"; {a.examples:,} examples = {a.examples * cfg.fmt().n_targets:,} coded tokens, chunk {a.chunk}, "
             f"best of {a.repeat}.", "",
             "| what | parameters | threads | encode tokens/s | decode tokens/s | round trip tokens/s | bits / floor "
             "| vs before |", "|---|---|---|---|---|---|---|---|"]
    for threads in (int(t) for t in a.threads.split(",")):
        devmod.setup("cpu", threads)
        rc = range_coder_only(a.examples * cfg.fmt().n_targets, a.repeat)
        print(json.dumps({"threads": threads, "range_coder_only": rc}), flush=True)
        lines.append(f"| constriction range coder alone (Categorical, perfect=False, 14 symbols) | | {threads} | "
                     f"{rc['encode_tokens_per_s'] / 1e6:.1f} M | {rc['decode_tokens_per_s'] / 1e6:.1f} M | | | |")
        base = None  # the first model's first variant at this thread count
        for _who, model, mcfg in models:
            for version, precision, what in VARIANTS:
                wm = with_model(model, mcfg.fmt(), a.examples, a.chunk, a.repeat, version, precision)
                print(json.dumps({"threads": threads, "with_model": wm}), flush=True)
                rt = 1 / (1 / wm["encode_tokens_per_s"] + 1 / wm["decode_tokens_per_s"])
                base = base or rt
                lines.append(f"| {what}, {a.chunk:,}-example chunks | {model.n_params():,} | {threads} | "
                             f"{wm['encode_tokens_per_s'] / 1e3:.1f} k | {wm['decode_tokens_per_s'] / 1e3:.1f} k | "
                             f"{rt / 1e3:.1f} k | "
                             f"{wm['bits_per_example'] / wm['floor_bits_per_example']:.5f} | {rt / base:.2f}x |")
    report("\n".join(lines), "coder-bench", a.write)


if __name__ == "__main__":
    main()
