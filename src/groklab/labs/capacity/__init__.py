"""Capacity lab (seed 003): effective model complexity, the largest sample count a model fits perfectly."""

from groklab.labs import Lab


def _figures(path):
    from groklab.labs.capacity.figures import redraw
    return redraw(path)


def _show(summary):
    from groklab.labs.capacity.cli import print_emc
    print_emc(summary)


LAB = Lab(name="capacity", summary="effective model complexity: how many samples a model fits perfectly",
          config_module="groklab.labs.capacity.config", cli_module="groklab.labs.capacity.cli",
          figures=_figures, show=_show, sweep_module="groklab.labs.capacity.sweep",
          tour_module="groklab.labs.capacity.tour", report_module="groklab.labs.capacity.report")
