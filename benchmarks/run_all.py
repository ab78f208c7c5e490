"""`make bench`: every benchmark, one after the other (never in parallel: 2 cores), each writing its
section of BENCHMARKS.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for script in ("bench_engine.py", "bench_sweep.py", "bench_coder.py", "bench_suite.py"):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script), "--write"], check=True)
