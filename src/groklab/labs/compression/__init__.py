"""Compression lab (seed 002): next-token prediction on n-digit addition as lossless compression."""

from groklab.labs import Lab


def _figures(path):
    from groklab.labs.compression.figures import redraw
    return redraw(path)


LAB = Lab(name="compression", summary="next-token prediction is compression: the addition GPT vs the floor",
          config_module="groklab.labs.compression.config", cli_module="groklab.labs.compression.cli",
          figures=_figures, sweep_module="groklab.labs.compression.sweep",
          tour_module="groklab.labs.compression.tour", report_module="groklab.labs.compression.report")
