"""Text tables of one run's metrics, printed at the end of training and evaluation.

The columns are the per-class values of the metrics the main tables show (the metric catalogue,
``lossd.metrics.per_class_names("main")``: IoU, F1, Boundary IoU, Boundary F-score), the last
row their means over the evaluated classes, and the footer the main metrics without per-class
values (OA, over every valid pixel).
"""

import math
from collections.abc import Mapping, Sequence
from typing import Any

from tabulate import tabulate

from lossd.metrics import catalogue

__all__ = ["format_metrics_table"]


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100.0 * float(value):.2f}"


def format_metrics_table(
    metrics: Mapping[str, Any], class_names: Sequence[str], eval_classes: Sequence[int] = ()
) -> str:
    """Per-class values of the main metrics (percent) and the protocol means, as a text table.

    Classes outside ``eval_classes`` are marked with ``*`` (not in the means); the main metrics
    without per-class values (OA) are printed under the table. A metric the dict lacks (an
    older record) shows ``-``.
    """
    shown = [m for m in catalogue.METRICS if "main" in m.tables]
    columns = [m for m in shown if m.per_class is not None]
    evaluated = set(eval_classes) if eval_classes else set(range(len(class_names)))
    rows = []
    for index, name in enumerate(class_names):
        label = name if index in evaluated else f"{name} *"
        values = []
        for metric in columns:
            per_class = metrics.get(str(metric.per_class))
            if isinstance(per_class, Sequence) and index < len(per_class):
                values.append(_pct(per_class[index]))
            else:
                values.append(_pct(None))
        rows.append([label, *values])
    rows.append(["mean", *(_pct(metrics.get(m.name)) for m in columns)])
    table = tabulate(
        rows,
        headers=["class", *(f"{m.per_class} %" for m in columns)],
        tablefmt="github",
        disable_numparse=True,
    )
    footer = "   ".join(
        f"{m.label} {_pct(metrics.get(m.name))} %" for m in shown if m.per_class is None
    )
    if evaluated != set(range(len(class_names))):
        footer += "   (* not in the means: dataset evaluation protocol)"
    return f"{table}\n{footer}"
