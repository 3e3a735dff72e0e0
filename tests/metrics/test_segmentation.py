import json
import math
import re
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lossd.errors import CheckpointError, DataFormatError, InvalidOptionError
from lossd.metrics import DIAGNOSTIC_BINS, SegmentationMetrics

from . import _naive

PER_CLASS = ("IoU", "F1", "BIoU", "BF", "Precision", "Recall")


def _label_maps(seed, count, shape, num_classes, ignore_fraction=0.1, noise=0.05, block=6):
    """Blocky targets with ignore pixels and predictions that mostly agree with them."""
    rng = np.random.default_rng(seed)
    h, w = shape
    targets, preds = [], []
    for _ in range(count):
        coarse = rng.integers(0, num_classes, size=(h // block + 1, w // block + 1))
        target = np.kron(coarse, np.ones((block, block), np.int64))[:h, :w]
        shifted = np.roll(target, shift=(rng.integers(-2, 3), rng.integers(-2, 3)), axis=(0, 1))
        salt = rng.random(shape) < noise
        pred = np.where(salt, rng.integers(0, num_classes, shape), shifted)
        target[rng.random(shape) < ignore_fraction] = 255
        targets.append(target)
        preds.append(pred)
    return np.stack(preds), np.stack(targets)


def _assert_lists_close(got, expected, rel=1e-12):
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        if math.isnan(e):
            assert math.isnan(g)
        else:
            assert g == pytest.approx(e, rel=rel, abs=1e-15)


def _expected(preds, targets, num_classes, eval_classes, ratio=0.02, width=None, bf_ratio=0.0075):
    out = _naive.per_class_scores(list(preds), list(targets), num_classes, 255)
    out["BIoU"] = _naive.boundary_iou(
        list(preds), list(targets), num_classes, 255, ratio=ratio, width=width
    )
    counts = _naive.bf_counts(list(preds), list(targets), num_classes, 255, ratio=bf_ratio)
    out["BF"] = _naive.bf_scores(counts)
    for name in PER_CLASS:
        out[f"m{name}"] = _naive.nanmean(out[name], eval_classes)
    return out


def _assert_same_results(a, b):
    assert a.keys() == b.keys()
    for key, value in a.items():
        if isinstance(value, float):
            _assert_lists_close([value], [b[key]], rel=0)
        elif key in PER_CLASS:
            _assert_lists_close(value, b[key], rel=0)
        else:
            assert value == b[key]


def _assert_matches(result, expected):
    for name in PER_CLASS:
        _assert_lists_close(result[name], expected[name])
        _assert_lists_close([result[f"m{name}"]], [expected[f"m{name}"]])
    assert result["OA"] == pytest.approx(expected["OA"], rel=1e-12)


def test_random_batches_match_naive_reference():
    preds, targets = _label_maps(0, 3, (41, 57), 5)
    metrics = SegmentationMetrics(5, boundary_ratio=0.05)  # d = round(0.05 * 70.4) = 4
    metrics.update(torch.from_numpy(preds), torch.from_numpy(targets))
    result = metrics.compute()
    _assert_matches(result, _expected(preds, targets, 5, range(5), ratio=0.05))
    assert result["eval_classes"] == [0, 1, 2, 3, 4]
    assert all(0.0 <= result[k] <= 1.0 for k in ("mIoU", "mF1", "OA", "mBIoU"))


def test_several_updates_equal_one_update_including_different_sizes():
    preds, targets = _label_maps(1, 4, (30, 44), 4)
    small_preds, small_targets = _label_maps(2, 2, (18, 25), 4)
    split = SegmentationMetrics(4, boundary_width=3, diagnostics=True)
    for i in range(4):
        split.update(torch.from_numpy(preds[i : i + 1]), torch.from_numpy(targets[i : i + 1]))
    split.update(small_preds, small_targets)
    whole = SegmentationMetrics(4, boundary_width=3, diagnostics=True)
    whole.update(torch.from_numpy(preds), torch.from_numpy(targets))
    whole.update(small_preds, small_targets)
    a, b = split.compute(), whole.compute()
    assert torch.equal(split.confusion_matrix, whole.confusion_matrix)
    assert a["fp_distance_hist"] == b["fp_distance_hist"]
    assert a["fn_depth_hist"] == b["fn_depth_hist"]
    all_preds = list(preds) + list(small_preds)
    all_targets = list(targets) + list(small_targets)
    _assert_matches(a, _expected(all_preds, all_targets, 4, range(4), width=3))


def test_potsdam_protocol_means_over_five_oa_over_six():
    preds, targets = _label_maps(3, 2, (36, 36), 6)
    metrics = SegmentationMetrics(6, eval_classes=(0, 1, 2, 3, 4))
    metrics.update(preds, targets)
    result = metrics.compute()
    expected = _expected(preds, targets, 6, range(5))
    _assert_matches(result, expected)
    assert result["mIoU"] == pytest.approx(np.nanmean(expected["IoU"][:5]), rel=1e-12)
    assert result["mIoU"] != pytest.approx(np.nanmean(expected["IoU"]), rel=1e-9)
    # OA counts clutter pixels too: trace / total over all valid pixels
    valid = targets != 255
    assert result["OA"] == pytest.approx(np.sum((preds == targets) & valid) / np.sum(valid))


def test_perfect_prediction_scores_one_everywhere():
    _, targets = _label_maps(4, 2, (33, 40), 5)
    # whatever is predicted at ignore pixels
    perfect = np.where(
        targets == 255, np.random.default_rng(0).integers(0, 5, targets.shape), targets
    )
    metrics = SegmentationMetrics(5, diagnostics=True)
    metrics.update(torch.from_numpy(perfect), torch.from_numpy(targets))
    result = metrics.compute()
    for name in PER_CLASS:
        assert result[name] == [1.0] * 5
        assert result[f"m{name}"] == 1.0
    assert result["OA"] == 1.0
    assert np.sum(result["fp_distance_hist"]) == 0 and np.sum(result["fn_depth_hist"]) == 0


def test_hand_worked_shifted_square():
    # 20x20 image, target square rows/cols 5..14 (class 1), prediction shifted right by one.
    # IoU_1 = 90/110, IoU_0 = 290/310, OA = 380/400. Bands with d=1: squares' rings of 36 px
    # overlap on rows 5 and 14, cols 6..14 -> BIoU_1 = 18/54; background bands = image border
    # (76) + the ring outside each square (44), overlap 76 + 22 -> BIoU_0 = 98/142.
    # With d=2: rings of 64 px, overlap 90 - 6*7 = 48 -> BIoU_1 = 48/80.
    target = np.zeros((20, 20), np.int64)
    target[5:15, 5:15] = 1
    pred = np.zeros((20, 20), np.int64)
    pred[5:15, 6:16] = 1
    metrics = SegmentationMetrics(2, boundary_width=1)
    metrics.update(pred, target)  # a single [H, W] numpy image
    result = metrics.compute()
    assert result["IoU"] == pytest.approx([29 / 31, 9 / 11])
    assert result["F1"] == pytest.approx([2 * 290 / (2 * 290 + 20), 180 / 200])
    assert result["OA"] == pytest.approx(0.95)
    assert result["BIoU"] == pytest.approx([98 / 142, 18 / 54])
    assert result["mBIoU"] == pytest.approx((98 / 142 + 18 / 54) / 2)
    wider = SegmentationMetrics(2, boundary_width=2)
    wider.update(pred, target)
    assert wider.compute()["BIoU"][1] == pytest.approx(48 / 80)


def test_ignore_pixels_are_not_the_class_in_both_masks():
    # Column 6 (rows 5..14) is ignore. Target class 1 = column 5 (10 px, all band) + the
    # rectangle cols 7..14 (band 80 - 8*6 = 32): 42 px. Predicted class 1 without the ignore
    # column = rectangle cols 7..15 (band 90 - 8*7 = 34). Common: rows 5 and 14 at cols 7..14
    # (16) + col 7 rows 6..13 (8) = 24, so BIoU_1 = 24 / (42 + 34 - 24) = 6/13.
    target = np.zeros((20, 20), np.int64)
    target[5:15, 5:15] = 1
    target[5:15, 6] = 255
    pred = np.zeros((20, 20), np.int64)
    pred[5:15, 6:16] = 1
    metrics = SegmentationMetrics(2, boundary_width=1)
    metrics.update(pred, target)
    result = metrics.compute()
    expected = _naive.boundary_iou([pred], [target], 2, 255, width=1)
    assert result["BIoU"] == pytest.approx(expected)
    assert result["BIoU"][1] == pytest.approx(6 / 13)


def test_absent_class_is_nan_and_excluded_from_means():
    preds, targets = _label_maps(5, 2, (24, 24), 3)
    metrics = SegmentationMetrics(4)  # class 3 never appears
    metrics.update(preds, targets)
    result = metrics.compute()
    for name in PER_CLASS:
        assert math.isnan(result[name][3])
        assert result[f"m{name}"] == pytest.approx(np.mean(result[name][:3]))


def test_nothing_accumulated_gives_nan():
    result = SegmentationMetrics(3).compute()
    assert math.isnan(result["mIoU"]) and math.isnan(result["OA"])
    assert math.isnan(result["mBIoU"])


def test_numpy_and_torch_inputs_agree():
    preds, targets = _label_maps(6, 2, (28, 31), 4)
    from_numpy = SegmentationMetrics(4, diagnostics=True)
    from_numpy.update(preds.astype(np.uint8), targets.astype(np.uint8))
    from_torch = SegmentationMetrics(4, diagnostics=True)
    from_torch.update(torch.from_numpy(preds).int(), torch.from_numpy(targets))
    assert from_numpy.state_dict().keys() == from_torch.state_dict().keys()
    for key, value in from_numpy.state_dict().items():
        other = from_torch.state_dict()[key]
        assert torch.equal(value, other) if isinstance(value, torch.Tensor) else value == other


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.int32])
def test_numpy_integer_dtypes_agree_with_int64(dtype):
    preds, targets = _label_maps(13, 1, (21, 23), 4)
    reference = SegmentationMetrics(4)
    reference.update(preds, targets)
    other = SegmentationMetrics(4)
    other.update(preds.astype(dtype), targets.astype(dtype))
    assert torch.equal(reference.state_dict()["joint"], other.state_dict()["joint"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_inputs_stay_on_cuda_and_match_cpu():
    preds, targets = _label_maps(14, 2, (40, 44), 5)
    cpu = SegmentationMetrics(5, diagnostics=True)
    cpu.update(torch.from_numpy(preds), torch.from_numpy(targets))
    gpu = SegmentationMetrics(5, diagnostics=True)
    gpu.update(torch.from_numpy(preds).cuda(), torch.from_numpy(targets).cuda())
    assert gpu.confusion_matrix.device.type == "cuda"
    _assert_same_results(gpu.compute(), cpu.compute())


def test_single_image_equals_batch_of_one():
    preds, targets = _label_maps(7, 1, (20, 26), 3)
    single = SegmentationMetrics(3)
    single.update(torch.from_numpy(preds[0]), torch.from_numpy(targets[0]))
    batch = SegmentationMetrics(3)
    batch.update(torch.from_numpy(preds), torch.from_numpy(targets))
    assert single.compute() == batch.compute()


def test_boundary_width_overrides_ratio():
    preds, targets = _label_maps(8, 2, (40, 40), 3, ignore_fraction=0.0, noise=0.0, block=12)
    results = {}
    for ratio, width in ((0.02, 5), (0.2, 5), (0.2, None)):
        metrics = SegmentationMetrics(3, boundary_ratio=ratio, boundary_width=width)
        metrics.update(preds, targets)
        results[ratio, width] = metrics.compute()["BIoU"]
    assert results[0.02, 5] == results[0.2, 5]
    _assert_lists_close(
        results[0.2, 5], _naive.boundary_iou(list(preds), list(targets), 3, 255, width=5)
    )
    assert results[0.2, None] != results[0.2, 5]  # d = 11 without the override


def test_diagnostics_match_brute_force():
    preds, targets = _label_maps(9, 2, (30, 34), 3)
    metrics = SegmentationMetrics(3, diagnostics=True)
    metrics.update(preds, targets)
    result = metrics.compute()
    fp_hist, fn_hist = _naive.error_histograms(list(preds), list(targets), 3, 255)
    assert result["fp_distance_hist"] == fp_hist.tolist()
    assert result["fn_depth_hist"] == fn_hist.tolist()
    assert result["diagnostic_bins"] == list(DIAGNOSTIC_BINS)
    # every wrong valid pixel is one false positive and one false negative
    wrong = int(np.sum((preds != targets) & (targets != 255)))
    assert int(np.sum(fp_hist)) == wrong and int(np.sum(fn_hist)) == wrong
    assert "fp_distance_hist" not in SegmentationMetrics(3).compute()


def test_confusion_matrix_property_and_reset():
    metrics = SegmentationMetrics(2, ignore_index=None)
    metrics.update(torch.tensor([[0, 1, 1]]), torch.tensor([[0, 0, 1]]))
    assert metrics.confusion_matrix.tolist() == [[1, 1], [0, 1]]
    assert metrics.confusion_matrix.dtype == torch.int64
    metrics.reset()
    assert metrics.confusion_matrix.tolist() == [[0, 0], [0, 0]]


def test_state_dict_round_trip_and_mismatch():
    preds, targets = _label_maps(10, 2, (20, 20), 3)
    metrics = SegmentationMetrics(3, diagnostics=True)
    metrics.update(preds, targets)
    restored = SegmentationMetrics(3, diagnostics=True)
    restored.load_state_dict(metrics.state_dict())
    _assert_same_results(restored.compute(), metrics.compute())
    restored.update(preds, targets)
    metrics.update(preds, targets)
    assert torch.equal(restored.confusion_matrix, metrics.confusion_matrix)
    with pytest.raises(CheckpointError, match="num_classes=3"):
        SegmentationMetrics(4, diagnostics=True).load_state_dict(metrics.state_dict())
    with pytest.raises(CheckpointError, match="missing keys"):
        SegmentationMetrics(3).load_state_dict({"num_classes": 3})


@pytest.mark.parametrize(
    ("pred", "target", "match"),
    [
        (
            torch.zeros(2, 4, 4, dtype=torch.long),
            torch.zeros(2, 4, 5, dtype=torch.long),
            "shapes differ",
        ),
        (torch.zeros(4, dtype=torch.long), torch.zeros(4, dtype=torch.long), r"\[B, H, W\]"),
        (torch.full((1, 3, 3), 3), torch.zeros(1, 3, 3, dtype=torch.long), "class index 3"),
        (torch.full((1, 3, 3), -1), torch.zeros(1, 3, 3, dtype=torch.long), "class index -1"),
        (torch.zeros(1, 3, 3), torch.zeros(1, 3, 3, dtype=torch.long), "integer class indices"),
        (torch.zeros(1, 3, 3, dtype=torch.long), torch.full((1, 3, 3), 7), "target holds value 7"),
        (torch.zeros(1, 3, 3, dtype=torch.long), torch.full((1, 3, 3), 3), "target holds value 3"),
        (
            torch.zeros(1, 3, 3, dtype=torch.long),
            torch.full((1, 3, 3), -2),
            "target holds value -2",
        ),
        (np.zeros((3, 3), np.float32), np.zeros((3, 3), np.int64), "integer class indices"),
        ([[0, 1]], [[0, 1]], "torch.Tensor or numpy.ndarray"),
    ],
)
def test_bad_inputs_raise_clear_errors(pred, target, match):
    metrics = SegmentationMetrics(3)
    with pytest.raises(DataFormatError, match=match):
        metrics.update(pred, target)
    assert metrics.confusion_matrix.sum() == 0  # nothing half-counted


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_classes": 0}, "num_classes"),
        ({"num_classes": 3, "ignore_index": 2}, "ignore_index=2 is a class index"),
        ({"num_classes": 3, "eval_classes": [0, 3]}, "eval_classes"),
        ({"num_classes": 3, "eval_classes": []}, "eval_classes"),
        ({"num_classes": 3, "eval_classes": [1, 1]}, "eval_classes"),
        ({"num_classes": 3, "boundary_ratio": 0}, "boundary_ratio"),
        ({"num_classes": 3, "boundary_width": 0}, "boundary_width"),
        ({"num_classes": 3, "diagnostics": 1}, "diagnostics"),
    ],
)
def test_bad_options_raise(kwargs, match):
    with pytest.raises(InvalidOptionError, match=match):
        SegmentationMetrics(**kwargs)


