"""Grokking lab: modular arithmetic and sparse parity; outcomes, Fourier analysis, figures."""
