import functools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from lossd.errors import InvalidOptionError
from lossd.losses._functional import (
    _euclidean_distance_to_scipy,
    _euclidean_distance_to_torch,
    signed_distance_map,
)
from lossd.losses.boundary_kervadec import KervadecBoundaryLoss
from tests.losses._naive_competitors import (
    IGNORE,
    assert_all_ignore_gives_connected_zero,
    assert_ignore_has_no_effect,
    brute_euclidean_distance_to,
    brute_signed_map,
    naive_kervadec,
    random_case,
    value_and_grad,
)


def random_masks(seed: int, count: int, height: int, width: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    density = torch.rand(count, 1, 1, generator=generator) * 0.3
    masks = torch.rand(count, height, width, generator=generator) < density
    masks[0] = False  # no feature at all
    masks[1] = True  # all features
    masks[2] = False
    masks[2, -1, 0] = True  # a single corner pixel: distances up to the far corner
    return masks


@pytest.mark.parametrize(
    "transform",
    [
        _euclidean_distance_to_torch,
        functools.partial(_euclidean_distance_to_scipy, ndimage=ndimage),
    ],
)
def test_euclidean_transforms_match_brute_force(transform):
    masks = random_masks(seed=31, count=6, height=9, width=13)
    result = transform(masks).numpy()
    for mask, distances in zip(masks.numpy(), result, strict=True):
        np.testing.assert_allclose(distances, brute_euclidean_distance_to(mask), rtol=1e-6)


def test_torch_transform_matches_scipy_on_larger_masks():
    # Slice 2 (one corner pixel) needs row offsets far beyond one gather of unfinished rows.
    masks = random_masks(seed=32, count=5, height=40, width=57)
    result = _euclidean_distance_to_torch(masks)
    expected = np.stack([ndimage.distance_transform_edt(~m) for m in masks[1:].numpy()])
    np.testing.assert_allclose(result[1:].numpy(), expected, rtol=1e-6)
    assert torch.isinf(result[0]).all()


def test_signed_map_hand_worked():
    # 2x2 square in a 4x5 image: inside boundary pixels 0, outside +distance to the square.
    region = torch.zeros(4, 5, dtype=torch.bool)
    region[1:3, 1:3] = True
    r2, r5 = np.sqrt(2), np.sqrt(5)
    expected = np.array(
        [
            [r2, 1, 1, r2, r5],
            [1, 0, 0, 1, 2],
            [1, 0, 0, 1, 2],
            [r2, 1, 1, r2, r5],
        ]
    )
    np.testing.assert_allclose(signed_distance_map(region).numpy(), expected, rtol=1e-6)
    wide = torch.zeros(5, 5, dtype=torch.bool)
    wide[:, :] = True
    wide[0, 0] = False  # inside depth grows away from the single outside pixel
    np.testing.assert_allclose(
        signed_distance_map(wide)[4, 4].item(), -(np.sqrt(32) - 1), rtol=1e-6
    )


def test_signed_map_matches_brute_force_per_slice():
    masks = random_masks(seed=33, count=6, height=7, width=8)
    result = signed_distance_map(masks.view(2, 3, 7, 8)).view(6, 7, 8).numpy()
    for mask, signed in zip(masks.numpy(), result, strict=True):
        np.testing.assert_allclose(signed, brute_signed_map(mask), rtol=1e-6, atol=1e-6)
    assert np.all(result[0] == 0) and np.all(result[1] == 0)  # no region / no outside


@pytest.mark.parametrize("classes", [None, [1, 2]])
def test_matches_naive_loop(classes):
    logits, target = random_case(seed=34, classes=3, height=6, width=7)
    loss = KervadecBoundaryLoss(classes=classes)
    value, grad = value_and_grad(loss, logits, target)
    expected, expected_grad = value_and_grad(
        lambda x, t: naive_kervadec(x, t, classes, IGNORE), logits, target
    )
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(grad, expected_grad, rtol=1e-6, atol=1e-9)


def test_perfect_prediction_reaches_the_minimum():
    logits, target = random_case(seed=35, classes=3, height=8, width=8, ignore_fraction=0.0)
    loss = KervadecBoundaryLoss(ignore_index=None)
    perfect = 40.0 * F.one_hot(target, 3).permute(0, 3, 1, 2).double()
    maps = np.stack([[brute_signed_map(t == c) for c in range(3)] for t in target.numpy()])
    lowest = maps.min(axis=1).sum() / (maps.shape[1] * target.numel())  # best class per pixel
    assert float(loss(perfect, target)) == pytest.approx(lowest, abs=1e-9)
    assert float(loss(logits.detach(), target)) > lowest
    shuffled = 40.0 * F.one_hot((target + 1) % 3, 3).permute(0, 3, 1, 2).double()
    assert float(loss(shuffled, target)) > float(loss(logits.detach(), target))


def test_ignore_pixels_have_no_effect():
    logits, target = random_case(seed=36)
    assert_ignore_has_no_effect(KervadecBoundaryLoss(), logits, target)


def test_all_ignore_is_connected_zero():
    assert_all_ignore_gives_connected_zero(KervadecBoundaryLoss(), torch.randn(2, 3, 4, 4))


def test_gradcheck():
    logits, target = random_case(seed=37, batch=1, classes=3, height=4, width=4)
    assert torch.autograd.gradcheck(
        lambda x: KervadecBoundaryLoss()(x, target), (logits,), fast_mode=True
    )


def test_low_precision_input_gives_float32():
    logits, target = random_case(seed=38)
    assert KervadecBoundaryLoss()(logits.detach().half(), target).dtype == torch.float32


@pytest.mark.parametrize("kwargs", [{"classes": [0, 0]}, {"classes": "all"}, {"ignore_index": 1.0}])
def test_invalid_options_raise(kwargs):
    with pytest.raises(InvalidOptionError, match=next(iter(kwargs))):
        KervadecBoundaryLoss(**kwargs)
