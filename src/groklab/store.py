"""The run store: one folder per run, written atomically, marked complete last; a DuckDB index.

runs/<run-id>/
  config.toml       full resolved config          env.json      versions, machine, threads, device
  metrics.parquet   long table: member, step, metric, value
  members.parquet   one row per member: hyper-parameters, outcome, milestones, final metrics
  snapshots/step_000123.safetensors   weights of all members (leading member axis), no pickle
  checkpoint/latest.safetensors       tensors + JSON meta + sha256 of the tensor bytes (resume)
  summary.json      what the CLI prints           figures/*.png
  RUNNING           {"pid", "host"} while a process holds the run (open_run / reopen_run)
  INTERRUPTED       one line: why training stopped early; the folder and checkpoint are kept
  COMPLETE          written last: a run without it was killed or is still running. It holds the time and
                    the size and sha256 of every data file (.parquet .safetensors .json .toml) at that
                    moment: a byte flipped or a file cut short later makes the run "damaged" (one line),
                    and commands that name the run refuse it instead of decoding garbage

Lifecycle (every lab):
    with store.open_run(root, name, cfg.to_toml(), env) as run:   # config.toml + env.json first
        ...; run.mark_started()          # or the first run.write_checkpoint(...) marks it
        ...; run.write_json("summary.json", s); run.complete()    # the caller completes explicitly
An exception (KeyboardInterrupt included) before mark_started removes the folder; after it, the folder
is kept and INTERRUPTED says why. A clean exit without complete() leaves the run incomplete (resumable).
`store.reopen_run(path)` continues an incomplete run with the same policies (it never removes the folder).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.torch import save_file

from groklab import GroklabError
from groklab.store_index import (  # noqa: F401 - the reading side, re-exported: store.list_runs etc.
    COMPLETE,
    DATA_SUFFIXES,
    INTERRUPTED,
    RUNNING,
    _holder,
    _line,
    damage,
    default_root,
    hash_file,
    is_complete,
    last_skipped,
    list_runs,
    query,
    query_with_skipped,
    read_metrics,
    read_summary,
    resolve,
    status,
)

CHECKPOINT = "checkpoint/latest.safetensors"


def atomic_write(path: Path | str, write) -> Path:
    """Call write(tmp_path) on a temp file in the same folder, then rename: readers never see half a
    file, and a failure leaves nothing behind. The one way groklab writes a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    return atomic_write(path, lambda t: t.write_bytes(data))


class Run:
    """A run folder being written. Prefer `open_run` / `reopen_run`; `complete()` last."""

    def __init__(self, path: Path, started: bool = False):
        self.path = Path(path)
        self.started = started  # training began: an error now keeps the folder (see open_run)

    @classmethod
    def create(cls, root: Path | str, name: str) -> Run:
        root = Path(root)
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{secrets.token_hex(2)}"
        path = root / run_id
        path.mkdir(parents=True, exist_ok=False)
        (path / "figures").mkdir()
        return cls(path)

    @property
    def id(self) -> str:
        return self.path.name

    def write_text(self, rel: str, text: str) -> Path:
        p = self.path / rel
        atomic_write(p, lambda t: t.write_text(text))
        return p

    def write_json(self, rel: str, obj) -> Path:
        return self.write_text(rel, json.dumps(obj, indent=2, default=_json_default) + "\n")

    def write_table(self, rel: str, columns: dict[str, np.ndarray | list]) -> Path:
        table = pa.table({k: pa.array(v) for k, v in columns.items()})
        p = self.path / rel
        atomic_write(p, lambda t: pq.write_table(table, t))
        return p

    def write_snapshot(self, step: int, params: dict[str, torch.Tensor], name: str | None = None) -> Path:
        """Weights of all members at `step` (file step_XXXXXXX, or `name` for e.g. the final weights)."""
        p = self.path / "snapshots" / f"{name or f'step_{step:07d}'}.safetensors"
        tensors = {k: v.detach().cpu().contiguous() for k, v in params.items()}
        atomic_write(p, lambda t: save_file(tensors, str(t), metadata={"step": str(step)}))
        return p

    def mark_started(self) -> None:
        """Training has begun: from now on an interrupted run is kept (with INTERRUPTED), not removed."""
        self.started = True

    def write_checkpoint(self, tensors: dict[str, torch.Tensor], meta: dict) -> Path:
        """Replace checkpoint/latest.safetensors atomically (a kill mid-write keeps the previous one).
        `meta` is JSON (ints, floats, strings, lists, dicts; tuples come back as lists, keys as strings,
        numpy arrays as lists, e.g. np.random state); put tensors such as torch.Generator.get_state() in
        `tensors`. Marks the run started."""
        self.mark_started()
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        md = {"format": "groklab-checkpoint-1", "sha256": _digest(tensors),
              "meta": json.dumps(meta, default=_json_default)}
        return atomic_write(self.path / CHECKPOINT, lambda t: save_file(tensors, str(t), metadata=md))

    def read_checkpoint(self) -> tuple[dict[str, torch.Tensor], dict] | None:
        """(tensors, meta) of the latest checkpoint, None if there is none; a GroklabError naming the
        file if it is truncated, corrupted or not a groklab checkpoint."""
        f = self.path / CHECKPOINT
        if not f.is_file():
            return None
        tensors, md = _load(f)
        if "sha256" not in md or "meta" not in md:
            raise GroklabError(f"{f}: not a groklab checkpoint (no sha256/meta in its metadata)")
        if _digest(tensors) != md["sha256"]:
            raise GroklabError(f"{f}: corrupted checkpoint (sha256 of its tensors does not match)")
        try:
            return tensors, json.loads(md["meta"])
        except json.JSONDecodeError as e:
            raise GroklabError(f"{f}: corrupted checkpoint meta ({_line(e)})") from None

    def complete(self) -> None:
        """Mark the run finished (written last). Its resume checkpoint is no longer needed: removed first."""
        self.started = True
        shutil.rmtree(self.path / "checkpoint", ignore_errors=True)
        files = {str(f.relative_to(self.path)): [f.stat().st_size, hash_file(f)]
                 for f in sorted(self.path.rglob("*")) if f.is_file() and f.suffix in DATA_SUFFIXES
                 and f.name not in (RUNNING, INTERRUPTED) and not f.name.startswith(".")}
        self.write_text(COMPLETE, time.strftime("%Y-%m-%dT%H:%M:%S") + "\n" + json.dumps({"files": files}) + "\n")

    def abandon(self) -> None:
        """Remove a run that never started training (e.g. rejected input)."""
        shutil.rmtree(self.path, ignore_errors=True)


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    """sha256 over name, dtype, shape and raw bytes of every tensor, in name order."""
    h = hashlib.sha256()
    for k in sorted(tensors):
        t = tensors[k]
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(memoryview(t.contiguous().reshape(-1).view(torch.uint8).numpy()))
    return h.hexdigest()


