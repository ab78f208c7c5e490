"""Small statistics shared by every lab (one copy of each)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np


def median_or_none(values: Iterable[float | None]) -> float | None:
    """Median of the values that are not None (e.g. steps of the members that got somewhere); None if none."""
    v = [x for x in values if x is not None]
    return float(np.median(v)) if v else None
