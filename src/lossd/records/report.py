"""Text tables of one run's metrics, printed at the end of training and evaluation."""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tabulate import tabulate

__all__ = ["format_metrics_table"]

PER_CLASS_KEYS = ("IoU", "F1", "BIoU")
MEAN_KEYS = {"IoU": "mIoU", "F1": "mF1", "BIoU": "mBIoU"}


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100.0 * float(value):.2f}"


def format_metrics_table(
    metrics: Mapping[str, Any], class_names: Sequence[str], eval_classes: Sequence[int] = ()
) -> str:
    """Per-class IoU / F1 / Boundary IoU (percent) and the protocol means, as a text table.

    Classes outside ``eval_classes`` are marked with ``*`` (not in the means); OA is printed
    under the table since it is over all valid pixels.
    """
    evaluated = set(eval_classes) if eval_classes else set(range(len(class_names)))
    rows = []
    for index, name in enumerate(class_names):
        label = name if index in evaluated else f"{name} *"
        rows.append(
            [
                label,
                *(_pct(metrics.get(key, [None] * (index + 1))[index]) for key in PER_CLASS_KEYS),
            ]
        )
    rows.append(["mean", *(_pct(metrics.get(MEAN_KEYS[key])) for key in PER_CLASS_KEYS)])
    table = tabulate(
        rows, headers=["class", "IoU %", "F1 %", "BIoU %"], tablefmt="github", disable_numparse=True
    )
    footer = f"OA {_pct(metrics.get('OA'))} %"
    if evaluated != set(range(len(class_names))):
        footer += "   (* not in the means: dataset evaluation protocol)"
    return f"{table}\n{footer}"
