"""`groklab sweep --backend ray`: every group of a sweep is one Ray core task.

Without an address a local Ray starts on this machine (as many CPUs as the thread budget, no dashboard) and
is shut down at the end; `--address auto`, `--address HOST:PORT` (or `ray://HOST:PORT`) or $RAY_ADDRESS
connect to a running cluster (`ray start --head` on one machine, `ray start --address HEAD:6379` on the
others; the same groklab installed on every node). A task trains its group with `threads` torch threads
(`num_cpus` per task; one GPU per task with --device cuda, or with auto on a cluster that has GPUs) and
returns the group's rows and metrics to this process, which writes them into the sweep folder here: no
shared file system is needed. A task whose worker dies is retried (`MAX_RETRIES`); an exception in the
training itself is a bug and is raised here with its traceback.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass

from groklab import GroklabError

MAX_RETRIES = 2  # re-runs of a group whose worker process died (node lost, OOM-killed)
INSTALL = "pip install 'groklab[ray]'"


def import_ray():
    """The ray module, or one line naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise GroklabError(f"--backend: ray is not installed; {INSTALL} (or use --backend local)") from None
    return ray


def _reachable(addr: str, timeout: float = 3.0) -> bool:
    """Whether something listens at HOST:PORT (ray.init would otherwise retry for minutes)."""
    hostport = addr.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return False
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def check_address(address: str | None) -> tuple[str | None, str]:
    """(the address to use, where it came from); one line if nothing answers there (before any work)."""
    source = "--address" if address else "RAY_ADDRESS"
    addr = address or os.environ.get("RAY_ADDRESS") or None
    if addr is not None and addr not in ("auto", "local") and not _reachable(addr):
        raise GroklabError(f"{source}: no Ray cluster answers at {addr!r} (start one with `ray start --head`, "
                           f"or leave out --address for a local Ray)")
    return addr, source


@dataclass
class Session:
    """A connection to Ray for one sweep: the remote function, the resources a task asks for."""

    ray: object
    remote: object  # the @ray.remote training function
    address: str  # "local" or the cluster's address
    started_here: bool  # a local Ray this process started (shut down at the end)
    cpus_per_task: int
    gpus_per_task: float

    def submit(self, cfg, pts: list[dict]):
        return self.remote.options(num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task,
                                   max_retries=MAX_RETRIES).remote(cfg, pts, self.cpus_per_task)

    def environment(self) -> dict:
        res = self.ray.cluster_resources()
        return {"backend": "ray", "ray_version": self.ray.__version__, "ray_address": self.address,
                "ray_cpus": res.get("CPU", 0), "ray_gpus": res.get("GPU", 0),
                "ray_nodes": len(self.ray.nodes()), "cpus_per_task": self.cpus_per_task,
                "gpus_per_task": self.gpus_per_task}

    def close(self) -> None:
        self.ray.shutdown()  # a local Ray stops; on a cluster this job's leftover tasks are cancelled


def _train(cfg, pts: list[dict], threads: int):
    """The Ray task: train one group on the worker (its own device and threads); returns a GroupResult."""
    from groklab.engine import device as devmod
    from groklab.sweep.grid import lab_sweep

    dev = devmod.setup(cfg.train.device, threads)
    return lab_sweep(cfg).train_group(cfg, pts, dev, lambda step, active: None)


def connect(address: str | None, threads: int, device: str, budget: int) -> Session:
    """Start a local Ray (no address) or connect to a cluster; one line for a missing Ray, an unreachable
    address or a request the cluster cannot meet. `budget`: CPUs of a local Ray."""
    ray = import_ray()
    addr, source = check_address(address)
    kw = dict(log_to_driver=False, logging_level=logging.ERROR)
    try:
        if addr is None or addr == "local":
            ray.init(address="local", num_cpus=budget, include_dashboard=False, **kw)
        else:
            ray.init(address=addr, **kw)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise GroklabError(f"{source}: cannot connect to Ray at {addr!r} ({str(e).splitlines()[0]})") from None
    try:
        res = ray.cluster_resources()
        cpus, gpus = res.get("CPU", 0), res.get("GPU", 0)
        per_task = max(1, threads)
        if per_task > cpus:
            raise GroklabError(f"--threads: {per_task} CPUs per Ray task, but the Ray cluster has {cpus:g}")
        if device == "cuda" and not gpus:
            raise GroklabError("--device: 'cuda' requested but the Ray cluster has no GPU; use auto or cpu")
        use_gpu = device == "cuda" or (device == "auto" and gpus > 0)
        remote = ray.remote(_train)
        return Session(ray, remote, addr or "local", addr is None or addr == "local", per_task,
                       1.0 if use_gpu else 0.0)
    except BaseException:
        ray.shutdown()
        raise
