"""Sweeps: expand a grid over any config field, train each same-shape group as one ensemble."""
