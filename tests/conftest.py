"""Tiny models run fastest on one thread, and CLI subprocesses must not oversubscribe the cores."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
