"""Reading a run's store for a report (no lab internals): long metrics as arrays, thinned curves, a sweep's
members and cells, HTML tables. Labs' report modules use these."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from groklab import GroklabError, store


def pivot(t, n_members: int | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """A long table {member, step, metric, value} (pyarrow Table or dict of columns) -> (steps (S,),
    {metric: (members, S)}, NaN where unlogged)."""
    col = (lambda k: t.column(k).to_numpy(zero_copy_only=False)) if hasattr(t, "column") else (lambda k: t[k])
    member, step = np.asarray(col("member"), dtype=np.int64), np.asarray(col("step"), dtype=np.int64)
    metric, value = np.asarray(col("metric"), dtype=object), np.asarray(col("value"), dtype=float)
    steps = np.unique(step)
    j = np.searchsorted(steps, step)
    m = n_members if n_members is not None else int(member.max()) + 1 if len(member) else 0
    out: dict[str, np.ndarray] = {}
    for name in dict.fromkeys(metric.tolist()):
        sel = metric == name
        out[name] = np.full((m, len(steps)), np.nan)
        out[name][member[sel], j[sel]] = value[sel]
    return steps, out


def thin(n: int, k: int = 300) -> np.ndarray:
    """At most k indices of 0..n-1, first and last kept, evenly spread (curves on a page need no more)."""
    return np.arange(n) if n <= k else np.unique(np.linspace(0, n - 1, k).round().astype(int))


def curve(steps: np.ndarray, values: np.ndarray, k: int = 300, log_x: bool = True) -> tuple[list, list]:
    """(x, y) lists of one logged curve: NaN and (for a log axis) step 0 dropped, thinned to about k points
    (spread evenly in log(step) on a log axis, so early training keeps its detail)."""
    ok = ~np.isnan(values) & ((steps > 0) if log_x else True)
    s, v = steps[ok], values[ok]
    if len(s) > k and log_x:
        i = np.unique(np.r_[0, np.searchsorted(s, np.geomspace(s[0], s[-1], k)).clip(0, len(s) - 1)])
    else:
        i = thin(len(s), k)
    return s[i].tolist(), [float(f"{x:.5g}") for x in v[i]]


def sweep_spec(path: Path) -> dict:
    try:
        return json.loads((Path(path) / "sweep.json").read_text())
    except (OSError, ValueError) as e:
        raise GroklabError(f"RUN: {path} has no readable sweep.json ({store._line(e)})") from None


def sweep_axes(path: Path, table: dict) -> tuple[str, str | None, str | None]:
    """Column names of the sweep's x, y and facet axes in members.parquet (as the sweep named them)."""
    from groklab.sweep.run import column

    spec = sweep_spec(path)
    keys = list(spec.get("grid", {}))
    if not keys:
        raise GroklabError(f"RUN: {path}/sweep.json has an empty grid")
    x = column(spec.get("x") or keys[0], keys)
    y = spec.get("y") or (keys[1] if len(keys) > 1 else None)
    y = column(y, keys) if y else None
    f = column(spec["facet"], keys) if spec.get("facet") else None
    for c in (x, y, f):
        if c is not None and c not in table:
            raise GroklabError(f"RUN: {path}/members.parquet has no column {c!r}")
    return x, y, f


def members(path: Path) -> dict:
    f = Path(path) / "members.parquet"
    if not f.is_file():
        raise GroklabError(f"RUN: {path} has no members.parquet")
    return pq.read_table(f).to_pydict()


def cells(table: dict, cols: list[str | None]) -> dict[tuple, list[int]]:
    """Row indices of `table` per distinct value of the columns (None for a column named None), sorted."""
    out: dict[tuple, list[int]] = {}
    for i in range(len(table["member"])):
        out.setdefault(tuple(table[c][i] if c else None for c in cols), []).append(i)
    return dict(sorted(out.items(), key=lambda kv: [(v is None, v) for v in kv[0]]))


def group_curves(path: Path, group: int, metrics: tuple[str, ...], k: int = 150) -> dict[int, dict]:
    """{member: {metric: (x, y)}} of one sweep group (k points a curve), from groups/gNNN_metrics.parquet."""
    f = Path(path) / "groups" / f"g{group:03d}_metrics.parquet"
    if not f.is_file():
        return {}
    steps, h = pivot(pq.read_table(f, columns=["member", "step", "metric", "value"],
                                   filters=[("metric", "in", list(metrics))]))
    n = max((v.shape[0] for v in h.values()), default=0)
    return {m: {name: curve(steps, h[name][m], k) for name in metrics if name in h} for m in range(n)}


def run_date(path: Path) -> str:
    """When the run finished (COMPLETE holds the time), else its id's date."""
    try:
        return (Path(path) / store.COMPLETE).read_text().strip().replace("T", " ")[:16]
    except OSError:
        return Path(path).name[:13]


def fmt(v, spec: str = ".4g") -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return f"{v:,}"
    return format(v, spec) if isinstance(v, (float, np.floating)) else str(v)


def table(header: list[str], rows: list[list], left: int = 0) -> str:
    """An HTML table; the first `left` columns left-aligned; cells are escaped unless wrapped in Raw."""
    def cell(tag, i, v):
        cls = ' class="l"' if i < left else ""
        return f"<{tag}{cls}>{v if isinstance(v, Raw) else html.escape(fmt(v))}</{tag}>"
    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f'<table class="gl-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class Raw(str):
    """HTML that `table` puts in a cell as is."""