def _load(f: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    try:  # safetensors raises its own (Rust) error types, plus OSError
        with safe_open(str(f), framework="pt") as sf:
            return {k: sf.get_tensor(k) for k in sf.keys()}, sf.metadata() or {}  # noqa: SIM118
    except Exception as e:  # noqa: BLE001 - any failure to parse is a damaged file
        raise GroklabError(f"{f}: unreadable safetensors file ({_line(e)})") from None


def load_weights(path: Path | str) -> dict[str, torch.Tensor]:
    """Tensors of one safetensors file; a one-line GroklabError naming it if truncated or corrupt."""
    return _load(Path(path))[0]


@contextlib.contextmanager
def _lifecycle(run: Run):
    marker = run.path / RUNNING
    try:
        run.write_json(RUNNING, {"pid": os.getpid(), "host": socket.gethostname()})
        yield run
    except BaseException as e:
        if is_complete(run.path):  # results are in: an error after complete() never touches them
            marker.unlink(missing_ok=True)
            raise
        if not run.started:
            run.abandon()
            raise
        run.write_text(INTERRUPTED, f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {_line(e)}\n")
        marker.unlink(missing_ok=True)
        raise
    marker.unlink(missing_ok=True)


def create_run(root: Path | str | None, name: str, files: dict[str, str | dict]) -> Run:
    """A new runs/<id>/ holding `files` ({relative path: text, or an object written as JSON}), or none at all:
    an error or Ctrl-C while they are written removes the folder, so no run exists without its spec."""
    run = Run.create(root or default_root(), name)
    try:
        for rel, content in files.items():
            if isinstance(content, str):
                run.write_text(rel, content)
            else:
                run.write_json(rel, content)
    except BaseException:
        run.abandon()
        raise
    return run


@contextlib.contextmanager
def open_run(root: Path | str | None, name: str, config_toml: str, env: dict):
    """Create runs/<id>/ with config.toml and env.json, yield the Run; see the module docstring."""
    run = create_run(root, name, {"config.toml": config_toml, "env.json": env})
    with _lifecycle(run):
        yield run


@contextlib.contextmanager
def reopen_run(path: Path | str, env: dict | None = None):
    """Continue an incomplete run (resume): same Run, already started, so it is never removed.
    A GroklabError if `path` has no config.toml, is complete, or another live process holds it.
    A previous INTERRUPTED line moves to interruptions.log; `env` (if given) replaces env.json."""
    path = Path(path)
    if not (path / "config.toml").is_file():
        raise GroklabError(f"RUN: {path} is not a run folder (no config.toml)")
    if is_complete(path):
        raise GroklabError(f"RUN: {path} is already complete")
    holder = _holder(path)
    if holder is not None and holder[1]:
        raise GroklabError(f"RUN: {path} is in use by {holder[0]} (a RUNNING marker)")
    run = Run(path, started=True)
    if (path / INTERRUPTED).is_file():
        with open(path / "interruptions.log", "a") as log:
            log.write((path / INTERRUPTED).read_text())
        (path / INTERRUPTED).unlink()
    for stale in (path / "checkpoint").glob(".*"):  # temp files of a write killed midway
        stale.unlink(missing_ok=True)
    if env is not None:
        run.write_json("env.json", env)
    with _lifecycle(run):
        yield run


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o)}")


def load_snapshots(path: Path) -> list[tuple[int, dict[str, torch.Tensor]]]:
    """All weight snapshots, sorted by step (safetensors: no code runs on load); GroklabError if damaged."""
    return [(int(f.stem.split("_")[1]), load_weights(f))
            for f in sorted((Path(path) / "snapshots").glob("step_*.safetensors"))]
