"""The metric catalogue (lossd.metrics.catalogue): one definition and one formula per metric.

- The names, order and table membership, written literally.
- Today's numbers unchanged: ``SegmentationMetrics.compute`` against a literal copy of the
  formulas as they were before the catalogue (torch ratios with clamped denominators, means with
  ``math.fsum``), compared bit for bit.
- The correctly rounded mean (:func:`lossd.metrics.class_mean`) against ``math.fsum``, bit for
  bit, over leading axes, so the accumulator and the per-image/bootstrap code agree exactly.
"""

import math

import numpy as np
import pytest
import torch

from lossd.errors import InvalidOptionError
from lossd.metrics import (
    COUNT_FIELDS,
    COUNTS,
    METRIC_NAMES,
    METRICS,
    OPTIONAL_COUNT_FIELDS,
    REQUIRED_COUNT_FIELDS,
    SegmentationMetrics,
    band_counts,
    class_mean,
    get_metric,
    metric_names,
    metric_scores,
    metrics_dict,
    per_class_names,
)

from .test_segmentation import _label_maps


def test_names_order_and_tables():
    assert METRIC_NAMES == ("mIoU", "mF1", "OA", "mBIoU", "mBF", "mPrecision", "mRecall")
    assert metric_names("main") == ("mIoU", "mF1", "OA", "mBIoU", "mBF")
    assert metric_names("losses") == ("mIoU", "mF1", "mBIoU", "mBF")
    assert per_class_names() == ("IoU", "F1", "BIoU", "BF", "Precision", "Recall")
    assert per_class_names("main") == ("IoU", "F1", "BIoU", "BF")
    assert get_metric("BF") is get_metric("mBF")
    assert get_metric("OA").per_class is None and get_metric("OA").averages == "valid_pixels"
    assert all(m.higher_is_better for m in METRICS)
    assert {c for m in METRICS for c in m.counts} == set(COUNTS) == set(COUNT_FIELDS)
    assert REQUIRED_COUNT_FIELDS + OPTIONAL_COUNT_FIELDS == COUNT_FIELDS
    with pytest.raises(InvalidOptionError, match="unknown metric 'mAcc'"):
        get_metric("mAcc")


# --- the formulas as they were before the catalogue, copied literally -------------------------


def _old_ratio(numerator, denominator, support):
    safe = denominator.clamp(min=1).to(torch.float64)
    values = numerator.to(torch.float64) / safe
    values = torch.where(support > 0, values, torch.full_like(values, math.nan))
    return [float(v) for v in values.tolist()]


def _old_nan_mean(values, classes):
    kept = [values[c] for c in classes if not math.isnan(values[c])]
    return math.fsum(kept) / len(kept) if kept else math.nan


def _old_compute(joint, num_classes, eval_classes):
    """``SegmentationMetrics.compute`` before the catalogue (without BF)."""
    c = num_classes
    counts = joint.sum(0)[:c, :c].to(torch.int64)
    tp = counts.diagonal()
    fp = counts.sum(dim=0) - tp
    fn = counts.sum(dim=1) - tp
    support = tp + fp + fn
    total = int(counts.sum())
    result = {
        "IoU": _old_ratio(tp, support, support),
        "F1": _old_ratio(2 * tp, 2 * tp + fp + fn, support),
        "Precision": _old_ratio(tp, tp + fp, support),
        "Recall": _old_ratio(tp, tp + fn, support),
        "OA": int(tp.sum()) / total if total > 0 else math.nan,
    }
    inter, target_band, pred_band = (v.to(torch.float64) for v in band_counts(joint))
    union = target_band + pred_band - inter
    biou = torch.where(union > 0, inter / union.clamp(min=1), math.nan)
    result["BIoU"] = [float(v) for v in biou.tolist()]
    for name in ("IoU", "F1", "BIoU", "Precision", "Recall"):
        result[f"m{name}"] = _old_nan_mean(result[name], eval_classes)
    return result


