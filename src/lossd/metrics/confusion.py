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

import math
from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["nan_mean", "scores_from_confusion"]


def _ratio(numerator: Tensor, denominator: Tensor, support: Tensor) -> list[float]:
    """Per-class ``numerator / denominator``: NaN without support, 0 for an empty denominator."""
    safe = denominator.clamp(min=1).to(torch.float64)
    values = numerator.to(torch.float64) / safe
    values = torch.where(support > 0, values, torch.full_like(values, math.nan))
    return [float(v) for v in values.tolist()]


def scores_from_confusion(matrix: Tensor) -> dict[str, list[float] | float]:
    """Per-class IoU, F1, precision and recall, and the overall accuracy.

    Formulas: module docstring (GeoSeg tools/metric.py, with the stated departures for zero
    denominators).

    Args:
        matrix: C x C confusion matrix, rows = target, columns = pred (any integer dtype).

    Returns:
        ``{"IoU", "F1", "Precision", "Recall"}``: lists of C floats (NaN for a class with no
        support in target nor prediction); ``"OA"``: trace / total (NaN if no valid pixel).

    Shape:
        - matrix: [C, C].
    """
    counts = matrix.detach().to("cpu", torch.int64)
    tp = counts.diagonal()
    fp = counts.sum(dim=0) - tp
    fn = counts.sum(dim=1) - tp
    support = tp + fp + fn
    total = int(counts.sum())
    return {
        "IoU": _ratio(tp, support, support),
        "F1": _ratio(2 * tp, 2 * tp + fp + fn, support),
        "Precision": _ratio(tp, tp + fp, support),
        "Recall": _ratio(tp, tp + fn, support),
        "OA": int(tp.sum()) / total if total > 0 else math.nan,
    }


def nan_mean(values: Sequence[float], classes: Sequence[int]) -> float:
    """Mean of ``values[c]`` over ``classes``, skipping NaN (``np.nanmean``, as GeoSeg).

    Args:
        values: One value per class.
        classes: The class indices to average over.

    Returns:
        The mean of the finite entries, or NaN when every selected entry is NaN.
    """
    kept = [values[c] for c in classes if not math.isnan(values[c])]
    return math.fsum(kept) / len(kept) if kept else math.nan