def test_sync_without_process_group_is_a_no_op():
    preds, targets = _label_maps(11, 1, (16, 16), 3)
    metrics = SegmentationMetrics(3)
    metrics.update(preds, targets)
    before = metrics.compute()
    metrics.sync()
    _assert_same_results(metrics.compute(), before)


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank, world_size, port, out_dir):
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size
    )
    try:
        preds, targets = _label_maps(12, 4, (32, 30), 4)
        metrics = SegmentationMetrics(4, eval_classes=(0, 1, 2), diagnostics=True, per_image=True)
        names = [f"image{i}" for i in range(len(preds))]
        metrics.update(
            torch.from_numpy(preds[rank::world_size]),
            torch.from_numpy(targets[rank::world_size]),
            names[rank::world_size],
        )
        metrics.sync()
        metrics.sync()  # a second sync reduces the local counts again: no double counting
        result = metrics.compute()
        result["confusion"] = metrics.confusion_matrix.tolist()
        rows = metrics.per_image_stats()
        result["per_image"] = {k: v.tolist() for k, v in rows.to_arrays().items()}
        with open(f"{out_dir}/rank{rank}.json", "w") as f:
            json.dump(result, f)
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
@pytest.mark.slow  # two spawned interpreters import torch: ~10-25 s on the shared 2-core machine
def test_two_process_sync_equals_single_process(tmp_path):
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    preds, targets = _label_maps(12, 4, (32, 30), 4)
    single = SegmentationMetrics(4, eval_classes=(0, 1, 2), diagnostics=True, per_image=True)
    single.update(
        torch.from_numpy(preds), torch.from_numpy(targets), [f"image{i}" for i in range(len(preds))]
    )
    expected = json.loads(json.dumps(single.compute()))
    expected["confusion"] = single.confusion_matrix.tolist()
    rows = single.per_image_stats()
    expected["per_image"] = {k: v.tolist() for k, v in rows.to_arrays().items()}
    for rank in range(2):
        got = json.loads((tmp_path / f"rank{rank}.json").read_text())
        assert len(got["per_image"]["names"]) == len(preds)  # every image of both ranks, once
        assert got == expected  # exact: integer counts, same float operations


