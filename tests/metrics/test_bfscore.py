"""Boundary F-score (lossd.metrics.bfscore and the BF entry of the metric catalogue).

References: a naive loop over classes and pixels with scipy's Euclidean distance transform
(``tests/metrics/_naive.py``: ``bf_counts``, ``bf_scores``), and a hand-worked example.
Definition: Csurka et al., BMVC 2013, as MATLAB ``bfscore`` (boundary = pixels of the class with
a 4-neighbour outside it or outside the image; matched at Euclidean distance < theta; theta =
0.75 % of the image diagonal by default).
"""

import math

import numpy as np
import pytest
import torch

from lossd.errors import InvalidOptionError
from lossd.metrics import (
    BF_COUNTS,
    OPTIONAL_COUNT_FIELDS,
    SegmentationMetrics,
    bf_counts,
    bf_tolerance,
    get_metric,
)
from lossd.metrics.bfscore import disc_offsets

from . import _naive
from .test_segmentation import _label_maps


def _encoded(pred, target, num_classes):
    """Labels as SegmentationMetrics encodes them: ignore -> C in both maps."""
    target = np.where(target == 255, num_classes, target)
    pred = np.where(target == num_classes, num_classes, pred)
    return torch.from_numpy(pred), torch.from_numpy(target)


def _assert_same(got, expected):
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert (math.isnan(g) and math.isnan(e)) or g == pytest.approx(e, rel=1e-12)


# --- the hand-worked example ------------------------------------------------------------------

# 6x6, class 1 a 2x2 square at rows 2-3, columns 2-3 in the target and one column to the right
# in the prediction, class 0 elsewhere. Class 1: all four pixels of each square are boundary;
# at theta = 1 (match needs distance < 1, i.e. the same pixel) the two shared pixels match on
# each side: P = R = 2/4, BF = 0.5. Class 0: its boundary is the 20 border pixels plus the
# pixels next to the square: 8 in the target (28 in all), 6 in the prediction (26; two of its 8
# lie on the border); the border and (1,3), (4,3) are shared: 22 matched on each side, so
# BF = 2 * 22 / (26 + 28) = 44/54. At theta = 1.5 every boundary pixel is within one pixel of
# the other boundary: BF = 1 for both classes.
HAND_TARGET = np.zeros((6, 6), np.int64)
HAND_TARGET[2:4, 2:4] = 1
HAND_PRED = np.zeros((6, 6), np.int64)
HAND_PRED[2:4, 3:5] = 1


def test_hand_worked_example():
    pred, target = _encoded(HAND_PRED[None], HAND_TARGET[None], 2)
    counts = bf_counts(pred, target, 2, tolerance=1.0)
    assert BF_COUNTS == ("pred_boundary", "pred_matched", "target_boundary", "target_matched")
    # the per-image fields read in the same order as the rows: prefix + row name
    assert tuple(f"bf_{row}" for row in BF_COUNTS) == OPTIONAL_COUNT_FIELDS
    assert counts.tolist() == [[26, 4], [22, 2], [28, 4], [22, 2]]
    by_name = {f: counts[i].numpy() for i, f in enumerate(OPTIONAL_COUNT_FIELDS)}
    values = get_metric("mBF").values(by_name)
    assert values.tolist() == pytest.approx([44 / 54, 0.5], rel=1e-15)
    assert bf_counts(pred, target, 2, tolerance=1.5).tolist() == [
        [26, 4],
        [26, 4],
        [28, 4],
        [28, 4],
    ]
    # through the accumulator: theta = ratio * diagonal = 1.0
    metrics = SegmentationMetrics(2, bf_ratio=1.0 / math.sqrt(72))
    metrics.update(HAND_PRED, HAND_TARGET)
    result = metrics.compute()
    assert result["BF"] == pytest.approx([44 / 54, 0.5], rel=1e-15)
    assert result["mBF"] == pytest.approx((44 / 54 + 0.5) / 2, rel=1e-15)


def test_default_tolerance_is_three_quarters_of_a_percent_of_the_diagonal():
    # MATLAB bfscore.m: theta = 0.75 / 100 * sqrt(H^2 + W^2), not rounded
    assert bf_tolerance(1024, 1024, 0.0075) == pytest.approx(10.861, abs=1e-3)
    assert bf_tolerance(256, 256, 0.0075) == pytest.approx(0.0075 * math.hypot(256, 256))
    assert SegmentationMetrics(3).bf_ratio == 0.0075
    with pytest.raises(InvalidOptionError, match="bf_ratio"):
        SegmentationMetrics(3, bf_ratio=0)
    with pytest.raises(InvalidOptionError, match="bf_ratio"):
        SegmentationMetrics(3, bf_ratio=math.inf)


@pytest.mark.parametrize("tolerance", [0.5, 1.0, 1.01, 2.0, 2.9, 3.7, 10.86])
def test_disc_holds_the_offsets_strictly_inside_the_tolerance(tolerance):
    expected = {
        (dy, dx)
        for dy in range(-12, 13)
        for dx in range(-12, 13)
        if dy * dy + dx * dx < tolerance * tolerance
    }
    got = {(dy, dx) for dy, w in disc_offsets(tolerance) for dx in range(-w, w + 1)}
    assert got == expected


# --- against the naive reference --------------------------------------------------------------


