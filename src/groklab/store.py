"""The run store: one folder per run, written atomically, marked complete last; a DuckDB index.

runs/<run-id>/
  config.toml       full resolved config          env.json      versions, machine, threads, device
  metrics.parquet   long table: member, step, metric, value
  members.parquet   one row per member: hyper-parameters, outcome, milestones, final metrics
  snapshots/step_000123.safetensors   weights of all members (leading member axis), no pickle
  summary.json      what the CLI prints           figures/*.png
  COMPLETE          written last: a run without it was killed or is still running
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file, save_file

from groklab import GroklabError

COMPLETE = "COMPLETE"


def default_root() -> Path:
    return Path(os.environ.get("GROKLAB_RUNS", "runs"))


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
    """A run folder being written. Create with `Run.create(root, name)`; call `complete()` last."""

    def __init__(self, path: Path):
        self.path = Path(path)

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

    def complete(self) -> None:
        self.write_text(COMPLETE, time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")

    def abandon(self) -> None:
        """Remove a run that never started training (e.g. rejected input)."""
        shutil.rmtree(self.path, ignore_errors=True)


def _json_default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serializable: {type(o)}")


# ------------------------------------------------------------------------------------------ reading

def is_complete(path: Path) -> bool:
    return (Path(path) / COMPLETE).is_file()


def resolve(run: str | Path, root: Path | None = None) -> Path:
    """A run folder from a path or a run id (or a unique prefix of one) under the store root."""
    p = Path(run)
    if (p / "config.toml").is_file():
        return p
    root = root or default_root()
    if p.is_absolute() or len(p.parts) != 1 or any(c in str(run) for c in "*?["):
        raise GroklabError(f"RUN: no run {str(run)!r} (not a run folder with config.toml)")
    hits = sorted(q for q in root.glob(f"{run}*") if q.is_dir()) if root.is_dir() else []
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise GroklabError(f"RUN: {run!r} matches {len(hits)} runs; give more of the id")
    raise GroklabError(f"RUN: no run {run!r} (not a run folder, nor an id under {root})")


def list_runs(root: Path | None = None) -> list[dict]:
    root = root or default_root()
    out = []
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        if not (p / "config.toml").is_file():
            continue
        summary = read_summary(p) if is_complete(p) else {}
        out.append({"id": p.name, "path": str(p), "complete": is_complete(p),
                    "lab": summary.get("lab"), "preset": summary.get("preset"),
                    "wall_s": summary.get("wall_s"), "n_members": len(summary.get("models", []))})
    return out


def read_summary(path: Path) -> dict:
    try:
        return json.loads((Path(path) / "summary.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise GroklabError(f"{path}/summary.json: unreadable ({e})") from None


def read_metrics(path: Path):
    """The long metrics table as a pyarrow Table."""
    return pq.read_table(Path(path) / "metrics.parquet")


def load_snapshots(path: Path) -> list[tuple[int, dict[str, torch.Tensor]]]:
    """All weight snapshots, sorted by step (safetensors: no code runs on load)."""
    snaps = []
    for f in sorted((Path(path) / "snapshots").glob("step_*.safetensors")):
        snaps.append((int(f.stem.split("_")[1]), load_file(str(f))))
    return snaps


def query(sql: str, root: Path | None = None):
    """Run SQL over every complete run: views `runs` (one row per run), `members` (one row per
    member, with run_id) and `metrics` (the long curves: run_id, grp, member, step, metric, value, ...).
    Returns (column names, rows)."""
    import duckdb

    root = root or default_root()
    done = [p for p in sorted(root.glob("*")) if is_complete(p)]
    if not done:
        raise GroklabError(f"runs query: no complete runs under {root}")
    con = duckdb.connect()
    files = [str(p / "members.parquet") for p in done if (p / "members.parquet").is_file()]
    if files:  # grokking runs and sweeps
        con.execute(f"CREATE VIEW members AS SELECT regexp_extract(filename, '([^/]+)/members.parquet$', 1) "
                    f"AS run_id, * EXCLUDE (filename) FROM read_parquet({files!r}, filename=true, "
                    f"union_by_name=true)")
    mfiles = [str(f) for p in done for f in (p / "metrics.parquet", *sorted(p.glob("groups/g*_metrics.parquet")))
              if f.is_file()]
    if mfiles:  # sweep groups: `grp` is the group index (members are numbered within a group)
        con.execute(f"CREATE VIEW metrics AS SELECT regexp_extract(filename, '([^/]+)/(groups/)?[^/]*metrics"
                    f"\\.parquet$', 1) AS run_id, TRY_CAST(regexp_extract(filename, 'g([0-9]+)_metrics', 1) AS "
                    f"INTEGER) AS grp, * EXCLUDE (filename) FROM read_parquet({mfiles!r}, filename=true, "
                    f"union_by_name=true)")
    rows = [{"run_id": p.name, **{k: v for k, v in read_summary(p).items() if not isinstance(v, (list, dict))}}
            for p in done]
    con.register("runs_df", pa.Table.from_pylist(rows))
    con.execute("CREATE VIEW runs AS SELECT * FROM runs_df")
    try:
        res = con.execute(sql)
    except duckdb.Error as e:
        raise GroklabError(f"runs query: {str(e).splitlines()[0]}") from None
    return [d[0] for d in res.description], res.fetchall()
