"""Device, threads and the CPU allocator: set deliberately, recorded in every run's env.json.

Threads are shared between the groklab jobs running on one machine. Two jobs that each take every core
slow each other ~8x on a 2-core machine (libgomp's threads spin-wait for a core the other job holds), so
each job that did not ask for a thread count (threads 0, no $OMP_NUM_THREADS) registers in a machine-wide
folder of running jobs (`jobs_dir()`, one JSON file per process, written under a lock) and takes its share
of the thread budget ($GROKLAB_THREADS, default: the cores this process may use): explicit requests are
kept, the auto jobs split the rest, at least one thread each. A running job re-reads the folder at most
once a second from its progress callback (`rebalance`), so it drops to its share when another job starts
and takes the cores back when that job ends. A killed job's file is ignored (its pid is gone) and removed.
GROKLAB_THREAD_SHARING=off turns this off (every auto job takes all cores: the old behaviour, for the
two-jobs benchmark).

Denormal floats are flushed to zero on the CPU (`torch.set_flush_denormal`): late in training, once a model fits
its data, softmax tails and their gradients fall below 1.2e-38 and x86 then computes each such value in a slow
microcode path — a train step of Grokfast's transformer at its step-37k weights took 5.4x longer (BENCHMARKS.md).
Only values below float32's smallest normal number change (to 0); GROKLAB_DENORMALS=keep keeps them (torch's
default, for the before/after benchmark and for bit-exact reruns of runs made before 2026-12-02).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from groklab import GroklabError, __version__

_ALLOCATOR_TUNED = False
_FLUSH_DENORMAL = False
DENORMALS = ("flush", "keep")


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


def denormals() -> str:
    """$GROKLAB_DENORMALS: flush (default) or keep."""
    raw = os.environ.get("GROKLAB_DENORMALS", "").strip().lower() or "flush"
    if raw not in DENORMALS:
        raise GroklabError(f"GROKLAB_DENORMALS: expected one of {', '.join(DENORMALS)}, got {raw!r}")
    return raw


def set_denormals() -> bool:
    """Flush CPU denormals to zero unless $GROKLAB_DENORMALS=keep; returns whether flushing is on."""
    global _FLUSH_DENORMAL
    flush = denormals() == "flush"
    _FLUSH_DENORMAL = torch.set_flush_denormal(flush) and flush  # False where the CPU cannot flush
    return _FLUSH_DENORMAL


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise GroklabError("train.device: 'cuda' requested but no CUDA device is available; use auto or cpu")
    return torch.device(name)


def cpu_budget() -> int:
    """Torch threads all groklab jobs on this machine share: $GROKLAB_THREADS, else this process's cores."""
    raw = os.environ.get("GROKLAB_THREADS", "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise GroklabError(f"GROKLAB_THREADS: expected an integer >= 1 (torch threads shared by every groklab "
                               f"job on this machine), got {raw!r}")
        return int(raw)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def sharing() -> bool:
    return os.environ.get("GROKLAB_THREAD_SHARING", "on").lower() not in ("off", "0", "false", "no")


def jobs_dir() -> Path:
    """The machine-wide folder of running groklab jobs ($GROKLAB_JOBS_DIR, default <tmp>/groklab-jobs)."""
    return Path(os.environ.get("GROKLAB_JOBS_DIR") or Path(tempfile.gettempdir()) / "groklab-jobs")


_JOB: dict = {"file": None, "requested": 0, "since": 0.0, "checked": 0.0, "jobs": 1}


def _start_time(pid: int) -> str | None:
    """The kernel's start time of a process (tells a live job from a new process that reused its pid)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(rec: dict) -> bool:
    pid = rec.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = _start_time(pid)
    return start is None or rec.get("start") in (None, start)


def live_jobs() -> list[dict]:
    """The registered groklab jobs whose process still runs (dead ones' files are removed)."""
    jobs = []
    for f in jobs_dir().glob("*.json"):
        try:
            rec = json.loads(f.read_text())
        except (OSError, ValueError):
            continue  # being written, or not ours
        if isinstance(rec, dict) and _alive(rec):
            jobs.append(rec)
        else:
            with contextlib.suppress(OSError):
                f.unlink()
    return jobs


def share(jobs: list[dict], pid: int, budget: int) -> int:
    """Threads of job `pid` (requested 0 = auto): explicit requests are kept; the auto jobs split the rest
    of the budget, at least 1 each, the longest-running ones taking the remainder."""
    me = next((j for j in jobs if j["pid"] == pid), None)
    if me is None:  # not registered (an unusable jobs folder): alone as far as we know
        return budget
    if me["threads"] > 0:
        return me["threads"]
    auto = sorted((j for j in jobs if j["threads"] <= 0), key=lambda j: (j.get("since", 0.0), j["pid"]))
    free = max(budget - sum(j["threads"] for j in jobs if j["threads"] > 0), len(auto))
    q, r = divmod(free, len(auto))
    return q + (1 if [j["pid"] for j in auto].index(pid) < r else 0)


def _join(requested: int) -> int:
    """Register this process (under the folder's lock, so that two jobs starting together see each other)
    and return its thread count. Without a usable folder: `requested`, else the whole budget."""
    import fcntl

    d = jobs_dir()
    me = {"pid": os.getpid(), "start": _start_time(os.getpid()), "threads": requested,
          "since": _JOB["since"] or time.time(), "argv": " ".join(sys.argv[:4])[:200]}
    try:
        d.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            d.chmod(0o1777)  # every user's jobs share the machine (sticky, like /tmp)
        with open(d / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            tmp = d / f".{os.getpid()}.tmp"
            tmp.write_text(json.dumps(me))
            os.replace(tmp, d / f"{os.getpid()}.json")
            jobs = live_jobs()
    except OSError:
        return requested or cpu_budget()
    if _JOB["file"] is None:
        atexit.register(_leave)
    _JOB.update(file=d / f"{os.getpid()}.json", requested=requested, since=me["since"], checked=time.monotonic(),
                jobs=len(jobs))
    return share(jobs, os.getpid(), cpu_budget())


def _leave() -> None:
    f = _JOB["file"]
    if f is not None:
        with contextlib.suppress(OSError):
            f.unlink()
        _JOB["file"] = None


def rebalance(min_interval_s: float = 1.0) -> int:
    """Re-read the running jobs and take this job's share of threads now (an auto job only; at most once per
    `min_interval_s`). Call from the training thread (torch's thread count is per thread): progress
    callbacks do. Returns the thread count."""
    if _JOB["file"] is None or _JOB["requested"] > 0 or time.monotonic() - _JOB["checked"] < min_interval_s:
        return torch.get_num_threads()
    _JOB["checked"] = time.monotonic()
    try:
        jobs = live_jobs()
        if not any(j["pid"] == os.getpid() for j in jobs):
            return torch.get_num_threads()
        n = share(jobs, os.getpid(), cpu_budget())
    except (OSError, GroklabError):
        return torch.get_num_threads()
    _JOB["jobs"] = len(jobs)
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    return n


def setup(device: str = "auto", threads: int = 0) -> torch.device:
    """Choose the device and thread count, tune the allocator; return the device.
    threads > 0 (or $OMP_NUM_THREADS) is kept; 0 takes this job's share of the budget (module docstring)."""
    dev = resolve_device(device)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    requested = threads if threads > 0 else int(omp) if omp.isdigit() else 0
    n = _join(requested) if sharing() else requested or cpu_budget()
    torch.set_num_threads(n)
    tune_cpu_allocator()
    set_denormals()
    return dev


def environment(dev: torch.device | None = None) -> dict:
    """What a reader needs to reproduce a number: versions, machine, threads, device."""
    env = {
        "groklab": __version__, "python": sys.version.split()[0], "torch": torch.__version__,
        "platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
        "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": str(dev) if dev is not None else None, "allocator_tuned": _ALLOCATOR_TUNED,
        "flush_denormal": _FLUSH_DENORMAL,
        "thread_budget": cpu_budget(), "thread_sharing": sharing(),
        "groklab_jobs": _JOB["jobs"] if _JOB["file"] is not None else None,  # running at setup, this one included
    }
    if dev is not None and dev.type == "cuda":
        env["cuda_device"] = torch.cuda.get_device_name(dev)
        env["cuda_version"] = torch.version.cuda
    return env
