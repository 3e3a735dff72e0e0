"""Exact truncated taxicab transforms against scipy, brute force and the naive propagation."""

import importlib.util
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from lossd.ops.distance import (
    distance_dtype,
    label_edges,
    region_distance_maps,
    taxicab_distance,
    taxicab_min_plus_,
    truncated_taxicab_distance,
)

_spec = importlib.util.spec_from_file_location(
    "_naive_lossd_for_transforms", Path(__file__).with_name("_naive_lossd.py")
)
assert _spec is not None and _spec.loader is not None
naive = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(naive)


def scipy_truncated(mask: np.ndarray, max_iter: int) -> np.ndarray:
    """D(M) of docs/lossd.md step 2 for one 2-D mask, from scipy (max_iter if no background)."""
    if mask.all():
        return np.full(mask.shape, max_iter, dtype=np.int64)
    dist = ndimage.distance_transform_cdt(mask, metric="taxicab").astype(np.int64)
    return np.minimum(dist, max_iter)


def random_blobs(shape: tuple[int, ...], num_labels: int, seed: int) -> np.ndarray:
    """Label maps with blocky regions (plus some speckle), so distances exceed 1."""
    rng = np.random.default_rng(seed)
    *lead, height, width = shape
    coarse = rng.integers(0, num_labels, size=(*lead, (height + 3) // 4, (width + 3) // 4))
    labels = coarse.repeat(4, axis=-2).repeat(4, axis=-1)[..., :height, :width].copy()
    speckle = rng.random(labels.shape) < 0.03
    labels[speckle] = rng.integers(0, num_labels, size=int(speckle.sum()))
    return labels


@pytest.mark.parametrize("max_iter", [1, 2, 3, 7, 50, 300])
@pytest.mark.parametrize("shape", [(13, 17), (1, 9), (9, 1), (20, 6)])
def test_truncated_distance_equals_scipy(max_iter, shape):
    masks = random_blobs((3, *shape), 2, seed=max_iter + shape[0]).astype(bool)
    masks[0] = True  # all foreground: max_iter everywhere
    masks[1] = False  # all background: 0 everywhere
    got = truncated_taxicab_distance(torch.from_numpy(masks), max_iter)
    assert got.dtype == distance_dtype(max_iter)
    for mask, dist in zip(masks, got, strict=True):
        np.testing.assert_array_equal(dist.long().numpy(), scipy_truncated(mask, max_iter))
    assert (got[0] == max_iter).all()
    assert (got[1] == 0).all()


def test_input_mask_is_left_unchanged():
    mask = torch.from_numpy(random_blobs((2, 9, 8), 2, seed=1).astype(bool))
    copy = mask.clone()
    truncated_taxicab_distance(mask, 5)
    assert torch.equal(mask, copy)
    # byte for byte: a bool tensor whose bytes were reused as distances still compares equal,
    # but counts its pixels wrongly (sum of the bytes)
    assert torch.equal(mask.view(torch.uint8), copy.view(torch.uint8))
    assert int(mask.sum()) == int(copy.sum())


def test_border_is_not_background():
    # One background pixel in the top-left corner: distances grow towards the far border.
    mask = torch.ones(1, 5, 7, dtype=torch.bool)
    mask[0, 0, 0] = False
    got = truncated_taxicab_distance(mask, 50)[0].long()
    rows, cols = torch.meshgrid(torch.arange(5), torch.arange(7), indexing="ij")
    assert torch.equal(got, rows + cols)
    # An object touching the border keeps its border pixels deep, not at depth 1.
    mask = torch.zeros(1, 6, 6, dtype=torch.bool)
    mask[0, :3, :] = True
    got = truncated_taxicab_distance(mask, 50)[0].long()
    assert got[:3, 0].tolist() == [3, 2, 1]


@pytest.mark.parametrize("max_iter", [1, 4, 50])
def test_naive_propagation_equals_scipy(max_iter):
    masks = random_blobs((2, 11, 14), 2, seed=3).astype(bool)
    masks[1] = True
    got = naive.naive_truncated_distance(torch.from_numpy(masks), max_iter)
    for mask, dist in zip(masks, got, strict=True):
        np.testing.assert_array_equal(dist.long().numpy(), scipy_truncated(mask, max_iter))


@pytest.mark.parametrize("cap", [1, 2, 5, 9, 40])
def test_min_plus_equals_brute_force(cap):
    """Arbitrary costs in [0, cap], not only binary seeds: min over all q of g(q) + |p - q|_1."""
    rng = np.random.default_rng(cap)
    cost = rng.integers(0, cap + 1, size=(2, 7, 10))
    cost[1] = cap
    cost[1, 6, 9] = 0
    height, width = cost.shape[1:]
    expected = np.empty_like(cost)
    for b, i, j in itertools.product(range(2), range(height), range(width)):
        expected[b, i, j] = min(
            cost[b, q, r] + abs(i - q) + abs(j - r)
            for q, r in itertools.product(range(height), range(width))
        )
    got = taxicab_min_plus_(torch.from_numpy(cost).to(distance_dtype(cap)), cap)
    np.testing.assert_array_equal(got.long().numpy(), expected)


@pytest.mark.parametrize("max_iter", [1, 3, 50])
def test_distance_to_regions_equals_scipy(max_iter):
    labels = random_blobs((2, 13, 17), 3, seed=max_iter)
    labels[1][labels[1] == 2] = 0  # class 2 absent from image 1: max_iter everywhere
    labels[0, 0, 0] = 255  # a label outside 0..C-1 belongs to no class
    got, _ = region_distance_maps(torch.from_numpy(labels), 4, max_iter)
    assert got.shape == (2, 4, 13, 17)
    for b, c in itertools.product(range(2), range(4)):
        expected = scipy_truncated(labels[b] != c, max_iter)
        np.testing.assert_array_equal(got[b, c].long().numpy(), expected)
    assert (got[1, 2] == max_iter).all()
    assert (got[:, 3] == max_iter).all()


@pytest.mark.parametrize("max_iter", [1, 2, 5, 50])
def test_depth_in_own_region_equals_per_label_scipy(max_iter):
    labels = random_blobs((3, 12, 15), 3, seed=10 + max_iter)
    labels[1] = 1  # a single label: max_iter everywhere
    labels[2, 5, 7] = 255  # an ignore-like label is a label of its own
    labels[2, 0, 3] = 2  # single-pixel object on the border
    outside, depth = region_distance_maps(torch.from_numpy(labels), 3, max_iter)
    assert outside.shape == (3, 3, 12, 15) and depth.shape == (3, 12, 15)
    got = depth.long().numpy()
    for b in range(3):
        for value in np.unique(labels[b]):
            region = labels[b] == value
            expected = scipy_truncated(region, max_iter)
            np.testing.assert_array_equal(got[b][region], expected[region])
    assert (got[1] == max_iter).all()


def test_distance_dtype_holds_twice_the_cap():
    assert distance_dtype(50) == torch.uint8
    assert distance_dtype(127) == torch.uint8
    assert distance_dtype(128) == torch.int16
    assert distance_dtype(20000) == torch.int32
    for max_iter in (1, 127, 128, 16383, 16384, 2**30):
        assert 2 * max_iter <= torch.iinfo(distance_dtype(max_iter)).max


def test_taxicab_distance_to_sources_by_brute_force():
    rng = np.random.default_rng(3)
    sources = rng.random((2, 6, 9)) < 0.1
    sources[0, 2, 3] = True
    sources[1] = False  # no source: the cap everywhere
    default_cap = 6 + 9 - 1
    for cap in (None, 3):
        got = taxicab_distance(torch.from_numpy(sources), cap)
        limit = default_cap if cap is None else cap
        assert got.dtype == distance_dtype(limit)
        for i, j in itertools.product(range(6), range(9)):
            points = np.argwhere(sources[0])
            nearest = min(abs(i - q) + abs(j - r) for q, r in points)
            assert int(got[0, i, j]) == min(nearest, limit)
        assert (got[1] == limit).all()


@pytest.mark.parametrize("cap", [0, -2, 1.5, True])
def test_taxicab_distance_refuses_a_bad_cap(cap):
    with pytest.raises(ValueError, match=r"cap must be a positive int, got "):
        taxicab_distance(torch.zeros(1, 3, 3, dtype=torch.bool), cap)


def test_label_edges_by_hand():
    label = torch.tensor([[0, 0, 1], [0, 0, 1], [2, 2, 2]])
    edges = label_edges(label)
    assert edges.dtype == torch.bool
    assert edges.int().tolist() == [[0, 1, 1], [1, 1, 1], [1, 1, 1]]
    assert not label_edges(torch.zeros(2, 4, 4, dtype=torch.long)).any()


def test_taxicab_distance_with_the_smallest_caps():
    sources = torch.tensor([[[True, False, False]]])
    assert taxicab_distance(sources, 1).tolist() == [[[0, 1, 1]]]  # cap 1: source or not
    # a 1×1 image: the default cap H + W - 1 = 1, also where there is no source
    assert taxicab_distance(torch.zeros(2, 1, 1, dtype=torch.bool)).tolist() == [[[1]], [[1]]]
