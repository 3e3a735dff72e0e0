import math

import numpy as np
import pytest
import torch

from lossd.metrics import SegmentationMetrics, nan_mean, scores_from_confusion
from lossd.metrics.confusion import confusion_counts

from ._naive import per_class_scores


def test_hand_worked_three_by_three():
    # GeoSeg tools/metric.py's own example. By hand: rows = target, cols = pred
    #   [[1, 1, 0], [0, 4, 1], [1, 1, 0]]; TP = (1, 4, 0), FP = (1, 2, 1), FN = (1, 1, 2).
    target = torch.tensor([[0, 2, 1], [1, 2, 1], [1, 0, 1]])
    pred = torch.tensor([[0, 1, 1], [2, 0, 1], [1, 1, 1]])
    metrics = SegmentationMetrics(3, ignore_index=None)
    metrics.update(pred, target)
    matrix = metrics.confusion_matrix
    assert matrix.tolist() == [[1, 1, 0], [0, 4, 1], [1, 1, 0]]
    assert matrix.dtype == torch.int64
    scores = scores_from_confusion(matrix)
    assert scores["IoU"] == pytest.approx([1 / 3, 4 / 7, 0.0])
    assert scores["F1"] == pytest.approx([1 / 2, 8 / 11, 0.0])
    assert scores["Precision"] == pytest.approx([1 / 2, 4 / 6, 0.0])
    assert scores["Recall"] == pytest.approx([1 / 2, 4 / 5, 0.0])
    assert scores["OA"] == pytest.approx(5 / 9)


def test_ignored_pixels_drop_out_of_the_matrix():
    target = torch.tensor([[0, 1, 255, 255]])
    pred = torch.tensor([[0, 0, 1, 0]])
    metrics = SegmentationMetrics(2)
    metrics.update(pred, target)
    assert metrics.confusion_matrix.tolist() == [[1, 0], [1, 0]]


def test_absent_class_is_nan_and_precision_recall_zero_cases():
    # class 2: no support at all -> NaN; class 1: in target, never predicted -> P = R = 0;
    # class 3: predicted, absent from target -> P = R = 0, IoU = F1 = 0.
    matrix = torch.tensor([[5, 0, 0, 1], [2, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    scores = scores_from_confusion(matrix)
    assert math.isnan(scores["IoU"][2]) and math.isnan(scores["F1"][2])
    assert math.isnan(scores["Precision"][2]) and math.isnan(scores["Recall"][2])
    assert scores["Precision"][1] == 0.0 and scores["Recall"][1] == 0.0
    assert scores["Precision"][3] == 0.0 and scores["Recall"][3] == 0.0
    assert scores["IoU"][3] == 0.0 and scores["F1"][3] == 0.0


def test_empty_matrix_gives_nan_oa():
    assert math.isnan(scores_from_confusion(torch.zeros(3, 3, dtype=torch.int64))["OA"])


def test_random_against_per_class_loops():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 6, size=(3, 17, 19))
    pred = rng.integers(0, 6, size=(3, 17, 19))
    target[rng.random(target.shape) < 0.2] = 255
    metrics = SegmentationMetrics(6)
    metrics.update(torch.from_numpy(pred), torch.from_numpy(target))
    scores = scores_from_confusion(metrics.confusion_matrix)
    expected = per_class_scores(list(pred), list(target), 6, 255)
    for key in ("IoU", "F1", "Precision", "Recall"):
        assert scores[key] == pytest.approx(expected[key], rel=1e-12)
    assert scores["OA"] == pytest.approx(expected["OA"], rel=1e-12)


def test_nan_mean_skips_nan_and_only_averages_given_classes():
    values = [0.5, math.nan, 1.0, 0.0]
    assert nan_mean(values, [0, 1, 2]) == pytest.approx(0.75)
    assert nan_mean(values, [3]) == 0.0
    assert math.isnan(nan_mean(values, [1]))


@pytest.mark.parametrize("as_tensor", [False, True])
def test_confusion_counts_by_hand_from_an_array_or_a_tensor(as_tensor):
    # The 3×3 example above: TP = (1, 4, 0), FP = (1, 2, 1), FN = (1, 1, 2); int64 whatever
    # the matrix's integer type (a uint8 matrix included), from NumPy or torch.
    matrix = np.array([[1, 1, 0], [0, 4, 1], [1, 1, 0]], dtype=np.uint8)
    counts = confusion_counts(torch.from_numpy(matrix) if as_tensor else matrix)
    assert {k: v.tolist() for k, v in counts.items()} == {
        "tp": [1, 4, 0],
        "fp": [1, 2, 1],
        "fn": [1, 1, 2],
    }
    assert all(v.dtype == np.int64 for v in counts.values())
