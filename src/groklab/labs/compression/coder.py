"""Arithmetic coding of addition examples with a trained GPT (constriction's range coder).

File layout (little-endian):
  magic b"GLAC" | version u8 | flags u8 (bit 0: input ended with a newline; bit 1: bfloat16 matmuls) | chunk u32 |
  n_examples u64 | model sha256 (32 B) | original sha256 (32 B) | payload words u64 | payload crc32 u32 |
  header crc32 u32 | payload: u32 words of the range coder

Symbols are coded chunk by chunk (`chunk` examples, the last one shorter), position-major inside a
chunk. Encoder and decoder both compute the probabilities with the model's incremental (key/value
cache) forward, one position of the whole chunk per call: the same calls on the same shapes, so they
see bit-identical probabilities (given the same torch build and device); the checksum of the original
catches any mismatch. Version 2 runs `nn/gpt_step.IncrementalGPT` (weights folded once per model, matmuls
in float32 or, with flag bit 1, bfloat16); version 1 files (`GPT.step`) still decode.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from pathlib import Path

import constriction
import numpy as np
import torch

from groklab import GroklabError
from groklab.data.addition import Addition, S, format_text, parse_lines
from groklab.nn.gpt import GPT
from groklab.nn.gpt_step import IncrementalGPT

MAGIC = b"GLAC"
VERSION = 2
VERSIONS = (1, 2)  # version 1: probabilities from GPT.step (decode only)
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}
HEAD = struct.Struct("<4sBBIQ32s32sQI")
HEAD_CRC = struct.Struct("<I")
HEADER_BYTES = HEAD.size + HEAD_CRC.size


def _family():
    return constriction.stream.model.Categorical(perfect=False)


def _next_probs(model, tok: torch.Tensor, t: int, cache) -> np.ndarray:
    """Probabilities of the token after position t. # (b,) -> (b, V) float64 (exact copy of float32)"""
    return np.ascontiguousarray(torch.softmax(model.step(tok, t, cache).float(), dim=-1).double().numpy())


def check_precision(precision: str) -> None:
    if precision not in PRECISIONS:
        raise GroklabError(f"--precision: unknown {precision!r}; allowed: {', '.join(PRECISIONS)}")


def stepper(model: GPT, version: int = VERSION, precision: str = "fp32"):
    """The object whose `new_cache`/`step` compute the coder's probabilities for this file version."""
    check_precision(precision)
    if version == 1:
        return model
    return IncrementalGPT(model, PRECISIONS[precision])


def encode_tokens(model, tokens: torch.Tensor, chunk: int) -> np.ndarray:
    """Range-code every target (tokens[:, 1:]) with `model` (a `stepper`). # (n, T) -> compressed u32 words"""
    enc = constriction.stream.queue.RangeEncoder()
    fam = _family()
    for i in range(0, len(tokens), chunk):
        x = tokens[i:i + chunk]  # (b, T)
        cache = model.new_cache(len(x))
        for t in range(x.shape[1] - 1):
            p = _next_probs(model, x[:, t], t, cache)  # (b, V)
            enc.encode(x[:, t + 1].to(torch.int32).numpy(), fam, p)
    return enc.get_compressed()


def decode_tokens(model, words: np.ndarray, n: int, seq_len: int, chunk: int) -> torch.Tensor:
    """Inverse of encode_tokens: the same calls in the same order. # -> (n, T) int64"""
    dec = constriction.stream.queue.RangeDecoder(words)
    fam = _family()
    out = []
    for i in range(0, n, chunk):
        b = min(chunk, n - i)
        x = torch.empty(b, seq_len, dtype=torch.int64)  # (b, T)
        x[:, 0] = S
        cache = model.new_cache(b)
        for t in range(seq_len - 1):
            p = _next_probs(model, x[:, t], t, cache)  # (b, V)
            x[:, t + 1] = torch.from_numpy(np.asarray(dec.decode(fam, p), dtype=np.int64))
        out.append(x)
    return torch.cat(out)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def encode_bytes(model: GPT, mhash: str, fmt: Addition, data: bytes, chunk: int, where: str = "IN",
                 precision: str = "fp32") -> bytes:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as e:
        raise GroklabError(f"{where}: byte {e.start} is not ASCII; expected addition examples, one per line") from None
    tokens, trailing = parse_lines(text, fmt, where)
    step = stepper(model, VERSION, precision)
    words = np.ascontiguousarray(encode_tokens(step, tokens, chunk), dtype="<u4")
    payload = words.tobytes()
    flags = int(trailing) | (2 if precision == "bf16" else 0)
    head = HEAD.pack(MAGIC, VERSION, flags, chunk, len(tokens), bytes.fromhex(mhash), sha256(data),
                     len(words), zlib.crc32(payload))
    return head + HEAD_CRC.pack(zlib.crc32(head)) + payload


