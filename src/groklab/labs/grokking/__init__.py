"""Grokking lab: modular arithmetic and sparse parity; outcomes, Fourier analysis, figures."""

from groklab.labs import Lab


def _figures(path):
    from groklab.labs.grokking.run import redraw_figures
    return redraw_figures(path)


def _show(summary):
    from groklab.labs.grokking.cli import print_grok
    print_grok(summary)


LAB = Lab(name="grokking", summary="modular arithmetic and sparse parity: memorize, then generalize",
          config_module="groklab.labs.grokking.config", cli_module="groklab.labs.grokking.cli",
          figures=_figures, show=_show, sweep_module="groklab.labs.grokking.sweep",
          tour_module="groklab.labs.grokking.tour", report_module="groklab.labs.grokking.report")
