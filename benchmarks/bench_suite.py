"""Every performance figure side by side in one run (`groklab bench suite`), as a BENCHMARKS.md section.

    python benchmarks/bench_suite.py [--device cpu|cuda] [--quick] [--threads N] [--coder-model RUN] [--write]

Runs groklab.bench.suite in this process (progress on stderr), prints the table and, with --write, replaces
the `<!-- suite:begin -->` ... `<!-- suite:end -->` section of BENCHMARKS.md with it (the table, the machine,
the thread count, the load average and the date). `--json` prints the suite's JSON object instead.
"""

from __future__ import annotations

import argparse
import json

from common import report

from groklab.bench.suite import markdown, run_suite
from groklab.console import progress_bar


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--quick", action="store_true", help="reduced sizes (<= 5 min on 2 cores)")
    ap.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = all cores)")
    ap.add_argument("--coder-model", default=None, help="a `compress train` run for the coder rows")
    ap.add_argument("--json", action="store_true", help="print the suite's JSON object too")
    ap.add_argument("--write", action="store_true", help="replace the suite section of BENCHMARKS.md")
    a = ap.parse_args()
    prog, _ = progress_bar(1, "bench suite", True)
    task = prog.task_ids[0]
    with prog:
        res = run_suite(a.device, a.threads, "tiny" if a.tiny else "quick" if a.quick else "full", a.coder_model,
                        lambda done, total, info: prog.update(task, completed=done, total=total, info=info))
    if a.json:
        print(json.dumps(res), flush=True)
    report(markdown(res), "suite", a.write)


if __name__ == "__main__":
    main()
