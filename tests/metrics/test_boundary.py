import numpy as np
import pytest
import torch

from lossd.metrics import band_counts, boundary_width, joint_counts, label_boundary, mask_boundary

from ._naive import band_width, boundary_cv2, boundary_scipy


def _blobby_labels(rng, shape, num_labels):
    """Random label map with regions (upsampled coarse noise) plus some salt."""
    h, w = shape
    coarse = rng.integers(0, num_labels, size=(max(1, h // 4), max(1, w // 4)))
    labels = np.kron(coarse, np.ones((4, 4), np.int64))[:h, :w]
    labels = np.pad(labels, ((0, h - labels.shape[0]), (0, w - labels.shape[1])), mode="edge")
    salt = rng.random((h, w)) < 0.05
    labels[salt] = rng.integers(0, num_labels, size=int(salt.sum()))
    return labels


@pytest.mark.parametrize(
    ("height", "width", "ratio", "expected"),
    [(1024, 1024, 0.02, 29), (512, 512, 0.02, 14), (1024, 1024, 0.005, 7), (512, 512, 0.005, 4)],
)
def test_boundary_width_matches_reference_table(height, width, ratio, expected):
    # docs/reference.md "Boundary IoU": 1024² -> 29 px (0.02) or 7 px (0.005); 512² -> 14 / 4.
    assert boundary_width(height, width, ratio) == expected


@pytest.mark.parametrize(("height", "width"), [(3, 3), (10, 37), (64, 64), (100, 250), (1, 5)])
@pytest.mark.parametrize("ratio", [0.005, 0.02, 0.1])
def test_boundary_width_matches_naive(height, width, ratio):
    assert boundary_width(height, width, ratio) == band_width(height, width, ratio)


def test_reference_bands_agree_between_cv2_and_scipy():
    # The naive port (cv2 padded erosion) and scipy's erosion with a zero border agree, so the
    # reference encodes "image border = contour" and not an artefact of one library.
    rng = np.random.default_rng(0)
    for d in (1, 2, 3, 5, 9):
        mask = _blobby_labels(rng, (23, 31), 2) == 1
        np.testing.assert_array_equal(boundary_cv2(mask, d), boundary_scipy(mask, d))


def test_square_band_hand_worked():
    # A 10x10 square inside a 20x20 image: band d=1 is the outer ring of the square
    # (100 - 8*8 = 36 px), d=2 two rings (100 - 6*6 = 64 px).
    mask = torch.zeros(20, 20, dtype=torch.bool)
    mask[5:15, 5:15] = True
    band1 = mask_boundary(mask, 1)
    band2 = mask_boundary(mask, 2)
    assert int(band1.sum()) == 36
    assert int(band2.sum()) == 64
    assert not band1[6:14, 6:14].any() and band1[5, 5:15].all() and band1[5:15, 14].all()
    assert not band2[7:13, 7:13].any() and band2[6, 6:14].all()


def test_image_border_counts_as_contour():
    # A full 10x10 mask: the erosion sees the zero padding, so the band is the image border.
    mask = torch.ones(10, 10, dtype=torch.bool)
    assert int(mask_boundary(mask, 1).sum()) == 36
    assert int(mask_boundary(mask, 2).sum()) == 64
    assert bool(mask_boundary(mask, 5).all())  # window never fits: all band
    assert bool(mask_boundary(mask, 50).all())


@pytest.mark.parametrize("shape", [(1, 1), (2, 9), (7, 7), (23, 31), (40, 17)])
@pytest.mark.parametrize("d", [1, 2, 3, 4, 7, 12, 30])
def test_mask_boundary_matches_iterative_erosion(shape, d):
    rng = np.random.default_rng(d * 100 + shape[0])
    mask = _blobby_labels(rng, shape, 2) == 1
    got = mask_boundary(torch.from_numpy(mask), d).numpy()
    np.testing.assert_array_equal(got, boundary_cv2(mask, d))


@pytest.mark.parametrize("shape", [(1, 1), (3, 8), (9, 9), (25, 33), (48, 20)])
@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 13])
def test_label_boundary_equals_each_class_band(shape, d):
    rng = np.random.default_rng(7 * d + shape[1])
    labels = _blobby_labels(rng, shape, 4)
    labels[rng.random(shape) < 0.05] = 255  # ignore is a label of its own
    band = label_boundary(torch.from_numpy(labels), d).numpy()
    for c in (0, 1, 2, 3, 255):
        np.testing.assert_array_equal((labels == c) & band, boundary_cv2(labels == c, d))


def test_label_boundary_batched_equals_per_image():
    rng = np.random.default_rng(3)
    labels = np.stack([_blobby_labels(rng, (30, 26), 5) for _ in range(3)])
    batched = label_boundary(torch.from_numpy(labels), 4).numpy()
    for i in range(3):
        np.testing.assert_array_equal(
            batched[i], label_boundary(torch.from_numpy(labels[i]), 4).numpy()
        )


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64])
def test_joint_counts_match_naive_loops(dtype):
    rng = np.random.default_rng(11)
    num_classes, d = 5, 3
    target = np.stack([_blobby_labels(rng, (34, 29), num_classes) for _ in range(2)])
    pred = np.stack([_blobby_labels(rng, (34, 29), num_classes) for _ in range(2)])
    target[rng.random(target.shape) < 0.1] = 255
    valid = target != 255
    # encoded labels: num_classes marks ignore in both maps
    joint = joint_counts(
        torch.from_numpy(np.where(valid, pred, num_classes)).to(dtype),
        torch.from_numpy(np.where(valid, target, num_classes)).to(dtype),
        num_classes,
        d,
    )
    inter, gt_band, pred_band = (v.numpy() for v in band_counts(joint))
    for c in range(num_classes):
        gt = sum(int(boundary_cv2(t == c, d).sum()) for t in target)
        pr = sum(
            int(boundary_cv2((p == c) & (t != 255), d).sum())
            for p, t in zip(pred, target, strict=True)
        )
        both = sum(
            int((boundary_cv2(t == c, d) & boundary_cv2((p == c) & (t != 255), d)).sum())
            for p, t in zip(pred, target, strict=True)
        )
        assert (inter[c], gt_band[c], pred_band[c]) == (both, gt, pr)
    confusion = joint.sum(0)[:num_classes, :num_classes].numpy()
    for t in range(num_classes):
        for p in range(num_classes):
            assert confusion[t, p] == np.sum((target == t) & (pred == p))
    assert int(joint.sum()) == target.size


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_width_is_rejected(bad):
    with pytest.raises(ValueError, match="positive int"):
        mask_boundary(torch.ones(4, 4, dtype=torch.bool), bad)
    with pytest.raises(ValueError, match="positive int"):
        label_boundary(torch.ones(4, 4, dtype=torch.long), bad)