def test_sync_in_a_one_process_group_keeps_every_count(tmp_path):
    # The collective path of sync() in this process (gloo, world size 1): the reduced totals
    # are laid back into each count in order, the per-image rows gathered once.
    preds, targets = _label_maps(13, 3, (24, 20), 4)
    names = ["b", "a", "c"]
    metrics = SegmentationMetrics(4, diagnostics=True, per_image=True)
    metrics.update(torch.from_numpy(preds), torch.from_numpy(targets), names)
    before, rows = metrics.compute(), metrics.per_image_stats()
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        metrics.sync()
        metrics.sync()  # reduces the local counts again: no double counting
        _assert_same_results(metrics.compute(), before)
        assert metrics.per_image_stats() == rows
        assert metrics.per_image_stats().names == ("a", "b", "c")
    finally:
        dist.destroy_process_group()


def test_per_image_rows_are_dropped_by_reset():
    preds, targets = _label_maps(14, 2, (12, 12), 3)
    metrics = SegmentationMetrics(3, per_image=True)
    assert metrics.per_image_stats() is None
    metrics.update(torch.from_numpy(preds), torch.from_numpy(targets), ["x", "y"])
    assert metrics.per_image_stats().names == ("x", "y")
    metrics.sync()  # no process group: nothing changes
    assert metrics.per_image_stats().names == ("x", "y")
    metrics.reset()
    assert metrics.per_image_stats() is None
    metrics.update(torch.from_numpy(preds[:1]), torch.from_numpy(targets[:1]), ["z"])
    rows = metrics.per_image_stats()
    assert rows.names == ("z",)
    assert rows.tp.sum() == metrics.confusion_matrix.diagonal().sum()


