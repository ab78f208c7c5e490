"""The reading side of the run store (import it as `groklab.store`, which re-exports all of this):
resolve a run, its status (complete / running / interrupted / incomplete / damaged), the listing, and the
DuckDB index over complete runs. Damaged runs are listed with a one-line reason and skipped by queries."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from groklab import GroklabError

COMPLETE, INTERRUPTED, RUNNING = "COMPLETE", "INTERRUPTED", "RUNNING"
DATA_SUFFIXES = (".parquet", ".safetensors", ".json", ".toml")  # the files COMPLETE's manifest covers
last_skipped: list[tuple[str, str]] = []  # (run_id, reason) of the damaged runs the last query() skipped


def default_root() -> Path:
    return Path(os.environ.get("GROKLAB_RUNS", "runs"))


def _line(e: BaseException) -> str:
    """`Type: first line of the message`, at most 200 characters."""
    msg = (str(e).strip().splitlines() or [""])[0]
    return (f"{type(e).__name__}: {msg}" if msg else type(e).__name__)[:200]


def is_complete(path: Path) -> bool:
    return (Path(path) / COMPLETE).is_file()


def resolve(run: str | Path, root: Path | None = None) -> Path:
    """A run folder from a path or a run id (or a unique prefix of one) under the store root."""
    p = Path(run)
    if (p / "config.toml").is_file():
        return _checked(p)
    root = root or default_root()
    if p.is_absolute() or len(p.parts) != 1 or any(c in str(run) for c in "*?["):
        raise GroklabError(f"RUN: no run {str(run)!r} (not a run folder with config.toml)")
    hits = sorted(q for q in root.glob(f"{run}*") if q.is_dir()) if root.is_dir() else []
    if len(hits) == 1:
        return _checked(hits[0])
    if len(hits) > 1:
        raise GroklabError(f"RUN: {run!r} matches {len(hits)} runs; give more of the id")
    raise GroklabError(f"RUN: no run {run!r} (not a run folder, nor an id under {root})")


def _checked(p: Path) -> Path:
    """A run a command is about to read: a complete one must still match its COMPLETE manifest."""
    if (bad := verify(p)) is not None:
        raise GroklabError(f"RUN: {p.name} is damaged: {bad}")
    return p


def _holder(path: Path) -> tuple[str, bool] | None:
    """(who, alive) from a RUNNING marker; a process on another host counts as alive (no way to tell)."""
    try:
        h = json.loads((path / RUNNING).read_text())
        pid, host = int(h["pid"]), str(h["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname():
        return f"pid {pid} on {host}", True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"pid {pid}", False
    except PermissionError:
        pass
    return f"pid {pid}", True


def hash_file(f: Path) -> str:
    h = hashlib.sha256()
    with open(f, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def manifest(path: Path) -> dict | None:
    """{relative path: [size, sha256]} that COMPLETE recorded, or None (no COMPLETE, or a run completed
    before manifests existed); a damaged COMPLETE raises ValueError."""
    f = Path(path) / COMPLETE
    if not f.is_file():
        return None
    lines = f.read_text(errors="replace").splitlines()
    if len(lines) < 2:
        return None
    files = json.loads(lines[1]).get("files")
    if not isinstance(files, dict):
        raise ValueError("no file list")
    return files


def verify(path: Path) -> str | None:
    """One line naming the first data file of a complete run that is missing, cut short, extended or
    changed since COMPLETE was written (size, then sha256), or None."""
    path = Path(path)
    try:
        files = manifest(path)
    except (ValueError, AttributeError, json.JSONDecodeError) as e:
        return f"COMPLETE: unreadable file list ({_line(e)})"
    for rel, entry in (files or {}).items():
        f = path / rel
        try:
            size, digest = entry
            if not f.is_file():
                return f"{rel}: missing (listed in COMPLETE)"
            if f.stat().st_size != size:
                return f"{rel}: {f.stat().st_size} bytes, {size} when the run completed (truncated or extended)"
            if hash_file(f) != digest:
                return f"{rel}: corrupted (sha256 differs from the one recorded when the run completed)"
        except (OSError, TypeError, ValueError) as e:
            return f"{rel}: unreadable ({_line(e)})"
    return None


def damage(path: Path) -> str | None:
    """One line saying which store file of a run is unreadable or changed since it completed, or None."""
    path = Path(path)
    f = path / "summary.json"
    if f.is_file() or is_complete(path):
        try:
            if not isinstance(json.loads(f.read_text()), dict):
                return "summary.json: not a JSON object"
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            return f"summary.json: unreadable ({_line(e)})"
    for f in (path / "members.parquet", path / "metrics.parquet", *sorted(path.glob("groups/*.parquet"))):
        try:
            if f.is_file():
                pq.read_metadata(f)
        except (OSError, pa.ArrowException) as e:
            return f"{f.relative_to(path)}: unreadable ({_line(e)})"
    return verify(path)  # files that still parse but changed since the run completed


def status(path: Path) -> tuple[str, str | None]:
    """(status, one-line reason): complete | running | interrupted | incomplete | damaged. `incomplete`:
    no COMPLETE and no lifecycle marker (stopped without complete(), or written without open_run)."""
    path = Path(path)
    if (bad := damage(path)) is not None:
        return "damaged", bad
    if is_complete(path):
        return "complete", None
    if (path / INTERRUPTED).is_file():
        return "interrupted", ((path / INTERRUPTED).read_text().strip().splitlines() or [INTERRUPTED])[0][:200]
    if (holder := _holder(path)) is not None:
        return ("running", holder[0]) if holder[1] else ("interrupted", f"killed ({holder[0]} is gone)")
    return "incomplete", None


def list_runs(root: Path | None = None) -> list[dict]:
    """A row per folder with config.toml: id, path, complete, status, damaged (reason or None), reason,
    lab, preset, wall_s, n_members. A damaged run is listed, never raised."""
    root = root or default_root()
    out = []
    for p in sorted(root.iterdir()) if root.is_dir() else []:
        if not (p / "config.toml").is_file():
            continue
        st, why = status(p)
        summary = {}
        if is_complete(p) and not (st == "damaged" and why.startswith("summary.json")):
            summary = read_summary(p)
        out.append({"id": p.name, "path": str(p), "complete": is_complete(p), "status": st,
                    "damaged": why if st == "damaged" else None, "reason": why,
                    "lab": summary.get("lab"), "preset": summary.get("preset"),
                    "wall_s": summary.get("wall_s"), "n_members": len(summary.get("models", []))})
    return out


def read_summary(path: Path) -> dict:
    try:
        return json.loads((Path(path) / "summary.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise GroklabError(f"{path}/summary.json: unreadable ({_line(e)})") from None


def read_metrics(path: Path):
    """The long metrics table as a pyarrow Table (a one-line GroklabError if the file is unreadable)."""
    try:
        return pq.read_table(Path(path) / "metrics.parquet")
    except (OSError, pa.ArrowException) as e:
        raise GroklabError(f"{path}/metrics.parquet: unreadable ({_line(e)})") from None


def query(sql: str, root: Path | None = None):
    """`query_with_skipped` without the skipped list (it is left in `store.last_skipped`)."""
    cols, rows, skipped = query_with_skipped(sql, root)
    last_skipped[:] = skipped
    return cols, rows


def query_with_skipped(sql: str, root: Path | None = None):
    """Run SQL over every complete, undamaged run: views `runs` (one row per run), `members` (one row per
    member, with run_id) and `metrics` (the long curves: run_id, grp, member, step, metric, value, ...).
    Returns (column names, rows, skipped) where skipped lists (run_id, reason) of damaged complete runs."""
    import duckdb

    root = root or default_root()
    done = [p for p in sorted(root.glob("*")) if is_complete(p)]
    skipped = [(p.name, why) for p in done if (why := damage(p)) is not None]
    done = [p for p in done if p.name not in {s[0] for s in skipped}]
    if not done:
        raise GroklabError(f"runs query: no complete runs under {root}"
                           + (f" ({len(skipped)} damaged: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""))
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
    return [d[0] for d in res.description], res.fetchall(), skipped
