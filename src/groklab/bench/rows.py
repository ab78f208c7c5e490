"""One measured figure of `groklab bench suite` and its goal (GitHub issue #18)."""

from __future__ import annotations

import operator
from dataclasses import asdict, dataclass

# name: (goal on a CPU, goal on a GPU); "{steps}" is filled with the addition8 recipe's step count
GOALS = {
    "engine_speedup_pair_mlp": (">= 30", ">= 30"),
    "engine_fraction_of_peak_pair_mlp": (">= 0.4", ">= 0.4"),
    "parity_grid_full_estimate_s": ("<= 3600", "<= 120"),
    "addition8_train_steps_per_s": ("{steps} / 600", "{steps} / 120"),
    "addition8_to_floor_s": ("<= 600", "<= 120"),
    "addition8_train_steps_per_s_bf16": ("{steps} / 600", "{steps} / 120"),
    "addition8_to_floor_s_bf16": ("<= 600", "<= 120"),
    "coder_roundtrip_tokens_per_s": (">= 250000", ">= 1000000"),
    "coder_size_vs_floor": ("<= 1.002", "<= 1.002"),
    "coder_roundtrip_tokens_per_s_bf16": (">= 250000", ">= 1000000"),
    "coder_size_vs_floor_bf16": ("<= 1.002", "<= 1.002"),
}
OPS = {">=": operator.ge, "<=": operator.le}


def goal(name: str, device: str, steps: int = 0) -> str:
    """The goal string (e.g. ">= 30") of row `name` on `device`, "-" when the issue sets none."""
    g = GOALS.get(name, ("-", "-"))[device == "cuda"]
    if "{steps}" in g:  # a rate that reaches the recipe's steps within the time goal
        num, den = g.format(steps=steps).split(" / ")
        g = f">= {int(num) / int(den):.4g}"
    return g


@dataclass
class Row:
    name: str
    value: float
    unit: str
    goal: str = "-"
    note: str = ""

    def met(self) -> bool | None:
        """Whether the value meets the goal (None without one)."""
        op, _, num = self.goal.partition(" ")
        return OPS[op](self.value, float(num)) if op in OPS else None

    def to_dict(self) -> dict:
        return {**asdict(self), "value": float(self.value), "met": self.met()}


def fmt_value(v: float) -> str:
    """Thousands separators from 100 up; below, 4 significant digits, or 6 close to 1 (ratios like 1.00017)."""
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.6g}" if 0.99 < abs(v) < 1.01 else f"{v:.4g}"
