"""`groklab sweep`: train every group of a grid as one ensemble; resumable; one folder per sweep.

runs/<id>/  sweep.json (the spec)  env.json  groups/gNNN.parquet (members)  groups/gNNN_metrics.parquet
            members.parquet (all members)  summary.json  figures/  COMPLETE
A killed sweep resumes with `groklab sweep --resume DIR`: groups whose table exists are skipped.
Several processes may work on one folder at once (`groklab sweep --resume DIR` in another terminal, each
with its own --threads): a process claims a group by creating groups/gNNN.claim (holding its host and pid)
before training it and skips groups claimed by a live process; a claim whose process is gone is taken
over. The process that finishes the last group writes the table, figures and summary.
Groups are taken most expensive first (`work_order`), so that processes sharing a sweep finish together
instead of one of them training the biggest group alone at the end.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from groklab import GroklabError, store
from groklab.config import validate
from groklab.engine import device as devmod
from groklab.sweep.grid import SweepSpec, groups, lab_sweep


def column(key: str, keys: list[str]) -> str:
    """Column name of a grid field: its last part (weight_decay) unless two axes share it."""
    short = key.split(".")[-1]
    return short if sum(k.split(".")[-1] == short for k in keys) == 1 else key.replace(".", "_")


def open_resume(path: Path) -> tuple[store.Run, SweepSpec]:
    path = Path(path)
    f = path / "sweep.json"
    if not f.is_file():
        raise GroklabError(f"--resume: {path} is not a sweep folder (no sweep.json)")
    try:
        spec = SweepSpec(**json.loads(f.read_text()))
    except (json.JSONDecodeError, TypeError) as e:
        raise GroklabError(f"--resume: {f} is unreadable ({e})") from None
    if store.is_complete(path):
        raise GroklabError(f"--resume: {path} is already complete")
    return store.Run(path), spec


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(path: Path) -> bool:
    """Claim a group for this process by creating `path` exclusively. A claim left by a process that is no
    longer running on this host is taken over; a claim from another host is respected."""
    me = f"{socket.gethostname()} {os.getpid()}\n"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                host, pid = path.read_text().split()
            except (OSError, ValueError):  # being written right now, or unreadable: leave it
                return False
            if host != socket.gethostname() or _alive(int(pid)):
                return False
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(me)
        return True
    return False


def work_order(plan: list) -> list[int]:
    """Group indices, most expensive first by the lab's cost model (ties keep grid order)."""
    costs = [lab_sweep(cfg).cost(cfg, len(pts)) for cfg, pts in plan]
    return sorted(range(len(plan)), key=lambda gi: -costs[gi])


def run_sweep(spec: SweepSpec, root=None, resume: Path | None = None, device: str | None = None,
              threads: int | None = None, on_progress=None) -> dict:
    """Run (or, with `resume` = a sweep folder and its spec from `open_resume`, continue) a sweep."""
    t0 = time.perf_counter()
    run = store.Run(Path(resume)) if resume is not None else None
    plan = groups(spec)  # validates every group config before anything is written
    for cfg, _ in plan:
        if device:
            cfg.train.device = device
        if threads is not None:
            cfg.train.threads = threads
        validate(cfg)
    dev = devmod.setup(plan[0][0].train.device, plan[0][0].train.threads)
    if run is None:
        run = store.Run.create(root or store.default_root(), f"sweep-{spec.name}")
        run.write_json("sweep.json", spec.to_dict())
        run.write_text("config.toml", plan[0][0].to_toml())  # the base config of the first group
    run.write_json("env.json", devmod.environment(dev))
    keys = list(spec.grid)
    steps_total = sum(cfg.train.steps for cfg, _ in plan)
    done_steps, model_steps, train_s = 0, 0, 0.0
    (run.path / "groups").mkdir(exist_ok=True)
    for gi in work_order(plan):
        cfg, pts = plan[gi]
        gfile = run.path / "groups" / f"g{gi:03d}.parquet"
        cfile = gfile.with_suffix(".claim")
        if gfile.is_file() or not claim(cfile):  # done, or another live process is training it
            done_steps += cfg.train.steps
            continue
        if gfile.is_file():  # finished between the check and the claim
            cfile.unlink(missing_ok=True)
            done_steps += cfg.train.steps
            continue
        hooks = lab_sweep(cfg)

        def progress(step, active, base=done_steps, gi=gi):
            if on_progress:
                on_progress(base + step, steps_total, f"group {gi + 1}/{len(plan)}, {active} training")

        res = hooks.train_group(cfg, pts, dev, progress)
        model_steps += res.model_steps
        train_s += res.wall_s
        rows: dict[str, list] = {"lab": [], "group": [], "member": [], "seed": []}
        rows.update({column(k, keys): [] for k in keys})
        rows.update({k: [] for k in hooks.summary_keys})
        for i, (p, s) in enumerate(zip(pts, res.rows)):
            rows["lab"].append(cfg.lab), rows["group"].append(gi), rows["member"].append(i)
            rows["seed"].append(p["seed"])
            for k in keys:
                rows[column(k, keys)].append(p[k])
            for k in hooks.summary_keys:
                rows[k].append(s[k])
        if res.metrics is not None:
            run.write_table(f"groups/g{gi:03d}_metrics.parquet", res.metrics)
        run.write_table(f"groups/g{gi:03d}.parquet", rows)  # written last: marks the group done
        cfile.unlink(missing_ok=True)
        done_steps += cfg.train.steps
    pending = [gi for gi in range(len(plan)) if not (run.path / "groups" / f"g{gi:03d}.parquet").is_file()]
    if pending:  # other processes are still training these
        return {"lab": "sweep", "preset": spec.name, "scale": spec.scale, "run_dir": str(run.path),
                "run_id": run.id, "complete": False, "groups": len(plan), "groups_pending": pending,
                "wall_s": round(time.perf_counter() - t0, 3), "model_steps": model_steps,
                "member_steps_per_s": round(model_steps / train_s, 1) if train_s else None}
    table = pa.concat_tables([pq.read_table(run.path / "groups" / f"g{gi:03d}.parquet") for gi in range(len(plan))],
                             promote_options="default")  # an all-None column is typed null in one group
    store.atomic_write(run.path / "members.parquet", lambda f: pq.write_table(table, f))
    t = table.to_pydict()
    hooks = lab_sweep(plan[0][0])
    counts = {o: int(sum(v == o for v in t["outcome"])) for o in hooks.outcomes}
    figs = hooks.figures(spec, t, keys, column, run.path / "figures") if hooks.figures else []
    wall = time.perf_counter() - t0
    summary = {"lab": "sweep", "preset": spec.name, "scale": spec.scale, "run_dir": str(run.path),
               "run_id": run.id, "complete": True, "wall_s": round(wall, 3), "n_runs": len(t["member"]),
               "base_lab": plan[0][0].lab,
               "groups": len(plan), "outcome_counts": counts, "model_steps": model_steps,
               "member_steps_per_s": round(model_steps / train_s, 1) if train_s else None,
               # wall_s, model_steps: this process; since_created_s: from the sweep folder's creation
               # to now, across kills, resumes and joined processes
               "since_created_s": round(time.time() - (run.path / "sweep.json").stat().st_mtime, 1),
               "figures": [str(f) for f in figs]}
    run.write_json("summary.json", summary)
    run.complete()
    return summary