@pytest.mark.parametrize("dtype", [torch.uint16, torch.uint32])
def test_wide_unsigned_tensors_count_as_their_values(dtype):
    preds, targets = _label_maps(15, 2, (10, 9), 3)
    reference = SegmentationMetrics(3)
    reference.update(torch.from_numpy(preds), torch.from_numpy(targets))
    metrics = SegmentationMetrics(3)
    metrics.update(torch.from_numpy(preds).to(dtype), torch.from_numpy(targets).to(dtype))
    assert torch.equal(metrics.confusion_matrix, reference.confusion_matrix)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            {"num_classes": 3, "ignore_index": 0},
            r"ignore_index=0 is a class index \(num_classes=3\)",
        ),
        ({"num_classes": 3, "eval_classes": [5]}, r"distinct class indices in 0\.\.2, "),
        (
            {"num_classes": 3, "boundary_ratio": True},
            r"boundary_ratio must be a positive number, got True",
        ),
        (
            {"num_classes": 3, "boundary_ratio": math.nan},
            "boundary_ratio must be a positive number",
        ),
        (
            {"num_classes": 3, "boundary_ratio": math.inf},
            "boundary_ratio must be a positive number",
        ),
        ({"num_classes": 3, "bf_ratio": True}, r"bf_ratio must be a positive number, got True"),
        ({"num_classes": 3, "bf_ratio": "0.01"}, r"bf_ratio must be a positive number, got '0.01'"),
        ({"num_classes": 3, "bf_ratio": math.nan}, "bf_ratio must be a positive number"),
        ({"num_classes": 3, "bf_ratio": -math.inf}, "bf_ratio must be a positive number"),
    ],
)
def test_options_are_checked_at_their_boundaries(kwargs, match):
    with pytest.raises(InvalidOptionError, match=match):
        SegmentationMetrics(**kwargs)


