"""The capacity lab's row of `groklab bench suite` (#12): how many EMC-search trainings per minute the batched
k-ary search gets through, on a small emc-demo search (MLP 40-16-16-10 on MNIST-1D, full-batch Adam) run
through the lab's own search (`labs/capacity/run.run_search`: every round's trainings are one ensemble).
Everything — the built MNIST-1D set included — goes to a temporary folder, never the run store.

A training stops when it fits or reaches the epoch cap, so a training is not a fixed amount of work: the rate
is for this search (its sizes, cap and tolerance, stated in the note), comparable between machines and
versions, not between configs. benchmarks/bench_emc.py compares the batched search with the same trainings run
one by one and with a linear scan of n (BENCHMARKS.md)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from groklab.bench.rows import Row

# suite size -> (seeds, epoch cap, n_min, n_max, tol): full = emc-demo's sizes at a 1,000-epoch cap
# (~1 min on 1 thread), quick = one seed at a 300-epoch cap (seconds), tiny = tests only (200 generated MNIST-1D
# examples; the numbers mean nothing)
EMC_SIZES = {"full": (2, 1000, 50, 4000, 0.05), "quick": (1, 300, 50, 4000, 0.05),
             "tiny": (1, 4, 10, 40, 0.5)}


def emc_search(size: str, device: str, threads: int, progress) -> list[Row]:
    """One emc-demo EMC search at the suite size `size` (full | quick | tiny): the row emc_trainings_per_min."""
    from groklab.labs.capacity.config import load
    from groklab.labs.capacity.run import prepare, run_search

    seeds, cap, n_min, n_max, tol = EMC_SIZES[size]
    over = [f"train.device={device}", f"train.threads={threads}", f"train.seeds={seeds}",
            f"search.max_epochs={cap}", f"search.n_min={n_min}", f"search.n_max={n_max}", f"search.tol={tol}"]
    if size == "tiny":
        over += ["search.check_every=2", "search.window=2", "data.mnist1d_samples=200", "data.n_test=40"]
    cfg = load("emc-demo", None, over)
    with tempfile.TemporaryDirectory() as tmp:
        progress(f"capacity: emc-demo search, {seeds} seed(s), {cap:,}-epoch cap")
        dev, base, ens = prepare(cfg, Path(tmp))
        t0 = time.perf_counter()
        res, per_seed, _, _, cost = run_search(cfg, base, ens, dev, list(range(cfg.train.seed,
                                                                                cfg.train.seed + seeds)))
        wall = time.perf_counter() - t0
    emcs = ", ".join(str(p["emc"]) for p in per_seed)
    note = (f"emc-demo search (MLP {ens.n_params:,} parameters, MNIST-1D, full-batch Adam, cosine), {seeds} seed(s), "
            f"{cap:,}-epoch cap, n {n_min}-{n_max:,}, tol {tol:g}, k {cfg.search.k}: {res.trainings} trainings in "
            f"{len(res.rounds)} rounds (each round one ensemble), {wall:.1f} s, {cost['model_steps']:,} member-steps; "
            f"EMC {emcs}; a training stops at fit or cap, so the rate is for this search only")
    if size != "full":
        note = f"REDUCED: {note}"
    return [Row("emc_trainings_per_min", res.trainings / wall * 60, "trainings/min", "-", note)]
