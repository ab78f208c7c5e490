"""The EMC search: a parallel k-ary search on a log scale, one bracket per seed, no training in here.

EMC = the largest n a model fits (100% train accuracy, trained to convergence). Per seed the search keeps a
bracket [lo, hi]: lo = the largest n seen fitted, hi = the smallest n above lo seen NOT fitted.
- Round 1 tries k sizes log-spaced over [n_min, n_max], both ends included. If n_min does not fit, the
  seed's EMC is below the range (bracket [0, n_min]); if n_max fits, it is at least n_max (bracket
  [n_max, None]); either way that seed is done.
- Every later round tries k sizes log-spaced strictly inside (lo, hi): geomspace(lo, hi, k + 2)[1:-1],
  rounded and de-duplicated (every integer inside when fewer than k are left), so the log-width of the
  bracket shrinks by a factor k + 1 per round.
- A seed is done when (hi - lo) / lo <= tol, or hi = lo + 1 (nothing left between), or at max_rounds.
- Fitting need not be monotone in n (optimization is noisy): a size below lo that did not fit is counted
  as an inversion and reported; the definition (the LARGEST fitted n) decides the bracket.
All seeds' candidates of one round are trained together (one ensemble); a seed that is done adds none.
Trainings per seed for a range ratio R = n_max / n_min: k + k * ceil(log(ln(R) / ((k - 1) ln(1 + tol))) /
log(k + 1)) at most, e.g. 12 for R = 80, k = 3, tol = 0.05 (`rounds_needed`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


def log_spaced(a: float, b: float, k: int) -> list[int]:
    """k sizes log-spaced over [a, b] (ends included), rounded, unique, ascending."""
    return sorted({int(round(v)) for v in np.geomspace(a, b, k)})


@dataclass
class Bracket:
    """One seed's search state."""

    n_min: int
    n_max: int
    tried: dict[int, bool] = field(default_factory=dict)  # n -> fitted
    rounds: int = 0

    @property
    def lo(self) -> int | None:
        """Largest fitted n (None: nothing fitted yet)."""
        fitted = [n for n, ok in self.tried.items() if ok]
        return max(fitted) if fitted else None

    @property
    def hi(self) -> int | None:
        """Smallest unfitted n above lo (None: nothing above lo failed yet)."""
        lo = self.lo or 0
        failed = [n for n, ok in self.tried.items() if not ok and n > lo]
        return min(failed) if failed else None

    @property
    def inversions(self) -> int:
        """Sizes below lo that did not fit (non-monotone fitting)."""
        lo = self.lo
        return 0 if lo is None else sum(1 for n, ok in self.tried.items() if not ok and n < lo)

    def state(self, tol: float) -> str:
        """searching | found (bracket within tol) | below_range (n_min did not fit) | above_range (n_max
        fitted)."""
        lo, hi = self.lo, self.hi
        if lo is None and hi is not None and hi <= self.n_min:
            return "below_range"
        if hi is None and lo is not None and lo >= self.n_max:
            return "above_range"
        if lo is not None and hi is not None and ((hi - lo) / lo <= tol or hi - lo <= 1):
            return "found"
        return "searching"

    def candidates(self, k: int) -> list[int]:
        """The next round's sizes (empty once nothing untried is left inside the bracket)."""
        if not self.tried:
            return log_spaced(self.n_min, self.n_max, k)
        a = self.lo if self.lo is not None else self.n_min
        b = self.hi if self.hi is not None else self.n_max
        if b - a - 1 <= k:
            inside = list(range(a + 1, b))
        else:
            inside = [n for n in log_spaced(a, b, k + 2) if a < n < b]
        return [n for n in inside if n not in self.tried]

    def record(self, n: int, fitted: bool) -> None:
        self.tried[int(n)] = bool(fitted)