def read_header(blob: bytes, where: str = "IN") -> dict:
    if len(blob) < 4 or blob[:4] != MAGIC:
        raise GroklabError(f"{where}: not a groklab compressed file (bad magic); "
                           "write one with `groklab compress encode`")
    if len(blob) < HEADER_BYTES:
        raise GroklabError(f"{where}: truncated: {len(blob)} bytes, shorter than the {HEADER_BYTES}-byte header")
    head = blob[:HEAD.size]
    (crc,) = HEAD_CRC.unpack(blob[HEAD.size:HEADER_BYTES])
    if zlib.crc32(head) != crc:
        raise GroklabError(f"{where}: corrupted header (crc32 mismatch)")
    magic, ver, flags, chunk, n, mh, orig, nwords, pcrc = HEAD.unpack(head)
    if ver not in VERSIONS:
        raise GroklabError(f"{where}: format version {ver} is not supported; allowed: {', '.join(map(str, VERSIONS))}")
    if flags & ~3 or (ver == 1 and flags & 2):
        raise GroklabError(f"{where}: unknown flags {flags:#04x} in the header")
    return {"version": ver, "trailing": bool(flags & 1), "precision": "bf16" if flags & 2 else "fp32",
            "chunk": chunk, "n_examples": n, "model_hash": mh.hex(),
            "sha256": orig, "n_words": nwords, "payload_crc": pcrc}


def decode_bytes(model: GPT, mhash: str, fmt: Addition, blob: bytes, where: str = "IN") -> bytes:
    h = read_header(blob, where)
    if h["model_hash"] != mhash:
        raise GroklabError(f"--model: wrong model; {where} was encoded with model {h['model_hash'][:12]}, "
                           f"this run's model is {mhash[:12]}")
    payload = blob[HEADER_BYTES:]
    if len(payload) < 4 * h["n_words"]:
        raise GroklabError(f"{where}: truncated: payload has {len(payload)} of {4 * h['n_words']} bytes")
    if len(payload) > 4 * h["n_words"]:
        raise GroklabError(f"{where}: {len(payload) - 4 * h['n_words']} unexpected bytes after the payload")
    if zlib.crc32(payload) != h["payload_crc"]:
        raise GroklabError(f"{where}: corrupted payload (crc32 mismatch)")
    words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    step = stepper(model, h["version"], h["precision"])
    try:
        tokens = decode_tokens(step, words, h["n_examples"], fmt.seq_len, h["chunk"])
    except (AssertionError, ValueError, RuntimeError):  # constriction: data invalid under these probabilities
        raise GroklabError(f"{where}: the payload does not decode under this model's probabilities (they differ "
                           "from the encoder's: other torch build or device?); it cannot match the original's "
                           "checksum") from None
    data = format_text(tokens, h["trailing"]).encode("ascii")
    if sha256(data) != h["sha256"]:
        raise GroklabError(f"{where}: decoded data fails the checksum of the original (the probabilities "
                           "differ from the encoder's: other torch build or device?)")
    return data


def read_input(path: Path, what: str = "IN") -> bytes:
    p = Path(path)
    if not p.is_file():
        raise GroklabError(f"{what}: no such file {str(p)!r}")
    return p.read_bytes()
