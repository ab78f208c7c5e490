"""The model's range coder: byte-exact round trip, code length = cross-entropy, bad files rejected."""

import math

import pytest
import torch
import torch.nn.functional as F

from groklab import GroklabError
from groklab.data.addition import Addition, format_text
from groklab.labs.compression import coder
from groklab.nn.gpt import GPT, GPTShape

FMT = Addition(n_digits=3)


def _model(seed: int) -> GPT:
    torch.manual_seed(seed)
    m = GPT(GPTShape(block=FMT.seq_len - 1, layers=2, heads=2, width=16))
    for p in m.parameters():  # a sharper, non-uniform random model
        p.data.mul_(5)
    return m.eval()


@pytest.fixture(scope="module")
def model():
    return _model(0)


def _data(n=300, trailing=True, seed=1) -> bytes:
    return format_text(FMT.sample(n, torch.Generator().manual_seed(seed)), trailing).encode()


@pytest.mark.parametrize("trailing", [True, False])
@pytest.mark.parametrize("chunk", [1000, 64])
def test_round_trip_byte_exact(model, trailing, chunk):
    data = _data(trailing=trailing)
    blob = coder.encode_bytes(model, "ab" * 32, FMT, data, chunk)
    assert coder.decode_bytes(model, "ab" * 32, FMT, blob) == data
    h = coder.read_header(blob)
    assert h["n_examples"] == 300 and h["chunk"] == chunk and h["trailing"] == trailing


def test_incremental_step_matches_full_forward(model):
    x = FMT.sample(50, torch.Generator().manual_seed(2))
    full = model(x[:, :-1]).softmax(-1)  # (b, T-1, V)
    cache = model.new_cache(50)
    inc = torch.stack([model.step(x[:, t], t, cache).softmax(-1) for t in range(FMT.n_targets)], 1)
    torch.testing.assert_close(inc, full, atol=1e-5, rtol=1e-4)


def test_code_length_is_cross_entropy(model):
    x = FMT.sample(2000, torch.Generator().manual_seed(3))
    data = format_text(x).encode()
    with torch.no_grad():
        nats = F.cross_entropy(model(x[:, :-1]).transpose(1, 2), x[:, 1:], reduction="sum").item()
    payload_bits = 8 * (len(coder.encode_bytes(model, "ab" * 32, FMT, data, 500)) - coder.HEADER_BYTES)
    assert payload_bits == pytest.approx(nats / math.log(2), rel=0.01)


def test_wrong_model(model):
    blob = coder.encode_bytes(model, "ab" * 32, FMT, _data(), 1000)
    with pytest.raises(GroklabError, match="wrong model"):
        coder.decode_bytes(_model(1), "cd" * 32, FMT, blob)


def test_truncated_and_corrupted(model):
    blob = coder.encode_bytes(model, "ab" * 32, FMT, _data(), 1000)
    with pytest.raises(GroklabError, match="truncated"):
        coder.decode_bytes(model, "ab" * 32, FMT, blob[:-7])
    with pytest.raises(GroklabError, match="truncated"):
        coder.decode_bytes(model, "ab" * 32, FMT, blob[:20])
    for pos in (len(blob) - 3, coder.HEADER_BYTES + 1, 30):
        bad = bytearray(blob)
        bad[pos] ^= 0x10
        with pytest.raises(GroklabError, match="corrupted"):
            coder.decode_bytes(model, "ab" * 32, FMT, bytes(bad))
    with pytest.raises(GroklabError, match="bad magic"):
        coder.decode_bytes(model, "ab" * 32, FMT, b"hello world" * 20)
    with pytest.raises(GroklabError, match="unexpected bytes"):
        coder.decode_bytes(model, "ab" * 32, FMT, blob + b"\0\0\0\0")


def test_checksum_catches_a_different_model_with_a_forged_hash(model):
    blob = coder.encode_bytes(model, "ab" * 32, FMT, _data(), 1000)
    with pytest.raises(GroklabError, match="checksum"):
        coder.decode_bytes(_model(5), "ab" * 32, FMT, blob)


def test_bad_input_text(model):
    with pytest.raises(GroklabError, match="line 3 is malformed"):
        coder.encode_bytes(model, "ab" * 32, FMT, b"s123+456=0579e\ns123+456=0579e\ns12+456=0579e\n", 10)
    with pytest.raises(GroklabError, match="not ASCII"):
        coder.encode_bytes(model, "ab" * 32, FMT, "s123+456=0579é\n".encode(), 10)


@pytest.mark.parametrize("rope", [False, True])
def test_folded_incremental_model_matches_full_forward(rope):
    """IncrementalGPT (LayerNorm affine, rotary angles and 1/sqrt(D) folded into the weights) computes the
    model's own probabilities: float32 to rounding, bfloat16 matmuls to bf16's ~3 significant digits."""
    from groklab.nn.gpt_step import IncrementalGPT

    torch.manual_seed(4)
    m = GPT(GPTShape(block=FMT.seq_len - 1, layers=2, heads=2, width=16, rope=rope)).eval()
    for p in m.parameters():
        p.data.mul_(5)
    x = FMT.sample(50, torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = m(x[:, :-1]).log_softmax(-1)  # (b, T-1, V)
    for dtype, tol in [(torch.float32, 1e-4), (torch.bfloat16, 0.1)]:
        fast = IncrementalGPT(m, dtype)
        cache = fast.new_cache(50)
        inc = torch.stack([fast.step(x[:, t], t, cache).log_softmax(-1) for t in range(FMT.n_targets)], 1)
        err = (inc - full).abs().max().item()
        assert err <= tol * max(1.0, full.abs().max().item()), (dtype, err)


def test_bf16_round_trip_and_header(model):
    data = _data()
    blob = coder.encode_bytes(model, "ab" * 32, FMT, data, 128, precision="bf16")
    h = coder.read_header(blob)
    assert h["precision"] == "bf16" and h["version"] == coder.VERSION
    assert coder.decode_bytes(model, "ab" * 32, FMT, blob) == data
    fp32 = coder.encode_bytes(model, "ab" * 32, FMT, data, 128)
    assert coder.read_header(fp32)["precision"] == "fp32"
    assert len(blob) == pytest.approx(len(fp32), rel=0.02)  # bf16 matmuls barely change the code length


def test_version_1_files_still_decode(model, monkeypatch):
    """Files written before the folded model (version 1: probabilities from GPT.step) decode unchanged."""
    data = _data(n=100)
    monkeypatch.setattr(coder, "VERSION", 1)
    old = coder.encode_bytes(model, "ab" * 32, FMT, data, 64)
    monkeypatch.undo()
    assert coder.read_header(old)["version"] == 1
    assert coder.decode_bytes(model, "ab" * 32, FMT, old) == data
