"""Metrics: confusion-matrix metrics, Boundary IoU, over/under-segmentation diagnostics."""

from lossd.metrics.boundary import (
    band_counts,
    boundary_width,
    joint_counts,
    label_boundary,
    mask_boundary,
)
from lossd.metrics.confusion import nan_mean, scores_from_confusion
from lossd.metrics.diagnostics import DIAGNOSTIC_BINS, error_distance_histograms
from lossd.metrics.segmentation import SegmentationMetrics

__all__ = [
    "DIAGNOSTIC_BINS",
    "SegmentationMetrics",
    "band_counts",
    "boundary_width",
    "error_distance_histograms",
    "joint_counts",
    "label_boundary",
    "mask_boundary",
    "nan_mean",
    "scores_from_confusion",
]
