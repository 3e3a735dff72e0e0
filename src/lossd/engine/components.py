"""Pieces that training and evaluation build the same way from a config.

:func:`lossd.engine.run.run` and :func:`lossd.engine.evaluate.evaluate` both prepare the dataset
folder, build the protocol's metrics and print a metrics table under a heading; each does it
through these functions, so the two cannot drift apart.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lossd.data.info import DatasetInfo
from lossd.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from lossd.engine.config import build
from lossd.engine.options import MetricsOptions
from lossd.engine.runtime import DistContext
from lossd.metrics import SegmentationMetrics
from lossd.records import format_metrics_table

__all__ = [
    "build_metrics",
    "prepare_dataset",
    "print_metrics",
    "training_normalization",
]


def prepare_dataset(dataset: Any, ctx: DistContext) -> None:
    """Run the dataset node's ``prepare`` step (synthetic data) on rank 0; others wait."""
    if dataset.get("prepare") is not None:
        if ctx.is_main:
            build(dataset.prepare)
        ctx.barrier()


def build_metrics(
    metrics: MetricsOptions,
    info: DatasetInfo,
    eval_classes: Sequence[int],
    *,
    per_image: bool = True,
) -> SegmentationMetrics:
    """The dataset protocol's metric accumulator.

    Args:
        metrics: The metric options.
        info: The dataset's class table (number of classes, ignore value).
        eval_classes: Classes averaged by the mean metrics (``dataset.eval_classes``).
        per_image: False: no per-image counts whatever the options say (a second block).
    """
    return SegmentationMetrics(
        num_classes=info.num_classes,
        ignore_index=info.ignore_index,
        eval_classes=list(eval_classes),
        boundary_ratio=float(metrics.boundary_ratio),
        boundary_width=metrics.boundary_width,
        bf_ratio=float(metrics.bf_ratio),
        diagnostics=metrics.diagnostics,
        per_image=per_image and metrics.per_image,
    )


def training_normalization(
    config: Mapping[str, Any],
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std (0..1 scale) of a resolved training config's evaluation transform.

    Read from the ``mean``/``std`` arguments of ``dataset.val.transform``; ImageNet's (the
    ``eval_transform`` defaults) when it sets none.
    """
    dataset = config.get("dataset") or {}
    val = dataset.get("val") if isinstance(dataset, Mapping) else None
    transform = val.get("transform") if isinstance(val, Mapping) else None
    transform = transform if isinstance(transform, Mapping) else {}
    mean: Sequence[float] = transform.get("mean") or IMAGENET_MEAN
    std: Sequence[float] = transform.get("std") or IMAGENET_STD
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def print_metrics(
    heading: str,
    metrics: Mapping[str, Any],
    info: DatasetInfo,
    eval_classes: Sequence[int],
    record_path: Path,
    wall_time_s: float,
) -> None:
    """Print a heading, the metrics table and where the record went (rank 0 only)."""
    print(f"\n{heading}")
    print(format_metrics_table(metrics, info.classes, list(eval_classes)))
    print(f"run record: {record_path}  (wall time {wall_time_s:.0f} s)")
