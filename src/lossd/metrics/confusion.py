"""Per-class scores from a confusion matrix (IoU, F1, precision, recall) and OA.

The matrix follows GeoSeg's evaluator (github.com/WangLibo1995/GeoSeg, tools/metric.py,
commit 6eadd53): rows are the target class, columns the predicted class, pixels whose target is
the ignore value drop out (counted by :func:`lossd.metrics.boundary.joint_counts`). From the
per-class true positives TP, false positives FP (column sum minus diagonal) and false negatives
FN (row sum minus diagonal):

- IoU = TP / (TP + FP + FN) (Jaccard index; GeoSeg ``Intersection_over_Union``),
- F1 = 2 TP / (2 TP + FP + FN) (Dice / Sørensen; the harmonic mean of precision and recall),
- precision = TP / (TP + FP), recall = TP / (TP + FN),
- OA = trace / total over every valid pixel of every class (GeoSeg ``OA``).

Departures from GeoSeg, on purpose: a class with no support in the target nor the prediction
(TP + FP + FN = 0) scores NaN in every per-class list (GeoSeg gives NaN too, via 0/0); a class with
support but TP = 0 scores F1 = 0, where GeoSeg's harmonic-mean formula gives 0/0 = NaN and then
drops the class from ``np.nanmean``; and when only one denominator of precision or recall is zero
(class never predicted, or predicted but absent from the target) that value is 0 instead of NaN.
"""

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from lossd.metrics.catalogue import class_mean, get_metric

__all__ = ["confusion_counts", "nan_mean", "scores_from_confusion"]


def confusion_counts(matrix: Tensor | np.ndarray) -> dict[str, np.ndarray]:
    """Per-class ``tp``, ``fp``, ``fn`` (int64 ``[C]``) of a confusion matrix.

    Args:
        matrix: C x C confusion matrix, rows = target, columns = pred (any integer dtype).
    """
    counts = (
        matrix.detach().cpu().numpy() if isinstance(matrix, Tensor) else np.asarray(matrix)
    ).astype(np.int64)
    tp = np.diagonal(counts).copy()
    return {"tp": tp, "fp": counts.sum(axis=0) - tp, "fn": counts.sum(axis=1) - tp}


def scores_from_confusion(matrix: Tensor) -> dict[str, list[float] | float]:
    """Per-class IoU, F1, precision and recall, and the overall accuracy.

    Formulas: module docstring (GeoSeg tools/metric.py, with the stated departures for zero
    denominators), as defined once in :data:`lossd.metrics.catalogue.METRICS`.

    Args:
        matrix: C x C confusion matrix, rows = target, columns = pred (any integer dtype).

    Returns:
        ``{"IoU", "F1", "Precision", "Recall"}``: lists of C floats (NaN for a class with no
        support in target nor prediction); ``"OA"``: trace / total (NaN if no valid pixel).

    Shape:
        - matrix: [C, C].
    """
    counts = confusion_counts(matrix)
    out: dict[str, list[float] | float] = {}
    for name in ("IoU", "F1", "Precision", "Recall"):
        out[name] = [float(v) for v in get_metric(name).values(counts).tolist()]
    out["OA"] = float(get_metric("OA").values(counts))
    return out


def nan_mean(values: Sequence[float], classes: Sequence[int]) -> float:
    """Mean of ``values[c]`` over ``classes``, skipping NaN (``np.nanmean``, as GeoSeg).

    The sum is correctly rounded (:func:`lossd.metrics.catalogue.class_mean`).

    Args:
        values: One value per class.
        classes: The class indices to average over.

    Returns:
        The mean of the finite entries, or NaN when every selected entry is NaN.
    """
    return float(class_mean(np.asarray(values, dtype=np.float64), classes))
