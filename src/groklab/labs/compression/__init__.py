"""Compression lab (seed 002): next-token prediction on n-digit addition as lossless compression."""
