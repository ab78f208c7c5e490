"""Arithmetic coding of addition examples with a trained GPT (constriction's range coder).

File layout (little-endian):
  magic b"GLAC" | version u8 | flags u8 (bit 0: input ended with a newline) | chunk u32 |
  n_examples u64 | model sha256 (32 B) | original sha256 (32 B) | payload words u64 | payload crc32 u32 |
  header crc32 u32 | payload: u32 words of the range coder

Symbols are coded chunk by chunk (`chunk` examples, the last one shorter), position-major inside a
chunk. Encoder and decoder both compute the probabilities with the model's incremental (key/value
cache) forward, one position of the whole chunk per call: the same calls on the same shapes, so they
see bit-identical probabilities (given the same torch build and device); the checksum of the original
catches any mismatch.
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

MAGIC = b"GLAC"
VERSION = 1
HEAD = struct.Struct("<4sBBIQ32s32sQI")
HEAD_CRC = struct.Struct("<I")
HEADER_BYTES = HEAD.size + HEAD_CRC.size


def _family():
    return constriction.stream.model.Categorical(perfect=False)


def _next_probs(model: GPT, tok: torch.Tensor, t: int, cache) -> np.ndarray:
    """Probabilities of the token after position t. # (b,) -> (b, V) float64 (exact copy of float32)"""
    return np.ascontiguousarray(torch.softmax(model.step(tok, t, cache).float(), dim=-1).double().numpy())


def encode_tokens(model: GPT, tokens: torch.Tensor, chunk: int) -> np.ndarray:
    """Range-code every target (tokens[:, 1:]) with the model. # (n, T) -> compressed u32 words"""
    enc = constriction.stream.queue.RangeEncoder()
    fam = _family()
    for i in range(0, len(tokens), chunk):
        x = tokens[i:i + chunk]  # (b, T)
        cache = model.new_cache(len(x))
        for t in range(x.shape[1] - 1):
            p = _next_probs(model, x[:, t], t, cache)  # (b, V)
            enc.encode(x[:, t + 1].to(torch.int32).numpy(), fam, p)
    return enc.get_compressed()


def decode_tokens(model: GPT, words: np.ndarray, n: int, seq_len: int, chunk: int) -> torch.Tensor:
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


def encode_bytes(model: GPT, mhash: str, fmt: Addition, data: bytes, chunk: int, where: str = "IN") -> bytes:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as e:
        raise GroklabError(f"{where}: byte {e.start} is not ASCII; expected addition examples, one per line") from None
    tokens, trailing = parse_lines(text, fmt, where)
    words = np.ascontiguousarray(encode_tokens(model, tokens, chunk), dtype="<u4")
    payload = words.tobytes()
    head = HEAD.pack(MAGIC, VERSION, int(trailing), chunk, len(tokens), bytes.fromhex(mhash), sha256(data),
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
    if ver != VERSION:
        raise GroklabError(f"{where}: format version {ver} is not supported; allowed: {VERSION}")
    return {"trailing": bool(flags & 1), "chunk": chunk, "n_examples": n, "model_hash": mh.hex(),
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
    tokens = decode_tokens(model, words, h["n_examples"], fmt.seq_len, h["chunk"])
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
