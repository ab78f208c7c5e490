"""Device, threads and the CPU allocator: set deliberately, recorded in every run's env.json."""

from __future__ import annotations

import ctypes
import os
import platform
import sys

import torch

from groklab import GroklabError, __version__

_ALLOCATOR_TUNED = False


def tune_cpu_allocator() -> bool:
    """Keep large freed blocks in glibc's heap instead of returning them to the OS.

    Ensemble activations are tens of MB; by default glibc mmaps each one and unmaps it on free, so
    every step page-faults its memory back in. Raising the mmap/trim thresholds makes element-wise
    ops 3-8x faster on this kind of machine (BENCHMARKS.md). No-op where glibc is absent.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED or os.environ.get("GROKLAB_ALLOCATOR") == "default":  # benchmark switch
        return _ALLOCATOR_TUNED
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim, m_top_pad, m_mmap = -1, -2, -3
        ok = libc.mallopt(m_mmap, 2**31 - 1) and libc.mallopt(m_trim, 2**31 - 1)
        libc.mallopt(m_top_pad, 2**28)
        _ALLOCATOR_TUNED = bool(ok)
    except (OSError, AttributeError):
        _ALLOCATOR_TUNED = False
    return _ALLOCATOR_TUNED


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GroklabError("train.device: 'cuda' requested but no CUDA device is available; use auto or cpu")
    return torch.device(name)


def setup(device: str = "auto", threads: int = 0) -> torch.device:
    """Choose the device and thread count, tune the allocator; return the device."""
    dev = resolve_device(device)
    if threads <= 0:  # all cores, unless OMP_NUM_THREADS says otherwise
        threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or (os.cpu_count() or 1)
    torch.set_num_threads(threads)
    tune_cpu_allocator()
    return dev


def environment(dev: torch.device | None = None) -> dict:
    """What a reader needs to reproduce a number: versions, machine, threads, device."""
    env = {
        "groklab": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": str(dev) if dev is not None else None, "allocator_tuned": _ALLOCATOR_TUNED,
    }
    if dev is not None and dev.type == "cuda":
        env["cuda_device"] = torch.cuda.get_device_name(dev)
        env["cuda_version"] = torch.version.cuda
    return env
