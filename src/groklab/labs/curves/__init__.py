"""Curves lab (seed 000): the U-shaped risk curve versus double descent, MNIST-1D baselines, scaling-law fits."""

from groklab.labs import Lab


def _figures(path):
    from groklab.labs.curves.figures import redraw
    return redraw(path)


def _show(summary):
    from groklab.labs.curves.cli import show
    show(summary)


LAB = Lab(name="curves", summary="U-curve vs double descent, MNIST-1D baselines, scaling-law fits",
          config_module="groklab.labs.curves.config", cli_module="groklab.labs.curves.cli",
          figures=_figures, show=_show, report_module="groklab.labs.curves.report",
          tour_module="groklab.labs.curves.tour")
