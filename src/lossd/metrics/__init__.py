"""Metrics: the catalogue, confusion scores, Boundary IoU, Boundary F-score, diagnostics."""

from lossd.metrics.bfscore import BF_COUNTS, bf_counts, bf_tolerance, class_edges
from lossd.metrics.boundary import (
    band_counts,
    boundary_width,
    joint_counts,
    label_boundary,
    mask_boundary,
)
from lossd.metrics.catalogue import (
    COUNTS,
    EVAL_CLASSES,
    METRIC_NAMES,
    METRICS,
    TABLES,
    VALID_PIXELS,
    Metric,
    class_mean,
    get_metric,
    metric_names,
    metric_scores,
    metrics_dict,
    per_class_names,
)
from lossd.metrics.confusion import confusion_counts, nan_mean, scores_from_confusion
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
    OPTIONAL_COUNT_FIELDS,
    REQUIRED_COUNT_FIELDS,
    PerImageStats,
    scores_from_counts,
)
from lossd.metrics.segmentation import SegmentationMetrics

__all__ = [
    "BF_COUNTS",
    "COUNTS",
    "COUNT_FIELDS",
    "DIAGNOSTIC_BINS",
    "DIAGNOSTIC_FIELDS",
    "EVAL_CLASSES",
    "METRICS",
    "METRIC_NAMES",
    "OPTIONAL_COUNT_FIELDS",
    "PROFILE_DISTANCES",
    "PROFILE_REACH",
    "REQUIRED_COUNT_FIELDS",
    "TABLES",
    "VALID_PIXELS",
    "Metric",
    "PerImageStats",
    "SegmentationMetrics",
    "band_counts",
    "bf_counts",
    "bf_tolerance",
    "boundary_width",
    "class_edges",
    "class_mean",
    "confusion_counts",
    "error_diagnostics",
    "error_distance_histograms",
    "get_metric",
    "joint_counts",
    "label_boundary",
    "mask_boundary",
    "metric_names",
    "metric_scores",
    "metrics_dict",
    "nan_mean",
    "per_class_names",
    "scores_from_confusion",
    "scores_from_counts",
]
