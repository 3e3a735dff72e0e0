"""Tensor operations shared by losses and metrics (exact taxicab distance transforms)."""

from lossd.ops.distance import label_edges, region_distance_maps, taxicab_distance

__all__ = ["label_edges", "region_distance_maps", "taxicab_distance"]
