"""The one plotting path: headless matplotlib, one style, atomic PNG writes."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False,
         "axes.spines.right": False, "font.size": 9, "axes.titlesize": 10, "legend.fontsize": 8}
plt.rcParams.update(STYLE)

TRAIN, TEST = "#d62728", "#1f77b4"


def subplots(nrows: int = 1, ncols: int = 1, w: float = 5.0, h: float = 3.6, **kw):
    return plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False, **kw)


def save(fig, path: Path | str) -> Path:
    """Write a PNG atomically (store.atomic_write) and close the figure."""
    from groklab.store import atomic_write

    def write(tmp: Path) -> None:
        if fig.get_layout_engine() is None:  # figures made with layout="constrained" lay themselves out
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                fig.tight_layout()
        fig.savefig(tmp, bbox_inches="tight", format="png")

    try:
        return atomic_write(path, write)
    finally:
        plt.close(fig)


def symlog_steps(ax) -> None:
    """Step axis that shows step 0 and then decades (training curves span 1..1e5 steps)."""
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(left=0)
    ax.set_xlabel("step")
