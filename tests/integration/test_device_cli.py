"""`--device cuda` on a machine without a GPU: one line naming the option, exit 2, no run folder."""

import pytest
import torch

from .conftest import groklab

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: --device cuda is valid here")


@pytest.mark.parametrize("args", [
    ["grok", "--preset", "demo", "--steps", "5", "--device", "cuda"],
    ["compress", "train", "--preset", "addition-tiny", "--steps", "30", "--device", "cuda"],
    ["sweep", "--preset", "pair-parity-grid", "--scale", "small", "--set", "train.steps=5", "--device", "cuda"],
])
def test_cuda_without_a_gpu_is_one_line(args, runs):
    proc = groklab(*args, runs=runs, check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "cuda" in lines[0].lower() and "Traceback" not in proc.stderr
    assert not runs.exists() or not any(runs.iterdir())
