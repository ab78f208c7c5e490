"""`groklab sweep`: train every group of a grid as one ensemble; resumable; one folder per sweep.

runs/<id>/  sweep.json (the spec)  env.json  groups/gNNN.parquet (members)  groups/gNNN_metrics.parquet
            members.parquet (all members)  summary.json  figures/  COMPLETE
A killed sweep resumes with `groklab sweep --resume DIR`: groups whose table exists are skipped.
Several processes may work on one folder at once (`groklab sweep --resume DIR` in another terminal, each
with its own --threads): a process claims a group by creating groups/gNNN.claim (holding its host and pid)
before training it and skips groups claimed by a live process; a claim whose process is gone is taken
over. The process that finishes the last group writes the table, figures and summary.
With `--backend ray` (sweep/ray_backend.py) this process claims the groups it sends to Ray, one task per
group, and writes each group's table as its task returns: the same folder, tables and resume as local.
The claim files stay (Ray schedules the tasks of one driver; it does not let a second process join a
running sweep, and neither does a process pool): a claim names its host and pid, so a killed process's
claims are taken over by the next `--resume` (tests/integration/test_kill_resume.py kills one for real).
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
from groklab.config import read_text, validate
from groklab.engine import device as devmod
from groklab.sweep import GroupResult
from groklab.sweep.grid import SweepSpec, groups, lab_sweep, parse_spec

BACKENDS = ("local", "ray")


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
        d = json.loads(read_text(f, "--resume"))
        spec = SweepSpec(**d)
    except (json.JSONDecodeError, TypeError) as e:
        raise GroklabError(f"--resume: {f} is unreadable ({str(e).splitlines()[0]})") from None
    try:  # the spec as written, checked again like a preset (a damaged sweep.json says so here)
        spec = parse_spec({"lab": "sweep", "base": d["base"], "seeds": d["seeds"], "grid": d["grid"], "set": d["sets"],
                           **{k: d[k] for k in ("x", "y", "facet", "description", "source") if d.get(k) is not None}},
                          spec.name, overrides=())
    except GroklabError as e:
        raise GroklabError(f"--resume: {f}: {e}") from None
    spec.scale = d["scale"]
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


def _files(run: store.Run, gi: int) -> tuple[Path, Path]:
    g = run.path / "groups" / f"g{gi:03d}.parquet"
    return g, g.with_suffix(".claim")


def _take(run: store.Run, gi: int) -> bool:
    """Claim group gi for this process unless it is done or a live process holds it."""
    gfile, cfile = _files(run, gi)
    if gfile.is_file() or not claim(cfile):
        return False
    if gfile.is_file():  # finished between the check and the claim
        cfile.unlink(missing_ok=True)
        return False
    return True


def _save(run: store.Run, gi: int, cfg, pts: list[dict], res: GroupResult, keys: list[str]) -> None:
    """Write a trained group: its metrics, then its members table (last: it marks the group done)."""
    hooks = lab_sweep(cfg)
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
    run.write_table(f"groups/g{gi:03d}.parquet", rows)
    _files(run, gi)[1].unlink(missing_ok=True)


def _train_local(run, plan, keys, dev, report, stats) -> None:
    """Train every group no live process holds, most expensive first; pass again while a pass took one (a
    process that dies meanwhile leaves its claim to be taken over)."""
    order, took = work_order(plan), True
    while took:
        took = False
        for gi in order:
            if not _take(run, gi):
                continue
            took = True
            cfg, pts = plan[gi]
            base = report(gi)

            def progress(step, active, gi=gi, base=base):
                report(gi, base + step, active)

            try:
                res = lab_sweep(cfg).train_group(cfg, pts, dev, progress)
                _save(run, gi, cfg, pts, res, keys)
            except BaseException:
                _files(run, gi)[1].unlink(missing_ok=True)  # let a resume (even in this process) take it
                raise
            stats[0] += res.model_steps
            stats[1] += res.wall_s


def _train_ray(session, run, plan, keys, report, stats) -> None:
    """Claim every group left, submit one Ray task each (most expensive first), save each as it returns."""
    ray = session.ray
    todo = [gi for gi in work_order(plan) if _take(run, gi)]
    refs = {session.submit(*plan[gi]): gi for gi in todo}
    report(None)
    try:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            gi = refs[ready[0]]
            res = ray.get(ready[0])  # a failed task raises here, with its traceback
            del refs[ready[0]]
            _save(run, gi, *plan[gi], res, keys)
            stats[0] += res.model_steps
            stats[1] += res.wall_s
            report(None)
    finally:
        for gi in refs.values():  # not finished: release the claims (the tasks die with this driver)
            _files(run, gi)[1].unlink(missing_ok=True)


def run_sweep(spec: SweepSpec, root=None, resume: Path | None = None, device: str | None = None,
              threads: int | None = None, on_progress=None, backend: str = "local",
              address: str | None = None) -> dict:
    """Run (or, with `resume` = a sweep folder and its spec from `open_resume`, continue) a sweep, on this
    process (`backend="local"`) or as Ray tasks (`"ray"`, `address` None = a local Ray)."""
    t0 = time.perf_counter()
    if backend not in BACKENDS:
        raise GroklabError(f"--backend: {backend!r} is not allowed; choose one of: {', '.join(BACKENDS)}")
    if address is not None and backend != "ray":
        raise GroklabError("--address: only with --backend ray")
    run = store.Run(Path(resume)) if resume is not None else None
    plan = groups(spec)  # validates every group config before anything is written
    for cfg, _ in plan:
        if device:
            cfg.train.device = device
        if threads is not None:
            cfg.train.threads = threads
        validate(cfg)
    first = plan[0][0].train
    session, dev = None, None
    if backend == "ray":  # connect before the folder exists: a missing Ray or a bad address writes nothing
        from groklab.sweep import ray_backend

        session = ray_backend.connect(address, first.threads, first.device, devmod.cpu_budget())
    else:
        dev = devmod.setup(first.device, first.threads)
    try:
        if run is None:
            run = store.create_run(root, f"sweep-{spec.name}", {  # config.toml: the first group's base config
                "sweep.json": spec.to_dict(), "config.toml": plan[0][0].to_toml()})
        run.write_json("env.json", session.environment() if session else devmod.environment(dev))
        (run.path / "groups").mkdir(exist_ok=True)
        keys = list(spec.grid)
        steps_total = sum(cfg.train.steps for cfg, _ in plan)

        done = [0, 0]  # steps and count of the groups done (by any process), counted when a group starts/ends

        def report(gi, step=None, active=None):
            """Progress; returns the steps of the groups already done (the base of group gi's steps)."""
            if step is None:
                finished = [_files(run, i)[0].is_file() for i in range(len(plan))]
                done[:] = [sum(c.train.steps for (c, _), f in zip(plan, finished) if f), sum(finished)]
            if on_progress:
                info = (f"{done[1]}/{len(plan)} groups done on Ray" if gi is None
                        else f"group {gi + 1}/{len(plan)}, {active} training")
                on_progress(done[0] if step is None else step, steps_total, info)
            return done[0]

        stats = [0, 0.0]  # member-steps, training seconds (this process, or its Ray tasks)
        if session is not None:
            _train_ray(session, run, plan, keys, report, stats)
        else:
            _train_local(run, plan, keys, dev, report, stats)
    finally:
        if session is not None:
            session.close()
    return _finish(spec, run, plan, keys, stats, t0)


def _finish(spec: SweepSpec, run: store.Run, plan, keys, stats, t0: float) -> dict:
    """The members table, figures and summary once every group is done; else what is still pending."""
    model_steps, train_s = stats
    rate = round(model_steps / train_s, 1) if train_s else None
    pending = [gi for gi in range(len(plan)) if not _files(run, gi)[0].is_file()]
    if pending:  # other processes are still training these
        return {"lab": "sweep", "preset": spec.name, "scale": spec.scale, "run_dir": str(run.path),
                "run_id": run.id, "complete": False, "groups": len(plan), "groups_pending": pending,
                "wall_s": round(time.perf_counter() - t0, 3), "model_steps": model_steps,
                "member_steps_per_s": rate}
    table = pa.concat_tables([pq.read_table(_files(run, gi)[0]) for gi in range(len(plan))],
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
               "member_steps_per_s": rate,
               # wall_s, model_steps: this process; since_created_s: from the sweep folder's creation
               # to now, across kills, resumes and joined processes
               "since_created_s": round(time.time() - (run.path / "sweep.json").stat().st_mtime, 1),
               "figures": [str(f) for f in figs]}
    run.write_json("summary.json", summary)
    run.complete()
    return summary
