"""Sweeps for any lab: a grid over the config fields of a lab's preset, expanded into groups of identical
shapes, each trained as one batched ensemble. A lab that sweeps supplies a `LabSweep` (its module named by
`Lab.sweep_module`): which grid fields vary per member inside one ensemble, how a group trains, how a
member is summarized (its row in members.parquet) and how the sweep is drawn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


@dataclass
class GroupResult:
    """What one trained group hands back to the sweep."""

    rows: list[dict]  # one per member point, in order: the lab's summary keys -> value
    metrics: dict[str, np.ndarray] | None  # long table: member, step, metric, value (+ lab columns)
    model_steps: int  # sum over members of optimizer steps taken
    wall_s: float


@dataclass
class LabSweep:
    member_fields: tuple[str, ...]  # grid fields that vary inside one ensemble (the rest make groups)
    summary_keys: tuple[str, ...]  # columns of each member's row (GroupResult.rows)
    # train_group(group config, member points [{field: value, ..., "seed": s}], device, on_progress(step, active))
    train_group: Callable[[object, list[dict], torch.device, Callable], GroupResult]
    cost: Callable[[object, int], float]  # relative cost of a group of n members (most expensive first)
    figures: Callable[..., list[Path]] | None = None  # (spec, table, keys, column, out folder) -> figures
    outcomes: tuple[str, ...] = field(default_factory=tuple)  # classes of the `outcome` column to count
