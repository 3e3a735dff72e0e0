"""Per-image counts (lossd.metrics.PerImageStats) and the signed distance profile."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from lossd.errors import DataFormatError, InvalidOptionError
from lossd.metrics import (
    OPTIONAL_COUNT_FIELDS,
    PROFILE_DISTANCES,
    PROFILE_REACH,
    PerImageStats,
    SegmentationMetrics,
    error_diagnostics,
    scores_from_counts,
)

from ._naive import per_class_scores
from .test_segmentation import _label_maps


def _naive_profile(pred, target, num_classes, ignore_index=255):
    """Pixels and errors by signed distance, pixel by pixel, with scipy's taxicab transform.

    For class c: inside its true region the signed distance is minus the distance to the
    nearest pixel that is not c (ignore included; the border is not background); outside, the
    distance to the nearest c pixel (absent class: the cap). Errors: inside, pred != c;
    outside, pred == c. Ignore pixels are left out.
    """
    reach = PROFILE_REACH
    pixels = np.zeros((num_classes, 2 * reach), np.int64)
    errors = np.zeros_like(pixels)
    column = {d: i for i, d in enumerate(PROFILE_DISTANCES)}
    for c in range(num_classes):
        region = target == c
        if region.all():
            depth = np.full(target.shape, reach)
        else:
            depth = ndimage.distance_transform_cdt(region, metric="taxicab")
        if region.any():
            distance = ndimage.distance_transform_cdt(~region, metric="taxicab")
        else:
            distance = np.full(target.shape, reach)
        for y in range(target.shape[0]):
            for x in range(target.shape[1]):
                if target[y, x] == ignore_index:
                    continue
                if region[y, x]:
                    signed, wrong = -min(int(depth[y, x]), reach), pred[y, x] != c
                else:
                    signed, wrong = min(int(distance[y, x]), reach), pred[y, x] == c
                pixels[c, column[signed]] += 1
                errors[c, column[signed]] += int(wrong)
    return pixels, errors


def _encoded(pred, target, num_classes):
    """Labels as the metrics encode them: ignore -> C in both maps."""
    target = np.where(target == 255, num_classes, target)
    pred = np.where(target == num_classes, num_classes, pred)
    return torch.from_numpy(pred), torch.from_numpy(target)


@pytest.mark.parametrize("shape", [(1, 12), (17, 23), (40, 70)])
def test_signed_profile_matches_a_naive_loop_with_scipy(shape):
    preds, targets = _label_maps(3 + shape[1], 3, shape, 4)
    targets[2][targets[2] == 3] = 0  # class 3 absent from one image: all at the cap
    pred_t, target_t = _encoded(preds, targets, 4)
    _, profile = error_diagnostics(pred_t, target_t, 4)
    for i in range(len(preds)):
        pixels, errors = _naive_profile(preds[i], targets[i], 4)
        np.testing.assert_array_equal(profile[i, 0].numpy(), pixels)
        np.testing.assert_array_equal(profile[i, 1].numpy(), errors)


def test_signed_profile_hand_worked_strip():
    # Class 1 fills columns 0..3 of a 1x12 strip, class 0 the rest; the prediction extends
    # class 1 by 5 px. Class 1: inside depths 4,3,2,1 (the strip's left border is not
    # background), no miss; outside distances 1..8, errors at 1..5. Class 0: inside depths
    # 1..8, missed at 1..5; outside distances 4,3,2,1 from columns 0..3, never predicted 0.
    target = torch.tensor([[[1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]]])
    pred = torch.tensor([[[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]]])
    _, profile = error_diagnostics(pred, target, 2)
    column = {d: i for i, d in enumerate(PROFILE_DISTANCES)}

    def at(kind, c, distances):
        return [int(profile[0, kind, c, column[d]]) for d in distances]

    assert at(0, 1, [-4, -3, -2, -1]) == [1, 1, 1, 1]
    assert at(1, 1, [-4, -3, -2, -1]) == [0, 0, 0, 0]
    assert at(1, 1, range(1, 9)) == [1, 1, 1, 1, 1, 0, 0, 0]
    assert at(1, 0, range(-8, 0)) == [0, 0, 0, 1, 1, 1, 1, 1]  # depth 1..5 missed
    assert at(1, 0, range(1, 5)) == [0, 0, 0, 0]
    assert int(profile[0, 0].sum()) == 2 * 12  # every pixel once per class


def test_per_image_rows_sum_to_the_totals_and_equal_single_image_metrics():
    preds, targets = _label_maps(7, 6, (30, 41), 5)
    names = [f"tile{i:02d}" for i in range(6)]
    metrics = SegmentationMetrics(5, eval_classes=range(4), diagnostics=True, per_image=True)
    for start in (4, 0, 2):  # out of order: rows come back sorted by name
        metrics.update(
            preds[start : start + 2], targets[start : start + 2], names[start : start + 2]
        )
    result = metrics.compute()
    rows = metrics.per_image_stats()
    assert rows.names == tuple(names)
    totals = rows.totals()
    np.testing.assert_array_equal(totals["fp_distance_hist"], result["fp_distance_hist"])
    np.testing.assert_array_equal(totals["fn_depth_hist"], result["fn_depth_hist"])
    naive = per_class_scores(list(preds), list(targets), 5, 255)
    tp = metrics.confusion_matrix.diagonal().numpy()
    np.testing.assert_array_equal(totals["tp"], tp)
    # the rows summed score exactly as the running totals (one formula, correctly rounded means)
    assert rows.scores(range(4)) == {k: result[k] for k in rows.scores(range(4))}
    assert set(rows.scores(range(4))) == {
        "mIoU",
        "mF1",
        "OA",
        "mBIoU",
        "mBF",
        "mPrecision",
        "mRecall",
    }
    # and the scores from the summed rows against the naive per-class loop
    scores = rows.scores(range(4))
    assert scores["OA"] == pytest.approx(naive["OA"], rel=1e-12)
    assert scores["mIoU"] == pytest.approx(np.nanmean(naive["IoU"][:4]), rel=1e-12)
    assert scores["mF1"] == pytest.approx(np.nanmean(naive["F1"][:4]), rel=1e-12)
    # each row is what metrics of that image alone count
    for i in (0, 5):
        alone = SegmentationMetrics(5, eval_classes=range(4), diagnostics=True, per_image=True)
        alone.update(preds[i], targets[i], [names[i]])
        assert alone.per_image_stats() == rows.take([i])
    # and the profile counts every valid pixel once per class
    valid = int((targets != 255).sum())
    assert int(totals["profile_pixels"].sum()) == 5 * valid


def test_scores_from_counts_match_the_naive_scores_over_leading_axes():
    preds, targets = _label_maps(11, 4, (25, 25), 3)
    metrics = SegmentationMetrics(3, per_image=True)
    metrics.update(preds, targets, list("abcd"))
    rows = metrics.per_image_stats()
    stacked = {
        k: np.stack([v, v[::-1]])
        for k, v in {
            "tp": rows.tp,
            "fp": rows.fp,
            "fn": rows.fn,
            "band_intersection": rows.band_intersection,
            "band_union": rows.band_union,
        }.items()
    }
    per_image = scores_from_counts(stacked, range(3))  # [2, 4]: per image, either order
    for i in range(4):
        naive = per_class_scores([preds[i]], [targets[i]], 3, 255)
        expected = np.nanmean(naive["IoU"])
        assert per_image["mIoU"][0, i] == pytest.approx(expected, rel=1e-12)
        assert per_image["mIoU"][1, 3 - i] == pytest.approx(expected, rel=1e-12)


def test_names_are_required_and_unique():
    preds, targets = _label_maps(1, 2, (8, 8), 3)
    metrics = SegmentationMetrics(3, per_image=True)
    with pytest.raises(DataFormatError, match="one name per image"):
        metrics.update(preds, targets)
    with pytest.raises(DataFormatError, match="one name per image"):
        metrics.update(preds, targets, ["only-one"])
    metrics.update(preds, targets, ["a", "a"])
    with pytest.raises(DataFormatError, match="'a' was evaluated twice"):
        metrics.per_image_stats()
    with pytest.raises(InvalidOptionError, match="per_image=True"):
        SegmentationMetrics(3).per_image_stats()


def test_round_trips_through_arrays_and_checkpoints(tmp_path):
    preds, targets = _label_maps(2, 3, (12, 16), 4)
    metrics = SegmentationMetrics(4, diagnostics=True, per_image=True)
    metrics.update(preds, targets, ["x", "y", "z"])
    rows = metrics.per_image_stats()
    assert PerImageStats.from_arrays(rows.to_arrays("val."), "val.") == rows
    torch.save(rows.to_checkpoint(), tmp_path / "rows.pt")
    loaded = torch.load(tmp_path / "rows.pt", weights_only=True)
    assert PerImageStats.from_checkpoint(loaded) == rows
    assert PerImageStats.concat([rows.take([2]), rows.take([0, 1])]).sorted_by_name() == rows
    with pytest.raises(DataFormatError, match="lack"):
        PerImageStats.from_arrays({"names": np.array(["x"])})
    with pytest.raises(DataFormatError, match="shape"):
        PerImageStats(("x",), *(np.zeros((2, 4), np.int64),) * 5)


def test_counts_written_before_the_bf_counts_are_still_read():
    """per_image.npz and checkpoints older than the Boundary F-score: BF None, mBF left out."""
    preds, targets = _label_maps(4, 3, (20, 24), 4)
    metrics = SegmentationMetrics(4, per_image=True)
    metrics.update(preds, targets, ["p", "q", "r"])
    rows = metrics.per_image_stats()
    assert rows.has_bf
    bf_keys = {f"val.{f}" for f in OPTIONAL_COUNT_FIELDS}
    old_arrays = {k: v for k, v in rows.to_arrays("val.").items() if k not in bf_keys}
    old = PerImageStats.from_arrays(old_arrays, "val.")
    assert not old.has_bf and old.bf_pred_boundary is None
    assert set(old.to_arrays("val.")) == set(old_arrays)
    scores, full = old.scores(range(4)), rows.scores(range(4))
    assert "mBF" not in scores and "mBF" in full
    assert all(scores[k] == full[k] for k in scores)  # the other metrics are unchanged
    state = {k: v for k, v in rows.to_checkpoint().items() if k not in OPTIONAL_COUNT_FIELDS}
    assert PerImageStats.from_checkpoint(state) == old
    with pytest.raises(DataFormatError, match="BF counts need all"):
        PerImageStats.from_arrays({**old_arrays, "val.bf_pred_boundary": rows.tp}, "val.")
    with pytest.raises(DataFormatError, match="missing in some parts only"):
        PerImageStats.concat([old.take([0]), rows.take([1])])


def _stats(n=2, c=3, bf=False, diagnostics=False, dtype=np.int64):
    """Hand-made per-image counts: distinct values in every field."""
    fields = ["tp", "fp", "fn", "band_intersection", "band_union"]
    if bf:
        fields += list(OPTIONAL_COUNT_FIELDS)
    values = {
        name: np.arange(n * c, dtype=dtype).reshape(n, c) + 10 * i for i, name in enumerate(fields)
    }
    if diagnostics:
        values |= {
            "fp_distance_hist": np.ones((n, c, 6), dtype),
            "fn_depth_hist": np.ones((n, c, 6), dtype),
            "profile_pixels": np.ones((n, c, 64), dtype),
            "profile_errors": np.zeros((n, c, 64), dtype),
        }
    return PerImageStats(names=tuple(f"img{i}" for i in range(n)), **values)


def test_equality_compares_names_and_every_field():
    from dataclasses import replace

    base = _stats(bf=True, diagnostics=True)
    assert base == _stats(bf=True, diagnostics=True)
    assert base != replace(base, names=("img0", "other"))
    for name in ("tp", "fp", "band_union", "bf_target_matched", "profile_errors"):
        changed = getattr(base, name).copy()
        changed[0, 0] += 1
        assert base != replace(base, **{name: changed}), name
    assert _stats(bf=True) != _stats(bf=False)  # the BF counts present on one side only
    assert _stats(diagnostics=True) != _stats()


def test_every_field_is_checked_against_the_shape_of_tp():
    from dataclasses import replace

    base = _stats(bf=True, diagnostics=True)
    for name in ("fp", "band_union", "bf_pred_matched", "bf_target_matched"):
        with pytest.raises(
            DataFormatError, match=rf"^per-image '{name}' has shape \(2, 4\), expected \(2, 3\)$"
        ):
            replace(base, **{name: np.zeros((2, 4), np.int64)})
    with pytest.raises(DataFormatError, match=r"^per-image 'fn_depth_hist' has shape \(3, 3, 6\)"):
        replace(base, fn_depth_hist=np.zeros((3, 3, 6), np.int64))
    with pytest.raises(
        DataFormatError, match=r"^per-image diagnostics need all of \['fp_distance_hist'"
    ):
        replace(base, profile_errors=None)
    with pytest.raises(
        DataFormatError, match=r"^per-image BF counts need all of \['bf_pred_boundary'"
    ):
        replace(base, bf_pred_matched=None)


def test_counts_must_be_integers_and_are_stored_as_int64():
    arrays = _stats().to_arrays()
    arrays["fp"] = arrays["fp"].astype(np.float64)
    with pytest.raises(
        DataFormatError, match=r"^per-image field 'fp' must hold integer counts, got float64$"
    ):
        PerImageStats.from_arrays(arrays)
    narrow = _stats(bf=True, diagnostics=True, dtype=np.int32).to_arrays(prefix="val/")
    assert all(v.dtype == np.int64 for k, v in narrow.items() if k != "val/names")
    with pytest.raises(DataFormatError, match=r"^no per-image rows to concatenate$"):
        PerImageStats.concat([])
