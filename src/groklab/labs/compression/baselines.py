"""Classical compressors at their strongest settings, with a round-trip check."""

from __future__ import annotations

import bz2
import gzip
import lzma


def _zstd():
    import zstandard
    mx = zstandard.MAX_COMPRESSION_LEVEL  # 22 (ultra)
    return (lambda b: zstandard.ZstdCompressor(level=mx).compress(b),
            lambda b: zstandard.ZstdDecompressor().decompress(b))


def _brotli():
    import brotli
    return (lambda b: brotli.compress(b, quality=11, lgwin=24), brotli.decompress)


XZ = lzma.PRESET_EXTREME | 9


def compressors() -> dict:
    """name -> (compress, decompress); brotli and zstd only when installed."""
    out = {
        "gzip": (lambda b: gzip.compress(b, compresslevel=9, mtime=0), gzip.decompress),
        "bz2": (lambda b: bz2.compress(b, compresslevel=9), bz2.decompress),
        "xz": (lambda b: lzma.compress(b, format=lzma.FORMAT_XZ, preset=XZ), lzma.decompress),
    }
    for name, make in (("zstd", _zstd), ("brotli", _brotli)):
        try:
            out[name] = make()
        except ImportError:
            pass
    return out


SETTINGS = {"gzip": "level 9", "bz2": "level 9", "xz": "preset 9 extreme", "zstd": "level 22",
            "brotli": "quality 11, window 2^24"}


def measure(data: bytes) -> dict[str, dict]:
    """Compressed size and round-trip check for every available compressor."""
    res = {}
    for name, (c, d) in compressors().items():
        blob = c(data)
        res[name] = {"bytes": len(blob), "roundtrip_ok": d(blob) == data, "settings": SETTINGS[name]}
    return res
