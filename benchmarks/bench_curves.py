"""Width sweeps of the curves lab: one optimizer step of every width, as a plain loop (one training per width)
against one padded ensemble of all widths and against the planned groups (labs/curves/networks.py).

    OMP_NUM_THREADS=1 python benchmarks/bench_curves.py [--kind mlp|cnn] [--steps 10] [--threads 1]

Times `train_step` (forward, backward, SGD momentum) on batches of 100 MNIST-1D-shaped inputs, each member its
own batch (train.batching = epochs), after two warm-up steps; prints ms per step of the whole sweep and the
estimate for the preset's 500 epochs x 40 steps (evaluations excluded: a few dozen over a run).
"""

from __future__ import annotations

import argparse
import time

import torch

from groklab.engine.batches import Batch
from groklab.engine.optim import BatchedOptimizer
from groklab.engine.trainer import train_step
from groklab.labs.curves import networks

WIDTHS = {"mlp": [2, 3, 4, 5, 7, 9, 12, 16, 21, 28, 37, 49, 65, 86, 113, 150, 198, 261, 300],
          "cnn": [2, 3, 4, 5, 6, 8, 10, 12, 15, 18, 22, 27, 33, 40, 49, 60, 73, 89, 100]}
KW = {"reduction": "ce", "softmax": "softmax", "dtype": "float32"}


def step_ms(kind: str, ws: list[int], steps: int, x: torch.Tensor, y: torch.Tensor, fast: bool = True) -> float:
    ens = networks.WidthEnsemble(kind, ws, batched=fast)  # fast=False: torch.func vmap, the CNN's before
    p = {k: v.requires_grad_(True) for k, v in ens.init(list(range(len(ws))), torch.ones(len(ws))).items()}
    opt = BatchedOptimizer(p, "sgd", torch.full((len(ws),), 0.01), torch.zeros(len(ws)), momentum=0.9)
    g = torch.Generator().manual_seed(0)

    def batch() -> Batch:
        idx = torch.randint(0, len(y), (len(ws), 100), generator=g)  # (M, 100)
        return Batch(x[idx], y[idx], torch.ones(len(ws), 100, dtype=torch.bool), per_member=True)

    for _ in range(2):
        train_step(ens, p, opt, batch(), None, KW)
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(ens, p, opt, batch(), None, KW)
    return (time.perf_counter() - t0) / steps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kind", default="mlp", choices=("mlp", "cnn"))
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    x, y = torch.randn(4000, 40), torch.randint(0, 10, (4000,))
    ws = WIDTHS[a.kind]
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    loop = sum(step_ms(a.kind, [w], a.steps, x, y) for w in ws)
    padded = step_ms(a.kind, ws, a.steps, x, y)
    groups = networks.plan_groups(a.kind, ws, 1)
    grouped = sum(step_ms(a.kind, g, a.steps, x, y) for g in groups)
    full = 500 * 40 / 1000 / 60  # minutes per ms of step time
    if networks.WidthEnsemble(a.kind, ws[:2])._batched is not None:
        vmapped = sum(step_ms(a.kind, g, a.steps, x, y, fast=False) for g in groups)
        print(f"| {a.kind} groups | batched_forward {grouped:.1f} ms | torch.func vmap {vmapped:.1f} ms | "
              f"{vmapped / grouped:.2f}x |")
    print(f"| {a.kind} | {len(ws)} widths | loop {loop:.1f} ms | all padded {padded:.1f} ms | {len(groups)} groups "
          f"{grouped:.1f} ms | loop/groups {loop / grouped:.2f}x | 500 epochs: loop {loop * full:.1f} min, groups "
          f"{grouped * full:.1f} min | {a.threads} thread(s), load {load} |")


if __name__ == "__main__":
    main()