def test_one_class_and_the_last_index_are_valid():
    metrics = SegmentationMetrics(1, ignore_index=1)  # one class; ignore right after it
    metrics.update(torch.tensor([[0, 0]]), torch.tensor([[0, 1]]))
    assert metrics.confusion_matrix.tolist() == [[1]]


@pytest.mark.parametrize(
    ("pred", "target", "message"),
    [
        ([[0, 5]], [[0, 1]], "pred holds class index 5, expected values in 0..2 (num_classes=3)"),
        ([[-1, 5]], [[0, 1]], "pred holds class index -1, expected values in 0..2 (num_classes=3)"),
        (
            [[0, 1]],
            [[0, 9]],
            "target holds value 9, expected class indices 0..2 or ignore_index=255",
        ),
        ([[0, 1]], [[-3, 9]], "target holds value -3, expected class indices 0..2"),
    ],
)
def test_out_of_range_values_are_named(pred, target, message):
    with pytest.raises(DataFormatError, match=re.escape(message)):
        SegmentationMetrics(3).update(torch.tensor(pred), torch.tensor(target))


def test_a_state_saved_as_int32_is_restored_as_int64_counts():
    preds, targets = _label_maps(16, 1, (8, 8), 3)
    metrics = SegmentationMetrics(3)
    metrics.update(torch.from_numpy(preds), torch.from_numpy(targets))
    state = {
        k: v.to(torch.int32) if isinstance(v, torch.Tensor) else v
        for k, v in metrics.state_dict().items()
    }
    restored = SegmentationMetrics(3)
    restored.load_state_dict(state)
    assert restored.confusion_matrix.dtype == torch.int64
    assert all(
        v.dtype == torch.int64
        for v in restored.state_dict().values()
        if isinstance(v, torch.Tensor)
    )
    assert torch.equal(restored.confusion_matrix, metrics.confusion_matrix)


def test_sync_uses_the_reduced_totals(tmp_path, monkeypatch):
    # Two identical ranks, simulated: the all-reduce doubles every count. After sync() the
    # metrics are those of the data counted twice; the local counts stay as they were.
    preds, targets = _label_maps(17, 2, (20, 18), 3)
    metrics = SegmentationMetrics(3, diagnostics=True)
    metrics.update(torch.from_numpy(preds), torch.from_numpy(targets))
    local = metrics.confusion_matrix
    twice = SegmentationMetrics(3, diagnostics=True)
    for _ in range(2):
        twice.update(torch.from_numpy(preds), torch.from_numpy(targets))
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    try:
        monkeypatch.setattr(dist, "all_reduce", lambda flat, op=None: flat.mul_(2))
        metrics.sync()
        assert torch.equal(metrics.confusion_matrix, 2 * local)
        _assert_same_results(metrics.compute(), twice.compute())
        assert torch.equal(metrics.state_dict()["joint"].sum(0)[:3, :3], local)  # local kept
    finally:
        dist.destroy_process_group()
