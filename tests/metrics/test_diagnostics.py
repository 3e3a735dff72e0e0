import numpy as np
import pytest
import torch
from scipy import ndimage

from lossd.metrics import DIAGNOSTIC_BINS, error_distance_histograms
from lossd.ops import taxicab_distance

from ._naive import error_histograms, taxicab_to_features


def _regions(rng, shape, num_labels, block=5):
    h, w = shape
    coarse = rng.integers(0, num_labels, size=(h // block + 1, w // block + 1))
    return np.kron(coarse, np.ones((block, block), np.int64))[:h, :w]


@pytest.mark.parametrize("shape", [(1, 1), (1, 13), (9, 1), (17, 23), (40, 70)])
@pytest.mark.parametrize("density", [0.003, 0.05, 0.5])
def test_taxicab_distance_matches_scipy(shape, density):
    rng = np.random.default_rng(int(density * 1000) + shape[1])
    features = rng.random(shape) < density
    features.flat[rng.integers(0, features.size)] = True
    got = taxicab_distance(torch.from_numpy(features)).numpy()
    expected = ndimage.distance_transform_cdt(~features, metric="taxicab")
    np.testing.assert_array_equal(got, expected)


def test_taxicab_distance_matches_brute_force_and_caps():
    rng = np.random.default_rng(5)
    features = rng.random((30, 45)) < 0.01
    features[0, 0] = True
    exact = taxicab_to_features(features)
    for cap in (1, 2, 5, 32, 100):
        got = taxicab_distance(torch.from_numpy(features), cap=cap).numpy()
        np.testing.assert_array_equal(got, np.minimum(exact, cap))


def test_taxicab_distance_without_features_gives_cap():
    empty = torch.zeros(2, 6, 9, dtype=torch.bool)
    assert bool((taxicab_distance(empty, cap=32) == 32).all())
    assert bool((taxicab_distance(empty) == 6 + 9 - 1).all())


def test_taxicab_distance_is_per_image():
    features = torch.zeros(2, 8, 8, dtype=torch.bool)
    features[0, 0, 0] = True
    dist = taxicab_distance(features, cap=40)
    assert int(dist[0, 7, 7]) == 14
    assert bool((dist[1] == 40).all())


def test_histograms_hand_worked():
    # Target: class 1 fills columns 0..3 of a 1x12 strip, class 0 the rest. The prediction
    # extends class 1 by 5 px (columns 4..8): false positives of class 1 at L1 distance 1..5
    # -> bins 1, 2-3, 2-3, 4-7, 4-7; false negatives of class 0 at depth 1..5 (the nearest
    # class-1 pixel is column 3), same bins.
    target = torch.tensor([[[1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]]])
    pred = torch.tensor([[[1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0]]])
    hist = error_distance_histograms(pred, target, 2)
    assert hist[0, 1].tolist() == [1, 2, 2, 0, 0, 0]
    assert hist[1, 0].tolist() == [1, 2, 2, 0, 0, 0]
    assert int(hist[0, 0].sum()) == 0 and int(hist[1, 1].sum()) == 0


def test_absent_class_and_full_region_go_to_last_bin():
    # Class 2 is absent from the target: its false positives are infinitely far -> "32+".
    # Class 0 fills the image: a false negative has no other label anywhere -> depth "32+".
    target = torch.zeros(1, 5, 5, dtype=torch.long)
    pred = target.clone()
    pred[0, 2, 2] = 2
    hist = error_distance_histograms(pred, target, 3)
    assert hist[0, 2].tolist() == [0, 0, 0, 0, 0, 1]
    assert hist[1, 0].tolist() == [0, 0, 0, 0, 0, 1]
    assert len(DIAGNOSTIC_BINS) == 6 and DIAGNOSTIC_BINS[-1] == "32+"


@pytest.mark.parametrize("seed", [0, 1])
def test_histograms_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    num_classes = 4
    # Large regions so that depths and distances reach the upper bins; ignore pixels in a band.
    target = np.stack([_regions(rng, (72, 90), num_classes, block=36) for _ in range(2)])
    noise = rng.random(target.shape) < 0.05
    pred = np.where(noise, rng.integers(0, num_classes, target.shape), target)
    pred[:, 5:40, 10:60] = rng.integers(0, num_classes)  # a big blob of one class
    target[:, 60:66][rng.random((2, 6, 90)) < 0.5] = 255
    valid = target != 255
    got = error_distance_histograms(  # encoded labels: num_classes marks ignore in both maps
        torch.from_numpy(np.where(valid, pred, num_classes)).to(torch.uint8),
        torch.from_numpy(np.where(valid, target, num_classes)).to(torch.uint8),
        num_classes,
    ).numpy()
    fp_hist, fn_hist = error_histograms(list(pred), list(target), num_classes, 255)
    np.testing.assert_array_equal(got[0], fp_hist)
    np.testing.assert_array_equal(got[1], fn_hist)
    # the inputs reach the deep bins of both histograms
    assert fp_hist[:, 5].sum() > 0 and fn_hist[:, 4:].sum() > 0