@dataclass
class SearchResult:
    brackets: dict[int, Bracket]  # seed -> its final bracket
    rounds: list[list[tuple[int, int, bool]]]  # per round: (seed, n, fitted) of every training
    tol: float

    @property
    def trainings(self) -> int:
        return sum(len(r) for r in self.rounds)

    def per_seed(self) -> list[dict]:
        out = []
        for seed, b in self.brackets.items():
            state = b.state(self.tol)
            out.append({"seed": seed, "emc": b.lo, "bracket": [b.lo if b.lo is not None else 0, b.hi],
                        "state": state if state != "searching" else "max_rounds",
                        "trainings": len(b.tried), "rounds": b.rounds, "inversions": b.inversions})
        return out


class EMCSearch:
    """Brackets of several seeds advanced round by round: `next_round()` -> [(seed, n)], then `record`."""

    def __init__(self, seeds: list[int], n_min: int, n_max: int, k: int, tol: float, max_rounds: int):
        self.brackets = {int(s): Bracket(n_min, n_max) for s in seeds}
        self.k, self.tol, self.max_rounds = k, tol, max_rounds
        self.rounds: list[list[tuple[int, int, bool]]] = []

    def next_round(self) -> list[tuple[int, int]]:
        """(seed, n) of every training of the next round; [] when every seed is done."""
        if len(self.rounds) >= self.max_rounds:
            return []
        return [(s, n) for s, b in self.brackets.items() if b.state(self.tol) == "searching"
                for n in b.candidates(self.k)]

    def record(self, results: list[tuple[int, int, bool]]) -> None:
        """(seed, n, fitted) of a round's trainings."""
        for seed in {s for s, _, _ in results}:
            self.brackets[seed].rounds += 1
        for seed, n, fitted in results:
            self.brackets[seed].record(n, fitted)
        self.rounds.append(list(results))

    def result(self) -> SearchResult:
        return SearchResult(self.brackets, self.rounds, self.tol)


def search(fits: Callable[[list[tuple[int, int]]], list[bool]], seeds: list[int], n_min: int, n_max: int,
           k: int = 3, tol: float = 0.05, max_rounds: int = 12, on_round: Callable | None = None,
           done: list[list[tuple[int, int, bool]]] = ()) -> SearchResult:
    """Run the search with `fits([(seed, n), ...]) -> [fitted, ...]` (one call per round: one ensemble).
    `done`: rounds already trained (seed, n, fitted), replayed first (resume after a kill); each must be
    exactly the round the search would have asked for (else ValueError: not this search's rounds)."""
    s = EMCSearch(seeds, n_min, n_max, k, tol, max_rounds)
    for results in done:
        if sorted((seed, n) for seed, n, _ in results) != sorted(s.next_round()):
            raise ValueError(f"round {len(s.rounds) + 1} of the stored search is not the one this config asks for")
        s.record(results)
    while cands := s.next_round():
        ok = fits(cands)
        s.record([(seed, n, bool(f)) for (seed, n), f in zip(cands, ok)])
        if on_round is not None:
            on_round(len(s.rounds), s)
    return s.result()


def rounds_needed(n_min: int, n_max: int, k: int, tol: float) -> int:
    """Rounds the search needs at most (in log-width; integer rounding only shortens it)."""
    width = math.log(n_max / n_min) / (k - 1)  # after round 1
    rounds = 1
    while width > math.log1p(tol) and rounds < 64:
        width /= k + 1
        rounds += 1
    return rounds


def summarize(per_seed: list[dict]) -> dict:
    """emc (mean of the seeds' EMC), emc_std (population std; 0 for one seed), bracket [min lo, max hi]."""
    emcs = [p["emc"] for p in per_seed if p["emc"] is not None]
    his = [p["bracket"][1] for p in per_seed]
    return {"emc": float(np.mean(emcs)) if emcs else None, "emc_std": float(np.std(emcs)) if emcs else None,
            "bracket": [min(p["bracket"][0] for p in per_seed), None if None in his else max(his)]}
