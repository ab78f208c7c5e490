"""Shared by the benchmark scripts: print a measured table and, with --write, put it into BENCHMARKS.md
between `<!-- NAME:begin -->` and `<!-- NAME:end -->`."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"


def report(table: str, name: str, write: bool) -> None:
    print(table, flush=True)
    if write:
        begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
        text = BENCHMARKS.read_text()
        i, j = text.index(begin) + len(begin), text.index(end)
        BENCHMARKS.write_text(text[:i] + "\n" + table + "\n" + text[j:])