def _regions(rng, shape, num_labels, block):
    """Label map of ``block``-pixel squares of random labels: wide regions with interiors."""
    h, w = shape
    coarse = rng.integers(0, num_labels, size=(h // block + 1, w // block + 1))
    return np.kron(coarse, np.ones((block, block), np.int64))[:h, :w]


def _naive_band_counts(pred, target, num_classes, d, ignore=255):
    """(|Gb ∩ Pb|, |Gb|, |Pb|) per class of one image, with the cv2 bands of _naive.py."""
    out = np.zeros((3, num_classes), np.int64)
    valid = target != ignore
    for c in range(num_classes):
        gt_band = boundary_cv2(target == c, d) & valid
        pred_band = boundary_cv2((pred == c) & valid, d)
        out[:, c] = (np.sum(gt_band & pred_band), np.sum(gt_band), np.sum(pred_band))
    return out


@pytest.mark.parametrize(("d", "block"), [(1, 6), (2, 9)])
def test_joint_counts_per_image_match_naive_bands_on_wide_regions(d, block):
    # Regions wider than the band, so that interiors exist (4-pixel blobs at d = 3 are all band),
    # and a batch counted image by image: [B, 4, C+1, C+1], each image as if alone.
    rng = np.random.default_rng(5)
    num_classes = 4
    target = np.stack([_regions(rng, (31, 40), num_classes, block) for _ in range(3)])
    pred = np.stack([_regions(rng, (31, 40), num_classes, block) for _ in range(3)])
    target[:, 10:14, 5:9] = 255  # an ignore patch
    valid = target != 255
    encoded_pred = torch.from_numpy(np.where(valid, pred, num_classes)).to(torch.uint8)
    encoded_target = torch.from_numpy(np.where(valid, target, num_classes)).to(torch.uint8)
    per_image = joint_counts(encoded_pred, encoded_target, num_classes, d, per_image=True)
    assert per_image.shape == (3, 4, num_classes + 1, num_classes + 1)
    assert per_image.dtype == torch.int64
    counts = [band_counts(joint) for joint in per_image]  # each [4, C+1, C+1]
    batched = band_counts(per_image)  # a leading image axis
    for i in range(3):
        expected = _naive_band_counts(pred[i], target[i], num_classes, d)
        assert expected[1].sum() < valid[i].sum()  # interiors exist: not every pixel is band
        alone = joint_counts(encoded_pred[i : i + 1], encoded_target[i : i + 1], num_classes, d)
        assert torch.equal(per_image[i], alone)
        for got in (counts[i], tuple(v[i] for v in batched)):
            assert [v.tolist() for v in got] == expected.tolist()
    assert torch.equal(per_image.sum(0), joint_counts(encoded_pred, encoded_target, num_classes, d))
    assert all(v.shape == (3, num_classes) for v in batched)


def test_joint_counts_with_many_classes_use_a_wide_enough_index():
    # 4 (C+1)² = 4·91² = 33124 joint codes do not fit int16 (the bincount index dtype)
    rng = np.random.default_rng(2)
    num_classes = 90
    target = np.stack([_regions(rng, (24, 24), num_classes, 3) for _ in range(2)])
    pred = np.stack([_regions(rng, (24, 24), num_classes, 3) for _ in range(2)])
    target[0, 0, 0], pred[1, 5, 5] = num_classes - 1, num_classes - 1  # the last class present
    joint = joint_counts(torch.from_numpy(pred), torch.from_numpy(target), num_classes, 1)
    per_image = joint_counts(
        torch.from_numpy(pred), torch.from_numpy(target), num_classes, 1, per_image=True
    )
    confusion = joint.sum(0)
    assert int(confusion[num_classes - 1].sum()) == int(np.sum(target == num_classes - 1))
    assert int(confusion[:, num_classes - 1].sum()) == int(np.sum(pred == num_classes - 1))
    for i in range(2):
        expected = _naive_band_counts(pred[i], target[i], num_classes, 1)
        assert [v.tolist() for v in band_counts(per_image[i])] == expected.tolist()


def test_index_dtype_is_the_smallest_that_holds_every_index():
    from lossd.metrics.boundary import _index_dtype

    # indices 0..size-1: int16 up to size 32768 (max 32767), int32 up to 2**31
    assert _index_dtype(1) == torch.int16
    assert _index_dtype(32768) == torch.int16
    assert _index_dtype(32769) == torch.int32
    assert _index_dtype(2**31) == torch.int32
    assert _index_dtype(2**31 + 1) == torch.int64


def test_mask_boundary_reads_any_nonzero_value_as_the_mask():
    mask = torch.zeros(7, 8, dtype=torch.uint8)
    mask[1:6, 1:7] = 2  # not 1: any non-zero value is "in the mask"
    band = mask_boundary(mask, 1)
    assert band.dtype == torch.bool
    assert torch.equal(band, mask_boundary(mask != 0, 1))
    expected = (mask != 0).clone()
    expected[2:5, 2:6] = False  # the interior: 3×3 windows inside the mask
    assert torch.equal(band, expected)
