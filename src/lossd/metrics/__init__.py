"""Metrics: confusion-matrix metrics, Boundary IoU, over/under-segmentation diagnostics."""

from lossd.metrics.boundary import (
    band_counts,
    boundary_width,
    joint_counts,
    label_boundary,
    mask_boundary,
)
from lossd.metrics.confusion import nan_mean, scores_from_confusion
from lossd.metrics.diagnostics import (
    DIAGNOSTIC_BINS,
    PROFILE_DISTANCES,
    PROFILE_REACH,
    error_diagnostics,
    error_distance_histograms,
)
from lossd.metrics.per_image import (
    COUNT_FIELDS,
    DIAGNOSTIC_FIELDS,
    PerImageStats,
    scores_from_counts,
)
from lossd.metrics.segmentation import SegmentationMetrics

__all__ = [
    "COUNT_FIELDS",
    "DIAGNOSTIC_BINS",
    "DIAGNOSTIC_FIELDS",
    "PROFILE_DISTANCES",
    "PROFILE_REACH",
    "PerImageStats",
    "SegmentationMetrics",
    "band_counts",
    "boundary_width",
    "error_diagnostics",
    "error_distance_histograms",
    "joint_counts",
    "label_boundary",
    "mask_boundary",
    "nan_mean",
    "scores_from_confusion",
    "scores_from_counts",
]
