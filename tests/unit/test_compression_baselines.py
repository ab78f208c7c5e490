"""Classical compressors: available, strongest settings, lossless."""

import torch

from groklab.data.addition import Addition, format_text
from groklab.labs.compression import baselines


def test_every_baseline_round_trips_and_compresses():
    data = format_text(Addition().sample(2000, torch.Generator().manual_seed(0))).encode()
    res = baselines.measure(data)
    assert {"gzip", "bz2", "xz", "zstd"} <= set(res)
    for name, r in res.items():
        assert r["roundtrip_ok"], name
        assert r["bytes"] < len(data) / 1.5, name  # digits in a 14-symbol alphabet: well under 8 bits/char
        assert r["settings"]


def test_compressors_are_deterministic():
    data = b"s12345678+11111111=023456789e\n" * 100
    for name, (c, _) in baselines.compressors().items():
        assert c(data) == c(data), name
