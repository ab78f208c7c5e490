"""The model's arithmetic code against classical compressors on one file."""

from __future__ import annotations

import time

from groklab.data.addition import Addition
from groklab.labs.compression import baselines, coder
from groklab.nn.gpt import GPT


def compare_file(model: GPT, mhash: str, fmt: Addition, data: bytes, chunk: int, where: str = "IN") -> dict:
    """Sizes in bits per example / per character, ratio to the entropy floor, and round trips."""
    t0 = time.perf_counter()
    blob = coder.encode_bytes(model, mhash, fmt, data, chunk, where)  # validates the file first
    enc_s = time.perf_counter() - t0
    n = coder.read_header(blob)["n_examples"]
    t0 = time.perf_counter()
    model_ok = coder.decode_bytes(model, mhash, fmt, blob, where) == data
    dec_s = time.perf_counter() - t0
    floor_bpe = fmt.floor_bits()
    sizes = {name: r for name, r in baselines.measure(data).items()}
    sizes["model"] = {"bytes": len(blob), "roundtrip_ok": model_ok, "settings": f"range coder, chunk {chunk}",
                      "payload_bytes": len(blob) - coder.HEADER_BYTES}
    detail = {}
    for name, r in sizes.items():
        bpe = 8 * r["bytes"] / n
        detail[name] = {**r, "bits_per_example": bpe, "bits_per_char": 8 * r["bytes"] / len(data),
                        "ratio_to_floor": bpe / floor_bpe}
    tokens = n * fmt.n_targets
    return {"n_examples": n, "bytes": len(data), "floor_bits_per_example": floor_bpe,
            "bits_per_example": {k: v["bits_per_example"] for k, v in detail.items()},
            "roundtrip_ok": all(v["roundtrip_ok"] for v in detail.values()),
            "model_encode_tokens_per_s": tokens / enc_s, "model_decode_tokens_per_s": tokens / dec_s,
            "detail": detail}