@pytest.mark.parametrize(
    ("seed", "shape", "num_classes", "tolerance"),
    [
        (0, (41, 57), 5, 2.5),
        (1, (33, 20), 3, 0.9),  # below one pixel: only shared pixels match
        (2, (64, 64), 9, 4.0),  # two packed groups of classes
        (3, (17, 90), 4, 7.3),
        (4, (1, 30), 3, 1.5),  # a one-row image: every pixel on the border
        (5, (50, 50), 17, 3.2),
    ],
)
def test_counts_match_the_naive_loop(seed, shape, num_classes, tolerance):
    preds, targets = _label_maps(seed, 3, shape, num_classes, noise=0.1)
    pred, target = _encoded(preds, targets, num_classes)
    per_image = bf_counts(pred, target, num_classes, tolerance, per_image=True)
    for i in range(3):
        expected = _naive.bf_counts([preds[i]], [targets[i]], num_classes, 255, tolerance=tolerance)
        np.testing.assert_array_equal(per_image[i].numpy(), expected)
    np.testing.assert_array_equal(
        bf_counts(pred, target, num_classes, tolerance).numpy(), per_image.sum(0).numpy()
    )


def test_absent_classes_class_only_in_prediction_or_target_and_ignore_pixels():
    preds, targets = _label_maps(8, 2, (30, 40), 4, ignore_fraction=0.15)
    targets[targets == 3] = 0  # class 3: only in the prediction
    preds[preds == 2] = 1  # class 2: only in the target
    preds[targets == 255] = 3  # what the prediction says on ignore pixels changes nothing
    metrics = SegmentationMetrics(5, bf_ratio=0.06, per_image=True)  # class 4: nowhere
    metrics.update(preds, targets, ["a", "b"])
    result = metrics.compute()
    expected_counts = _naive.bf_counts(list(preds), list(targets), 5, 255, ratio=0.06)
    expected = _naive.bf_scores(expected_counts)
    _assert_same(result["BF"], expected)
    assert result["BF"][3] == 0.0 and result["BF"][2] == 0.0  # P + R = 0
    assert math.isnan(result["BF"][4])  # no boundary anywhere: undefined
    assert result["mBF"] == pytest.approx(_naive.nanmean(expected, range(5)), rel=1e-12)
    rows = metrics.per_image_stats()
    assert int(rows.bf_pred_boundary[:, 2].sum()) == 0
    assert int(rows.bf_target_boundary[:, 3].sum()) == 0
    other = preds.copy()
    other[targets == 255] = 0
    again = SegmentationMetrics(5, bf_ratio=0.06)
    again.update(other, targets)
    _assert_same(again.compute()["BF"], result["BF"])


def test_an_all_ignore_image_counts_nothing():
    target = np.full((1, 9, 9), 255)
    pred = np.zeros((1, 9, 9), np.int64)
    metrics = SegmentationMetrics(3)
    metrics.update(pred, target)
    result = metrics.compute()
    assert all(math.isnan(v) for v in result["BF"]) and math.isnan(result["mBF"])


@pytest.mark.parametrize("ratio", [0.0075, 0.03, 0.1])
def test_segmentation_metrics_bf_matches_the_naive_loop(ratio):
    preds, targets = _label_maps(9, 4, (48, 52), 6, noise=0.08)
    metrics = SegmentationMetrics(6, eval_classes=range(5), bf_ratio=ratio)
    for i in range(0, 4, 2):  # several updates sum the counts
        metrics.update(torch.from_numpy(preds[i : i + 2]), torch.from_numpy(targets[i : i + 2]))
    result = metrics.compute()
    expected = _naive.bf_scores(_naive.bf_counts(list(preds), list(targets), 6, 255, ratio=ratio))
    _assert_same(result["BF"], expected)
    assert result["mBF"] == pytest.approx(_naive.nanmean(expected, range(5)), rel=1e-12)


def test_per_image_bf_counts_sum_to_the_set_and_score_identically():
    preds, targets = _label_maps(10, 5, (40, 44), 5)
    names = [f"img{i}" for i in range(5)]
    metrics = SegmentationMetrics(5, eval_classes=range(4), per_image=True, bf_ratio=0.05)
    metrics.update(preds[:3], targets[:3], names[:3])
    metrics.update(preds[3:], targets[3:], names[3:])
    result = metrics.compute()
    rows = metrics.per_image_stats()
    assert rows.has_bf
    expected = _naive.bf_counts(list(preds), list(targets), 5, 255, ratio=0.05)
    totals = rows.totals()
    for index, field in enumerate(OPTIONAL_COUNT_FIELDS):
        np.testing.assert_array_equal(totals[field], expected[index])
        np.testing.assert_array_equal(metrics.state_dict()["bf"][index].numpy(), expected[index])
    for i in range(5):  # each row is what that image alone counts
        alone = _naive.bf_counts([preds[i]], [targets[i]], 5, 255, ratio=0.05)
        got = np.stack([getattr(rows, f)[i] for f in OPTIONAL_COUNT_FIELDS])
        np.testing.assert_array_equal(got, alone)
    # the per-image rows summed score to the record's values, to the last bit
    assert rows.scores(range(4))["mBF"] == result["mBF"]


def test_bf_ratio_is_part_of_the_saved_state():
    metrics = SegmentationMetrics(3, bf_ratio=0.01)
    state = metrics.state_dict()
    assert state["bf_ratio"] == 0.01 and state["bf"].shape == (4, 3)
    from lossd.errors import CheckpointError

    with pytest.raises(CheckpointError, match="bf_ratio"):
        SegmentationMetrics(3).load_state_dict(state)


def test_no_disc_without_a_positive_tolerance():
    # "strictly below theta": with theta = 0 no offset qualifies, not even (0, 0)
    assert disc_offsets(0.0) == []
    labels = torch.tensor([[[0, 0, 1, 1]] * 4])
    counts = bf_counts(labels, labels, 2, 0.0)
    assert counts[BF_COUNTS.index("pred_matched")].tolist() == [0, 0]
    assert counts[BF_COUNTS.index("pred_boundary")].tolist() == [8, 8]