def _bits_equal(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize(
    ("seed", "shape", "num_classes", "eval_classes", "noise"),
    [
        (0, (41, 57), 5, None, 0.05),
        (1, (64, 64), 6, [0, 1, 2, 3, 4], 0.3),
        (2, (33, 20), 3, [1], 0.0),
        (3, (50, 70), 8, None, 0.5),
        (4, (17, 90), 7, [0, 2, 4, 6], 0.05),
    ],
)
def test_numbers_are_those_of_the_formulas_before_the_catalogue(
    seed, shape, num_classes, eval_classes, noise
):
    preds, targets = _label_maps(seed, 4, shape, num_classes, noise=noise)
    preds[preds == num_classes - 1] = 0  # a class never predicted: precision 0, F1 0
    metrics = SegmentationMetrics(num_classes, eval_classes=eval_classes)
    metrics.update(preds, targets)
    result = metrics.compute()
    classes = list(range(num_classes)) if eval_classes is None else eval_classes
    old = _old_compute(metrics.state_dict()["joint"], num_classes, classes)
    for key, value in old.items():
        if isinstance(value, list):
            assert all(_bits_equal(a, b) for a, b in zip(result[key], value, strict=True)), key
        else:
            assert _bits_equal(result[key], value), key


# --- the correctly rounded mean -------------------------------------------------------------


def _rows(rng):
    yield np.array([0.1, 0.2, 0.3])  # a naive sum gives 0.6000000000000001
    yield np.array([1.0, 2.0**-53, 2.0**-53])  # ties to even at the last bit
    yield np.array([1 - 2.0**-53, 2.0**-53, 2.0**-54])
    yield np.array([1e-300, 0.5, 1e-20])  # off the fast path's grid: math.fsum per row
    yield np.array([np.nan, np.nan])
    for _ in range(400):
        k = int(rng.integers(1, 30))
        kind = int(rng.integers(0, 4))
        if kind == 0:
            row = rng.random(k)
        elif kind == 1:
            row = np.minimum(rng.integers(0, 10**6, k) / rng.integers(1, 10**6, k), 1.0)
        elif kind == 2:
            row = np.ldexp(rng.random(k), -rng.integers(0, 60, k))
        else:
            row = rng.choice([0.0, 0.1, 0.2, 0.3, 1 / 3, 2 / 3, 1.0, 0.5], k)
        row[rng.random(k) < 0.2] = np.nan
        yield row


def test_class_mean_is_math_fsum_bit_for_bit():
    rng = np.random.default_rng(0)
    for row in _rows(rng):
        kept = [v for v in row.tolist() if not math.isnan(v)]
        expected = math.fsum(kept) / len(kept) if kept else math.nan
        got = float(class_mean(row, range(len(row))))
        assert _bits_equal(got, expected), row
    naive = (0.1 + 0.2 + 0.3) / 3
    assert float(class_mean(np.array([0.1, 0.2, 0.3]), [0, 1, 2])) != naive  # not a plain sum


def test_class_mean_over_leading_axes_equals_each_slice():
    rng = np.random.default_rng(1)
    values = rng.random((3, 5, 7))
    values[rng.random(values.shape) < 0.3] = np.nan
    classes = [0, 2, 3, 6]
    means = class_mean(values, classes)
    assert means.shape == (3, 5)
    for i in range(3):
        for j in range(5):
            assert _bits_equal(float(means[i, j]), float(class_mean(values[i, j], classes)))


def test_scores_over_leading_axes_equal_the_scores_of_each_slice():
    rng = np.random.default_rng(2)
    shape = (4, 3, 5)
    counts = {f: rng.integers(0, 40, shape) for f in COUNT_FIELDS}
    counts["band_union"] = counts["band_intersection"] + rng.integers(0, 9, shape)
    counts["bf_pred_boundary"] = counts["bf_pred_matched"] + rng.integers(0, 9, shape)
    counts["bf_target_boundary"] = counts["bf_target_matched"] + rng.integers(0, 9, shape)
    scores = metric_scores(counts, [0, 1, 3])
    assert tuple(scores) == METRIC_NAMES
    for i in range(4):
        for j in range(3):
            one = metric_scores({f: v[i, j] for f, v in counts.items()}, [0, 1, 3])
            for name in METRIC_NAMES:
                assert _bits_equal(float(scores[name][i, j]), float(one[name])), name


def test_missing_bf_counts_give_nan_and_leave_the_others():
    counts = {f: np.array([3, 0, 5]) for f in REQUIRED_COUNT_FIELDS}
    record = metrics_dict(counts, [0, 1, 2])
    assert all(math.isnan(v) for v in record["BF"]) and math.isnan(record["mBF"])
    assert record["IoU"][0] == 3 / 9 and math.isnan(record["IoU"][1]) and record["IoU"][2] == 1 / 3
    assert "mBF" not in metric_scores(counts, [0, 1, 2])
    assert math.isnan(float(metric_scores(counts, [0, 1, 2], names=["mBF"])["mBF"]))


def _counts(tp, fp, fn):
    return {"tp": np.array(tp), "fp": np.array(fp), "fn": np.array(fn)}


def test_precision_and_recall_by_hand():
    # class 0: TP 1 alone (P = R = 1); class 1: TP 2, FP 1, FN 3 (P = 2/3, R = 2/5);
    # class 2: predicted once, absent (P = R = 0); class 3: never seen (NaN)
    counts = _counts([1, 2, 0, 0], [0, 1, 1, 0], [0, 3, 0, 0])
    precision = get_metric("Precision").values(counts)
    recall = get_metric("Recall").values(counts)
    np.testing.assert_array_equal(precision[:3], [1.0, 2 / 3, 0.0])
    np.testing.assert_array_equal(recall[:3], [1.0, 2 / 5, 0.0])
    assert math.isnan(precision[3]) and math.isnan(recall[3])


@pytest.mark.parametrize(
    ("pred", "pred_hit", "target", "target_hit", "expected"),
    [
        (4, 2, 2, 2, 2 / 3),  # P = 1/2, R = 1: 2 P R / (P + R) = 2/3
        (8, 2, 4, 2, 1 / 3),  # P = 1/4, R = 1/2 (P + R < 1): 2 · 1/8 / (3/4) = 1/3
        (5, 0, 5, 0, 0.0),  # boundaries on both sides, none matched
        (3, 0, 0, 0, 0.0),  # hallucinated only
        (0, 0, 0, 0, math.nan),  # no boundary at all: no support
    ],
)
def test_boundary_f_score_by_hand(pred, pred_hit, target, target_hit, expected):
    counts = {
        "bf_pred_boundary": np.array([pred]),
        "bf_pred_matched": np.array([pred_hit]),
        "bf_target_boundary": np.array([target]),
        "bf_target_matched": np.array([target_hit]),
    }
    np.testing.assert_allclose(get_metric("mBF").values(counts), [expected], rtol=1e-15)


def test_class_mean_outside_the_exact_grid_is_still_math_fsum():
    # values above 1 and below 2**-53 take the math.fsum path; the result is the same
    for values in ([3.0, 0.5, 2.5], [1e-30, 1e-30], [1e-30, 0.25, 1.0], [7.0, 0.0]):
        assert float(class_mean(values, range(len(values)))) == math.fsum(values) / len(values)


def test_class_mean_rounds_the_exact_sum_up_above_half():
    # x1 = 2**-52 + 2**-53 and x2 = 2**-53 + 3·2**-105 add up to (2**54 + 3)·2**-105 exactly:
    # 55 bits, of which the last two (binary 11, above half) are dropped, so the sum rounds up
    # to (2**52 + 1)·2**-103; their mean is exactly half of it.
    x1, x2 = 2.0**-52 + 2.0**-53, 2.0**-53 + 3 * 2.0**-105
    assert math.fsum([x1, x2]) == (2**52 + 1) * 2.0**-103
    assert float(class_mean([x1, x2], [0, 1])) == (2**52 + 1) * 2.0**-104


def test_class_mean_of_many_classes_does_not_overflow():
    # more terms than the exact integer limbs hold (2**9): the math.fsum path
    values = np.full(3000, 1.0 - 2.0**-53)
    assert float(class_mean(values, range(3000))) == math.fsum(values.tolist()) / 3000


def test_a_metric_is_looked_up_in_the_catalogue_given():
    from dataclasses import replace

    custom = replace(get_metric("mIoU"), name="myIoU", per_class="myIoU_c")
    assert get_metric("myIoU", [custom]) is custom
    assert get_metric("myIoU_c", [custom]) is custom
    with pytest.raises(
        InvalidOptionError, match=r"unknown metric 'mIoU'; expected one of \['myIoU'\]"
    ):
        get_metric("mIoU", [custom])


def test_a_metric_definition_is_checked():
    from dataclasses import replace

    miou = get_metric("mIoU")
    with pytest.raises(ValueError, match=r"^metric mIoU: averages='median'$"):
        replace(miou, averages="median")
    with pytest.raises(ValueError, match=r"unknown counts \['pixels'\]"):
        replace(miou, counts=("tp", "pixels"))
    with pytest.raises(ValueError, match="no metric counts among"):
        metrics_dict({}, [0])
